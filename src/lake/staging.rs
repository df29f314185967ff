//! Staging on a local destination: one folder per run, claimed by a lock the run holds.
//!
//! object_store's local store writes an upload next to its final name (`x.parquet#1`), inside
//! the partition folders that Spark and Hive read whole, so a local [`Lake`](super::store::Lake)
//! writes every object under `_staging/` and the commit renames it into place. Several runs of
//! the same work may be in flight at once (FC delivers an event twice, the timer's `sync` races
//! the CDN's own event, an operator runs `convert` while the function runs): each run therefore
//! stages in a folder of its own,
//!
//! ```text
//! _staging/<group…>/run-<pid>-<nanos>-<n>/<key>      the run's objects until the commit
//! _staging/<group…>/run-<pid>-<nanos>-<n>.lock       held (flock) for as long as the run lives
//! ```
//!
//! where the group is the unit of work (`<domain>/<YYYY_MM_DD>/<stem>` for a log file, `audit`
//! for events, `lake` for lone writes). The kernel releases a run's lock when its process dies,
//! however it dies, so "the lock can be taken" means "the run is dead": a new run of the same
//! work removes exactly the dead runs' folders, never a live run's. Registering a run and
//! cleaning dead ones happen under one more lock, on the `_staging` folder itself, so a run
//! cannot be taken for dead in the instant between creating its lock file and locking it.
//!
//! Object stores need none of this: an upload there is invisible until completed, and two runs
//! completing the same key with the same bytes is harmless.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use object_store::path::PathPart;

use crate::error::{Error, Result};

/// The folder, under a destination, where a local destination stages objects before the commit
/// renames them into place. Readers never look there: DuckDB globs the table folders, and Spark
/// and Hive skip names that start with `_`.
pub const STAGING: &str = "_staging";

/// Every run folder's name starts with this; its lock file is `<name>.lock` beside it.
const RUN_PREFIX: &str = "run-";
const LOCK_SUFFIX: &str = ".lock";

/// Folders that versions before per-run staging wrote straight into a group's folder (the
/// tables of a log file; the audit folders of events). A group never holds them any more, so
/// when found they are what a killed run of such a version left. A fixed list, not the
/// registry's folders (`crate::tables::registry`): a table added since was never staged there.
const LEGACY: &[&str] = &[
    "raw",
    "access",
    "traffic",
    "heavy_hitters",
    "visitors",
    "rejects",
    "events",
    "cache",
    "domain",
];

/// Attempts at taking the `_staging` lock or creating a lock file when someone removes the
/// folder in between (a `verify --repair` emptying it): each retry makes it again.
const ATTEMPTS: usize = 20;

/// A run's claim on its staging folder. Dropping it removes the folder (whatever the commit did
/// not rename away) and releases the claim.
pub(crate) struct StagingRun {
    /// The `_staging` folder.
    staging: PathBuf,
    /// The group's parts (unencoded), as given.
    group: Vec<String>,
    /// `run-…`
    name: String,
    /// Held locked for the run's life; the kernel releases it if the process dies.
    lock: Option<File>,
}

impl std::fmt::Debug for StagingRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StagingRun({})", self.run_dir().display())
    }
}

impl StagingRun {
    /// Starts a run of `group` under the destination folder `root`: removes what dead runs of
    /// the same group left, then claims a folder of its own.
    pub(crate) fn start(root: &Path, group: &[String]) -> Result<StagingRun> {
        let staging = root.join(STAGING);
        let gdir = group_dir(&staging, group);
        with_tree_lock(&staging, || {
            clean_group(&gdir)?;
            let name = run_name();
            let lock_path = gdir.join(format!("{name}{LOCK_SUFFIX}"));
            let mut attempt = 0;
            let lock = loop {
                attempt += 1;
                io(&gdir, std::fs::create_dir_all(&gdir))?;
                match File::create_new(&lock_path) {
                    Ok(f) => break f,
                    Err(e) if e.kind() == ErrorKind::NotFound && attempt < ATTEMPTS => continue,
                    Err(e) => return Err(io_error(&lock_path, e)),
                }
            };
            // No cleaner can look at the file before this: they all hold the tree lock first.
            io(&lock_path, lock.lock())?;
            Ok(StagingRun {
                staging: staging.clone(),
                group: group.to_vec(),
                name,
                lock: Some(lock),
            })
        })
    }

