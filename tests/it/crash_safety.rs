//! `kill -9` of `cdnlake convert` on a local destination, at many points of a run, and what a
//! Hive-style reader (Spark, Hive, MaxCompute, a DuckDB glob) would then find in the lake.
//!
//! The log is big enough for a debug build to take a few seconds over it, and stored
//! uncompressed in its gzip so that its raw dump passes one upload part (8 MiB): the dump is then
//! streamed to disk during the run (a multipart upload), not only at the commit. It is first
//! converted once, uninterrupted, into a reference lake, checked exact: every file a reader sees
//! after a kill must be one of its files, byte for byte.
//!
//! Each test kills runs right after their start, at eight points spread over a run (by the time
//! an uninterrupted run took just before), inside the commit (as soon as the run writes the
//! first object it had held in memory, which it does only when committing), and, on a lake that
//! has no table folder yet, at the first rename into one. After every kill:
//! - every file a reader takes (under `access/`, `traffic/`, `raw/`, `rejects/`, no path
//!   component starting with `_` or `.`) is complete: no `#` in its name (object_store's local
//!   in-progress files), byte-identical to the reference object, and each Parquet file opens
//!   with the rows the reference manifest lists for it;
//! - the file's state is the earlier complete state or none of it: a manifest means exactly the
//!   objects it lists, in full; no manifest means nothing of the file is visible, except when the
//!   kill landed between the commit's renames (objects become visible one by one, then the
//!   manifest: README "Guarantees", docs/design.md §8), where the visible files are some of the
//!   run's complete objects. Such kills are counted and printed;
//! - with a complete earlier run, the lake outside `_staging/` is that run's, byte for byte.
//!
//! A last run then converts the file to completion: exact rows, no duplicate
//! (source_file, line_number) in Rust and in DuckDB, and no file left under `_staging/`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{bin, duckdb_script, files_under, gen_gz_stored, reader_visible_files};
use cdnlake::dev::gen::{GenOptions, GenSummary};
use cdnlake::lake::manifest::Manifest;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// About 9.5 MB of log text (its raw dump passes one 8 MiB part): 2-3 s of `convert` in a
/// debug build.
const LINES: u64 = 40_000;
const DOMAIN: &str = "cdn.example.com";
const DATE: &str = "2024_03_05";
/// Timed kill points, as fractions of an uninterrupted run's duration.
const FRACTIONS: [f64; 8] = [0.06, 0.16, 0.26, 0.36, 0.46, 0.56, 0.66, 0.76];
/// Attempts at landing a kill inside the commit (each one a whole run).
const COMMIT_ATTEMPTS: usize = 3;
/// Bound of any one run (a debug build under load is slow, but not this slow).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The generated log and the reference lake, made once for both tests (which only read them).
struct Fixture {
    dir: tempfile::TempDir,
    log: PathBuf,
    summary: GenSummary,
    manifest: Manifest,
    /// Rows of each Parquet file, by relative path, as the reference manifest lists them.
    rows: BTreeMap<String, u64>,
}

impl Fixture {
    fn reference(&self) -> PathBuf {
        self.dir.path().join("ref")
    }

    fn stem(&self) -> String {
        let name = self.log.file_name().unwrap().to_string_lossy().into_owned();
        name.trim_end_matches(".gz").to_string()
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (log, summary) = gen_gz_stored(
            dir.path(),
            &GenOptions {
                lines: LINES,
                seed: 20240305,
                bad_fraction: 0.01,
                ..GenOptions::default()
            },
        );
        let size = std::fs::metadata(&log).unwrap().len();
        assert!(
            size > cdnlake::lake::sink::PART_SIZE as u64,
            "the raw dump must be a multipart upload: {size} bytes"
        );
        let stem = log
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".gz")
            .to_string();
        let reference = dir.path().join("ref");
        convert_to_completion(&log, &reference);
        let manifest = read_manifest(&reference, &stem).expect("reference manifest");
        let rows = manifest
            .objects
            .iter()
            .filter_map(|o| o.rows.map(|r| (o.key.clone(), r)))
            .collect();
        assert_exact(dir.path(), "ref", &summary, &manifest);
        let mut listed: Vec<String> = manifest.keys().map(str::to_string).collect();
        listed.sort();
        assert_eq!(
            reader_visible_files(&reference),
            listed,
            "a reader sees exactly the manifest's objects"
        );
        Fixture {
            dir,
            log,
            summary,
            manifest,
            rows,
        }
    })
}

