//! Real DuckDB (the Python package) reads the lake we wrote, through the views `cdnlake ddl`
//! generates, and sees exactly what the generator knows it wrote.
//!
//! Needs `python3 -c 'import duckdb'`; `.ci/run` installs the package when it is missing.

use std::path::Path;

use crate::support::*;
use cdnlake::access::parse::parse_line;
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
    let cols: Vec<&str> = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let rows = d["rows_detail"].as_array().unwrap();
    let text = String::from_utf8(text).unwrap();
    let expected: Vec<(usize, _)> = text
        .split('\n')
        .enumerate()
        .filter_map(|(i, l)| parse_line(l).ok().map(|p| (i + 1, p)))
        .collect();
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows.len(), 8);
    for (row, (n, p)) in rows.iter().zip(&expected) {
        let get = |c: &str| -> Value { row[cols.iter().position(|x| *x == c).unwrap()].clone() };
        let s = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_string()));
        assert_eq!(get("line_number"), *n as u64);
        assert_eq!(get("time_us"), p.time_micros);
        assert_eq!(get("unixtime"), p.time_micros / 1_000_000);
        assert_eq!(get("client_ip"), s(Some(p.client_ip)));
        assert_eq!(get("proxy_ip"), s(p.proxy_ip));
        assert_eq!(get("response_time_ms"), p.response_time_ms);
        assert_eq!(get("referer"), s(p.referer));
        assert_eq!(get("method"), s(Some(p.method)));
        assert_eq!(get("url"), s(Some(p.url)));
        assert_eq!(get("scheme"), s(p.scheme));
        assert_eq!(get("host"), s(p.host));
        assert_eq!(get("path"), s(Some(p.path)));
        assert_eq!(get("query"), s(p.query));
        assert_eq!(get("status"), p.status);
        assert_eq!(get("request_bytes"), p.request_bytes);
        assert_eq!(get("response_bytes"), p.response_bytes);
        assert_eq!(get("cache_status"), s(p.cache_status));
        assert_eq!(get("user_agent"), s(Some(p.user_agent)));
        assert_eq!(get("content_type"), s(Some(p.content_type)));
        assert_eq!(get("extra"), s(p.extra));
        assert_eq!(get("source_file"), "quirks.log.gz");
        assert_eq!(get("domain"), "quirks.example.com");
    }
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
    assert_eq!(by_line(11)[col("path")], "/last");
    // 02:00:00 +0000 is 10:00 in +08:00; -0530 moves line 4 to the next day.
    assert_eq!(by_line(3)[col("hour")], "10");
    assert_eq!(by_line(4)[col("dt")], "2015-06-09");
    assert_eq!(by_line(4)[col("hour")], "15");
}
