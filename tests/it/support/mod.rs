//! Everything the suites share, each written once: here, running the real binary, making logs
//! and running the DuckDB checkers; in the submodules, the fake DNS resolver ([`resolver`]), the
//! in-process S3 server ([`s3`]), the log server ([`logserver`]), the folder walker ([`walk`]),
//! SeaweedFS ([`weed`]) and the cloud APIs `sync` calls ([`cloud`]).

pub mod cloud;
pub mod logserver;
pub mod resolver;
pub mod s3;
pub mod walk;
pub mod weed;

pub use walk::{files_under, reader_visible_files, snapshot};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions, GenSummary};

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