/// One kill schedule at a time: two at once would share the two cores and blur the timing.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

fn convert_cmd(log: &Path, lake: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("convert")
        .arg(log)
        .arg("--dest")
        .arg(lake)
        .env_remove("CDNLAKE_DEST")
        .env_remove("CDNLAKE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Converts to completion; returns how long it took.
fn convert_to_completion(log: &Path, lake: &Path) -> Duration {
    let started = Instant::now();
    let mut child = convert_cmd(log, lake)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child);
    let took = started.elapsed();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "convert failed: {err}");
    took
}

/// Waits for a child, bounded by [`RUN_LIMIT`].
fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("convert did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILL (std's `Child::kill` on Unix). Returns false when the run had already finished
/// (successfully: a run that fails on its own fails the test).
fn kill9(child: &mut Child) -> bool {
    if let Some(status) = child.try_wait().unwrap() {
        assert!(status.success(), "convert failed on its own: {status}");
        return false;
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.signal() == Some(9) || status.success(),
        "unexpected status {status}"
    );
    status.signal() == Some(9)
}

fn manifest_path(lake: &Path, stem: &str) -> PathBuf {
    lake.join("_manifests")
        .join(DOMAIN)
        .join(DATE)
        .join(format!("{stem}.json"))
}

fn read_manifest(lake: &Path, stem: &str) -> Option<Manifest> {
    let bytes = std::fs::read(manifest_path(lake, stem)).ok()?;
    Some(serde_json::from_slice(&bytes).expect("a manifest that exists is complete JSON"))
}

/// Rows of a Parquet file, from its footer (which only a complete file has).
fn parquet_rows(path: &Path) -> u64 {
    let r = SerializedFileReader::new(File::open(path).unwrap())
        .unwrap_or_else(|e| panic!("{} does not open as Parquet: {e}", path.display()));
    r.metadata().file_metadata().num_rows() as u64
}

/// The lake after a complete run: exact counts, no duplicate line, the partitions of the
/// generator, nothing in `_staging/`; and DuckDB agrees.
fn assert_exact(dir: &Path, lake_name: &str, s: &GenSummary, m: &Manifest) {
    let lake = dir.join(lake_name);
    assert_eq!(
        (m.lines, m.rows, m.empty, m.rejected),
        (s.lines, s.rows, s.empty, s.rejected_lines.len() as u64)
    );
    let mut keys = HashSet::new();
    let mut per_partition = BTreeMap::new();
    let mut rows = 0u64;
    for f in reader_visible_files(&lake) {
        assert!(!f.contains('#'), "{f}");
        if !(f.starts_with("access/") && f.ends_with(".parquet")) {
            continue;
        }
        let part: Vec<&str> = f.split('/').collect();
        let partition = format!(
            "{}/{}",
            part[2].trim_start_matches("dt="),
            part[3].trim_start_matches("hour=")
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(lake.join(&f)).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let src = batch
                .column_by_name("source_file")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap()
                .clone();
            let line = batch
                .column_by_name("line_number")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap()
                .clone();
            for i in 0..batch.num_rows() {
                assert!(
                    keys.insert((src.value(i).to_string(), line.value(i))),
                    "duplicate line {} of {}",
                    line.value(i),
                    src.value(i)
                );
            }
            rows += batch.num_rows() as u64;
            *per_partition.entry(partition.clone()).or_insert(0u64) += batch.num_rows() as u64;
        }
    }
    assert_eq!(rows, s.rows, "rows read back");
    assert_eq!(per_partition, s.per_partition, "rows per partition");
    let staged = files_under(&lake.join("_staging"));
    assert!(staged.is_empty(), "left in _staging/: {staged:?}");
    let duck = duckdb_script(dir, lake_name, "duckdb_check.py", &[]);
    assert_eq!(duck["rows"], s.rows, "DuckDB rows");
    assert_eq!(
        duck["distinct_lines"], s.rows,
        "DuckDB distinct (source_file, line_number)"
    );
}

/// How one kill left the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No manifest, nothing of the file visible.
    Nothing,
    /// No manifest, some of the run's complete objects visible: the kill fell between renames.
    PartlyRenamed,
    /// The manifest and exactly the objects it lists.
    Complete,
}

