//! Real DuckDB (the Python package) reads the lake we wrote, through the views `cdnlake ddl`
//! generates, and sees exactly what the generator knows it wrote, and row by row exactly what
//! the reference parser reads from the log (generated, real sample and quirk lines), `url`
//! included: the files do not store it (schema version 2), the view rebuilds it.
//!
//! Needs `python3 -c 'import duckdb'`; `.ci/run` installs the package when it is missing.

use std::path::Path;

use crate::support::*;
use cdnlake::dev::gen::GenOptions;
use serde_json::Value;

fn duckdb_check(dir: &Path, lake: &str, rows: bool) -> Value {
    let args: &[&str] = if rows { &["--rows"] } else { &[] };
    duckdb_script(dir, lake, "duckdb_check.py", args)
}

#[test]
fn duckdb_aggregates_equal_what_was_generated() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        lines: 20_000,
        bad_fraction: 0.005,
        seed: 42,
        ..GenOptions::default()
    };
    let (log, s) = gen_gz(tmp.path(), &opts);
    let o = cdnlake(tmp.path(), &["convert", log.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &reports(&o)[0];
    let d = duckdb_check(tmp.path(), "lake", false);

    assert_eq!(d["rows"], s.rows);
    assert_eq!(
        d["rows"].as_u64().unwrap(),
        r["lines"].as_u64().unwrap()
            - r["rejected"].as_u64().unwrap()
            - r["empty"].as_u64().unwrap()
    );
    assert_eq!(
        d["distinct_lines"], s.rows,
        "(source_file, line_number) is unique"
    );
    assert_eq!(d["sum_response_bytes"], s.sum_response_bytes);
    let m = |v: &Value| -> Vec<(String, u64)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect()
    };
    let want_status: Vec<(String, u64)> = s
        .per_status
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let mut got_status = m(&d["per_status"]);
    got_status.sort_by_key(|(k, _)| k.parse::<i32>().unwrap());
    assert_eq!(got_status, want_status);
    let want_cache: Vec<(String, u64)> = s
        .per_cache_status
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(m(&d["per_cache_status"]), want_cache);
    let want_parts: Vec<(String, u64)> = s
        .per_partition
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(m(&d["per_partition"]), want_parts);

    // The rejects are exactly the malformed lines the generator injected.
    let rejects = std::fs::read_to_string(tmp.path().join(format!(
        "lake/rejects/cdn.example.com/2024_03_05/{}l",
        log.file_name().unwrap().to_str().unwrap().replace(".gz", ".json")
    )))
    .unwrap();
    let numbers: Vec<u64> = rejects
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["line_number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, s.rejected_lines);

    // Types: signed only, time as INT64 micros adjusted to UTC, status INT32.
    for col in d["schema"].as_array().unwrap() {
        let (name, ty, conv, logical) = (
            col[0].as_str().unwrap(),
            col[1].as_str().unwrap(),
            col[2].as_str().unwrap(),
            col[3].as_str().unwrap(),
        );
        assert!(
            !conv.starts_with("UINT") && !logical.contains("isSigned=0"),
            "{name}: unsigned {conv} {logical}"
        );
        match name {
            "time" => {
                assert_eq!(ty, "INT64");
                assert!(
                    logical.contains("isAdjustedToUTC=1")
                        && logical.contains("MICROS=MicroSeconds()"),
                    "{logical}"
                );
            }
            "status" => assert_eq!(ty, "INT32"),
            _ => assert!(ty == "INT64" || ty == "BYTE_ARRAY", "{name}: {ty}"),
        }
    }
}

#[test]
fn every_quirk_round_trips_exactly_through_duckdb() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/quirks.log");
    let text = std::fs::read(&src).unwrap();
    std::fs::write(tmp.path().join("quirks.log.gz"), gzip(&text)).unwrap();
    let o = cdnlake(
        tmp.path(),
        &[
            "convert",
            "quirks.log.gz",
            "--domain",
            "quirks.example.com",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &reports(&o)[0];
    assert_eq!(
        (
            r["lines"].as_u64(),
            r["rejected"].as_u64(),
            r["empty"].as_u64()
        ),
        (Some(11), Some(2), Some(1))
    );

    let d = duckdb_check(tmp.path(), "lake", true);
    let text = String::from_utf8(text).unwrap();
    let n = assert_rows_are_the_parsers(
        &d,
        &[LogText {
            name: "quirks.log.gz",
            domain: "quirks.example.com",
            text: &text,
        }],
    );
    assert_eq!(n, 8);
    let cols: Vec<&str> = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let rows = d["rows_detail"].as_array().unwrap();
    // Spot checks against the raw text, independent of the parser.
    let by_line = |n: u64| {
        rows.iter()
            .find(|r| r[cols.iter().position(|x| *x == "line_number").unwrap()] == n)
            .unwrap()
    };
    let col = |c: &str| cols.iter().position(|x| *x == c).unwrap();
    assert_eq!(by_line(2)[col("response_bytes")], 5_000_000_000u64);
    assert_eq!(by_line(2)[col("content_type")], " ");
    assert_eq!(by_line(2)[col("user_agent")], "");
    assert_eq!(by_line(3)[col("user_agent")], "Mozilla/5.0  (X11;  Linux)");
    assert_eq!(by_line(3)[col("cache_status")], Value::Null);
    assert_eq!(by_line(4)[col("referer")], r#"say \"hi\""#);
    assert_eq!(by_line(4)[col("extra")], "HTTP/1.1");
    assert_eq!(by_line(4)[col("scheme")], "rtmp");
    assert_eq!(by_line(5)[col("path")], "");
    assert_eq!(by_line(5)[col("url")], "http://h.example.com");
    assert_eq!(by_line(3)[col("url")], r#"https://h.example.com/p?q=\"x\""#);
    assert_eq!(by_line(7)[col("url")], "/p?");
    assert_eq!(by_line(7)[col("query")], "");
    assert_eq!(by_line(11)[col("path")], "/last");
    // 02:00:00 +0000 is 10:00 in +08:00; -0530 moves line 4 to the next day.
    assert_eq!(by_line(3)[col("hour")], "10");
    assert_eq!(by_line(4)[col("dt")], "2015-06-09");
    assert_eq!(by_line(4)[col("hour")], "15");
}

/// Every row of a generated log (malformed and empty lines included, both the default and the
/// high-cardinality generator) through the view equals the parser's reading of its line.
#[test]
fn generated_rows_equal_the_parser_through_duckdb() {
    for high_cardinality in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let opts = GenOptions {
            lines: 3000,
            bad_fraction: 0.01,
            seed: 7,
            high_cardinality,
            ..GenOptions::default()
        };
        let (log, _) = gen_gz(tmp.path(), &opts);
        let o = cdnlake(tmp.path(), &["convert", log.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let d = duckdb_check(tmp.path(), "lake", true);
        let text = gunzip_text(&log);
        let name = log.file_name().unwrap().to_str().unwrap();
        let n = assert_rows_are_the_parsers(
            &d,
            &[LogText {
                name,
                domain: &opts.domain,
                text: &text,
            }],
        );
        assert!(n > 2900, "{n}");
    }
}

/// The real sample log of the repository (`sample_logs/`): every row through the view equals
/// the parser's reading of its line.
#[test]
fn sample_log_rows_equal_the_parser_through_duckdb() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "cdn.example.com_2024_03_05_080000_090000.gz";
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_logs")
        .join(name);
    std::fs::copy(&src, tmp.path().join(name)).unwrap();
    let o = cdnlake(tmp.path(), &["convert", name, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = reports(&o)[0]["rows"].as_u64();
    let d = duckdb_check(tmp.path(), "lake", true);
    let text = gunzip_text(&src);
    let n = assert_rows_are_the_parsers(
        &d,
        &[LogText {
            name,
            domain: "cdn.example.com",
            text: &text,
        }],
    );
    assert_eq!(Some(n as u64), rows);
    assert!(n > 4900, "{n}");
}
