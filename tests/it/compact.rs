//! `cdnlake compact` against a real S3 server on loopback (SeaweedFS), driven through the
//! binary as a user would: compacted days report exactly what the per-file rollups report, a
//! second run changes no byte, a late file into a compacted day is counted once (the day is
//! read from its files until compacted again), verify checks the compacted objects and
//! `--repair` compacts a damaged day again, what a killed compaction leaves reads right and is
//! completed by the next run, and a lake without compaction reports as a local lake of the same
//! logs does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::weed::Weed;
use crate::support::{self, cdnlake, gen_gz, stderr, stdout};
use cdnlake::dev::gen::GenOptions;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

/// 2024-03-05T00:00:00+08:00
const DAY0: i64 = 1_709_568_000_000_000;
const HOUR: i64 = 3_600_000_000;

/// Hourly logs of three days, each starting at :30 so it writes two hours, and those of
/// 23:30 two days (the last one a fourth day). Returns the files (in time order) and their lines.
fn logs(dir: &Path) -> (Vec<PathBuf>, u64) {
    let mut out = Vec::new();
    let mut lines = 0;
    for h in 0..72 {
        let opts = GenOptions {
            lines: 120,
            seed: h as u64 + 1,
            domain: "cdn.example.com".into(),
            start_micros: DAY0 + h * HOUR + HOUR / 2,
            span_secs: 3599,
            ..GenOptions::default()
        };
        let (p, s) = gen_gz(dir, &opts);
        lines += s.lines;
        out.push(p);
    }
    (out, lines)
}

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", stderr(o));
    stdout(o)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Every object under the prefix: key -> bytes.
async fn objects(store: &dyn ObjectStore, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let metas: Vec<_> = store
        .list(Some(&prefix.into()))
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for m in metas {
        let b = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.insert(m.location.to_string(), b.to_vec());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn compacted_days_report_the_same_figures_and_heal_after_a_late_file() {
    let weed = Weed::start();
    let store = weed.client();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let logs_dir = dir.join("logs");
    std::fs::create_dir_all(&logs_dir).unwrap();
    let (files, _) = logs(&logs_dir);
    // A late file: the 13:30 log of the second day arrives after that day was compacted.
    let late = files[24 + 13].clone();
    let early: Vec<&str> = files
        .iter()
        .filter(|f| **f != late)
        .map(|f| f.to_str().unwrap())
        .collect();
    let dest = "s3://lake/t";

    // A local lake of every file, never compacted: the reference figures.
    let mut args = vec!["convert", "--dest", "local"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    ok(&cdnlake(dir, &args), "convert local");
    let reference = ok(
        &cdnlake(dir, &["report", "--dest", "local", "--json"]),
        "report",
    );

    let mut args = vec!["convert", "--dest", dest];
    args.extend(&early);
    ok(&weed.cdnlake(dir, &args), "convert s3");
    let before = ok(
        &weed.cdnlake(dir, &["report", "--dest", dest, "--json"]),
        "report",
    );

    // Compact: four days (the last file runs past midnight into a fourth), then nothing more.
    let r = json(&ok(
        &weed.cdnlake(dir, &["compact", "--dest", dest, "--json"]),
        "compact",
    ));
    assert_eq!(r["compacted"], 4, "{r}");
    let snapshot = objects(&store, "t").await;
    assert!(snapshot
        .keys()
        .any(|k| k.starts_with("t/_compacted/_markers/cdn.example.com/2024-03-06.json")));
    let r = json(&ok(
        &weed.cdnlake(dir, &["compact", "--dest", dest, "--json"]),
        "compact again",
    ));
    assert_eq!(
        (r["compacted"].clone(), r["up_to_date"].clone()),
        (0.into(), 4.into()),
        "{r}"
    );
    assert_eq!(
        r["requests_by_kind"]["put"], 0,
        "a second run writes nothing: {r}"
    );
    assert_eq!(
        objects(&store, "t").await,
        snapshot,
        "a second run changes no byte"
    );

    // The same report from the compacted days, and the lake is whole.
    let after = ok(
        &weed.cdnlake(dir, &["report", "--dest", dest, "--json"]),
        "report",
    );
    assert_eq!(after, before, "compaction changed the report");
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
    // A window inside a compacted day reads the files of that day's hours for the top lists.
    let window = [
        "--from",
        "2024-03-06T10:00:00+08:00",
        "--to",
        "2024-03-07T11:00:00+08:00",
    ];
    let mut a = vec!["report", "--dest", dest, "--json"];
    a.extend(window);
    let mut b = vec!["report", "--dest", "local", "--json"];
    b.extend(window);
    let win_s3 = ok(&weed.cdnlake(dir, &a), "window");

    // The late file: its day no longer matches its marker, so it is read from the files.
    ok(
        &weed.cdnlake(dir, &["convert", "--dest", dest, late.to_str().unwrap()]),
        "late",
    );
    let with_late = ok(
        &weed.cdnlake(dir, &["report", "--dest", dest, "--json"]),
        "report",
    );
    assert_eq!(
        with_late, reference,
        "the late file is counted exactly once"
    );
    let r = json(&ok(
        &weed.cdnlake(dir, &["compact", "--dest", dest, "--json"]),
        "compact late",
    ));
    assert_eq!(r["compacted"], 1, "only the late file's day: {r}");
    assert_eq!(r["outcomes"][1]["action"], "recompacted", "{r}");
    let healed = ok(
        &weed.cdnlake(dir, &["report", "--dest", dest, "--json"]),
        "report",
    );
    assert_eq!(healed, reference);
    let win_local = ok(&cdnlake(dir, &b), "window local");
    let win_healed = ok(&weed.cdnlake(dir, &a), "window healed");
    assert_eq!(win_healed, win_local);
    assert_ne!(win_s3, "", "window report");

    // A damaged compacted object: verify names it, the report reads the day's files, and
    // --repair compacts the day again.
    let key = "t/_compacted/visitors/domain=cdn.example.com/dt=2024-03-05/day.parquet";
    store
        .put(&key.into(), b"not parquet".to_vec().into())
        .await
        .unwrap();
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]);
    assert!(!v.status.success());
    let v = json(&stdout(&v));
    assert_eq!(v["problems"][0]["key"], key.trim_start_matches("t/"), "{v}");
    let damaged = ok(
        &weed.cdnlake(dir, &["report", "--dest", dest, "--json"]),
        "report",
    );
    assert_eq!(
        damaged, reference,
        "a damaged compacted day is read from its files"
    );
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--repair", "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
    let repaired = ok(
        &weed.cdnlake(dir, &["report", "--dest", dest, "--json"]),
        "report",
    );
    assert_eq!(repaired, reference);

    // What a compaction killed between its objects and its marker leaves: objects, no marker.
    // Readers take the day from its files; verify calls the objects orphans; the next compact
    // writes the day again (the same bytes) and its marker.
    let marker = "t/_compacted/_markers/cdn.example.com/2024-03-07.json";
    let before_kill = objects(&store, "t").await;
    store.delete(&marker.into()).await.unwrap();
    let killed = ok(
        &weed.cdnlake(dir, &["report", "--dest", dest, "--json"]),
        "report",
    );
    assert_eq!(killed, reference);
    let v = json(&stdout(
        &weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]),
    ));
    assert_eq!(v["orphans"].as_array().unwrap().len(), 3, "{v}");
    let r = json(&ok(
        &weed.cdnlake(dir, &["compact", "--dest", dest, "--json"]),
        "compact after kill",
    ));
    assert_eq!(r["compacted"], 1, "{r}");
    assert_eq!(
        objects(&store, "t").await,
        before_kill,
        "the same bytes again"
    );
}