/// Files outside `_staging/`, by relative path.
fn settled_files(lake: &Path) -> Vec<String> {
    files_under(lake)
        .into_iter()
        .filter(|k| !k.starts_with("_staging/"))
        .collect()
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// The checks after a kill (see the module comment). `earlier`: a complete earlier run exists,
/// and the lake outside `_staging/` must still be exactly it (the reference lake's files).
fn check_after_kill(lake: &Path, earlier: bool, what: &str) -> State {
    let fx = fixture();
    let reference = fx.reference();
    let visible = reader_visible_files(lake);
    for f in &visible {
        assert!(!f.contains('#'), "{what}: in-progress file visible: {f}");
        let want = reference.join(f);
        assert!(
            want.is_file(),
            "{what}: {f} is not an object of this file's run"
        );
        assert!(
            same_bytes(&lake.join(f), &want),
            "{what}: {f} differs from the complete object"
        );
        if f.ends_with(".parquet") {
            assert_eq!(
                Some(parquet_rows(&lake.join(f))),
                fx.rows.get(f).copied(),
                "{what}: rows of {f}"
            );
        }
    }
    // Outside `_staging/`, no in-progress file anywhere (the manifest too is staged first).
    for f in files_under(lake) {
        if !f.starts_with("_staging/") {
            assert!(!f.contains('#'), "{what}: in-progress file {f}");
        }
    }
    let state = match read_manifest(lake, &fx.stem()) {
        Some(m) => {
            assert_eq!(m, fx.manifest, "{what}: the manifest of a complete run");
            let mut listed: Vec<String> = m.keys().map(str::to_string).collect();
            listed.sort();
            assert_eq!(
                visible, listed,
                "{what}: a manifest, but not exactly its objects"
            );
            State::Complete
        }
        None if visible.is_empty() => State::Nothing,
        None => State::PartlyRenamed,
    };
    if earlier {
        assert_eq!(
            state,
            State::Complete,
            "{what}: the earlier run's manifest is gone"
        );
        let now = settled_files(lake);
        assert_eq!(
            now,
            settled_files(&reference),
            "{what}: not the earlier complete state"
        );
        for f in &now {
            assert!(
                same_bytes(&lake.join(f), &reference.join(f)),
                "{what}: {f} changed"
            );
        }
    }
    state
}

/// This file's staging folder (each run stages in a `run-…` folder of its own inside it).
fn staging(lake: &Path) -> PathBuf {
    lake.join("_staging")
        .join(DOMAIN)
        .join(DATE)
        .join(fixture().stem())
}

/// Whether the run's staging folder holds a Parquet file: the run holds those in memory (they
/// are under one part) and writes them there only when committing, then renames them out.
fn committing(lake: &Path) -> bool {
    files_under(&staging(lake))
        .iter()
        .any(|f| f.split('/').nth(1) == Some("access"))
}

/// Starts a run and kills it as soon as it is [`committing`]. What a killed run left is first
/// seen cleared by the new run. Returns whether the run was killed (false: it finished first).
fn kill_in_commit(lake: &Path) -> bool {
    let mut cleared = !committing(lake);
    let mut child = convert_cmd(&fixture().log, lake).spawn().unwrap();
    let started = Instant::now();
    loop {
        let now = committing(lake);
        if cleared && now {
            return kill9(&mut child);
        }
        cleared |= !now;
        if child.try_wait().unwrap().is_some() || started.elapsed() > RUN_LIMIT {
            return kill9(&mut child);
        }
        // A busy wait (the run has the other core): a sleep would overshoot the commit.
        std::thread::yield_now();
    }
}

/// On a lake with no table folder yet: starts a run and kills it as soon as one appears (the
/// commit's first rename creates it). Returns whether the run was killed, or `None` (no run)
/// when a table folder is already there.
fn kill_at_first_rename(lake: &Path) -> Option<bool> {
    let tables = ["raw", "access", "traffic", "rejects"].map(|t| lake.join(t));
    if tables.iter().any(|t| t.exists()) {
        return None;
    }
    let mut child = convert_cmd(&fixture().log, lake).spawn().unwrap();
    let started = Instant::now();
    loop {
        if tables.iter().any(|t| t.exists()) {
            return Some(kill9(&mut child));
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > RUN_LIMIT {
            return Some(kill9(&mut child));
        }
        std::thread::yield_now();
    }
}

/// One kill and its checks.
struct Kill {
    what: String,
    state: State,
    /// Killed while running (not after it finished).
    running: bool,
    /// The run's staging folder held files after the kill.
    staged: usize,
}

/// Runs the kill schedule on `lake`: right after the start, the timed points (fractions of
/// `run`), and inside the commit.
fn kill_schedule(lake: &Path, run: Duration, earlier: bool) -> Vec<Kill> {
    let log = &fixture().log;
    let mut out = Vec::new();
    let mut record = |what: String, running: bool| {
        let staged = files_under(&staging(lake)).len();
        let state = check_after_kill(lake, earlier, &what);
        println!(
            "  {what}: {state:?}, {staged} files in staging{}",
            if running {
                ""
            } else {
                " (the run had finished)"
            }
        );
        if state == State::PartlyRenamed {
            println!("    visible: {:?}", reader_visible_files(lake));
        }
        out.push(Kill {
            what,
            state,
            running,
            staged,
        });
    };
    let mut child = convert_cmd(log, lake).spawn().unwrap();
    let running = kill9(&mut child);
    record("kill right after the start".into(), running);
    for f in FRACTIONS {
        let at = run.mul_f64(f);
        let mut child = convert_cmd(log, lake).spawn().unwrap();
        std::thread::sleep(at);
        let running = kill9(&mut child);
        record(format!("kill at {:.0}% ({at:.2?})", f * 100.0), running);
    }
    for attempt in 1..=COMMIT_ATTEMPTS {
        let running = kill_in_commit(lake);
        // Killed with the commit's Parquet files in staging: inside the commit.
        let inside = running && committing(lake);
        record(format!("kill inside the commit, try {attempt}"), running);
        if inside {
            break;
        }
    }
    // On a lake where nothing is visible yet, also at the first rename into a table folder:
    // between the commit's renames if the kill is quick enough, else after the manifest.
    for attempt in 1..=COMMIT_ATTEMPTS {
        let Some(running) = kill_at_first_rename(lake) else {
            break;
        };
        record(format!("kill at the first rename, try {attempt}"), running);
    }
    out
}

fn count(kills: &[Kill], s: State) -> usize {
    kills.iter().filter(|k| k.state == s).count()
}

/// The timed kills that landed while the run was still going (on a fresh lake: before its
/// manifest).
fn mid_run(kills: &[Kill], earlier: bool) -> usize {
    kills[1..=FRACTIONS.len()]
        .iter()
        .filter(|k| k.running && (earlier || k.state != State::Complete))
        .count()
}

/// A fresh lake: each kill leaves nothing of the file or (a kill between the commit's renames)
/// some of its complete objects; never a partial file. The final run is exact.
#[test]
fn kill_9_never_leaves_a_partial_file_where_readers_look() {
    let fx = fixture();
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // An uninterrupted run into another lake just before, for the timing.
    let run = convert_to_completion(&fx.log, &dir.path().join("timing"));
    println!("fresh lake; an uninterrupted run takes {run:.2?}");
    let kills = kill_schedule(&lake, run, false);
    let mid = mid_run(&kills, false);
    println!(
        "kill points: {}, nothing visible: {}, between the commit's renames: {}, complete: {}, timed kills mid-run: {mid}",
        kills.len(),
        count(&kills, State::Nothing),
        count(&kills, State::PartlyRenamed),
        count(&kills, State::Complete)
    );
    // The first half of the points falls mid-run unless a run got twice as fast as the one
    // just measured.
    assert!(mid >= 4, "only {mid} timed kills landed mid-run");
    // Some kill left the multipart raw dump half-written in staging (not visible).
    assert!(
        kills
            .iter()
            .any(|k| k.staged > 0 && k.state == State::Nothing),
        "no kill caught a staged upload"
    );
    // Once complete, always complete: a killed run keeps the earlier state.
    if let Some(i) = kills.iter().position(|k| k.state == State::Complete) {
        assert!(
            kills[i..].iter().all(|k| k.state == State::Complete),
            "{}",
            kills[i..]
                .iter()
                .map(|k| format!("{}: {:?}", k.what, k.state))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    convert_to_completion(&fx.log, &lake);
    let m = read_manifest(&lake, &fx.stem()).unwrap();
    assert_exact(dir.path(), "lake", &fx.summary, &m);
    assert_eq!(m, fx.manifest);
    for f in settled_files(&lake) {
        assert!(same_bytes(&lake.join(&f), &fx.reference().join(&f)), "{f}");
    }
}

/// A complete earlier run, then re-runs of the same file killed at every point: the lake outside
/// `_staging/` is the earlier complete state each time, byte for byte; the last re-run
/// completes, exact, with the same bytes.
#[test]
fn a_killed_rerun_leaves_the_earlier_complete_state() {
    let fx = fixture();
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let run = convert_to_completion(&fx.log, &lake);
    check_after_kill(&lake, true, "the earlier complete run");
    println!("earlier complete run; it took {run:.2?}");
    let kills = kill_schedule(&lake, run, true);
    let mid = mid_run(&kills, true);
    println!(
        "kill points: {}, all left the earlier complete state; timed kills mid-run: {mid}",
        kills.len()
    );
    assert!(mid >= 4, "only {mid} timed kills landed mid-run");
    convert_to_completion(&fx.log, &lake);
    let m = read_manifest(&lake, &fx.stem()).unwrap();
    assert_exact(dir.path(), "lake", &fx.summary, &m);
    check_after_kill(&lake, true, "the last re-run");
}

/// Two `convert` runs of one file at once (an operator converting while the function runs):
/// both succeed, and the lake is the reference lake, byte for byte, with nothing staged left.
#[test]
fn two_converts_of_one_file_at_once_both_succeed_exactly() {
    let fx = fixture();
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut runs: Vec<Child> = (0..2)
        .map(|_| {
            convert_cmd(&fx.log, &lake)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in &mut runs {
        let status = wait_bounded(child);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        assert!(status.success(), "a concurrent convert failed: {err}");
    }
    let m = read_manifest(&lake, &fx.stem()).unwrap();
    assert_exact(dir.path(), "lake", &fx.summary, &m);
    assert_eq!(m, fx.manifest);
    assert_eq!(settled_files(&lake), settled_files(&fx.reference()));
    for f in settled_files(&lake) {
        assert!(same_bytes(&lake.join(&f), &fx.reference().join(&f)), "{f}");
    }
}

/// A `kill -9` between staging the manifest and renaming it into place (a debug build stalls
/// there on `CDNLAKE_DEBUG_STALL`), on a lake where an older version's kill had also left
/// `x.json#1` beside the manifest: nothing of either outlives the next run of the file, and no
/// `#` file is anywhere in the lake.
#[test]
fn a_kill_during_the_manifest_write_leaves_nothing_after_the_next_run() {
    let fx = fixture();
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let manifest = manifest_path(&lake, &fx.stem());
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    let legacy = manifest.with_file_name(format!("{}.json#1", fx.stem()));
    std::fs::write(&legacy, b"{\"half\": ").unwrap();

    let mut child = convert_cmd(&fx.log, &lake)
        .env("CDNLAKE_DEBUG_STALL", "put:_manifests/")
        .spawn()
        .unwrap();
    let started = Instant::now();
    let staged_manifest = || {
        files_under(&staging(&lake))
            .into_iter()
            .any(|f| f.contains("/_manifests/"))
    };
    while !staged_manifest() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before writing its manifest"
        );
        assert!(
            started.elapsed() < RUN_LIMIT,
            "the run never reached its manifest"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(kill9(&mut child), "the run was not stalled at its manifest");
    // Killed between the staged manifest and its rename: every object visible, no manifest.
    assert!(!manifest.exists());
    assert_eq!(
        check_after_kill(&lake, false, "killed in the manifest write"),
        State::PartlyRenamed
    );

    convert_to_completion(&fx.log, &lake);
    let m = read_manifest(&lake, &fx.stem()).unwrap();
    assert_eq!(m, fx.manifest);
    let partial: Vec<String> = files_under(&lake)
        .into_iter()
        .filter(|f| f.contains('#'))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
    assert_eq!(files_under(&lake.join("_staging")), Vec::<String>::new());
    assert_eq!(settled_files(&lake), settled_files(&fx.reference()));
}
