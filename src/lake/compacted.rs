//! Compacted days: where `cdnlake compact` puts one day's merged rollups, and the marker that
//! says which log files' manifests they cover (docs/design.md §10).
//!
//! ```text
//! _compacted/traffic/domain=<d>/dt=<YYYY-MM-DD>/day.parquet        per-minute counters, merged
//! _compacted/heavy_hitters/domain=<d>/dt=<YYYY-MM-DD>/day.parquet  the day's merged summary
//! _compacted/visitors/domain=<d>/dt=<YYYY-MM-DD>/day.parquet       per-hour merged sketches
//! _compacted/_markers/<d>/<YYYY-MM-DD>.json                          the marker, written last
//! ```
//!
//! Why a separate tree: the per-file rollups stay the source of truth (a re-run, a late file or
//! `rebuild` replaces them as before), and the folders `traffic/`, `heavy_hitters/`,
//! `visitors/` that DuckDB globs and Spark or MaxCompute read whole keep exactly one copy of
//! each minute. `_compacted/` starts with `_`, which Spark and Hive skip and no view globs.

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::layout::key;
use super::manifest::ObjectEntry;

/// The folder of compacted days.
pub(crate) const COMPACTED: &str = "_compacted";

/// The folder of markers under [`COMPACTED`].
pub(crate) const MARKERS: &str = "_markers";

/// Marker format version.
pub(crate) const MARKER_VERSION: u32 = 1;

/// A manifest covered by a compacted day, as a listing of `_manifests/` shows it: a reader
/// checks coverage from one listing, without reading the manifests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CoveredManifest {
    /// The source file name: the merge order (manifests sorted by it, then by key).
    pub source: String,
    /// Key relative to the destination.
    pub key: String,
    pub bytes: u64,
    /// The manifest object's ETag when it was read. A store that gives none makes every
    /// coverage check fail, so such a lake reads the per-file rollups (never a stale day).
    pub etag: Option<String>,
    /// SHA-256 of the log file, from the manifest (lineage; not used for the check).
    pub sha256: String,
    /// Every partition day (`dt`) the file has rollups in: a reader that trusts this record
    /// knows where the file counts without reading its manifest.
    pub days: Vec<String>,
}

/// The commit marker of one compacted day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayMarker {
    pub marker_version: u32,
    pub tool: String,
    pub domain: String,
    pub dt: String,
    /// The partition clock the day is on (the manifests').
    pub partition_tz: String,
    /// Every manifest with rollups in this day when it was compacted, sorted.
    pub manifests: Vec<CoveredManifest>,
    /// The compacted objects: traffic, heavy_hitters, visitors.
    pub objects: Vec<ObjectEntry>,
    /// Partition spans (start, micros) with traffic rollups in the day.
    pub hours: Vec<i64>,
    /// Spans where some file has traffic but no heavy_hitters file (a lake older than them).
    pub missing_top: Vec<i64>,
    /// Likewise for visitors.
    pub missing_visitors: Vec<i64>,
}

/// `_compacted/_markers[/<domain>]`
pub(crate) fn markers_prefix(prefix: &Path, domain: Option<&str>) -> Path {
    match domain {
        Some(d) => key(prefix, &[COMPACTED, MARKERS, d]),
        None => key(prefix, &[COMPACTED, MARKERS]),
    }
}

/// `_compacted/_markers/<domain>/<dt>.json`
pub(crate) fn marker_key(prefix: &Path, domain: &str, dt: &str) -> Path {
    key(prefix, &[COMPACTED, MARKERS, domain, &format!("{dt}.json")])
}

/// `_compacted/<table>/domain=<d>/dt=<dt>/day.parquet`
pub(crate) fn object_key(prefix: &Path, table: &str, domain: &str, dt: &str) -> Path {
    key(
        prefix,
        &[
            COMPACTED,
            table,
            &format!("domain={domain}"),
            &format!("dt={dt}"),
            "day.parquet",
        ],
    )
}

/// The `dt=` of a table key (`traffic/domain=d/dt=2024-03-05/hour=08/x.parquet`).
pub(crate) fn key_dt(key: &str) -> Option<&str> {
    super::layout::key_partition(key).map(|(dt, _)| dt)
}

/// The dt a marker's key names (`.../<dt>.json`), to skip markers outside a window unread.
pub(crate) fn marker_dt(key: &str) -> Option<&str> {
    key.rsplit('/').next()?.strip_suffix(".json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let p = Path::from("pre");
        assert_eq!(
            marker_key(&p, "a/b.com", "2024-03-05").as_ref(),
            "pre/_compacted/_markers/a%2Fb.com/2024-03-05.json"
        );
        assert_eq!(
            object_key(&p, "traffic", "a.com", "2024-03-05").as_ref(),
            "pre/_compacted/traffic/domain=a.com/dt=2024-03-05/day.parquet"
        );
        assert_eq!(
            key_dt("traffic/domain=a/dt=2024-03-05/hour=08/x.parquet"),
            Some("2024-03-05")
        );
        assert_eq!(
            marker_dt("_compacted/_markers/a/2024-03-05.json"),
            Some("2024-03-05")
        );
    }
}
