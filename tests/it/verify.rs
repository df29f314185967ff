//! `cdnlake verify` and `cdnlake rebuild`, through the real binary on a local folder: a whole lake
//! verifies whole, damage and orphans are named, `--repair` restores the lake from its raw dumps
//! (byte for byte), `rebuild` rewrites identical tables, and a missing raw dump is unrepairable.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::support::*;
use cdnlake::dev::gen::GenOptions;
use serde_json::Value;

const A: &str = "cdn.example.com_2024_03_05_080000_090000";
const B: &str = "cdn.example.com_2024_03_05_100000_110000";
const C: &str = "b.example.com_2024_03_06_100000_110000";

fn manifest_key(domain: &str, date: &str, stem: &str) -> String {
    format!("_manifests/{domain}/{date}/{stem}.json")
}

/// Three files in `dir/lake`: A (two hours, some bad lines), B (one hour) of cdn.example.com on
/// 2024-03-05, and C of b.example.com a day later. Returns the total rows.
fn lake_of_three(dir: &Path) -> u64 {
    lake_of_three_as(dir, &[])
}

/// [`lake_of_three`], converted with `convert_args` too (e.g. `--partition-by day`).
fn lake_of_three_as(dir: &Path, convert_args: &[&str]) -> u64 {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let hour = 3_600_000_000;
    let (a, sa) = gen_gz(
        &logs,
        &GenOptions {
            lines: 2000,
            bad_fraction: 0.01,
            ..GenOptions::default()
        },
    );
    let (b, sb) = gen_gz(
        &logs,
        &GenOptions {
            lines: 1500,
            seed: 2,
            start_micros: GenOptions::default().start_micros + 2 * hour - hour / 2,
            ..GenOptions::default()
        },
    );
    let (c, sc) = gen_gz(
        &logs,
        &GenOptions {
            lines: 1000,
            seed: 3,
            domain: "b.example.com".into(),
            start_micros: GenOptions::default().start_micros + 26 * hour - hour / 2,
            ..GenOptions::default()
        },
    );
    for (p, stem) in [(&a, A), (&b, B), (&c, C)] {
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            format!("{stem}.gz")
        );
    }
    let mut args = vec!["convert", "logs", "--json"];
    args.extend_from_slice(convert_args);
    let o = cdnlake(dir, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reports(&o).len(), 3);
    sa.rows + sb.rows + sc.rows
}

/// Runs `cdnlake verify --json ARGS` and parses its one JSON object.
fn verify(dir: &Path, args: &[&str]) -> (Output, Value) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let o = cdnlake(dir, &all);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify prints one JSON object ({e}): {}", stderr(&o)));
    (o, v)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// (key, kind) of every problem.
fn problems(v: &Value) -> Vec<(String, String)> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap().to_string(),
                p["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn read_manifest(lake: &Path, key: &str) -> Value {
    serde_json::from_slice(&std::fs::read(lake.join(key)).unwrap()).unwrap()
}

