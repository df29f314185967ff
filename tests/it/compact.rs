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

// ---- `compact --access`: one access file per domain and day in a `--partition-by day` lake.

/// Logs of two days and a bit, 100 lines each, every third hour from 02:30 (those of 23:30
/// run past midnight: 18 objects in three days).
fn day_logs(dir: &Path, seed: u64) -> Vec<PathBuf> {
    (0..16)
        .map(|i| {
            let opts = GenOptions {
                lines: 100,
                seed: seed + i as u64,
                domain: "cdn.example.com".into(),
                start_micros: DAY0 + i * 3 * HOUR + 2 * HOUR + HOUR / 2,
                span_secs: 3599,
                ..GenOptions::default()
            };
            gen_gz(dir, &opts).0
        })
        .collect()
}

/// Rows of every Parquet object under `prefix` of the store: what Spark or MaxCompute reading
/// the folder whole counts, and the number of objects they open.
async fn folder_rows(store: &dyn ObjectStore, prefix: &str) -> (usize, i64) {
    let objs = objects(store, prefix).await;
    let mut rows = 0;
    for (k, b) in &objs {
        let r = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(b.clone()))
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        rows += parquet::file::reader::FileReader::metadata(&r)
            .file_metadata()
            .num_rows();
    }
    (objs.len(), rows)
}

/// `report --exact --json` (its top lists and unique visitors come from the access rows).
fn exact(o: std::process::Output) -> serde_json::Value {
    json(&ok(&o, "report --exact"))
}

/// A `cdnlake` run stopped at a `CDNLAKE_DEBUG_STALL` point, then killed with SIGKILL.
fn kill_at(mut cmd: std::process::Command, stall: &str) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .env("CDNLAKE_DEBUG_STALL", stall)
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        if text.contains("stalled at") {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ended ({status}) before the stall point {stall}: {text}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "never reached {stall}: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SIGKILL, as kill -9: no destructor, no cleanup.
    child.kill().unwrap();
    let _ = child.wait();
}