    /// The key parts of the run's folder, relative to the destination:
    /// `_staging/<group…>/<run>`.
    pub(crate) fn key_parts(&self) -> Vec<PathPart<'static>> {
        std::iter::once(PathPart::from(STAGING))
            .chain(self.group.iter().map(|g| PathPart::from(g.clone())))
            .chain(std::iter::once(PathPart::from(self.name.clone())))
            .collect()
    }

    fn group_dir(&self) -> PathBuf {
        group_dir(&self.staging, &self.group)
    }

    fn run_dir(&self) -> PathBuf {
        self.group_dir().join(&self.name)
    }

    /// Removes the run's folder and lock file, then the group's folders that are left empty.
    fn finish(&mut self) -> Result<()> {
        let gdir = self.group_dir();
        let run = self.run_dir();
        let lock_path = gdir.join(format!("{}{LOCK_SUFFIX}", self.name));
        with_tree_lock(&self.staging, || {
            remove_dir(&run)?;
            match std::fs::remove_file(&lock_path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&lock_path, e)),
            }
            // Released only once its file is gone, so nobody takes this run for dead and
            // removes a folder it is still removing.
            self.lock.take();
            remove_empty_up_to(&gdir, &self.staging);
            Ok(())
        })
    }
}

impl Drop for StagingRun {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!(run = %self.run_dir().display(), error = %e, "could not remove a run's staging folder");
        }
    }
}

/// The runs under `root/_staging` whose process is alive, as key prefixes relative to the
/// destination (`_staging/<group…>/run-…`): their folder and lock file are theirs, not leftovers.
pub(crate) fn live_runs(root: &Path) -> Result<Vec<String>> {
    let staging = root.join(STAGING);
    if !staging.is_dir() {
        return Ok(Vec::new());
    }
    with_tree_lock(&staging, || {
        let mut live = Vec::new();
        for lock in lock_files(&staging)? {
            if !is_dead(&lock)? {
                let rel = lock
                    .strip_prefix(root)
                    .unwrap_or(&lock)
                    .to_string_lossy()
                    .to_string();
                live.push(rel.trim_end_matches(LOCK_SUFFIX).to_string());
            }
        }
        live.sort();
        Ok(live)
    })
}

/// Removes everything under `root/_staging` that no live run holds: dead runs' folders and
/// lock files, leftovers of older versions, empty folders. Returns the files removed, relative
/// to the destination.
pub(crate) fn remove_dead(root: &Path) -> Result<Vec<String>> {
    let staging = root.join(STAGING);
    if !staging.is_dir() {
        return Ok(Vec::new());
    }
    with_tree_lock(&staging, || {
        let mut live: Vec<PathBuf> = Vec::new();
        for lock in lock_files(&staging)? {
            if !is_dead(&lock)? {
                live.push(lock.with_extension(""));
                live.push(lock);
            }
        }
        let mut removed = Vec::new();
        remove_unless_live(&staging, &live, root, &mut removed)?;
        removed.sort();
        Ok(removed)
    })
}