/// The keys a manifest lists, with a table prefix.
fn listed(lake: &Path, key: &str, table: &str) -> Vec<String> {
    read_manifest(lake, key)["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_string())
        .filter(|k| k.starts_with(table))
        .collect()
}

/// Every file of the table folders (not the manifests, whose source location a re-run changes).
fn tables(lake: &Path) -> BTreeMap<String, String> {
    snapshot(lake)
        .into_iter()
        .filter(|(k, _)| {
            ["access/", "traffic/", "raw/", "rejects/"]
                .iter()
                .any(|t| k.starts_with(t))
        })
        .collect()
}

/// A manifest without its source location.
fn without_location(mut m: Value) -> Value {
    m["source"]["location"] = Value::Null;
    m
}

#[test]
fn a_fresh_lake_is_whole() {
    let tmp = tempfile::tempdir().unwrap();
    lake_of_three(tmp.path());
    let (o, v) = verify(tmp.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["whole"], true, "{v}");
    assert_eq!(v["manifests"], 3);
    // A: raw, 2 access, 2 traffic, 2 heavy_hitters, 2 visitors, rejects; B and C: raw, access, traffic,
    // heavy_hitters, visitors.
    assert_eq!(v["objects"], 20);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["orphans"].as_array().unwrap().len(), 0, "{v}");
    // One list per table folder, _staging/, _manifests/, _compacted/ and _compacted_access/; a GET
    // per manifest; one range read per Parquet footer (16 files, each footer under the prefetch);
    // nothing written.
    let r = &v["requests_by_kind"];
    assert_eq!(r["list"], 10, "{v}");
    assert_eq!(r["get"], 3, "{v}");
    assert_eq!(r["range"], 16, "{v}");
    assert_eq!(
        r["put"].as_u64().unwrap() + r["delete"].as_u64().unwrap(),
        0
    );
    assert_eq!(v["requests"], 29);
    assert!(v["seconds"].as_f64().unwrap() >= 0.0);
    assert!(v.get("repaired").is_none(), "{v}");

    // The human summary goes to stderr.
    let o = cdnlake(tmp.path(), &["verify"]);
    assert!(o.status.success());
    assert!(stdout(&o).is_empty());
    let e = stderr(&o);
    assert!(
        e.contains("3 files, 20 objects checked; 0 problems, 0 orphans; 29 requests"),
        "{e}"
    );
    assert!(e.contains("the lake is whole"), "{e}");
}

