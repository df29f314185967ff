//! Compacted access days as readers and writers see them (docs/design.md §10): the keys, the
//! index a day object's footer holds, and the checks a conversion and `report --exact` make.
//! Compacting is [`crate::compact::access`]; this part sits in `lake` so that the writers and
//! the queries use it without depending on `compact`.

use std::collections::{BTreeMap, BTreeSet};

use object_store::path::Path;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::compacted::key_dt;
use super::layout::{key, relative};
use super::manifest::ObjectEntry;
use super::store::Lake;
use crate::error::{Error, Result};
use crate::tables::access::ACCESS;

/// The file name of a compacted access day. `~` is encoded in every key built from a log
/// file's name, so no per-file object can have this name; and it does not start with `_` or
/// `.`, which Spark and Hive would skip.
pub const DAY_FILE: &str = "compacted~day.parquet";

/// The folder of access-day markers and of re-conversions waiting to be spliced in.
pub const ACCESS_DAYS: &str = "_compacted_access";

/// Under [`ACCESS_DAYS`]: where a conversion of a file a day holds writes that day's rows.
pub const INCOMING: &str = "_incoming";

/// The footer key-value entry holding the day's [`DayIndex`] (JSON).
pub const INDEX_KEY: &str = "cdnlake.access_day";

/// Index and marker format version.
pub const INDEX_VERSION: u32 = 1;

/// Bytes read from the end of a day object to get its footer in one request.
const FOOTER_PREFETCH: u64 = 256 * 1024;

/// One log file whose rows a day object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSource {
    /// The log file's name (the merge order).
    pub source: String,
    /// Its manifest's key, relative to the destination.
    pub manifest: String,
    /// SHA-256 of the log file whose rows these are.
    pub sha256: String,
    /// The writer that converted them (the manifest's `tool`).
    pub tool: String,
    pub rows: u64,
    /// The row groups holding its rows: `first_row_group .. first_row_group + row_groups`.
    pub first_row_group: usize,
    pub row_groups: usize,
    /// The per-file objects these rows replace, as the manifest lists them.
    pub objects: Vec<ObjectEntry>,
}

impl HeldSource {
    /// Whether two records describe the same rows (not where they sit in the object).
    pub fn same_rows(&self, other: &HeldSource) -> bool {
        (
            &self.source,
            &self.sha256,
            &self.tool,
            self.rows,
            &self.objects,
        ) == (
            &other.source,
            &other.sha256,
            &other.tool,
            other.rows,
            &other.objects,
        )
    }
}

/// What a day object holds: its footer's [`INDEX_KEY`] entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayIndex {
    pub index_version: u32,
    pub domain: String,
    pub dt: String,
    pub sources: Vec<HeldSource>,
}

impl DayIndex {
    pub fn held(&self, source: &str) -> Option<&HeldSource> {
        self.sources.iter().find(|s| s.source == source)
    }
}

/// A manifest as the marker records it (lineage; coverage is the day object's index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedManifest {
    pub key: String,
    pub bytes: u64,
    pub etag: Option<String>,
}

/// The record of one compacted access day, written after its object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessMarker {
    pub marker_version: u32,
    pub tool: String,
    pub domain: String,
    pub dt: String,
    /// The day object: key, size, rows.
    pub object: ObjectEntry,
    /// The manifests of the files it holds, when compacted.
    pub manifests: Vec<MarkedManifest>,
    /// The day object's index, as written.
    pub sources: Vec<HeldSource>,
}

/// `access/domain=<d>/dt=<dt>`
pub fn day_folder(prefix: &Path, domain: &str, dt: &str) -> Path {
    key(
        prefix,
        &[
            ACCESS.folder,
            &format!("domain={domain}"),
            &format!("dt={dt}"),
        ],
    )
}

/// `access/domain=<d>/dt=<dt>/compacted~day.parquet` (the name is added unencoded: it is ours).
pub fn day_key(prefix: &Path, domain: &str, dt: &str) -> Path {
    let folder = day_folder(prefix, domain, dt);
    // `PathPart::from` would encode the `~`; the folder's parts are valid, and so is the name.
    Path::parse(format!("{folder}/{DAY_FILE}")).unwrap_or_else(|_| folder.clone().join(DAY_FILE))
}

/// `_compacted_access/<d>/<dt>.json`
pub fn marker_key(prefix: &Path, domain: &str, dt: &str) -> Path {
    key(prefix, &[ACCESS_DAYS, domain, &format!("{dt}.json")])
}

/// Where a conversion writes the rows of a day the day object holds:
/// `_compacted_access/_incoming/<the per-file key>`.
pub fn incoming_key(prefix: &Path, access_key: &Path) -> Path {
    let rel = access_key
        .prefix_match(prefix)
        .map(|p| p.collect::<Vec<_>>())
        .unwrap_or_else(|| access_key.parts().collect());
    Path::from_iter(
        prefix
            .parts()
            .chain([ACCESS_DAYS.into(), INCOMING.into()])
            .chain(rel),
    )
}

/// The per-file key (relative) an incoming key (relative) stands for; `None` for other keys.
pub fn from_incoming(relative_key: &str) -> Option<&str> {
    relative_key
        .strip_prefix(ACCESS_DAYS)?
        .strip_prefix('/')?
        .strip_prefix(INCOMING)?
        .strip_prefix('/')
}