/// `dir`'s files that no live run holds, removed depth first, then `dir` itself if empty
/// (never the `_staging` folder: `remove_dead`'s caller holds its lock).
fn remove_unless_live(
    dir: &Path,
    live: &[PathBuf],
    root: &Path,
    removed: &mut Vec<String>,
) -> Result<()> {
    for entry in read_dir(dir)? {
        let path = entry.path();
        if live.contains(&path) {
            continue;
        }
        if entry.file_type().map_err(|e| io_error(&path, e))?.is_dir() {
            remove_unless_live(&path, live, root, removed)?;
            if !live.iter().any(|l| l.starts_with(&path)) {
                let _ = std::fs::remove_dir(&path);
            }
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(
                    path.strip_prefix(root)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .to_string(),
                ),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
    }
    Ok(())
}

/// Every `run-….lock` file under `dir`.
fn lock_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in read_dir(&d)? {
            let path = entry.path();
            let is_dir = entry.file_type().map_err(|e| io_error(&path, e))?.is_dir();
            let name = entry.file_name().to_string_lossy().to_string();
            if is_dir {
                todo.push(path);
            } else if name.starts_with(RUN_PREFIX) && name.ends_with(LOCK_SUFFIX) {
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// Removes the dead runs of one group: run folders whose lock can be taken or is gone, their
/// lock files, and what older versions staged straight into the group folder.
fn clean_group(gdir: &Path) -> Result<()> {
    for entry in read_dir(gdir)? {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(run) = name.strip_prefix(RUN_PREFIX).map(|_| name.as_str()) else {
            if LEGACY.contains(&name.as_str()) && path.is_dir() {
                remove_dir(&path)?;
            }
            continue;
        };
        if let Some(run) = run.strip_suffix(LOCK_SUFFIX) {
            if is_dead(&path)? {
                remove_dir(&gdir.join(run))?;
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&path, e)),
                }
            }
        } else if path.is_dir() && !gdir.join(format!("{run}{LOCK_SUFFIX}")).exists() {
            // A run removes its folder before its lock file, so a folder without one is dead.
            remove_dir(&path)?;
        }
    }
    Ok(())
}

/// Whether the run whose lock file this is has died (or finished): its lock can be taken.
fn is_dead(lock: &Path) -> Result<bool> {
    let f = match File::open(lock) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io_error(lock, e)),
    };
    match f.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(io_error(lock, e)),
    }
}

/// Runs `f` holding the lock on the `_staging` folder itself. The folder may be removed and made
/// again between opening and locking it (by whoever empties it), so the lock counts only once
/// the folder at that path is still the one locked.
fn with_tree_lock<T>(staging: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    for _ in 0..ATTEMPTS {
        io(staging, std::fs::create_dir_all(staging))?;
        let dir = match File::open(staging) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(staging, e)),
        };
        io(staging, dir.lock())?;
        let held = io(staging, dir.metadata())?;
        match std::fs::metadata(staging) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return f(),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(staging, e)),
        }
    }
    Err(Error::Internal(format!(
        "{} kept being removed while a run tried to lock it",
        staging.display()
    )))
}

