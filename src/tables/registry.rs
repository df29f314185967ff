//! The registry of the lake's folders: one line per folder says where it is, which table
//! definition (columns, Arrow schema, DDL) it holds, how its keys are laid out, and which readers
//! cover it. The key builders (`lake::layout`, `writers::audit`), `verify`, `ddl`, the rollup
//! readers and `compact` take their folders from here, so adding a table touches its definition,
//! one entry here and its writer.

use super::access::ACCESS;
use super::audit::{CACHE_AUDIT, DOMAIN_AUDIT};
use super::top::TOP;
use super::traffic::TRAFFIC;
use super::visitors::VISITORS;
use super::Table;

/// How the keys under a folder are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`, without the `hour=` level in a
    /// lake partitioned by day (the lake's descriptor says which): one log file's rows of a
    /// partition.
    Partitioned,
    /// `<domain>/<YYYY_MM_DD>/<file>`: one log file's object, dated by the file name.
    ByFile,
    /// `event=<eventName>/dt=<YYYY-MM-DD>/<traceId>.parquet`: one event's rows.
    ByEvent,
    /// `dt=<YYYY-MM-DD>/<traceId>.json`: one event as received.
    ByDate,
}

/// One folder of the lake.
#[derive(Debug, Clone, Copy)]
pub struct Folder {
    /// Its path under the destination, `/`-separated (`access`, `audit/cache`).
    pub path: &'static str,
    /// Its table (columns, schema, DDL), for Parquet folders; `None` for the raw dumps, the
    /// rejects and the event archive.
    pub table: Option<&'static Table>,
    pub keys: Keys,
    /// A run may split a partition's file into `<stem>-<n>.parquet` (access files past 1 GiB).
    pub numbered: bool,
    /// Manifests list its objects: `verify` checks them and reports the others as orphans, a
    /// re-run may delete a previous run's keys there (`FileLayout::owns`).
    pub manifested: bool,
    /// A per-file rollup: `report` reads it, `compact` merges it per day under `_compacted/`.
    pub rollup: bool,
}

impl Folder {
    /// Whether `key` (relative to the destination) lies in this folder.
    pub fn holds(&self, key: &str) -> bool {
        key.strip_prefix(self.path)
            .is_some_and(|r| r.starts_with('/'))
    }

    /// Its path as literal key parts (`["audit", "cache"]`).
    pub fn parts(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/')
    }
}

const fn table(t: &'static Table, keys: Keys, manifested: bool, rollup: bool) -> Folder {
    Folder {
        path: t.folder,
        table: Some(t),
        keys,
        numbered: false,
        manifested,
        rollup,
    }
}

/// `access/`: one row per accepted line.
pub const ACCESS_FOLDER: Folder = Folder {
    numbered: true,
    ..table(&ACCESS, Keys::Partitioned, true, false)
};
/// `traffic/`: per-minute counters.
pub const TRAFFIC_FOLDER: Folder = table(&TRAFFIC, Keys::Partitioned, true, true);
/// `heavy_hitters/`: top-list summaries.
pub const TOP_FOLDER: Folder = table(&TOP, Keys::Partitioned, true, true);
/// `visitors/`: distinct-IP sketches.
pub const VISITORS_FOLDER: Folder = table(&VISITORS, Keys::Partitioned, true, true);
/// `raw/`: the delivered file, byte for byte.
pub const RAW: Folder = Folder {
    path: "raw",
    table: None,
    keys: Keys::ByFile,
    numbered: false,
    manifested: true,
    rollup: false,
};
/// `rejects/`: the rejected lines of a file, JSON lines.
pub const REJECTS: Folder = Folder {
    path: "rejects",
    ..RAW
};
/// `audit/cache/`: cache refresh/push/block tasks.
pub const CACHE_AUDIT_FOLDER: Folder = table(&CACHE_AUDIT, Keys::ByEvent, false, false);
/// `audit/domain/`: domain started/stopped/added/deleted.
pub const DOMAIN_AUDIT_FOLDER: Folder = table(&DOMAIN_AUDIT, Keys::ByEvent, false, false);
/// `audit/events/`: every event as received (signed query removed).
pub const EVENTS: Folder = Folder {
    path: "audit/events",
    table: None,
    keys: Keys::ByDate,
    numbered: false,
    manifested: false,
    rollup: false,
};

