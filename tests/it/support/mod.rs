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

use cdnlake::access::parse::parse_line;
use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions, GenSummary};
use serde_json::Value;

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

/// The `access` view's columns, in order: schema version 1's columns (`url` after `method`, now
/// rebuilt by the view), then the partition keys.
pub const VIEW_COLUMNS: [&str; 21] = [
    "time",
    "unixtime",
    "client_ip",
    "proxy_ip",
    "response_time_ms",
    "referer",
    "method",
    "url",
    "scheme",
    "host",
    "path",
    "query",
    "status",
    "request_bytes",
    "response_bytes",
    "cache_status",
    "user_agent",
    "content_type",
    "extra",
    "source_file",
    "line_number",
];

/// A log converted into a lake: its file name (the `source_file` of its rows), its domain and
/// its text.
pub struct LogText<'a> {
    pub name: &'a str,
    pub domain: &'a str,
    pub text: &'a str,
}

/// Asserts that the `access` rows DuckDB read through the view (`duckdb_check.py --rows`:
/// ordered by source file and line) are exactly the reference parser's reading of `logs`: one
/// row per accepted line, every column equal, `url` included (rebuilt by the view from
/// scheme, host, path and query since schema version 2; the parser keeps the logged text).
/// Returns the number of rows compared.
pub fn assert_rows_are_the_parsers(d: &Value, logs: &[LogText<'_>]) -> usize {
    let cols: Vec<&str> = d["columns"]
        .as_array()
        .expect("--rows output")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        cols[..VIEW_COLUMNS.len()],
        VIEW_COLUMNS,
        "the view keeps schema version 1's columns and order"
    );
    let rows = d["rows_detail"].as_array().unwrap();
    let mut sorted: Vec<&LogText<'_>> = logs.iter().collect();
    sorted.sort_by_key(|l| l.name);
    let expected: Vec<(&LogText<'_>, usize, _)> = sorted
        .iter()
        .flat_map(|log| {
            log.text
                .split('\n')
                .enumerate()
                .filter_map(move |(i, l)| parse_line(l).ok().map(|p| (*log, i + 1, p)))
        })
        .collect();
    assert_eq!(rows.len(), expected.len(), "rows through the view");
    let s = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_string()));
    for (row, (log, n, p)) in rows.iter().zip(&expected) {
        let get = |c: &str| -> Value { row[cols.iter().position(|x| *x == c).unwrap()].clone() };
        let at = format!("{}:{n}", log.name);
        assert_eq!(get("source_file"), log.name, "{at}");
        assert_eq!(get("line_number"), *n as u64, "{at}");
        assert_eq!(get("domain"), log.domain, "{at}");
        assert_eq!(get("time_us"), p.time_micros, "{at}");
        assert_eq!(get("unixtime"), p.time_micros / 1_000_000, "{at}");
        assert_eq!(get("client_ip"), s(Some(p.client_ip)), "{at}");
        assert_eq!(get("proxy_ip"), s(p.proxy_ip), "{at}");
        assert_eq!(get("response_time_ms"), p.response_time_ms, "{at}");
        assert_eq!(get("referer"), s(p.referer), "{at}");
        assert_eq!(get("method"), s(Some(p.method)), "{at}");
        assert_eq!(get("url"), s(Some(p.url)), "{at}");
        assert_eq!(get("scheme"), s(p.scheme), "{at}");
        assert_eq!(get("host"), s(p.host), "{at}");
        assert_eq!(get("path"), s(Some(p.path)), "{at}");
        assert_eq!(get("query"), s(p.query), "{at}");
        assert_eq!(get("status"), p.status, "{at}");
        assert_eq!(get("request_bytes"), p.request_bytes, "{at}");
        assert_eq!(get("response_bytes"), p.response_bytes, "{at}");
        assert_eq!(get("cache_status"), s(p.cache_status), "{at}");
        assert_eq!(get("user_agent"), s(Some(p.user_agent)), "{at}");
        assert_eq!(get("content_type"), s(Some(p.content_type)), "{at}");
        assert_eq!(get("extra"), s(p.extra), "{at}");
    }
    rows.len()
}

/// The text of a gzip log, bytes that are not UTF-8 replaced as the converter replaces them.
pub fn gunzip_text(path: &Path) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}
