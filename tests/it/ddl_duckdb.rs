//! The DuckDB DDL runs in real DuckDB against a lake with access, traffic and audit data, and
//! each view counts what its files hold; on a lake without audit files (or without anything) the
//! script still runs and those views are empty.
//!
//! Needs `python3 -c 'import duckdb'`.

use std::path::Path;
use std::process::Command;

use crate::support::*;
use cdnlake::dev::gen::GenOptions;
use serde_json::Value;

const TABLES: [(&str, &str); 6] = [
    ("access", "access"),
    ("traffic", "traffic"),
    ("heavy_hitters", "heavy_hitters"),
    ("visitors", "visitors"),
    ("cache_audit", "audit/cache"),
    ("domain_audit", "audit/domain"),
];

/// Runs the DDL in DuckDB; per table: [rows through the view, rows of the files read directly].
fn view_counts(dir: &Path, lake: &str) -> Value {
    let o = cdnlake(dir, &["ddl", "--dialect", "duckdb", "--dest", lake]);
    assert!(o.status.success(), "{}", stderr(&o));
    let views = dir.join("views.sql");
    std::fs::write(&views, &o.stdout).unwrap();
    let script = r#"
import json, sys, duckdb
con = duckdb.connect()
con.execute(open(sys.argv[1]).read())
out = {}
for t, folder in json.loads(sys.argv[3]):
    glob = f"{sys.argv[2]}/{folder}/**/*.parquet"
    files = con.execute("SELECT count(*) FROM glob(?)", [glob]).fetchone()[0]
    direct = con.execute("SELECT count(*) FROM read_parquet(?)", [glob]).fetchone()[0] if files else 0
    out[t] = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0], direct]
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(&views)
        .arg(dir.join(lake))
        .arg(serde_json::to_string(&TABLES).unwrap())
        .output()
        .expect("python3 must be installed");
    assert!(
        o.status.success(),
        "DuckDB rejected the DDL (is the duckdb Python package installed?):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn events(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("sample_logs/events/{name}.json"))
}

