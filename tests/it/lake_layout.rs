//! The lake's layout, manifest and re-run behaviour, through the real binary on a local folder.

use crate::support::*;
use cdnlake::dev::gen::GenOptions;

#[test]
fn convert_writes_the_design_layout_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        lines: 4000,
        bad_fraction: 0.01,
        ..GenOptions::default()
    };
    let (log, summary) = gen_gz(tmp.path(), &opts);
    let o = cdnlake(tmp.path(), &["convert", log.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &reports(&o)[0];
    assert_eq!(r["lines"], summary.lines);
    assert_eq!(r["rows"], summary.rows);
    assert_eq!(r["rejected"], summary.rejected_lines.len() as u64);
    assert_eq!(r["empty"], summary.empty);
    assert!(r["bytes_in"].as_u64().unwrap() > 0);
    assert!(r["bytes_decompressed"].as_u64().unwrap() > r["bytes_in"].as_u64().unwrap());

    let files: Vec<String> = snapshot(&tmp.path().join("lake")).into_keys().collect();
    let stem = "cdn.example.com_2024_03_05_080000_090000";
    assert_eq!(
        files,
        vec![
            "_cdnlake.json".to_string(),
            format!("_manifests/cdn.example.com/2024_03_05/{stem}.json"),
            format!("access/domain=cdn.example.com/dt=2024-03-05/hour=08/{stem}.parquet"),
            format!("access/domain=cdn.example.com/dt=2024-03-05/hour=09/{stem}.parquet"),
            format!("heavy_hitters/domain=cdn.example.com/dt=2024-03-05/hour=08/{stem}.parquet"),
            format!("heavy_hitters/domain=cdn.example.com/dt=2024-03-05/hour=09/{stem}.parquet"),
            format!("raw/cdn.example.com/2024_03_05/{stem}.gz"),
            format!("rejects/cdn.example.com/2024_03_05/{stem}.jsonl"),
            format!("traffic/domain=cdn.example.com/dt=2024-03-05/hour=08/{stem}.parquet"),
            format!("traffic/domain=cdn.example.com/dt=2024-03-05/hour=09/{stem}.parquet"),
            format!("visitors/domain=cdn.example.com/dt=2024-03-05/hour=08/{stem}.parquet"),
            format!("visitors/domain=cdn.example.com/dt=2024-03-05/hour=09/{stem}.parquet"),
        ]
    );
    // The raw dump is the delivered file, byte for byte.
    let raw = std::fs::read(
        tmp.path()
            .join(format!("lake/raw/cdn.example.com/2024_03_05/{stem}.gz")),
    )
    .unwrap();
    assert_eq!(raw, std::fs::read(&log).unwrap());

    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join(format!(
            "lake/_manifests/cdn.example.com/2024_03_05/{stem}.json"
        )))
        .unwrap(),
    )
    .unwrap();
    let lines = m["lines"].as_u64().unwrap();
    assert_eq!(
        lines,
        m["rows"].as_u64().unwrap()
            + m["rejected"].as_u64().unwrap()
            + m["empty"].as_u64().unwrap()
    );
    assert_eq!(m["source"]["bytes"].as_u64().unwrap(), raw.len() as u64);
    // raw, two access files, two traffic, two heavy_hitters and two visitors files, rejects.
    assert_eq!(m["objects"].as_array().unwrap().len(), 10);
    assert_eq!(m["partitions"].as_array().unwrap().len(), 2);

    // Rejects: one JSON record per malformed line, with the line number the generator knows.
    let rejects = std::fs::read_to_string(tmp.path().join(format!(
        "lake/rejects/cdn.example.com/2024_03_05/{stem}.jsonl"
    )))
    .unwrap();
    let numbers: Vec<u64> = rejects
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["line_number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, summary.rejected_lines);
}