/// Every folder that holds data, in the order the DDL declares the tables and `verify` lists
/// the folders.
pub const FOLDERS: [&Folder; 9] = [
    &ACCESS_FOLDER,
    &TRAFFIC_FOLDER,
    &TOP_FOLDER,
    &VISITORS_FOLDER,
    &RAW,
    &REJECTS,
    &CACHE_AUDIT_FOLDER,
    &DOMAIN_AUDIT_FOLDER,
    &EVENTS,
];

/// `_manifests/<domain>/<YYYY_MM_DD>/<stem>.json`: the commit markers of log files.
pub const MANIFESTS: &str = "_manifests";

/// Which folders a path list holds.
#[derive(Clone, Copy)]
enum Pick {
    Manifested,
    Partitioned,
}

const fn picked(f: &Folder, p: Pick) -> bool {
    match p {
        Pick::Manifested => f.manifested,
        Pick::Partitioned => matches!(f.keys, Keys::Partitioned),
    }
}

const fn count(p: Pick) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < FOLDERS.len() {
        if picked(FOLDERS[i], p) {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn paths<const N: usize>(p: Pick) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut n) = (0, 0);
    while i < FOLDERS.len() {
        if picked(FOLDERS[i], p) {
            out[n] = FOLDERS[i].path;
            n += 1;
        }
        i += 1;
    }
    out
}

/// The folders whose objects manifests list, in [`FOLDERS`] order: `verify` lists each once,
/// checks the listed objects and reports the others as orphans.
pub const MANIFESTED: [&str; count(Pick::Manifested)] = paths(Pick::Manifested);

/// The folders laid out `domain=<d>/dt=/[hour=]`, whose listing can narrow to a domain.
pub const PARTITIONED: [&str; count(Pick::Partitioned)] = paths(Pick::Partitioned);

/// Every table (a folder with columns), in the order the DDL declares them.
pub fn tables() -> impl Iterator<Item = &'static Table> {
    FOLDERS.into_iter().filter_map(|f| f.table)
}

/// The per-file rollups (`traffic`, `heavy_hitters`, `visitors`).
pub fn rollups() -> impl Iterator<Item = &'static Folder> {
    FOLDERS.into_iter().filter(|f| f.rollup)
}

/// The folder whose path is `path`.
pub fn folder(path: &str) -> Option<&'static Folder> {
    FOLDERS.into_iter().find(|f| f.path == path)
}

/// Whether `key` (relative to the destination) is one of a per-file rollup.
pub fn is_rollup(key: &str) -> bool {
    rollups().any(|f| f.holds(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_one_folder_and_folders_do_not_nest() {
        for (i, a) in FOLDERS.iter().enumerate() {
            for b in &FOLDERS[i + 1..] {
                assert_ne!(a.path, b.path);
                assert!(
                    !a.holds(b.path) && !b.holds(a.path),
                    "{} {}",
                    a.path,
                    b.path
                );
            }
            if let Some(t) = a.table {
                assert_eq!(t.folder, a.path);
            }
            assert_eq!(folder(a.path).map(|f| f.path), Some(a.path));
        }
        let names: Vec<&str> = tables().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "access",
                "traffic",
                "heavy_hitters",
                "visitors",
                "cache_audit",
                "domain_audit"
            ]
        );
        assert_eq!(
            MANIFESTED,
            [
                "access",
                "traffic",
                "heavy_hitters",
                "visitors",
                "raw",
                "rejects"
            ]
        );
        // verify tells a manifested folder by a key's first part.
        assert!(MANIFESTED.iter().all(|p| !p.contains('/')));
        assert_eq!(
            PARTITIONED,
            ["access", "traffic", "heavy_hitters", "visitors"]
        );
        let rollups: Vec<&str> = rollups().map(|f| f.path).collect();
        assert_eq!(rollups, ["traffic", "heavy_hitters", "visitors"]);
        assert!(is_rollup("visitors/domain=d/dt=2024-03-05/x.parquet"));
        assert!(!is_rollup("visitorsx/y") && !is_rollup("access/a"));
    }
}