#[test]
fn every_view_counts_its_files() {
    let tmp = tempfile::tempdir().unwrap();

    // Nothing converted yet: the script runs and every view is empty; the folder is not created.
    let c = view_counts(tmp.path(), "lake");
    for (t, _) in TABLES {
        assert_eq!(c[t], serde_json::json!([0, 0]), "{t}");
    }
    assert!(!tmp.path().join("lake").exists());

    let (log, s) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 2000,
            ..GenOptions::default()
        },
    );
    let o = cdnlake(tmp.path(), &["convert", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Access and traffic only: the audit views are empty ones.
    let c = view_counts(tmp.path(), "lake");
    assert_eq!(c["access"][0].as_u64().unwrap(), s.rows);
    assert_eq!(c["cache_audit"], serde_json::json!([0, 0]));

    // Cache and domain events (no network needed) fill the audit tables.
    let cache = [
        "CachedObjectsRefreshed",
        "CachedObjectsPushed",
        "CachedObjectsBlocked",
    ];
    let domain = [
        "CdnDomainAdded",
        "CdnDomainDeleted",
        "CdnDomainStarted",
        "CdnDomainStopped",
    ];
    let mut object_paths = 0;
    for e in cache.iter().chain(&domain) {
        let f = events(e);
        let o = cdnlake(
            tmp.path(),
            &["handle", f.to_str().unwrap(), "--dest", "lake"],
        );
        assert!(o.status.success(), "{e}: {}", stderr(&o));
        if cache.contains(e) {
            let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            object_paths += v["events"][0]["eventParameter"]["objectPath"]
                .as_array()
                .map_or(1, Vec::len);
        }
    }
    let c = view_counts(tmp.path(), "lake");
    for (t, _) in TABLES {
        assert_eq!(c[t][0], c[t][1], "{t}: the view counts what the files hold");
    }
    assert_eq!(c["access"][0].as_u64().unwrap(), s.rows);
    assert!(c["traffic"][0].as_u64().unwrap() > 0);
    assert!(c["heavy_hitters"][0].as_u64().unwrap() > 0);
    // One sketch row per file and partition hour: the log spans two hours.
    assert_eq!(c["visitors"][0], 2);
    assert_eq!(c["cache_audit"][0].as_u64().unwrap(), object_paths as u64);
    assert_eq!(c["domain_audit"][0], 4);

    // MaxCompute partitions of all six tables, and --since.
    let o = cdnlake(
        tmp.path(),
        &[
            "ddl",
            "--dialect",
            "maxcompute",
            "--partitions",
            "--since",
            "2024-03-05",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for t in cdnlake::tables::registry::tables() {
        // On the table over the files: `access_files` under the view `access`.
        let t = t.files_table();
        assert!(out.contains(&format!("ALTER TABLE {t} ADD")), "{t}: {out}");
    }
    assert!(out.contains("PARTITION (`event`='CdnDomainStopped', `dt`='2024-03-05')"));
    let o = cdnlake(
        tmp.path(),
        &[
            "ddl",
            "--dialect",
            "maxcompute",
            "--partitions",
            "--since",
            "2024-03-06T00:00:00+08:00",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

/// What DuckDB sees through the views `cdnlake ddl` prints for `lake`: totals, rows per
/// (domain, dt), rows of a one-hour window on `time`, the traffic total, the view's columns.
fn day_or_hour(dir: &Path, lake: &str) -> Value {
    let o = cdnlake(dir, &["ddl", "--dialect", "duckdb", "--dest", lake]);
    assert!(o.status.success(), "{}", stderr(&o));
    let views = dir.join(format!("{lake}.sql"));
    std::fs::write(&views, &o.stdout).unwrap();
    let script = r#"
import json, sys, duckdb
con = duckdb.connect()
con.execute(open(sys.argv[1]).read())
one = lambda q: con.execute(q).fetchone()
out = {}
out["totals"] = list(one("SELECT count(*), sum(response_bytes)::BIGINT, count(DISTINCT (source_file, line_number)) FROM access"))
out["per_dt"] = {f"{d}/{t}": n for d, t, n in con.execute("SELECT domain, dt, count(*) FROM access GROUP BY ALL").fetchall()}
out["nine_oclock"] = one("SELECT count(*) FROM access WHERE time >= TIMESTAMPTZ '2024-03-05 09:00:00+08' AND time < TIMESTAMPTZ '2024-03-05 10:00:00+08'")[0]
out["traffic"] = one("SELECT sum(requests)::BIGINT FROM traffic")[0]
out["columns"] = [d[0] for d in con.execute("SELECT * FROM access LIMIT 0").description]
out["traffic_columns"] = [d[0] for d in con.execute("SELECT * FROM traffic LIMIT 0").description]
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(&views)
        .output()
        .expect("python3 must be installed");
    assert!(
        o.status.success(),
        "DuckDB rejected the DDL:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The same logs in an hour lake and a day lake: DuckDB, through the DDL each lake gets, counts
/// the same rows, per day and in a one-hour window; the day lake's views have no `hour`. Its
/// MaxCompute partitions are (domain, dt).
#[test]
fn a_day_lake_reads_like_an_hour_lake() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut rows = 0;
    for (i, (domain, start)) in [
        ("cdn.example.com", GenOptions::default().start_micros),
        // Across midnight, in another domain.
        ("b.example.com", 1_709_653_800_000_000),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, s) = gen_gz(
            &logs,
            &GenOptions {
                lines: 3000,
                seed: i as u64 + 1,
                domain: domain.into(),
                start_micros: start,
                ..GenOptions::default()
            },
        );
        rows += s.rows;
    }
    for (lake, by) in [("hour", "hour"), ("day", "day")] {
        let o = cdnlake(
            tmp.path(),
            &["convert", "logs", "--dest", lake, "--partition-by", by],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let hour = day_or_hour(tmp.path(), "hour");
    let day = day_or_hour(tmp.path(), "day");
    assert_eq!(hour["totals"][0].as_u64(), Some(rows));
    assert_eq!(hour["totals"][0], hour["totals"][2], "no duplicate lines");
    for k in ["totals", "per_dt", "nine_oclock", "traffic"] {
        assert_eq!(hour[k], day[k], "{k}");
    }
    assert_eq!(day["per_dt"].as_object().unwrap().len(), 3, "{day}");
    assert!(hour["nine_oclock"].as_u64().unwrap() > 0);
    assert_eq!(hour["traffic"].as_u64(), Some(rows));
    let cols = |v: &Value, k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    for k in ["columns", "traffic_columns"] {
        assert!(cols(&hour, k).ends_with(&["domain".into(), "dt".into(), "hour".into()]));
        assert!(cols(&day, k).ends_with(&["domain".into(), "dt".into()]));
        assert!(!cols(&day, k).contains(&"hour".to_string()));
    }

    let o = cdnlake(
        tmp.path(),
        &[
            "ddl",
            "--dialect",
            "maxcompute",
            "--partitions",
            "--dest",
            "day",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(
        "ALTER TABLE access_files ADD IF NOT EXISTS PARTITION (`domain`='b.example.com', `dt`='2024-03-06');"
    ), "{out}");
    assert_eq!(
        out.lines().count(),
        12,
        "3 partitions each of access, traffic, heavy_hitters and visitors: {out}"
    );
    assert!(!out.contains("`hour`"), "{out}");
    let o = cdnlake(
        tmp.path(),
        &["ddl", "--dialect", "maxcompute", "--dest", "day"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("PARTITIONED BY (`domain` STRING, `dt` STRING)\nSTORED AS PARQUET"));
}

/// MaxCompute cannot run here, so its view's `url` expression is run by DuckDB over the same
/// files (backquotes made double quotes; `CONCAT`, `CASE` and `IS NULL` read alike in both):
/// it equals the logged URL of every line of the odd-URL and quirk logs and of the sample log.
/// Its `CASE` guards keep DuckDB's `CONCAT` (which skips NULLs) from hiding a difference.
#[test]
fn the_maxcompute_url_rebuild_equals_the_logged_url() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    for (src, name) in [
        (
            "tests/data/odd_urls.log",
            "odd.example.com_2024_03_05_090000_100000.gz",
        ),
        (
            "tests/data/quirks.log",
            "quirks.example.com_2015_06_09_010000_020000.gz",
        ),
    ] {
        let text = std::fs::read(data.join(src)).unwrap();
        std::fs::write(tmp.path().join(name), gzip(&text)).unwrap();
        texts.push((name.to_string(), String::from_utf8(text).unwrap()));
    }
    let sample = "cdn.example.com_2024_03_05_080000_090000.gz";
    let sample_path = data.join("sample_logs").join(sample);
    std::fs::copy(&sample_path, tmp.path().join(sample)).unwrap();
    texts.push((sample.to_string(), gunzip_text(&sample_path)));
    let names: Vec<&str> = texts.iter().map(|(n, _)| n.as_str()).collect();
    let mut args = vec!["convert", "--dest", "lake"];
    args.extend(&names);
    let o = cdnlake(tmp.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = cdnlake(
        tmp.path(),
        &[
            "ddl",
            "--dialect",
            "maxcompute",
            "--dest",
            "oss://b/lake",
            "--partition-by",
            "hour",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let sql = stdout(&o);
    let expr = sql
        .lines()
        .find_map(|l| l.trim().strip_suffix(" AS `url`,"))
        .unwrap_or_else(|| panic!("no url in the view: {sql}"))
        .replace('`', "\"")
        // MaxCompute's CONCAT returns NULL when any argument is NULL; DuckDB's skips NULLs. Run
        // the expression with MaxCompute's semantics, so a missing NULL guard fails here.
        .replace("CONCAT(", "mc_concat(");
    assert!(expr.contains("mc_concat("), "{expr}");
    let script = r#"
import json, sys, duckdb
con = duckdb.connect()
con.execute("CREATE MACRO mc_concat(a, b) AS a || b, (a, b, c) AS a || b || c")
rows = con.sql(f"SELECT source_file, line_number, {sys.argv[1]} FROM read_parquet('{sys.argv[2]}/access/**/*.parquet') ORDER BY 1, 2").fetchall()
print(json.dumps(rows))
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(&expr)
        .arg(tmp.path().join("lake"))
        .output()
        .expect("python3 must be installed");
    assert!(
        o.status.success(),
        "DuckDB rejected {expr}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows: Vec<(String, u64, Option<String>)> = serde_json::from_slice(&o.stdout).unwrap();
    texts.sort();
    let expected: Vec<(String, u64, Option<String>)> = texts
        .iter()
        .flat_map(|(name, text)| {
            text.split('\n').enumerate().filter_map(move |(i, l)| {
                cdnlake::access::parse::parse_line(l)
                    .ok()
                    .map(|p| (name.clone(), i as u64 + 1, Some(p.url.to_string())))
            })
        })
        .collect();
    assert!(expected.len() > 5000, "{}", expected.len());
    assert_eq!(rows, expected);
}