/// On SeaweedFS: `report --exact` and a folder reader give the same figures before and after
/// `compact --access`; a second run writes nothing; a kill between the day object and its
/// marker leaves a state the report reads right and the next run finishes; a late file, a
/// re-delivered identical file and a re-delivered changed file into compacted days are each
/// counted exactly once; verify is clean, and `--repair` restores a damaged day object from
/// `raw/`.
#[tokio::test(flavor = "multi_thread")]
async fn compacted_access_days_count_every_row_once() {
    let weed = Weed::start();
    let store = weed.client();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (logs_dir, changed_dir) = (dir.join("logs"), dir.join("changed"));
    std::fs::create_dir_all(&logs_dir).unwrap();
    std::fs::create_dir_all(&changed_dir).unwrap();
    let files = day_logs(&logs_dir, 1);
    // The same name as files[2] (day one), other lines: a file the CDN delivered again, changed.
    let changed = gen_gz(
        &changed_dir,
        &GenOptions {
            lines: 40,
            seed: 999,
            domain: "cdn.example.com".into(),
            start_micros: DAY0 + 2 * 3 * HOUR + 2 * HOUR + HOUR / 2,
            span_secs: 3599,
            ..GenOptions::default()
        },
    )
    .0;
    assert_eq!(changed.file_name(), files[2].file_name());
    let late = files[5].clone();
    let early: Vec<&str> = files
        .iter()
        .filter(|f| **f != late)
        .map(|f| f.to_str().unwrap())
        .collect();
    let dest = "s3://lake/a";
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();

    // Local day lakes, never compacted: the reference figures of each stage.
    let reference = |name: &str, files: Vec<String>| {
        let mut args = vec!["convert", "--dest", name, "--partition-by", "day"];
        args.extend(files.iter().map(String::as_str));
        ok(&cdnlake(dir, &args), "convert local");
        exact(cdnlake(
            dir,
            &["report", "--dest", name, "--json", "--exact"],
        ))
    };
    let ref_early = reference("early", early.iter().map(|f| f.to_string()).collect());
    let ref_all = reference("all", files.iter().map(s).collect());
    let mut final_files: Vec<String> = files.iter().map(s).collect();
    final_files[2] = s(&changed);
    let ref_final = reference("final", final_files);

    let mut args = vec!["convert", "--dest", dest, "--partition-by", "day"];
    args.extend(&early);
    ok(&weed.cdnlake(dir, &args), "convert s3");
    let report = || exact(weed.cdnlake(dir, &["report", "--dest", dest, "--json", "--exact"]));
    assert_eq!(report(), ref_early);
    let (objects_before, rows_early) = folder_rows(&store, "a/access").await;
    assert_eq!(
        objects_before,
        15 + 2,
        "one object per file and day (two cross midnight)"
    );

    // Killed between the first day object's PUT and its marker: the report reads the day's
    // files from the day object, never twice; verify names the unfinished day; the next run
    // finishes it.
    kill_at(
        weed.command(dir, &["compact", "--dest", dest, "--access"]),
        "access-day:dt=2024-03-05",
    );
    assert_eq!(report(), ref_early, "after a kill between PUT and marker");
    let v = json(&stdout(
        &weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]),
    ));
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "unfinished"),
        "{v}"
    );

    let r = json(&ok(
        &weed.cdnlake(dir, &["compact", "--dest", dest, "--access", "--json"]),
        "compact --access",
    ));
    assert_eq!(r["access"]["compacted"], 3, "{r}");
    assert_eq!(report(), ref_early, "compaction changed the exact report");
    let (n, rows) = folder_rows(&store, "a/access").await;
    assert_eq!(
        (n, rows),
        (3, rows_early),
        "one object per day, every row once"
    );
    let snapshot = objects(&store, "a").await;
    let r = json(&ok(
        &weed.cdnlake(dir, &["compact", "--dest", dest, "--access", "--json"]),
        "compact again",
    ));
    assert_eq!(r["access"]["up_to_date"], 3, "{r}");
    assert_eq!(r["requests_by_kind"]["put"], 0, "{r}");
    assert_eq!(
        objects(&store, "a").await,
        snapshot,
        "a second run changes no byte"
    );
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));

    // The late file: its own object next to the day object, counted once.
    ok(
        &weed.cdnlake(dir, &["convert", "--dest", dest, late.to_str().unwrap()]),
        "late",
    );
    assert_eq!(report(), ref_all, "the late file is counted exactly once");
    let (n, rows_all) = folder_rows(&store, "a/access").await;
    assert_eq!(n, 4);
    // A file the day holds, delivered again unchanged: nothing written to access/.
    let access_before = objects(&store, "a/access").await;
    ok(
        &weed.cdnlake(
            dir,
            &["convert", "--dest", dest, files[3].to_str().unwrap()],
        ),
        "again",
    );
    assert_eq!(objects(&store, "a/access").await, access_before);
    assert_eq!(report(), ref_all);
    // Delivered again changed: its rows in the day object are replaced in one PUT.
    ok(
        &weed.cdnlake(dir, &["convert", "--dest", dest, changed.to_str().unwrap()]),
        "changed",
    );
    assert_eq!(
        report(),
        ref_final,
        "the changed file is counted once, as changed"
    );
    let (n, rows_final) = folder_rows(&store, "a/access").await;
    assert_eq!((n, rows_final), (4, rows_all - 100 + 40));
    assert!(objects(&store, "a/_compacted_access/_incoming")
        .await
        .is_empty());
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
    // The next compaction takes the late file in.
    let r = json(&ok(
        &weed.cdnlake(dir, &["compact", "--dest", dest, "--access", "--json"]),
        "compact late",
    ));
    assert_eq!(r["access"]["compacted"], 1, "{r}");
    assert_eq!(folder_rows(&store, "a/access").await, (3, rows_final));
    assert_eq!(report(), ref_final);

    // A damaged day object: verify names it; --repair converts its files again from raw/ and
    // compacts the day again.
    let key = "a/access/domain=cdn.example.com/dt=2024-03-05/compacted~day.parquet";
    store
        // parsed, not `from`: `from` would encode the `~`.
        .put(
            &object_store::path::Path::parse(key).unwrap(),
            b"not parquet".to_vec().into(),
        )
        .await
        .unwrap();
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]);
    assert!(!v.status.success());
    let v = json(&stdout(&v));
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["key"] == key.trim_start_matches("a/") && p["kind"] == "footer"),
        "{v}"
    );
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--repair", "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
    let v = weed.cdnlake(dir, &["verify", "--dest", dest, "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
    assert_eq!(report(), ref_final);
    assert_eq!(folder_rows(&store, "a/access").await, (3, rows_final));
}

/// DuckDB over the `access` view `cdnlake ddl` prints: (rows, sum of response bytes, distinct
/// client IPs), and the number of files the view reads.
fn duckdb_access(dir: &Path, lake: &str) -> serde_json::Value {
    let ddl = cdnlake(dir, &["ddl", "--dialect", "duckdb", "--dest", lake]);
    assert!(ddl.status.success(), "{}", stderr(&ddl));
    std::fs::write(dir.join("views.sql"), &ddl.stdout).unwrap();
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import duckdb, json, sys\n\
             c = duckdb.connect()\n\
             c.execute(open(sys.argv[1]).read())\n\
             r = c.execute('select count(*), sum(response_bytes), count(distinct client_ip), \
             count(distinct filename) from (select *, filename from read_parquet(\\'' + sys.argv[2] + \
             '/access/**/*.parquet\\', hive_partitioning = true, filename = true))').fetchone()\n\
             v = c.execute('select count(*), sum(response_bytes) from access').fetchone()\n\
             print(json.dumps({'rows': r[0], 'bytes': int(r[1]), 'ips': r[2], 'files': r[3], 'view': [v[0], int(v[1])]}))",
        )
        .arg(dir.join("views.sql"))
        .arg(dir.join(lake))
        .current_dir(dir)
        .output()
        .expect("python3 must be installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    json(&String::from_utf8_lossy(&o.stdout))
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for f in support::walk::files_under(from) {
        let dst = to.join(&f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), dst).unwrap();
    }
}

