//! The traffic rollups, read with real DuckDB through the generated views, equal the same
//! aggregates over the access rows per minute, also where two files share minutes; the view counts
//! what the files hold; a re-run rewrites identical rollups.
//!
//! Needs `python3 -c 'import duckdb'`; `.ci/run` installs the package when it is missing.

use std::path::Path;

use crate::support::*;
use cdnlake::dev::gen::GenOptions;
use cdnlake::tables::traffic::{RT_BOUNDS_MS, TRAFFIC};
use serde_json::Value;

fn traffic_check(dir: &Path, lake: &str) -> Value {
    let bounds: Vec<String> = RT_BOUNDS_MS.iter().map(i64::to_string).collect();
    duckdb_script(dir, lake, "traffic_check.py", &[&bounds.join(",")])
}

/// Rows of the traffic objects the manifests list.
fn manifest_traffic_rows(lake: &Path) -> u64 {
    snapshot(lake)
        .into_keys()
        .filter(|k| k.starts_with("_manifests/"))
        .map(|k| {
            let m: Value = serde_json::from_slice(&std::fs::read(lake.join(k)).unwrap()).unwrap();
            m["objects"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["key"].as_str().unwrap().starts_with("traffic/"))
                .map(|o| o["rows"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum()
}

#[test]
fn traffic_equals_access_per_minute_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    // 08:30-09:29:59 and 09:00-09:59:59 (+08:00): the half hour 09:00-09:30 is in both files.
    let a = GenOptions {
        lines: 6000,
        bad_fraction: 0.01,
        seed: 3,
        ..GenOptions::default()
    };
    let b = GenOptions {
        lines: 4000,
        seed: 4,
        start_micros: 1_709_600_400_000_000,
        ..GenOptions::default()
    };
    let (log_a, sa) = gen_gz(tmp.path(), &a);
    let (log_b, sb) = gen_gz(tmp.path(), &b);
    assert_ne!(log_a, log_b);
    let args = [
        "convert",
        log_a.to_str().unwrap(),
        log_b.to_str().unwrap(),
        "--json",
    ];
    let o = cdnlake(tmp.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reports(&o).len(), 2);

    let d = traffic_check(tmp.path(), "lake");
    let access = d["access"].as_array().unwrap();
    let traffic = d["traffic"].as_array().unwrap();
    assert_eq!(access.len(), 90, "08:30 to 09:59, every minute has rows");
    assert_eq!(
        traffic, access,
        "per minute: requests, bytes, hits, misses, status classes, rt sum/max, histogram"
    );
    let requests: u64 = traffic.iter().map(|r| r[1].as_u64().unwrap()).sum();
    assert_eq!(requests, sa.rows + sb.rows);
    assert!(
        d["shared_minutes"].as_u64().unwrap() >= 29,
        "the overlapping half hour merges rows of both files: {}",
        d["shared_minutes"]
    );

    // The view counts what the files hold, and the manifests list exactly those rows.
    assert_eq!(d["view_rows"], d["file_rows"]);
    assert_eq!(
        d["view_rows"].as_u64().unwrap(),
        manifest_traffic_rows(&tmp.path().join("lake"))
    );
    assert_eq!(d["misplaced"], 0, "dt/hour agree with each row's minute");
    let cols: Vec<&str> = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let want: Vec<&str> = TRAFFIC
        .columns
        .iter()
        .map(|c| c.name)
        .chain(TRAFFIC.partitions.iter().copied())
        .collect();
    assert_eq!(cols, want);

    // `report --json` (which reads only the rollups) agrees with SQL over the access rows.
    let o = cdnlake(tmp.path(), &["report", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &d["totals"];
    assert_eq!(
        [
            &r["requests"],
            &r["request_bytes"],
            &r["response_bytes"],
            &r["hits"],
            &r["misses"],
            &r["status"]["5xx"],
            &r["response_time_ms_max"],
        ],
        [&t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6]]
    );
    let (hits, misses) = (t[3].as_f64().unwrap(), t[4].as_f64().unwrap());
    assert!((r["hit_ratio"].as_f64().unwrap() - hits / (hits + misses)).abs() < 1e-12);
    assert_eq!(r["minutes"], 90);
    let hourly: i64 = r["per_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(hourly, t[0].as_i64().unwrap());
    // Each estimated quantile's stated bucket holds the exact quantile DuckDB computes.
    for (q, exact) in r["quantiles"]
        .as_array()
        .unwrap()
        .iter()
        .zip(d["quantiles"].as_array().unwrap())
    {
        let exact = exact.as_i64().unwrap();
        let (lo, hi) = (
            q["lower_ms"].as_i64().unwrap(),
            q["upper_ms"].as_i64().unwrap(),
        );
        assert!(lo <= exact && exact <= hi, "{q} vs exact {exact}");
    }
    // With --exact the top-10 lists (counted from the access files) equal SQL over `access`,
    // ties included; so do the unique visitors.
    let o = cdnlake(tmp.path(), &["report", "--json", "--exact"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let x: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(x["top_source"], "access");
    assert_eq!(x["unique_visitors"], d["unique_visitors"]);
    assert_eq!(x["unique_visitors_exact"], true);
    let list = |r: &Value, dim: &str, by: &str| -> Value {
        r["top"][dim][by]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| serde_json::json!([e["value"], e["requests"], e["bytes"]]))
            .collect()
    };
    for dim in cdnlake::query::top::DIMENSIONS {
        for by in ["by_requests", "by_bytes"] {
            let got = list(&x, dim, by);
            assert_eq!(got.as_array().unwrap().len(), 10, "{dim} {by}");
            assert_eq!(&got, &d["top"][dim][by], "{dim} {by}");
        }
    }
    // From the rollups (the default): columns with few distinct values (user agents, referers,
    // status codes) are summarised without loss, so they equal SQL too, with no error; the
    // others carry their bound, and every count shown lies within it (checked on a Zipf log in
    // tests/it/rollups.rs).
    assert_eq!(r["top_source"], "rollups");
    for dim in ["user_agent", "referer", "status"] {
        for by in ["by_requests", "by_bytes"] {
            assert_eq!(list(&r, dim, by), d["top"][dim][by], "{dim} {by}");
            for e in r["top"][dim][by].as_array().unwrap() {
                assert_eq!(
                    (&e["requests_error"], &e["bytes_error"]),
                    (&0.into(), &0.into())
                );
            }
        }
    }
    assert_eq!(
        r["top_approximate"], true,
        "client IPs are nearly all distinct"
    );
    assert_eq!(
        r["top"]["path"]["by_requests"][0]["value"], d["top"]["path"]["by_requests"][0][0],
        "the heaviest path"
    );
    // A time window and a domain filter.
    let o = cdnlake(
        tmp.path(),
        &[
            "report",
            "--json",
            "--exact",
            "--domain",
            "cdn.example.com",
            "--from",
            "2024-03-05T09:00:00+08:00",
            "--to",
            "2024-03-05T09:30:00+08:00",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let w: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(w["minutes"], 30);
    let want: u64 = access[30..60].iter().map(|m| m[1].as_u64().unwrap()).sum();
    assert_eq!(w["requests"], want);
    let top: Vec<Value> = w["top"]["path"]["by_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::json!([e["value"], e["requests"], e["bytes"]]))
        .collect();
    assert_eq!(
        Value::Array(top),
        d["top_window"],
        "top-10 within the window"
    );
    let o = cdnlake(tmp.path(), &["report", "--domain", "other.example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("requests:       0"), "{}", stdout(&o));

    // A re-run rewrites identical rollups (and everything else).
    let traffic_of = |root: &Path| {
        let mut s = snapshot(root);
        s.retain(|k, _| k.starts_with("traffic/"));
        s
    };
    let lake = tmp.path().join("lake");
    let before = snapshot(&lake);
    assert_eq!(
        traffic_of(&lake).len(),
        3,
        "hours 08 and 09 of one file, 09 of the other"
    );
    let o = cdnlake(tmp.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(snapshot(&lake), before);
}

#[test]
fn partitions_lists_traffic_too() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 300,
            ..GenOptions::default()
        },
    );
    let o = cdnlake(tmp.path(), &["convert", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cdnlake(
        tmp.path(),
        &["ddl", "--dialect", "maxcompute", "--partitions"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let p = |t: &str, h: &str| {
        format!("ALTER TABLE {t} ADD IF NOT EXISTS PARTITION (`domain`='cdn.example.com', `dt`='2024-03-05', `hour`='{h}');")
    };
    let want = [
        // The access rows' external table (the view `access` over it takes no partitions).
        p("access_files", "08"),
        p("access_files", "09"),
        p("heavy_hitters", "08"),
        p("heavy_hitters", "09"),
        p("traffic", "08"),
        p("traffic", "09"),
        p("visitors", "08"),
        p("visitors", "09"),
    ]
    .join("\n")
        + "\n";
    assert_eq!(stdout(&o), want);
}