#[test]
fn rerun_is_idempotent_and_removes_stale_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        lines: 3000,
        bad_fraction: 0.01,
        ..GenOptions::default()
    };
    let (log, _) = gen_gz(tmp.path(), &opts);
    let arg = log.to_str().unwrap();
    assert!(cdnlake(tmp.path(), &["convert", arg]).status.success());
    let first = snapshot(&tmp.path().join("lake"));
    let o = cdnlake(tmp.path(), &["convert", arg, "--json"]);
    assert!(o.status.success());
    assert_eq!(
        snapshot(&tmp.path().join("lake")),
        first,
        "a re-run rewrites identical objects"
    );

    // The same file name delivered again with different content: one hour, no bad lines.
    let opts2 = GenOptions {
        lines: 500,
        span_secs: 60,
        seed: 7,
        ..GenOptions::default()
    };
    let (log2, s2) = gen_gz(tmp.path(), &opts2);
    assert_eq!(log2, log);
    let o = cdnlake(tmp.path(), &["convert", arg, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &reports(&o)[0];
    assert_eq!(r["rows"], s2.rows);
    let removed: Vec<&str> = r["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 5, "{removed:?}");
    assert!(removed
        .iter()
        .any(|k| k.starts_with("access/") && k.contains("hour=09")));
    for table in ["traffic/", "heavy_hitters/", "visitors/"] {
        assert!(removed
            .iter()
            .any(|k| k.starts_with(table) && k.contains("hour=09")));
    }
    assert!(removed.iter().any(|k| k.starts_with("rejects/")));
    let now: Vec<String> = snapshot(&tmp.path().join("lake")).into_keys().collect();
    assert_eq!(
        now.len(),
        7,
        "descriptor, raw, access, traffic, heavy_hitters, visitors, manifest: {now:?}"
    );
    assert!(now
        .iter()
        .all(|k| !k.contains("hour=09") && !k.starts_with("rejects/")));
}

#[test]
fn domain_flag_and_plain_text_input() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    let s = cdnlake::dev::gen::generate(
        &GenOptions {
            lines: 200,
            ..GenOptions::default()
        },
        &mut text,
    )
    .unwrap();
    let log = tmp.path().join("access.log");
    std::fs::write(&log, text).unwrap();
    let o = cdnlake(
        tmp.path(),
        &[
            "convert",
            "access.log",
            "--domain",
            "plain.example.com",
            "--dest",
            "out",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reports(&o)[0]["rows"], s.rows);
    let files: Vec<String> = snapshot(&tmp.path().join("out")).into_keys().collect();
    assert!(
        files.contains(&"raw/plain.example.com/undated/access.log".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"_manifests/plain.example.com/undated/access.log.json".to_string()),
        "{files:?}"
    );
}

#[test]
fn a_folder_converts_every_log_and_partition_tz_moves_hours() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    gen_gz(
        &logs,
        &GenOptions {
            lines: 100,
            ..GenOptions::default()
        },
    );
    gen_gz(
        &logs,
        &GenOptions {
            lines: 100,
            domain: "b.example.com".into(),
            ..GenOptions::default()
        },
    );
    let o = cdnlake(
        tmp.path(),
        &["convert", "logs", "--partition-tz", "UTC", "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reports(&o).len(), 2);
    let files: Vec<String> = snapshot(&tmp.path().join("lake")).into_keys().collect();
    // 08:30+08:00 is 00:30 UTC.
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("access/domain=b.example.com/dt=2024-03-05/hour=00/")),
        "{files:?}"
    );
}

#[test]
fn names_with_reserved_characters_rerun_cleanly() {
    // `~` and `#` are percent-encoded in keys; a re-run must find and remove the old keys.
    let tmp = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    cdnlake::dev::gen::generate(
        &GenOptions {
            lines: 300,
            ..GenOptions::default()
        },
        &mut text,
    )
    .unwrap();
    std::fs::write(tmp.path().join("access~1#x.log"), text).unwrap();
    let args = [
        "convert",
        "access~1#x.log",
        "--domain",
        "odd~domain",
        "--json",
    ];
    let o = cdnlake(tmp.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let first: Vec<String> = snapshot(&tmp.path().join("lake")).into_keys().collect();
    assert!(first.iter().any(|k| k.contains("hour=08")), "{first:?}");
    // Another partition time zone moves every row to other hours: the old hour files must go.
    // (A lake refuses a --partition-tz against its own: the clock is changed in its descriptor.)
    let desc = tmp.path().join("lake/_cdnlake.json");
    let text = std::fs::read_to_string(&desc).unwrap();
    std::fs::write(&desc, text.replace("+08:00", "+00:00")).unwrap();
    let o = cdnlake(
        tmp.path(),
        &[
            "convert",
            "access~1#x.log",
            "--domain",
            "odd~domain",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!reports(&o)[0]["removed"].as_array().unwrap().is_empty());
    let now: Vec<String> = snapshot(&tmp.path().join("lake")).into_keys().collect();
    assert!(
        now.iter()
            .all(|k| !k.contains("hour=08") && !k.contains("hour=09")),
        "{now:?}"
    );
    assert_eq!(
        now.len(),
        first.len(),
        "same number of objects, none left behind: {now:?}"
    );
}

/// A day lake: `access/` and `traffic/` under `domain=/dt=/`, one file per source file and day,
/// the same rows as an hour lake of the same input; a re-run rewrites the same objects.
#[test]
fn a_day_lake_has_one_file_per_source_file_and_day() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        lines: 4000,
        bad_fraction: 0.01,
        ..GenOptions::default()
    };
    let (log, summary) = gen_gz(tmp.path(), &opts);
    let arg = log.to_str().unwrap();
    let o = cdnlake(
        tmp.path(),
        &["convert", arg, "--partition-by", "day", "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &reports(&o)[0];
    assert_eq!(r["rows"], summary.rows);
    assert_eq!(r["partitions"], serde_json::json!(["dt=2024-03-05"]));
    let lake = tmp.path().join("lake");
    let first = snapshot(&lake);
    let stem = "cdn.example.com_2024_03_05_080000_090000";
    assert_eq!(
        first.keys().cloned().collect::<Vec<_>>(),
        vec![
            "_cdnlake.json".to_string(),
            format!("_manifests/cdn.example.com/2024_03_05/{stem}.json"),
            format!("access/domain=cdn.example.com/dt=2024-03-05/{stem}.parquet"),
            format!("heavy_hitters/domain=cdn.example.com/dt=2024-03-05/{stem}.parquet"),
            format!("raw/cdn.example.com/2024_03_05/{stem}.gz"),
            format!("rejects/cdn.example.com/2024_03_05/{stem}.jsonl"),
            format!("traffic/domain=cdn.example.com/dt=2024-03-05/{stem}.parquet"),
            format!("visitors/domain=cdn.example.com/dt=2024-03-05/{stem}.parquet"),
        ]
    );
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("_cdnlake.json")).unwrap()).unwrap();
    assert_eq!(
        (&d["format_version"], &d["partition_by"], &d["partition_tz"]),
        (
            &serde_json::json!(1),
            &serde_json::json!("day"),
            &serde_json::json!("+08:00")
        )
    );
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lake.join(format!("_manifests/cdn.example.com/2024_03_05/{stem}.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["partitions"],
        serde_json::json!([{"dt": "2024-03-05", "rows": summary.rows}])
    );

    // Not told again: the lake says day. The re-run rewrites the same objects.
    let o = cdnlake(tmp.path(), &["convert", arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(snapshot(&lake), first);

    // A file whose lines cross midnight writes one file for each day.
    let late = GenOptions {
        lines: 600,
        // 2024-03-05T23:50:00+08:00
        start_micros: 1_709_653_800_000_000,
        span_secs: 1200,
        ..GenOptions::default()
    };
    std::fs::create_dir(tmp.path().join("late")).unwrap();
    let (late_log, late_sum) = gen_gz(&tmp.path().join("late"), &late);
    let o = cdnlake(
        tmp.path(),
        &["convert", late_log.to_str().unwrap(), "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &reports(&o)[0];
    assert_eq!(r["rows"], late_sum.rows);
    assert_eq!(
        r["partitions"],
        serde_json::json!(["dt=2024-03-05", "dt=2024-03-06"])
    );
    let access: Vec<String> = snapshot(&lake)
        .into_keys()
        .filter(|k| k.starts_with("access/") && !k.contains(stem))
        .collect();
    assert_eq!(access.len(), 2, "{access:?}");
    assert!(access.iter().all(|k| !k.contains("hour=")), "{access:?}");
}

/// A setting that contradicts the lake is refused with one line naming both values, and
/// nothing is written.
#[test]
fn a_contradicting_partition_setting_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 300,
            ..GenOptions::default()
        },
    );
    let arg = log.to_str().unwrap();
    let o = cdnlake(tmp.path(), &["convert", arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&tmp.path().join("lake"));
    for (flag, value, lake_value) in [
        ("--partition-by", "day", "hour"),
        ("--partition-tz", "UTC", "+08:00"),
    ] {
        let o = cdnlake(tmp.path(), &["convert", arg, flag, value]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        let shown = if value == "UTC" { "+00:00" } else { value };
        assert!(
            err.contains(&format!(
                "{flag} {shown} contradicts the lake, which has {lake_value}"
            )),
            "{err}"
        );
        assert_eq!(snapshot(&tmp.path().join("lake")), before);
    }
    // The same through an event's handler, and for ddl.
    let o = cdnlake(
        tmp.path(),
        &["ddl", "--dialect", "duckdb", "--partition-by", "day"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--partition-by day contradicts"),
        "{}",
        stderr(&o)
    );
    // Agreeing settings are fine.
    let o = cdnlake(tmp.path(), &["convert", arg, "--partition-by", "hour"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A lake written before descriptors is hour, reads as before, and gets its descriptor (hour, on
/// its manifests' clock) from the next writing run; `day` is refused for it.
#[test]
fn an_old_lake_without_descriptor_stays_hour() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, s) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 1000,
            ..GenOptions::default()
        },
    );
    let arg = log.to_str().unwrap();
    let o = cdnlake(tmp.path(), &["convert", arg, "--partition-tz", "UTC"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lake = tmp.path().join("lake");
    std::fs::remove_file(lake.join("_cdnlake.json")).unwrap();
    let old = snapshot(&lake);

    // Readers take it as hour.
    let o = cdnlake(tmp.path(), &["ddl", "--dialect", "duckdb"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("'hour': VARCHAR"));
    let o = cdnlake(tmp.path(), &["verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cdnlake(tmp.path(), &["report", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = cdnlake(tmp.path(), &["convert", arg, "--partition-by", "day"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("before _cdnlake.json"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&lake), old, "a refused run writes nothing");

    // Not told: the lake's own clock (UTC, from its manifests), and now recorded.
    let o = cdnlake(tmp.path(), &["convert", arg, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reports(&o)[0]["rows"], s.rows);
    let mut now = snapshot(&lake);
    let d = now
        .remove("_cdnlake.json")
        .expect("the descriptor is recorded");
    assert!(!d.is_empty());
    assert_eq!(now, old, "the same objects, on the same clock");
    let text = std::fs::read_to_string(lake.join("_cdnlake.json")).unwrap();
    assert!(
        text.contains("\"hour\"") && text.contains("+00:00"),
        "{text}"
    );
}
