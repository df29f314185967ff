//! The DuckDB DDL runs in real DuckDB against a lake with access, traffic and audit data, and
//! each view counts what its files hold; on a lake without audit files (or without anything) the
//! script still runs and those views are empty.
//!
//! Needs `python3 -c 'import duckdb'`.

mod common;

use std::path::Path;
use std::process::Command;

use cdnlake::dev::gen::GenOptions;
use common::*;
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
    for t in TABLES.map(|t| t.0) {
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