/// A day that has not ended yet, or ended less than --min-age-hours ago, is not compacted.
#[test]
fn recent_days_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let now = chrono::Utc::now().timestamp_micros();
    let (f, _) = gen_gz(
        dir,
        &GenOptions {
            lines: 50,
            start_micros: now - 2 * HOUR,
            span_secs: 60,
            ..GenOptions::default()
        },
    );
    ok(
        &cdnlake(dir, &["convert", "--dest", "lake", f.to_str().unwrap()]),
        "convert",
    );
    let r = json(&ok(
        &cdnlake(
            dir,
            &[
                "compact",
                "--dest",
                "lake",
                "--min-age-hours",
                "48",
                "--json",
            ],
        ),
        "compact",
    ));
    assert_eq!(r["compacted"], 0, "{r}");
    assert!(r["too_recent"].as_u64().unwrap() >= 1, "{r}");
    assert!(!dir.join("lake/_compacted").exists());
}

/// `kill -9` at points through `compact` on a local lake: after each kill the report equals the
/// uncompacted one, the files folder readers see are unchanged, and the next `compact` finishes
/// the work; a final run writes nothing, and the lake is whole.
#[test]
fn kill_9_during_compact_never_changes_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let logs_dir = dir.join("logs");
    std::fs::create_dir_all(&logs_dir).unwrap();
    let (files, _) = logs(&logs_dir);
    let mut args = vec!["convert", "--dest", "lake"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    ok(&cdnlake(dir, &args), "convert");
    let reference = ok(
        &cdnlake(dir, &["report", "--dest", "lake", "--json"]),
        "report",
    );
    let visible = support::reader_visible_files(&dir.join("lake"));
    for delay_ms in [5u64, 30, 80, 150, 250, 400] {
        // Start from an uncompacted lake each time, so the kill lands in the writing.
        let _ = std::fs::remove_dir_all(dir.join("lake/_compacted"));
        let mut child = std::process::Command::new(support::bin())
            .args(["compact", "--dest", "lake"])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SIGKILL, as kill -9: no destructor, no cleanup.
        let _ = child.kill();
        let _ = child.wait();
        let after = ok(
            &cdnlake(dir, &["report", "--dest", "lake", "--json"]),
            "report",
        );
        assert_eq!(after, reference, "report after a kill at {delay_ms} ms");
        assert_eq!(support::reader_visible_files(&dir.join("lake")), visible);
        ok(
            &cdnlake(dir, &["compact", "--dest", "lake"]),
            "compact after kill",
        );
        let done = ok(
            &cdnlake(dir, &["report", "--dest", "lake", "--json"]),
            "report",
        );
        assert_eq!(done, reference, "report after completing ({delay_ms} ms)");
    }
    let r = json(&ok(
        &cdnlake(dir, &["compact", "--dest", "lake", "--json"]),
        "compact",
    ));
    assert_eq!(r["compacted"], 0, "{r}");
    // A kill inside a local write may leave its temporary file under _compacted/ (never in a
    // folder readers see): an orphan to verify, which --repair removes.
    let v = json(&stdout(&cdnlake(
        dir,
        &["verify", "--dest", "lake", "--json"],
    )));
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
    for o in v["orphans"].as_array().unwrap() {
        assert!(o.as_str().unwrap().starts_with("_compacted/"), "{v}");
    }
    ok(
        &cdnlake(dir, &["verify", "--dest", "lake", "--repair"]),
        "repair",
    );
    let v = cdnlake(dir, &["verify", "--dest", "lake", "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
}