#[test]
fn damage_and_orphans_are_named_and_repaired_from_the_raw_dumps() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = lake_of_three(tmp.path());
    let lake = tmp.path().join("lake");
    let before = duckdb_script(tmp.path(), "lake", "duckdb_check.py", &[]);
    assert_eq!(before["rows"].as_u64(), Some(rows));
    let original = tables(&lake);

    let man_a = manifest_key("cdn.example.com", "2024_03_05", A);
    let man_c = manifest_key("b.example.com", "2024_03_06", C);
    let deleted = &listed(&lake, &man_a, "access/")[1];
    let truncated = &listed(&lake, &man_c, "access/")[0];
    std::fs::remove_file(lake.join(deleted)).unwrap();
    let full = std::fs::read(lake.join(truncated)).unwrap();
    std::fs::write(lake.join(truncated), &full[..full.len() / 2]).unwrap();
    let stray = "access/domain=cdn.example.com/dt=2024-03-05/hour=08/x.parquet";
    std::fs::write(lake.join(stray), b"not parquet").unwrap();
    let staged = "_staging/cdn.example.com/2024_03_05/gone/access/y.parquet";
    std::fs::create_dir_all(lake.join(staged).parent().unwrap()).unwrap();
    std::fs::write(lake.join(staged), b"left by a killed run").unwrap();
    // Not table folders: never orphans.
    std::fs::create_dir_all(lake.join("audit/events/dt=2024-03-05")).unwrap();
    std::fs::write(lake.join("audit/events/dt=2024-03-05/t.json"), b"{}").unwrap();
    std::fs::write(lake.join("_manifests/notes.txt"), b"x").unwrap();

    let (o, v) = verify(tmp.path(), &[]);
    assert!(!o.status.success());
    assert_eq!(v["whole"], false);
    assert_eq!(
        problems(&v),
        vec![
            (truncated.clone(), "size".to_string()),
            (deleted.clone(), "missing".to_string()),
        ],
        "{v}"
    );
    let p = &v["problems"][1];
    assert_eq!(p["file"], format!("{A}.gz"));
    assert_eq!(p["manifest"], man_a);
    assert_eq!(
        strings(&v["orphans"]),
        vec![staged.to_string(), stray.to_string()]
    );
    // The human summary names each of them.
    let o = cdnlake(tmp.path(), &["verify"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    for s in [
        deleted.as_str(),
        truncated,
        stray,
        staged,
        "missing",
        "size",
        "NOT whole",
    ] {
        assert!(e.contains(s), "{s} not in: {e}");
    }

    let (o, v) = verify(tmp.path(), &["--repair"]);
    assert!(o.status.success(), "{v} {}", stderr(&o));
    assert_eq!(v["whole"], true);
    assert_eq!(strings(&v["repaired"]), vec![man_c.clone(), man_a.clone()]);
    assert_eq!(
        strings(&v["removed"]),
        vec![staged.to_string(), stray.to_string()]
    );
    assert_eq!(v["unrepairable"].as_array().unwrap().len(), 0);
    // The stray goes by a store request; the staged leftover by the staging cleaner, which
    // removes dead runs' files on the file system under the lock runs register with.
    let r = &v["requests_by_kind"];
    assert!(
        r["delete"].as_u64().unwrap() >= 1 && r["put"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(!lake.join(staged).exists());
    assert!(!lake.join(stray).exists());

    let (o, v) = verify(tmp.path(), &[]);
    assert!(o.status.success(), "{v}");
    assert_eq!(v["whole"], true);
    // Converted again from the raw dumps: the same bytes as the first conversion.
    assert_eq!(tables(&lake), original);
    assert!(lake.join("audit/events/dt=2024-03-05/t.json").exists());
    assert!(lake.join("_manifests/notes.txt").exists());
    let m = read_manifest(&lake, &man_a);
    // The re-run says where its input came from.
    assert_eq!(
        m["source"]["location"],
        format!("./lake/raw/cdn.example.com/2024_03_05/{A}.gz")
    );
    let after = duckdb_script(tmp.path(), "lake", "duckdb_check.py", &[]);
    for k in [
        "rows",
        "distinct_lines",
        "sum_response_bytes",
        "per_partition",
        "per_domain",
    ] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(after["distinct_lines"].as_u64(), Some(rows));
}

#[test]
fn a_footer_that_disagrees_with_the_manifest_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    lake_of_three(tmp.path());
    let lake = tmp.path().join("lake");
    let man_b = manifest_key("cdn.example.com", "2024_03_05", B);
    let mut m = read_manifest(&lake, &man_b);
    let access = listed(&lake, &man_b, "access/")[0].clone();
    for o in m["objects"].as_array_mut().unwrap() {
        if o["key"] == access.as_str() {
            o["rows"] = Value::from(o["rows"].as_u64().unwrap() + 1);
        }
    }
    std::fs::write(lake.join(&man_b), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    // Same size, but not Parquet: the footer cannot be read.
    let traffic = listed(&lake, &man_b, "traffic/")[0].clone();
    let size = std::fs::metadata(lake.join(&traffic)).unwrap().len() as usize;
    std::fs::write(lake.join(&traffic), vec![b'x'; size]).unwrap();

    let (o, v) = verify(tmp.path(), &[]);
    assert!(!o.status.success());
    assert_eq!(
        problems(&v),
        vec![
            (man_b.clone(), "access_rows".to_string()),
            (access.clone(), "rows".to_string()),
            (traffic.clone(), "footer".to_string()),
        ],
        "{v}"
    );
    assert!(
        v["problems"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("footer says"),
        "{v}"
    );
    let (o, v) = verify(tmp.path(), &["--repair"]);
    assert!(o.status.success(), "{v}");
    assert_eq!(strings(&v["repaired"]), vec![man_b]);
    let (o, _) = verify(tmp.path(), &[]);
    assert!(o.status.success());
}

#[test]
fn domain_and_time_filters_narrow_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    lake_of_three(tmp.path());
    let lake = tmp.path().join("lake");
    // Damage in cdn.example.com only.
    let stray = "traffic/domain=cdn.example.com/dt=2024-03-05/hour=10/stray.parquet";
    std::fs::write(lake.join(stray), b"x").unwrap();
    let man_b = manifest_key("cdn.example.com", "2024_03_05", B);
    let gone = listed(&lake, &man_b, "access/")[0].clone();
    std::fs::remove_file(lake.join(&gone)).unwrap();

    let (o, v) = verify(tmp.path(), &["--domain", "b.example.com"]);
    assert!(o.status.success(), "{v}");
    assert_eq!(
        (v["manifests"].as_u64(), v["objects"].as_u64()),
        (Some(1), Some(5))
    );
    let (o, v) = verify(tmp.path(), &["--domain", "cdn.example.com"]);
    assert!(!o.status.success());
    assert_eq!(v["manifests"], 2);
    assert_eq!(problems(&v), vec![(gone.clone(), "missing".to_string())]);
    assert_eq!(strings(&v["orphans"]), vec![stray.to_string()]);

    // Dates are partition days; B's hour 10 is on 2024-03-05, C's on 2024-03-06.
    let (o, v) = verify(tmp.path(), &["--from", "2024-03-06", "--to", "2024-03-07"]);
    assert!(o.status.success(), "{v}");
    assert_eq!(v["manifests"], 1);
    assert_eq!(v["orphans"].as_array().unwrap().len(), 0, "{v}");
    // A (hours 08, 09) overlaps [09:30, 10:00); B (hour 10) does not.
    let (o, v) = verify(
        tmp.path(),
        &[
            "--from",
            "2024-03-05T09:30:00+08:00",
            "--to",
            "2024-03-05T10:00:00+08:00",
        ],
    );
    assert!(
        !o.status.success(),
        "the stray file is in cdn.example.com: {v}"
    );
    assert_eq!(v["manifests"], 1);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(strings(&v["orphans"]), vec![stray.to_string()]);
    // Nothing in the window: nothing to check, nothing wrong.
    let (o, v) = verify(tmp.path(), &["--from", "2030-01-01"]);
    assert!(o.status.success(), "{v}");
    assert_eq!(v["manifests"], 0);

    let o = cdnlake(tmp.path(), &["verify", "--from", "last tuesday"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid --from \"last tuesday\""),
        "{}",
        stderr(&o)
    );

    // Repair of one domain leaves the other alone.
    let (o, v) = verify(tmp.path(), &["--domain", "b.example.com", "--repair"]);
    assert!(o.status.success(), "{v}");
    assert!(lake.join(stray).exists());
    assert!(!lake.join(&gone).exists());
    let (o, v) = verify(tmp.path(), &["--domain", "cdn.example.com", "--repair"]);
    assert!(o.status.success(), "{v}");
    assert!(!lake.join(stray).exists());
    assert!(lake.join(&gone).exists());
}

#[test]
fn rebuild_rewrites_identical_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = lake_of_three(tmp.path());
    let lake = tmp.path().join("lake");
    let before = snapshot(&lake);
    let man_a = manifest_key("cdn.example.com", "2024_03_05", A);
    let manifest_before = read_manifest(&lake, &man_a);

    let o = cdnlake(tmp.path(), &["rebuild", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = reports(&o);
    assert_eq!(r.len(), 3);
    assert_eq!(
        r.iter().map(|r| r["rows"].as_u64().unwrap()).sum::<u64>(),
        rows
    );
    assert!(r
        .iter()
        .all(|r| r["location"].as_str().unwrap().starts_with("./lake/raw/")));
    assert!(
        stderr(&o).contains("3 files converted again"),
        "{}",
        stderr(&o)
    );

    let after = snapshot(&lake);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let parquet: Vec<&String> = before.keys().filter(|k| k.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 16);
    for k in before.keys().filter(|k| !k.starts_with("_manifests/")) {
        assert_eq!(after[k], before[k], "{k} changed");
    }
    assert_eq!(
        without_location(read_manifest(&lake, &man_a)),
        without_location(manifest_before)
    );
    let (o, v) = verify(tmp.path(), &[]);
    assert!(o.status.success(), "{v}");

    // One domain only; the human summary.
    let o = cdnlake(tmp.path(), &["rebuild", "--domain", "b.example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{C}.gz")) && !e.contains(&format!("{A}.gz")),
        "{e}"
    );
    assert!(e.contains("1 files converted again"), "{e}");
}

#[test]
fn a_missing_or_altered_raw_dump_is_unrepairable() {
    let tmp = tempfile::tempdir().unwrap();
    lake_of_three(tmp.path());
    let lake = tmp.path().join("lake");
    let man_a = manifest_key("cdn.example.com", "2024_03_05", A);
    let man_b = manifest_key("cdn.example.com", "2024_03_05", B);
    let man_c = manifest_key("b.example.com", "2024_03_06", C);
    // A: its raw dump and an access file gone. C: an access file gone, raw dump intact.
    let raw_a = listed(&lake, &man_a, "raw/")[0].clone();
    std::fs::remove_file(lake.join(&raw_a)).unwrap();
    let access_a = listed(&lake, &man_a, "access/")[0].clone();
    std::fs::remove_file(lake.join(&access_a)).unwrap();
    let access_c = listed(&lake, &man_c, "access/")[0].clone();
    std::fs::remove_file(lake.join(&access_c)).unwrap();

    let (o, v) = verify(tmp.path(), &["--repair"]);
    assert!(!o.status.success(), "{v}");
    assert_eq!(v["whole"], false);
    assert_eq!(strings(&v["repaired"]), vec![man_c.clone()]);
    let u = v["unrepairable"].as_array().unwrap();
    assert_eq!(u.len(), 1, "{v}");
    assert_eq!(u[0]["file"], format!("{A}.gz"));
    assert_eq!(u[0]["manifest"], man_a);
    assert!(
        u[0]["reason"]
            .as_str()
            .unwrap()
            .contains("raw dump is missing"),
        "{v}"
    );
    assert!(lake.join(&access_c).exists());
    assert!(!lake.join(&access_a).exists());
    let (o, v) = verify(tmp.path(), &[]);
    assert!(!o.status.success());
    assert_eq!(
        problems(&v),
        vec![
            (access_a.clone(), "missing".to_string()),
            (raw_a.clone(), "missing".to_string()),
        ]
    );
    let o = cdnlake(tmp.path(), &["rebuild", "--domain", "cdn.example.com"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{A}.gz: cannot convert again from {raw_a}")),
        "{e}"
    );
    assert!(
        e.contains("1 files converted again from their raw dumps, 1 failed"),
        "{e}"
    );

    // B: a raw dump of the right size but other bytes is refused before anything changes. The
    // changed byte is the gzip header's MTIME, so the gzip itself still decodes.
    let raw_b = listed(&lake, &man_b, "raw/")[0].clone();
    let mut bytes = std::fs::read(lake.join(&raw_b)).unwrap();
    bytes[4] ^= 0xff;
    std::fs::write(lake.join(&raw_b), &bytes).unwrap();
    let access_b = listed(&lake, &man_b, "access/")[0].clone();
    std::fs::remove_file(lake.join(&access_b)).unwrap();
    let before = snapshot(&lake);
    let (o, v) = verify(tmp.path(), &["--repair", "--domain", "cdn.example.com"]);
    assert!(!o.status.success(), "{v}");
    let reasons: Vec<&str> = v["unrepairable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{v}");
    assert!(reasons.iter().any(|r| r.contains("SHA-256")), "{reasons:?}");
    assert_eq!(
        snapshot(&lake),
        before,
        "a refused raw dump changes nothing"
    );
}

/// A raw dump that no manifest lists (a delivered log whose commit never finished) is reported,
/// and `--repair` keeps it: it may be the only copy of the log. The lake is not whole until it is
/// converted.
#[test]
fn repair_keeps_a_raw_dump_no_manifest_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lake_of_three(dir);
    let lake = dir.join("lake");
    let orphan = "raw/cdn.example.com/2024_03_06/cdn.example.com_2024_03_06_080000_090000.gz";
    std::fs::create_dir_all(lake.join(orphan).parent().unwrap()).unwrap();
    std::fs::write(lake.join(orphan), gzip(b"x")).unwrap();
    let (o, v) = verify(dir, &[]);
    assert!(!o.status.success(), "{v}");
    assert_eq!(strings(&v["orphans"]), vec![orphan.to_string()]);
    let (o, v) = verify(dir, &["--repair"]);
    assert!(
        !o.status.success(),
        "an unconverted raw dump is not whole: {v}"
    );
    assert!(
        lake.join(orphan).exists(),
        "repair must not delete a raw dump"
    );
    assert_eq!(v["whole"], false, "{v}");
}

/// A day lake verifies whole, a missing file is named, `--repair` converts it again into the
/// day layout (the same bytes), a date window picks by day, and `rebuild` rewrites the same
/// tables.
#[test]
fn a_day_lake_verifies_and_repairs_in_its_layout() {
    let tmp = tempfile::tempdir().unwrap();
    lake_of_three_as(tmp.path(), &["--partition-by", "day"]);
    let lake = tmp.path().join("lake");
    let original = tables(&lake);
    assert!(
        original.keys().all(|k| !k.contains("hour=")),
        "{original:?}"
    );
    let (o, v) = verify(tmp.path(), &[]);
    assert!(o.status.success(), "{v} {}", stderr(&o));
    // A: raw, access, traffic, heavy_hitters, visitors, rejects; B and C: the same but rejects.
    assert_eq!(v["objects"], 16, "{v}");

    let man_a = manifest_key("cdn.example.com", "2024_03_05", A);
    let access_a = listed(&lake, &man_a, "access/");
    assert_eq!(
        access_a,
        vec![format!(
            "access/domain=cdn.example.com/dt=2024-03-05/{A}.parquet"
        )]
    );
    std::fs::remove_file(lake.join(&access_a[0])).unwrap();
    let (o, v) = verify(tmp.path(), &[]);
    assert!(!o.status.success());
    assert_eq!(
        problems(&v),
        vec![(access_a[0].clone(), "missing".to_string())]
    );

    // A window of 2024-03-06 picks C alone (its partition is that whole day).
    let (_, w) = verify(tmp.path(), &["--from", "2024-03-06", "--to", "2024-03-07"]);
    assert_eq!(
        (&w["manifests"], &w["whole"]),
        (&Value::from(1), &Value::from(true)),
        "{w}"
    );

    let (o, v) = verify(tmp.path(), &["--repair"]);
    assert!(o.status.success(), "{v} {}", stderr(&o));
    assert_eq!(strings(&v["repaired"]), vec![man_a.clone()]);
    assert_eq!(tables(&lake), original);

    let o = cdnlake(tmp.path(), &["rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(tables(&lake), original);
    let (o, _) = verify(tmp.path(), &[]);
    assert!(o.status.success());
}

/// What a live run is staging is not a leftover: `verify` does not call it an orphan and
/// `--repair` leaves it, while the same folder of a run that has died (its lock released, as
/// the kernel does when a process dies) is reported and removed.
#[test]
fn a_live_runs_staging_is_left_alone_and_a_dead_ones_removed() {
    let tmp = tempfile::tempdir().unwrap();
    lake_of_three(tmp.path());
    let lake = tmp.path().join("lake");
    let group = lake.join("_staging/cdn.example.com/2024_03_05/f");
    let staged = "_staging/cdn.example.com/2024_03_05/f/run-1-2-3/access/domain=cdn.example.com/dt=2024-03-05/hour=08/f.parquet";
    std::fs::create_dir_all(lake.join(staged).parent().unwrap()).unwrap();
    std::fs::write(lake.join(staged), b"being written").unwrap();
    // This test process holds the run's lock, as the run's own process would.
    let lock = std::fs::File::create(group.join("run-1-2-3.lock")).unwrap();
    lock.lock().unwrap();

    let (o, v) = verify(tmp.path(), &["--repair"]);
    assert!(o.status.success(), "{v} {}", stderr(&o));
    assert_eq!(v["whole"], true, "{v}");
    assert_eq!(v["orphans"].as_array().unwrap().len(), 0, "{v}");
    assert!(lake.join(staged).is_file());

    drop(lock);
    let (o, v) = verify(tmp.path(), &[]);
    assert!(!o.status.success());
    assert_eq!(
        strings(&v["orphans"]),
        vec![
            "_staging/cdn.example.com/2024_03_05/f/run-1-2-3.lock".to_string(),
            staged.to_string()
        ],
        "{v}"
    );
    let (o, v) = verify(tmp.path(), &["--repair"]);
    assert!(o.status.success(), "{v} {}", stderr(&o));
    assert_eq!(files_under(&lake.join("_staging")), Vec::<String>::new());
    let (o, v) = verify(tmp.path(), &[]);
    assert!(o.status.success(), "{v}");
}