/// Whether a key (relative) is a compacted access day object.
pub fn is_day_file(relative_key: &str) -> bool {
    relative_key
        .rsplit('/')
        .next()
        .is_some_and(|n| n == DAY_FILE)
}

/// Whether a key is in a day lake's access folder (`access/domain=/dt=/x.parquet`, no `hour=`).
pub fn is_day_access(relative_key: &str) -> bool {
    let parts: Vec<&str> = relative_key.split('/').collect();
    parts.len() == 4 && parts[0] == ACCESS.folder && parts[2].starts_with("dt=")
}

/// Reads a day object's footer (one suffix GET, a second only for a footer past 256 KiB):
/// `None` when there is no day object.
pub async fn read_footer(lake: &Lake, key: &Path) -> Result<Option<(ParquetMetaData, u64)>> {
    let Some((tail, size)) = lake.get_tail(key, FOOTER_PREFETCH).await? else {
        return Ok(None);
    };
    let bad = |reason: String| Error::ReadParquet {
        key: key.to_string(),
        reason,
    };
    let n = tail.len();
    if n < 8 || &tail[n - 4..] != b"PAR1" {
        return Err(bad("not a Parquet file (no footer)".into()));
    }
    let len = u32::from_le_bytes([tail[n - 8], tail[n - 7], tail[n - 6], tail[n - 5]]) as u64;
    let meta = if len + 8 <= n as u64 {
        tail.slice(n - 8 - len as usize..n - 8)
    } else if len + 8 <= size {
        lake.read_range(key, size - 8 - len..size - 8).await?
    } else {
        return Err(bad(format!("footer of {len} bytes in a {size}-byte file")));
    };
    let md = ParquetMetaDataReader::decode_metadata(&meta).map_err(|e| bad(e.to_string()))?;
    Ok(Some((md, size)))
}

/// The index a day object's footer holds.
pub fn index_of(key: &Path, md: &ParquetMetaData) -> Result<DayIndex> {
    let kv = md
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == INDEX_KEY))
        .and_then(|e| e.value.as_deref())
        .ok_or_else(|| Error::ReadParquet {
            key: key.to_string(),
            reason: format!("no {INDEX_KEY} entry in the footer"),
        })?;
    serde_json::from_str(kv).map_err(|source| Error::Json {
        what: format!("index of {key}"),
        source,
    })
}

/// The day object's index and size; `None` without a day object.
pub async fn read_index(lake: &Lake, domain: &str, dt: &str) -> Result<Option<(DayIndex, u64)>> {
    let key = day_key(&lake.prefix, domain, dt);
    match read_footer(lake, &key).await? {
        Some((md, size)) => Ok(Some((index_of(&key, &md)?, size))),
        None => Ok(None),
    }
}

/// For a conversion: whether day `dt` of `domain` is compacted and holds `source` (one suffix
/// GET per day a file writes, in day lakes only). Runs on the writer thread.
pub fn held_by_day(
    lake: &Lake,
    rt: &Handle,
    domain: &str,
    dt: &str,
    source: &str,
) -> Result<Option<HeldSource>> {
    Ok(rt
        .block_on(read_index(lake, domain, dt))?
        .and_then(|(index, _)| index.held(source).cloned()))
}

/// For `report --exact`: the objects to read for these manifests' access objects (relative key,
/// bytes) of a day lake: a file a day object holds is read from the day object (once per day),
/// never from its own objects as well. One footer read per day with access objects.
pub async fn exact_reads(
    lake: &Lake,
    objects: Vec<(String, String, ObjectEntry)>,
) -> Result<Vec<(String, u64)>> {
    let mut days: BTreeMap<(String, String), Option<(DayIndex, u64)>> = BTreeMap::new();
    for (domain, _, o) in &objects {
        if is_day_access(&o.key) {
            if let Some(dt) = key_dt(&o.key) {
                days.entry((domain.clone(), dt.to_string())).or_insert(None);
            }
        }
    }
    let keys: Vec<(String, String)> = days.keys().cloned().collect();
    let found: Vec<Option<(DayIndex, u64)>> = {
        use futures::stream::{StreamExt, TryStreamExt};
        futures::stream::iter(keys.iter())
            .map(|(d, dt)| read_index(lake, d, dt))
            .buffered(super::read::concurrency())
            .try_collect()
            .await?
    };
    for (k, f) in keys.into_iter().zip(found) {
        days.insert(k, f);
    }
    let mut out = Vec::new();
    let mut added = BTreeSet::new();
    for (domain, source, o) in objects {
        let day = key_dt(&o.key)
            .filter(|_| is_day_access(&o.key))
            .and_then(|dt| days.get(&(domain.clone(), dt.to_string())))
            .and_then(|d| d.as_ref());
        match day {
            Some((index, size)) if index.held(&source).is_some() => {
                let k = relative(&lake.prefix, &day_key(&lake.prefix, &domain, &index.dt));
                if added.insert(k.clone()) {
                    out.push((k, *size));
                }
            }
            _ => out.push((o.key, o.bytes)),
        }
    }
    Ok(out)
}
