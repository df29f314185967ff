//! Helpers shared by the black-box tests: run the real binary, make logs, look at a lake.

pub mod cloud;
pub mod weed;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions, GenSummary};
use sha2::{Digest, Sha256};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cdnlake"))
}

/// Runs `cdnlake ARGS` in `cwd`; stdin closed, logs quiet.
pub fn cdnlake(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("CDNLAKE_DEST")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run cdnlake")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes a generated gzip log with its CDN-style name into `dir`.
pub fn gen_gz(dir: &Path, opts: &GenOptions) -> (PathBuf, GenSummary) {
    let path = dir.join(cdn_file_name(opts));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let s = generate(opts, &mut gz).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    (path, s)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every file under `root` (relative path -> sha256), to compare a lake before and after.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, hex::encode(Sha256::digest(std::fs::read(&p).unwrap())));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Parses the `--json` report lines of a convert.
pub fn reports(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("report is JSON"))
        .collect()
}

/// `n` lines of the docs/design.md §1.3 format across two hours, every 7th one malformed (a small,
/// hand-shaped log for the server tests, independent of the generator).
pub fn log_text(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        if i % 7 == 3 {
            s.push_str("this line is not an access line\n");
            continue;
        }
        let (h, m, sec) = (1 + (i * 2 / n), (i / 60) % 60, i % 60);
        s.push_str(&format!(
            "[9/Jun/2015:{h:02}:{m:02}:{sec:02} +0800] 192.0.2.{} - {} \"-\" \"GET http://www.example.com/p/{i}.html?x={i}\" 200 191 {} MISS \"Mozilla/5.0 (X)\" \"text/html\"\n",
            i % 250,
            i % 1000,
            1000 + i
        ));
    }
    s.into_bytes()
}

/// Creates the DuckDB views `cdnlake ddl` prints for `lake` (relative to `dir`), then runs the
/// Python checker `tests/<script>` with `views.sql`, the lake path and `args`; returns its JSON.
pub fn duckdb_script(dir: &Path, lake: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let ddl = cdnlake(dir, &["ddl", "--dialect", "duckdb", "--dest", lake]);
    assert!(ddl.status.success(), "{}", stderr(&ddl));
    let views = dir.join("views.sql");
    std::fs::write(&views, &ddl.stdout).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let o = Command::new("python3")
        .arg(&script)
        .arg(&views)
        .arg(dir.join(lake))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("python3 must be installed");
    assert!(
        o.status.success(),
        "DuckDB check failed (is the duckdb Python package installed? `python3 -m pip install duckdb`):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("checker prints JSON")
}

/// Like [`gen_gz`], but the gzip stores the text uncompressed (deflate level 0): a valid gzip
/// as large as the log text, so its raw dump passes an upload part (a multipart upload) with a
/// log that converts in little time.
pub fn gen_gz_stored(dir: &Path, opts: &GenOptions) -> (PathBuf, GenSummary) {
    let path = dir.join(cdn_file_name(opts));
    let mut text = Vec::new();
    let s = generate(opts, &mut text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    gz.write_all(&text).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    (path, s)
}

/// Every file a Hive-style reader (Spark, Hive, MaxCompute, a DuckDB glob) takes from the table
/// folders (`access/`, `traffic/`, `heavy_hitters/`, `visitors/`, `raw/`, `rejects/`) of a local lake: those whose path
/// (relative to the lake) has no component starting with `_` or `.`. Relative paths, sorted.
pub fn reader_visible_files(lake: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for table in cdnlake::repair::verify::TABLE_FOLDERS {
        let mut stack = vec![lake.join(table)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('_') || name.starts_with('.') {
                    continue;
                }
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(lake).unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    out
}

/// Files (not folders) under `dir`, relative to it, sorted; empty when it does not exist.
pub fn files_under(dir: &Path) -> Vec<String> {
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
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
