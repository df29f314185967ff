//! The folder walker of the tests: every file under a folder, by its path relative to it, and
//! the views the suites compare (names, contents, digests, what a Hive-style reader takes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Every file (not folder) under `dir`, as (path relative to `dir`, full path), sorted by the
/// relative path; empty when `dir` does not exist.
pub fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, p));
            }
        }
    }
    out.sort();
    out
}

/// Files under `dir`, relative to it, sorted; empty when it does not exist.
pub fn files_under(dir: &Path) -> Vec<String> {
    files(dir).into_iter().map(|(rel, _)| rel).collect()
}

/// Every file under `dir` (relative path -> bytes).
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .map(|(rel, p)| (rel, std::fs::read(p).unwrap()))
        .collect()
}

/// Every file under `root` (relative path -> sha256), to compare a lake before and after.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    files(root)
        .into_iter()
        .map(|(rel, p)| (rel, hex::encode(Sha256::digest(std::fs::read(p).unwrap()))))
        .collect()
}

/// Every file a Hive-style reader (Spark, Hive, MaxCompute, a DuckDB glob) takes from the table
/// folders (`access/`, `traffic/`, `heavy_hitters/`, `visitors/`, `raw/`, `rejects/`) of a
/// local lake: those whose path (relative to the lake) has no component starting with `_` or
/// `.`. Relative paths, sorted.
pub fn reader_visible_files(lake: &Path) -> Vec<String> {
    let mut out: Vec<String> = cdnlake::repair::verify::TABLE_FOLDERS
        .iter()
        .flat_map(|table| {
            files_under(&lake.join(table))
                .into_iter()
                .filter(|rel| {
                    !rel.split('/')
                        .any(|c| c.starts_with('_') || c.starts_with('.'))
                })
                .map(move |rel| format!("{table}/{rel}"))
        })
        .collect();
    out.sort();
    out
}
