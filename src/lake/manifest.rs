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

/// One partition of the access table: an hour, or in a day-partitioned lake a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEntry {
    pub dt: String,
    /// `HH`; empty (and left out of the JSON) in a day-partitioned lake, whose partitions have no
    /// hour. A string rather than an `Option` so that manifests and the code that builds them
    /// stay as they were for the hour layout.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hour: String,
    pub rows: u64,
}

impl PartitionEntry {
    /// `dt=YYYY-MM-DD/hour=HH`, or `dt=YYYY-MM-DD` for a day partition: the partition's path
    /// under `<table>/domain=<d>/`.
    pub fn path(&self) -> String {
        if self.hour.is_empty() {
            format!("dt={}", self.dt)
        } else {
            format!("dt={}/hour={}", self.dt, self.hour)
        }
    }
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

/// Reads every manifest under the destination (for partition registration and reports): one
/// listing, then [`super::read::concurrency`] reads at once, sorted by key.
pub async fn list_manifests(lake: &super::store::Lake) -> crate::Result<Vec<Manifest>> {
    let prefix = object_store::path::Path::from_iter(
        lake.prefix
            .parts()
            .chain(std::iter::once(crate::tables::registry::MANIFESTS.into())),
    );
    let mut keys: Vec<object_store::path::Path> = super::read::list_meta(lake, &prefix)
        .await?
        .into_iter()
        .map(|m| m.location)
        .filter(|k| k.as_ref().ends_with(".json"))
        .collect();
    keys.sort();
    let bodies = super::read::get_all(lake, keys.clone()).await?;
    let mut out = Vec::new();
    for (key, bytes) in keys.iter().zip(bodies) {
        if let Some(bytes) = bytes {
            out.push(parse_manifest(key, &bytes)?);
        }
    }
    Ok(out)
}

/// A manifest read from `key`.
pub fn parse_manifest(key: &object_store::path::Path, bytes: &[u8]) -> crate::Result<Manifest> {
    serde_json::from_slice::<Manifest>(bytes).map_err(|source| crate::Error::Json {
        what: format!("manifest {key}"),
        source,
    })
}