/// A test hook, in debug builds only: with `CDNLAKE_DEBUG_STALL=<point>:<key part>` set, a run
/// stops for a minute at `point` for a key containing `key part`, so a test can `kill -9` it
/// exactly there (say, between staging a manifest and renaming it into place), which no timing
/// could reach reliably. Release builds compile it to nothing.
pub(crate) fn stall_point(point: &str, key: &str) {
    #[cfg(debug_assertions)]
    if let Ok(want) = std::env::var("CDNLAKE_DEBUG_STALL") {
        if want
            .split_once(':')
            .is_some_and(|(p, k)| p == point && key.contains(k))
        {
            eprintln!("cdnlake: stalled at {point} {key}");
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (point, key);
}

/// A name no other run has, in this process or any other.
fn run_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "{RUN_PREFIX}{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The folder of a group, its parts encoded as object keys encode them.
fn group_dir(staging: &Path, group: &[String]) -> PathBuf {
    let mut dir = staging.to_path_buf();
    for g in group {
        dir.push(PathPart::from(g.as_str()).as_ref());
    }
    dir
}

/// Removes `dir`'s now-empty folders from `dir` up to, not including, `stop`.
fn remove_empty_up_to(dir: &Path, stop: &Path) {
    let mut d = dir.to_path_buf();
    while d.starts_with(stop) && d != stop {
        if std::fs::remove_dir(&d).is_err() {
            break;
        }
        if !d.pop() {
            break;
        }
    }
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| io_error(dir, e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error(dir, e)),
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(dir, e)),
    }
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    todo.push(e.path());
                } else {
                    out.push(
                        e.path()
                            .strip_prefix(dir)
                            .unwrap()
                            .to_string_lossy()
                            .to_string(),
                    );
                }
            }
        }
        out.sort();
        out
    }

    fn group() -> Vec<String> {
        vec!["a.com".into(), "2024_03_05".into(), "f".into()]
    }

    #[test]
    fn concurrent_runs_keep_their_own_folders_and_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let a = StagingRun::start(tmp.path(), &group()).unwrap();
        let b = StagingRun::start(tmp.path(), &group()).unwrap();
        assert_ne!(a.run_dir(), b.run_dir());
        std::fs::create_dir_all(a.run_dir().join("raw")).unwrap();
        std::fs::write(a.run_dir().join("raw/x"), b"a").unwrap();
        // A third run of the same work starts: both live runs keep what they staged.
        let c = StagingRun::start(tmp.path(), &group()).unwrap();
        assert!(a.run_dir().join("raw/x").is_file());
        assert!(b.group_dir().join(format!("{}.lock", b.name)).is_file());
        let live = live_runs(tmp.path()).unwrap();
        assert_eq!(live.len(), 3, "{live:?}");
        assert!(remove_dead(tmp.path()).unwrap().is_empty());
        assert!(a.run_dir().join("raw/x").is_file());
        drop((a, b, c));
        assert_eq!(files(tmp.path()), Vec::<String>::new());
        assert!(!tmp.path().join("_staging/a.com").exists());
    }

    #[test]
    fn a_dead_run_is_removed_by_the_next_run_of_its_work_only() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = tmp.path().join(STAGING);
        // What a killed run leaves: its folder and a lock file nobody holds; and what a killed
        // run of an older version left straight in the group folder.
        let dead = staging.join("a.com/2024_03_05/f/run-1-2-3");
        std::fs::create_dir_all(dead.join("_manifests/a.com")).unwrap();
        std::fs::write(dead.join("_manifests/a.com/f.json#1"), b"{").unwrap();
        std::fs::write(staging.join("a.com/2024_03_05/f/run-1-2-3.lock"), b"").unwrap();
        std::fs::create_dir_all(staging.join("a.com/2024_03_05/f/access/domain=a.com")).unwrap();
        std::fs::write(
            staging.join("a.com/2024_03_05/f/access/domain=a.com/f.parquet"),
            b"x",
        )
        .unwrap();
        // Another file's dead run: not this work's to remove.
        let other = staging.join("a.com/2024_03_05/g/run-9");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("x"), b"x").unwrap();
        assert!(live_runs(tmp.path()).unwrap().is_empty());

        let run = StagingRun::start(tmp.path(), &group()).unwrap();
        assert!(!dead.exists());
        assert!(!staging.join("a.com/2024_03_05/f/run-1-2-3.lock").exists());
        assert!(!staging.join("a.com/2024_03_05/f/access").exists());
        assert!(other.join("x").is_file());
        drop(run);
        assert_eq!(
            files(tmp.path()),
            vec!["_staging/a.com/2024_03_05/g/run-9/x".to_string()]
        );
        assert_eq!(
            remove_dead(tmp.path()).unwrap(),
            vec!["_staging/a.com/2024_03_05/g/run-9/x".to_string()]
        );
        assert_eq!(files(tmp.path()), Vec::<String>::new());
    }

    #[test]
    fn a_run_of_another_process_is_live_while_it_holds_its_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let gdir = tmp.path().join("_staging/audit");
        std::fs::create_dir_all(gdir.join("run-7/audit")).unwrap();
        std::fs::write(gdir.join("run-7/audit/e.json"), b"{}").unwrap();
        // Another open file description holding the lock stands for another process.
        let held = File::create(gdir.join("run-7.lock")).unwrap();
        held.lock().unwrap();
        let run = StagingRun::start(tmp.path(), &["audit".to_string()]).unwrap();
        assert!(gdir.join("run-7/audit/e.json").is_file());
        assert_eq!(live_runs(tmp.path()).unwrap().len(), 2);
        assert!(remove_dead(tmp.path()).unwrap().is_empty());
        drop(run);
        drop(held);
        assert_eq!(
            remove_dead(tmp.path()).unwrap(),
            vec![
                "_staging/audit/run-7.lock".to_string(),
                "_staging/audit/run-7/audit/e.json".to_string()
            ]
        );
    }
}
