//! The manifest: written last, it marks a log file as done and lists everything its run wrote,
//! so a re-run can replace those objects and remove the ones it no longer writes.

use serde::{Deserialize, Serialize};

/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// One object written by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// Key relative to the destination.
    pub key: String,
    pub bytes: u64,
    /// Rows, for Parquet files.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows: Option<u64>,
}

/// One partition hour of the access table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEntry {
    pub dt: String,
    pub hour: String,
    pub rows: u64,
}

/// Where the log file came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEntry {
    pub name: String,
    /// Path or URL, with any signed query removed.
    pub location: String,
    pub bytes: u64,
    pub sha256: String,
    pub gzip: bool,
    pub bytes_decompressed: u64,
}

/// The commit marker of one log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub schema_version: u32,
    pub tool: String,
    pub domain: String,
    pub partition_tz: String,
    pub source: SourceEntry,
    /// `lines = rows + rejected + empty`
    pub lines: u64,
    pub rows: u64,
    pub rejected: u64,
    pub empty: u64,
    pub invalid_utf8: u64,
    pub partitions: Vec<PartitionEntry>,
    /// Every object written, the raw dump first; the manifest itself is not listed.
    pub objects: Vec<ObjectEntry>,
}

impl Manifest {
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().map(|o| o.key.as_str())
    }
}