/// A local day lake: DuckDB (the `ddl` views) and `report --exact` give the same figures
/// before and after `compact --access`, which leaves one file per day; a second run changes no
/// byte; `kill -9` at points through the swap and the marker leaves figures unchanged and the
/// next run finishes; a changed re-delivery killed before and after its splice leaves every row
/// counted once, and its retry gives the figures of a lake that never compacted; verify is clean
/// after. On an hour lake `--access` is refused clearly.
#[test]
fn compacted_access_days_on_a_local_folder_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let logs_dir = dir.join("logs");
    std::fs::create_dir_all(&logs_dir).unwrap();
    let files = day_logs(&logs_dir, 100);
    let mut args = vec!["convert", "--dest", "pristine", "--partition-by", "day"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    ok(&cdnlake(dir, &args), "convert");
    let duck = duckdb_access(dir, "pristine");
    assert_eq!(duck["rows"], 1600, "{duck}");
    assert_eq!(duck["files"], 18, "{duck}");
    let reference = exact(cdnlake(
        dir,
        &["report", "--dest", "pristine", "--json", "--exact"],
    ));
    let visible = support::walk::reader_visible_files(&dir.join("pristine"));
    let check = |lake: &str, what: &str| {
        let d = duckdb_access(dir, lake);
        assert_eq!(
            (&d["rows"], &d["bytes"], &d["ips"], &d["view"]),
            (&duck["rows"], &duck["bytes"], &duck["ips"], &duck["view"]),
            "DuckDB {what}"
        );
        let r = exact(cdnlake(
            dir,
            &["report", "--dest", lake, "--json", "--exact"],
        ));
        assert_eq!(r, reference, "report --exact {what}");
        d
    };

    for stall in [
        "access-swap:dt=2024-03-06",
        "access-swapped:dt=2024-03-06",
        "put:_compacted_access/cdn.example.com/2024-03-06",
    ] {
        copy_dir(&dir.join("pristine"), &dir.join("lake"));
        let mut cmd = std::process::Command::new(support::bin());
        cmd.args(["compact", "--dest", "lake", "--access"])
            .current_dir(dir)
            .stdin(std::process::Stdio::null());
        kill_at(cmd, stall);
        check("lake", &format!("after a kill at {stall}"));
        ok(
            &cdnlake(dir, &["compact", "--dest", "lake", "--access"]),
            "compact after kill",
        );
        let d = check("lake", &format!("after finishing ({stall})"));
        assert_eq!(d["files"], 3, "one file per day: {d}");
        ok(
            &cdnlake(dir, &["verify", "--dest", "lake", "--repair"]),
            "repair",
        );
        let v = cdnlake(dir, &["verify", "--dest", "lake", "--json"]);
        assert!(v.status.success(), "{stall}: {}", stdout(&v));
    }

    // Uninterrupted, then again: nothing changes.
    copy_dir(&dir.join("pristine"), &dir.join("lake"));
    let r = json(&ok(
        &cdnlake(dir, &["compact", "--dest", "lake", "--access", "--json"]),
        "compact",
    ));
    assert_eq!(r["access"]["compacted"], 3, "{r}");
    check("lake", "after compact --access");
    let after = support::walk::reader_visible_files(&dir.join("lake"));
    assert_eq!(after.iter().filter(|f| f.starts_with("access/")).count(), 3);
    assert_eq!(
        after.iter().filter(|f| !f.starts_with("access/")).count(),
        visible.iter().filter(|f| !f.starts_with("access/")).count(),
        "only access/ changes"
    );
    let snap = support::walk::snapshot(&dir.join("lake"));
    let r = json(&ok(
        &cdnlake(dir, &["compact", "--dest", "lake", "--access", "--json"]),
        "compact again",
    ));
    assert_eq!(r["access"]["up_to_date"], 3, "{r}");
    assert_eq!(
        support::walk::snapshot(&dir.join("lake")),
        snap,
        "no byte changes"
    );
    let v = cdnlake(dir, &["verify", "--dest", "lake", "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));

    // A file the days hold, delivered again changed, killed after publishing its rows under
    // _incoming/ (the day still holds the old rows) and after the day object's PUT (it holds the
    // new rows, the manifest is still the old one): folder readers see every row once, old or
    // new; a run of the file again (what FC's retry or sync does) leaves the lake whole and equal
    // to one that never compacted.
    let changed_dir = dir.join("changed");
    std::fs::create_dir_all(&changed_dir).unwrap();
    let changed = gen_gz(
        &changed_dir,
        &GenOptions {
            lines: 40,
            seed: 999,
            domain: "cdn.example.com".into(),
            start_micros: DAY0 + 2 * 3 * HOUR + 2 * HOUR + HOUR / 2,
            span_secs: 3599,
            ..GenOptions::default()
        },
    )
    .0;
    assert_eq!(changed.file_name(), files[2].file_name());
    let mut args = vec!["convert", "--dest", "final", "--partition-by", "day"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    ok(&cdnlake(dir, &args), "convert final");
    ok(
        &cdnlake(
            dir,
            &["convert", "--dest", "final", changed.to_str().unwrap()],
        ),
        "convert final changed",
    );
    let duck_final = duckdb_access(dir, "final");
    let exact_final = exact(cdnlake(
        dir,
        &["report", "--dest", "final", "--json", "--exact"],
    ));
    let compacted = dir.join("compacted");
    copy_dir(&dir.join("lake"), &compacted);
    for (stall, new_rows) in [
        ("access-incoming:2024-03-05", false),
        ("access-splice:dt=2024-03-05", true),
    ] {
        copy_dir(&compacted, &dir.join("lake"));
        let mut cmd = std::process::Command::new(support::bin());
        cmd.args(["convert", "--dest", "lake", changed.to_str().unwrap()])
            .current_dir(dir)
            .stdin(std::process::Stdio::null());
        kill_at(cmd, stall);
        let d = duckdb_access(dir, "lake");
        let want = if new_rows { &duck_final } else { &duck };
        assert_eq!(
            (&d["rows"], &d["bytes"], &d["view"]),
            (&want["rows"], &want["bytes"], &want["view"]),
            "DuckDB after a kill at {stall}"
        );
        ok(
            &cdnlake(
                dir,
                &["convert", "--dest", "lake", changed.to_str().unwrap()],
            ),
            "convert again",
        );
        let d = duckdb_access(dir, "lake");
        assert_eq!(
            (&d["rows"], &d["bytes"], &d["ips"], &d["files"]),
            (
                &duck_final["rows"],
                &duck_final["bytes"],
                &duck_final["ips"],
                &3.into()
            ),
            "DuckDB after the retry ({stall})"
        );
        let r = exact(cdnlake(
            dir,
            &["report", "--dest", "lake", "--json", "--exact"],
        ));
        assert_eq!(r, exact_final, "report --exact after the retry ({stall})");
        ok(
            &cdnlake(dir, &["verify", "--dest", "lake", "--repair"]),
            "repair",
        );
        let v = cdnlake(dir, &["verify", "--dest", "lake", "--json"]);
        assert!(v.status.success(), "{stall}: {}", stdout(&v));
    }

    // An hour lake: a clear refusal, nothing written.
    ok(
        &cdnlake(
            dir,
            &["convert", "--dest", "hours", files[0].to_str().unwrap()],
        ),
        "convert hours",
    );
    let o = cdnlake(dir, &["compact", "--dest", "hours", "--access"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--partition-by day"), "{}", stderr(&o));
}
