//! `cdnlake compact --access`: in a `--partition-by day` lake, one `access` file per domain
//! and day instead of one per log file, so engines that pay per file (MaxCompute and DuckDB
//! over OSS) open one object per day (docs/design.md §10, "Compacted access days").
//!
//! ```text
//! access/domain=<d>/dt=<YYYY-MM-DD>/compacted~day.parquet   the day's rows, file by file
//! _compacted_access/<d>/<YYYY-MM-DD>.json                    the marker (what the day holds)
//! _compacted_access/_incoming/access/...                     a re-conversion's rows, until spliced
//! ```
//!
//! Unlike the compacted rollups, this object must live in the partition folder (Spark,
//! MaxCompute and the DuckDB views read the folder whole), and the per-file objects it replaces
//! must leave that folder. The name cannot collide with a log file's: keys built from a file
//! name go through `PathPart`, which encodes `~`, so no file's object is ever named
//! `compacted~day.parquet`.
//!
//! **The day object describes itself.** Its Parquet footer holds the index
//! ([`INDEX_KEY`]): every log file whose rows it holds (name, SHA-256, the writer version, the
//! per-file objects it replaces), each file's rows contiguous in its own row groups, files in
//! name order. One object is replaced atomically (one PUT, or a rename), so what the day holds
//! and the rows always agree, whatever is killed when. Readers go by it: `report --exact` reads
//! a file's rows from the day object when the day holds the file, else from the file's own
//! objects, never both. The marker is the record for `verify`, written after the day object.
//!
//! **Order of a compaction.** Local folder: the new partition folder is built in a run's
//! staging folder (hard links of every file that stays, plus the day object) and exchanged
//! with the live one in one `renameat2(RENAME_EXCHANGE)`, so folder readers see the old folder
//! or the new one, never a mix. Object store: PUT the day object, PUT the marker, then delete
//! the per-file objects (one bulk request per 1,000 on S3). Between the PUT and the deletes
//! a folder reader can count the day's rows twice; that window is the one exception to
//! "readers are never wrong" (documented; killed in it, the next `compact --access` or
//! `verify --repair` finishes the deletes).
//!
//! **Later conversions of a file the day holds** (`handle`, `sync`, `convert`, `rebuild`) write
//! that day's rows under `_compacted_access/_incoming/` instead of the partition folder
//! ([`held_by_day`]). Same file and same writer: nothing is published (the day already holds
//! these rows). Otherwise the day object is rebuilt with the new rows in place of the old in
//! one PUT ([`splice`]). A new file of a compacted day (a late one) writes its own object next
//! to the day object, counted once; the next compaction takes it in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::metadata::KeyValue;
use serde::Serialize;
use tokio::runtime::Handle;

use super::CompactOptions;
use crate::access::time::PartitionTz;
use crate::error::{Error, Result};
pub use crate::lake::access_day::*;
use crate::lake::commit::Staged;
use crate::lake::compacted::key_dt;
use crate::lake::descriptor::{Descriptor, PartitionBy};
use crate::lake::layout::{key, parse_dt, partition_span, relative};
use crate::lake::manifest::{parse_manifest, Manifest, ObjectEntry};
use crate::lake::read::{get_all, list_meta};
use crate::lake::staging::stall_point;
use crate::lake::store::Lake;
use crate::tables::access::ACCESS;
use crate::writers::parquet::{writer_properties, ParquetOptions};

/// Days whose access objects add up to more than this are not compacted (`too_large`): the day
/// object is built in memory, and MaxCompute wants files well under 2 GB. Days of small files,
/// where per-file costs dominate, are far below it.
pub const MAX_DAY_BYTES: u64 = 256 * 1024 * 1024;

/// Where the rows of one file come from when a day object is built.
enum Rows {
    /// Its own per-file objects (full keys), or incoming ones.
    Objects(Vec<Path>),
    /// Row groups of the current day object.
    Day { first: usize, count: usize },
}

struct Part {
    held: HeldSource,
    rows: Rows,
}

/// Encodes a day object: every part's rows in order, each part's rows in row groups of their
/// own, the index in the footer. The writer settings are the per-file objects'.
fn build(
    domain: &str,
    dt: &str,
    parts: Vec<Part>,
    objects: &BTreeMap<Path, Bytes>,
    day: Option<&Bytes>,
) -> Result<(Vec<u8>, DayIndex)> {
    let out_key = format!("access/domain={domain}/dt={dt}/{DAY_FILE}");
    let err = |key: &str, e: parquet::errors::ParquetError| Error::Parquet {
        key: key.to_string(),
        source: e,
    };
    let schema = ACCESS.arrow_schema();
    let props = writer_properties(&ACCESS, &ParquetOptions::default())?;
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))
        .map_err(|e| err(&out_key, e))?;
    let mut index = DayIndex {
        index_version: INDEX_VERSION,
        domain: domain.to_string(),
        dt: dt.to_string(),
        sources: Vec::new(),
    };
    for part in parts {
        let before = w.flushed_row_groups().len();
        let mut rows = 0u64;
        let mut write = |key: &str, bytes: Bytes, groups: Option<Vec<usize>>| -> Result<()> {
            let b = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| err(key, e))?;
            // The access columns by name: a schema version 1 file's `url` is not even decoded,
            // and the day object is written in the current schema whatever its inputs were.
            let mask =
                ProjectionMask::columns(b.parquet_schema(), ACCESS.columns.iter().map(|c| c.name));
            let mut b = b.with_projection(mask).with_batch_size(8192);
            if let Some(g) = groups {
                b = b.with_row_groups(g);
            }
            for batch in b.build().map_err(|e| err(key, e))? {
                let batch = batch.map_err(|e| Error::ReadParquet {
                    key: key.to_string(),
                    reason: e.to_string(),
                })?;
                let batch =
                    access_columns(&schema, &batch).map_err(|reason| Error::ReadParquet {
                        key: key.to_string(),
                        reason,
                    })?;
                rows += batch.num_rows() as u64;
                w.write(&batch).map_err(|e| err(&out_key, e))?;
            }
            Ok(())
        };
        match part.rows {
            Rows::Objects(keys) => {
                for k in keys {
                    let bytes = objects.get(&k).cloned().ok_or_else(|| {
                        Error::Internal(format!("{k} was not read before building the day"))
                    })?;
                    write(k.as_ref(), bytes, None)?;
                }
            }
            Rows::Day { first, count } => {
                let bytes = day
                    .cloned()
                    .ok_or_else(|| Error::Internal("no day object to take rows from".into()))?;
                write(&out_key, bytes, Some((first..first + count).collect()))?;
            }
        }
        if rows == 0 {
            continue;
        }
        w.flush().map_err(|e| err(&out_key, e))?;
        let after = w.flushed_row_groups().len();
        index.sources.push(HeldSource {
            rows,
            first_row_group: before,
            row_groups: after - before,
            ..part.held
        });
    }
    let json = serde_json::to_string(&index).map_err(|source| Error::Json {
        what: format!("index of {out_key}"),
        source,
    })?;
    w.append_key_value_metadata(KeyValue::new(INDEX_KEY.to_string(), json));
    w.close().map_err(|e| err(&out_key, e))?;
    Ok((buf, index))
}

/// `batch`'s columns of the access `schema`, taken by name, as a batch of that schema itself
/// (with its field metadata): how rows of a file of either schema version (1 stored `url`)
/// become rows of the current one. A column missing or of another type is an error naming it.
fn access_columns(
    schema: &arrow_schema::SchemaRef,
    batch: &RecordBatch,
) -> std::result::Result<RecordBatch, String> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .ok_or_else(|| format!("not the access schema: no column {}", f.name()))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| format!("not the access schema: {e}"))
}

/// A manifest with its listing's size and ETag.
#[derive(Debug, Clone)]
pub struct ListedManifest {
    pub key: String,
    pub bytes: u64,
    pub etag: Option<String>,
    pub manifest: Arc<Manifest>,
}

/// The manifests (of a domain) of log files named in `[from, to)` give or take two days (a
/// file's lines fall within a day of its name's date; `undated` ones are always read): one
/// listing, then the reads, [`crate::lake::read::concurrency`] at a time. The window keeps the
/// FC timer's run (the last 30 days) from reading a domain's whole history every hour.
pub async fn load_manifests(
    lake: &Lake,
    domain: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<ListedManifest>> {
    let prefix = match domain {
        Some(d) => key(&lake.prefix, &["_manifests", d]),
        None => key(&lake.prefix, &["_manifests"]),
    };
    let (lo, hi) = (from.and_then(parse_dt), to.and_then(parse_dt));
    let near = |rel: &str| named_near(rel, lo, hi);
    let mut metas: Vec<_> = list_meta(lake, &prefix)
        .await?
        .into_iter()
        .filter(|m| m.location.as_ref().ends_with(".json"))
        .filter(|m| near(&relative(&lake.prefix, &m.location)))
        .collect();
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let bodies = get_all(lake, metas.iter().map(|m| m.location.clone()).collect()).await?;
    let mut out = Vec::new();
    for (m, body) in metas.into_iter().zip(bodies) {
        let Some(body) = body else { continue };
        out.push(ListedManifest {
            key: relative(&lake.prefix, &m.location),
            bytes: m.size,
            etag: m.e_tag,
            manifest: Arc::new(parse_manifest(&m.location, &body)?),
        });
    }
    Ok(out)
}

/// Whether a manifest key (`_manifests/<domain>/<YYYY_MM_DD>/<stem>.json`) names a file dated
/// within two days of `[lo, hi)` (days since the epoch); an undated one always is.
fn named_near(rel: &str, lo: Option<i64>, hi: Option<i64>) -> bool {
    let folder = rel.rsplit('/').nth(1).unwrap_or("");
    match parse_dt(&folder.replace('_', "-")) {
        Some(d) => lo.is_none_or(|l| d >= l - 2) && hi.is_none_or(|h| d < h + 2),
        None => true,
    }
}

/// The access objects of a manifest in day `dt` (relative keys, in the manifest's order).
fn access_in(m: &Manifest, dt: &str) -> Vec<ObjectEntry> {
    m.objects
        .iter()
        .filter(|o| is_day_access(&o.key) && key_dt(&o.key) == Some(dt))
        .cloned()
        .collect()
}

/// One day of access compaction.
#[derive(Debug, Clone, Serialize)]
pub struct AccessDayOutcome {
    pub domain: String,
    pub dt: String,
    /// `compacted`, `up_to_date`, `marker_written` (the day object was whole; its marker was
    /// missing), `too_large`.
    pub action: &'static str,
    /// Log files the day object holds.
    pub files: usize,
    /// Per-file objects removed from the partition folder.
    pub removed: usize,
    pub bytes: u64,
}

/// What `compact --access` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessReport {
    pub days: usize,
    pub compacted: usize,
    pub up_to_date: usize,
    pub too_recent: usize,
    pub too_large: usize,
    pub outcomes: Vec<AccessDayOutcome>,
}

/// A day and the manifests with access rows in it.
type Days = BTreeMap<(String, String), (PartitionTz, Vec<ListedManifest>)>;

fn days_of(manifests: &[ListedManifest]) -> Days {
    let mut days: Days = BTreeMap::new();
    for lm in manifests {
        let m = &lm.manifest;
        let tz = PartitionTz::parse(&m.partition_tz).unwrap_or_default();
        let dts: BTreeSet<&str> = m
            .objects
            .iter()
            .filter(|o| is_day_access(&o.key))
            .filter_map(|o| key_dt(&o.key))
            .collect();
        for dt in dts {
            days.entry((m.domain.clone(), dt.to_string()))
                .or_insert((tz, Vec::new()))
                .1
                .push(lm.clone());
        }
    }
    days
}

/// Compacts the access objects of every selected day of a day lake that has ended (and is old
/// enough). An hour lake is refused with a clear error: its files are per hour already, and
/// an `hour=` folder per compacted object would not lower the count.
pub async fn compact_access(lake: &Lake, opts: &CompactOptions) -> Result<AccessReport> {
    let d = Descriptor::load_or_default(lake).await?;
    if d.partition_by != PartitionBy::Day {
        return Err(Error::Config {
            setting: "compact --access",
            value: lake.url.clone(),
            reason: "only a lake created with --partition-by day has per-file access objects \
                     per day to compact; this lake is partitioned by hour"
                .into(),
        });
    }
    let manifests = load_manifests(
        lake,
        opts.domain.as_deref(),
        opts.from.as_deref(),
        opts.to.as_deref(),
    )
    .await?;
    let mut report = AccessReport::default();
    for ((domain, dt), (tz, contributors)) in days_of(&manifests) {
        if opts.domain.as_deref().is_some_and(|d| d != domain)
            || opts.from.as_deref().is_some_and(|f| dt.as_str() < f)
            || opts.to.as_deref().is_some_and(|t| dt.as_str() >= t)
        {
            continue;
        }
        let Some(span) = partition_span(&dt, "", tz) else {
            continue;
        };
        report.days += 1;
        if span.end.saturating_add(opts.min_age_micros) > opts.now_micros {
            report.too_recent += 1;
            continue;
        }
        let o = compact_access_day(lake, &domain, &dt, &contributors).await?;
        match o.action {
            "up_to_date" => report.up_to_date += 1,
            "too_large" => report.too_large += 1,
            _ => report.compacted += 1,
        }
        report.outcomes.push(o);
    }
    Ok(report)
}

/// Compacts one day from the manifests with access rows in it: each file's rows from its own
/// objects when they are in the folder, else from the current day object; a day whose object
/// already holds exactly these files (and no per-file object of them is left) is up to date.
pub async fn compact_access_day(
    lake: &Lake,
    domain: &str,
    dt: &str,
    contributors: &[ListedManifest],
) -> Result<AccessDayOutcome> {
    let dkey = day_key(&lake.prefix, domain, dt);
    let folder = day_folder(&lake.prefix, domain, dt);
    let (existing, listing) =
        futures::try_join!(read_index(lake, domain, dt), list_meta(lake, &folder))?;
    let present: BTreeMap<String, u64> = listing
        .into_iter()
        .map(|m| (relative(&lake.prefix, &m.location), m.size))
        .collect();
    let sorted = sorted_contributors(contributors);
    let index = existing.as_ref().map(|(i, _)| i);
    let sources = gather_parts(lake, domain, dt, &sorted, index, &present);
    let manifests = marked_manifests(&sorted, &sources.parts);
    let outcome =
        |action, files, removed, bytes| day_outcome(domain, dt, action, files, removed, bytes);

    if let Some((index, size)) = &existing {
        if !sources.from_files && holds_same_rows(index, &sources.parts) {
            let (action, written) =
                refresh_marker(lake, domain, dt, &dkey, index, *size, manifests).await?;
            return Ok(outcome(action, sources.parts.len(), 0, written));
        }
    }
    if sources.parts.is_empty() {
        return Ok(outcome("up_to_date", 0, 0, 0));
    }
    let day_bytes = day_bytes_read(existing.as_ref(), &sources.parts);
    if sources.input_bytes + day_bytes > MAX_DAY_BYTES {
        return Ok(outcome("too_large", sources.parts.len(), 0, 0));
    }
    let (objects, day) = read_inputs(lake, &sources.parts, &dkey, day_bytes).await?;
    let (body, index) = build(domain, dt, sources.parts, &objects, day.as_ref())?;
    let written = body.len() as u64;
    let files = index.sources.len();
    let removed = sources.remove.len();
    let object = day_entry(lake, &dkey, written, &index);
    let published = Published {
        object,
        manifests,
        sources: index.sources,
    };
    publish(lake, domain, dt, &folder, body, &sources.remove, published).await?;
    Ok(outcome("compacted", files, removed, written))
}

/// What a day is built from, gathered from its contributing manifests before anything is read.
struct DaySources {
    /// Each file's rows, in the order of the day object.
    parts: Vec<Part>,
    /// The per-file objects (lake-relative keys) the day object replaces.
    remove: Vec<String>,
    /// The size of those per-file objects, for the `too_large` limit.
    input_bytes: u64,
    /// Whether any rows come from per-file objects (then the day is not up to date).
    from_files: bool,
}

/// The contributors in the order of the day object: by source file name, then manifest key, so
/// that a day is built the same way whatever order the manifests were listed in.
fn sorted_contributors(contributors: &[ListedManifest]) -> Vec<&ListedManifest> {
    let mut sorted: Vec<&ListedManifest> = contributors.iter().collect();
    sorted
        .sort_by(|a, b| (&a.manifest.source.name, &a.key).cmp(&(&b.manifest.source.name, &b.key)));
    sorted
}

/// Where each file's rows come from: its own per-file objects when all of them are in the folder
/// (they are newer than a day object), else the row groups the day object holds for it; a file
/// with neither is left out with a warning, for verify to report.
fn gather_parts(
    lake: &Lake,
    domain: &str,
    dt: &str,
    sorted: &[&ListedManifest],
    existing: Option<&DayIndex>,
    present: &BTreeMap<String, u64>,
) -> DaySources {
    let mut s = DaySources {
        parts: Vec::new(),
        remove: Vec::new(),
        input_bytes: 0,
        from_files: false,
    };
    for lm in sorted {
        let m = &lm.manifest;
        let own = access_in(m, dt);
        if own.is_empty() {
            continue;
        }
        let held = existing.and_then(|i| i.held(&m.source.name).cloned());
        if own.iter().all(|o| present.contains_key(&o.key)) {
            s.input_bytes += own.iter().map(|o| o.bytes).sum::<u64>();
            s.remove.extend(own.iter().map(|o| o.key.clone()));
            s.from_files = true;
            s.parts.push(file_part(lake, lm, own));
        } else if let Some(h) = held {
            s.parts.push(Part {
                rows: Rows::Day {
                    first: h.first_row_group,
                    count: h.row_groups,
                },
                held: h,
            });
        } else {
            tracing::warn!(%domain, %dt, source = %m.source.name, "access objects missing and not in the day object; verify reports them");
        }
    }
    s
}

/// A part read from a file's own per-file objects; its row groups are numbered when the day
/// object is built.
fn file_part(lake: &Lake, lm: &ListedManifest, own: Vec<ObjectEntry>) -> Part {
    let m = &lm.manifest;
    Part {
        held: HeldSource {
            source: m.source.name.clone(),
            manifest: lm.key.clone(),
            sha256: m.source.sha256.clone(),
            tool: m.tool.clone(),
            rows: own.iter().filter_map(|o| o.rows).sum(),
            first_row_group: 0,
            row_groups: 0,
            objects: own.clone(),
        },
        rows: Rows::Objects(own.iter().map(|o| lake.key_of(&o.key)).collect()),
    }
}

/// The manifests the marker names (those with a part in the day), sorted by key, with the size
/// and ETag they were read at, so that a later change to one of them is noticed.
fn marked_manifests(sorted: &[&ListedManifest], parts: &[Part]) -> Vec<MarkedManifest> {
    let mut manifests: Vec<MarkedManifest> = sorted
        .iter()
        .filter(|lm| parts.iter().any(|p| p.held.manifest == lm.key))
        .map(|lm| MarkedManifest {
            key: lm.key.clone(),
            bytes: lm.bytes,
            etag: lm.etag.clone(),
        })
        .collect();
    manifests.sort_by(|a, b| a.key.cmp(&b.key));
    manifests
}

/// The report line of one day.
fn day_outcome(
    domain: &str,
    dt: &str,
    action: &'static str,
    files: usize,
    removed: usize,
    bytes: u64,
) -> AccessDayOutcome {
    AccessDayOutcome {
        domain: domain.to_string(),
        dt: dt.to_string(),
        action,
        files,
        removed,
        bytes,
    }
}

/// Whether the day object already holds exactly these parts' rows, in this order.
fn holds_same_rows(index: &DayIndex, parts: &[Part]) -> bool {
    index.sources.len() == parts.len()
        && index
            .sources
            .iter()
            .zip(parts)
            .all(|(a, p)| a.same_rows(&p.held))
}

/// For an up-to-date day: writes the marker again only if a kill lost it (or it no longer
/// matches the day object), so that a repeated run writes nothing. Returns the action and the
/// bytes written.
async fn refresh_marker(
    lake: &Lake,
    domain: &str,
    dt: &str,
    dkey: &Path,
    index: &DayIndex,
    size: u64,
    manifests: Vec<MarkedManifest>,
) -> Result<(&'static str, u64)> {
    let mkey = marker_key(&lake.prefix, domain, dt);
    let marker: Option<AccessMarker> = lake
        .get_opt(&mkey)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let object = day_entry(lake, dkey, size, index);
    if marker.is_some_and(|m| m.object == object && m.sources == index.sources) {
        return Ok(("up_to_date", 0));
    }
    let n = put_marker(lake, domain, dt, object, manifests, index.sources.clone()).await?;
    Ok(("marker_written", n))
}

/// The day object as the marker names it: its key, size and rows.
fn day_entry(lake: &Lake, dkey: &Path, bytes: u64, index: &DayIndex) -> ObjectEntry {
    ObjectEntry {
        key: relative(&lake.prefix, dkey),
        bytes,
        rows: Some(index.sources.iter().map(|s| s.rows).sum()),
    }
}

/// The size of the current day object if some rows are copied from it (it is read whole), else 0.
fn day_bytes_read(existing: Option<&(DayIndex, u64)>, parts: &[Part]) -> u64 {
    match existing {
        Some((_, size)) if parts.iter().any(|p| matches!(p.rows, Rows::Day { .. })) => *size,
        _ => 0,
    }
}

/// Reads what the day is built from: the per-file objects, and the day object if rows come from
/// it. One that vanished since the listing is an error, so that no rows are lost.
async fn read_inputs(
    lake: &Lake,
    parts: &[Part],
    dkey: &Path,
    day_bytes: u64,
) -> Result<(BTreeMap<Path, Bytes>, Option<Bytes>)> {
    let keys: Vec<Path> = parts
        .iter()
        .flat_map(|p| match &p.rows {
            Rows::Objects(k) => k.clone(),
            Rows::Day { .. } => Vec::new(),
        })
        .collect();
    let bodies = get_all(lake, keys.clone()).await?;
    let mut objects = BTreeMap::new();
    for (k, b) in keys.into_iter().zip(bodies) {
        let b = b.ok_or_else(|| Error::Internal(format!("{k} disappeared during compaction")))?;
        objects.insert(k, b);
    }
    let day = if day_bytes > 0 {
        Some(
            lake.get_opt(dkey)
                .await?
                .ok_or_else(|| Error::Internal(format!("{dkey} disappeared during compaction")))?,
        )
    } else {
        None
    };
    Ok((objects, day))
}

/// What the marker of a newly built day records.
struct Published {
    object: ObjectEntry,
    manifests: Vec<MarkedManifest>,
    sources: Vec<HeldSource>,
}

/// Publishes a built day: in a local folder by swapping it in for the per-file objects; in an
/// object store by writing the day object, then the marker, then deleting the per-file objects,
/// so that a kill at any point leaves every row readable exactly once.
async fn publish(
    lake: &Lake,
    domain: &str,
    dt: &str,
    folder: &Path,
    body: Vec<u8>,
    remove: &[String],
    p: Published,
) -> Result<()> {
    let dkey = day_key(&lake.prefix, domain, dt);
    let remove_keys: Vec<Path> = remove.iter().map(|k| lake.key_of(k)).collect();
    if lake.is_local() && !remove.is_empty() {
        swap_local(lake, folder, body, remove)?;
        put_marker(lake, domain, dt, p.object, p.manifests, p.sources).await?;
    } else {
        lake.put(&dkey, body).await?;
        stall_point("access-day", dkey.as_ref());
        put_marker(lake, domain, dt, p.object, p.manifests, p.sources).await?;
        stall_point("access-marker", dkey.as_ref());
        lake.delete_all(remove_keys).await?;
    }
    Ok(())
}

async fn put_marker(
    lake: &Lake,
    domain: &str,
    dt: &str,
    object: ObjectEntry,
    manifests: Vec<MarkedManifest>,
    sources: Vec<HeldSource>,
) -> Result<u64> {
    let mkey = marker_key(&lake.prefix, domain, dt);
    let marker = AccessMarker {
        marker_version: INDEX_VERSION,
        tool: format!("cdnlake {}", env!("CARGO_PKG_VERSION")),
        domain: domain.to_string(),
        dt: dt.to_string(),
        object,
        manifests,
        sources,
    };
    let body = serde_json::to_vec_pretty(&marker).map_err(|source| Error::Json {
        what: format!("access marker {mkey}"),
        source,
    })?;
    let n = body.len() as u64;
    lake.put(&mkey, body).await?;
    Ok(n)
}

/// Replaces the rows of one file in a compacted day with the rows a conversion wrote to
/// `incoming` (full keys; none when the file no longer has rows in the day), in one PUT of the
/// day object; then the marker, then the incoming objects go. `new` describes the new rows.
pub async fn splice(
    lake: &Lake,
    domain: &str,
    dt: &str,
    new: HeldSource,
    incoming: Vec<Path>,
) -> Result<()> {
    let dkey = day_key(&lake.prefix, domain, dt);
    let Some((index, _)) = read_index(lake, domain, dt).await? else {
        return Err(Error::Internal(format!(
            "the compacted day {dkey} disappeared during the conversion of {}; convert it again",
            new.source
        )));
    };
    let day = lake
        .get_opt(&dkey)
        .await?
        .ok_or_else(|| Error::Internal(format!("{dkey} disappeared")))?;
    // The other files' row groups as they are, this file's new rows in its place (name order).
    let mut parts: Vec<Part> = index
        .sources
        .iter()
        .filter(|h| h.source != new.source)
        .map(|h| Part {
            rows: Rows::Day {
                first: h.first_row_group,
                count: h.row_groups,
            },
            held: h.clone(),
        })
        .collect();
    parts.push(Part {
        held: new,
        rows: Rows::Objects(incoming.clone()),
    });
    parts.sort_by(|a, b| a.held.source.cmp(&b.held.source));
    let bodies = get_all(lake, incoming.clone()).await?;
    let mut objects = BTreeMap::new();
    for (k, b) in incoming.iter().zip(bodies) {
        let b = b.ok_or_else(|| Error::Internal(format!("{k} disappeared before the splice")))?;
        objects.insert(k.clone(), b);
    }
    let (body, index) = build(domain, dt, parts, &objects, Some(&day))?;
    let object = ObjectEntry {
        key: relative(&lake.prefix, &dkey),
        bytes: body.len() as u64,
        rows: Some(index.sources.iter().map(|s| s.rows).sum()),
    };
    lake.put(&dkey, body).await?;
    stall_point("access-splice", dkey.as_ref());
    let mkey = marker_key(&lake.prefix, domain, dt);
    let old: Option<AccessMarker> = lake
        .get_opt(&mkey)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let held: BTreeSet<&str> = index.sources.iter().map(|s| s.manifest.as_str()).collect();
    let mut manifests: Vec<MarkedManifest> = old
        .map(|m| m.manifests)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| held.contains(m.key.as_str()))
        .collect();
    for s in &index.sources {
        if !manifests.iter().any(|m| m.key == s.manifest) {
            manifests.push(MarkedManifest {
                key: s.manifest.clone(),
                bytes: 0,
                etag: None,
            });
        }
    }
    manifests.sort_by(|a, b| a.key.cmp(&b.key));
    put_marker(lake, domain, dt, object, manifests, index.sources).await?;
    lake.delete_all(incoming).await
}

mod held;
mod swap;

pub(crate) use held::{drop_unchanged, finish_held, Converted};
use swap::swap_local;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_manifests_named_near_the_window_are_read() {
        let d = |s| parse_dt(s);
        let (lo, hi) = (d("2024-03-10"), d("2024-03-12"));
        let k = |date: &str| format!("_manifests/a.com/{date}/f.json");
        assert!(!named_near(&k("2024_03_07"), lo, hi));
        assert!(named_near(&k("2024_03_08"), lo, hi));
        assert!(named_near(&k("2024_03_13"), lo, hi));
        assert!(!named_near(&k("2024_03_14"), lo, hi));
        assert!(named_near(&k("undated"), lo, hi));
        assert!(named_near(&k("1999_01_01"), None, None));
    }

    #[test]
    fn keys_never_collide_with_a_file_and_map_back() {
        let p = Path::from("pre");
        let k = day_key(&p, "a.com", "2024-03-05");
        assert_eq!(
            k.as_ref(),
            "pre/access/domain=a.com/dt=2024-03-05/compacted~day.parquet"
        );
        // A log file named like the day object gets an encoded key.
        let layout = crate::lake::layout::FileLayout {
            prefix: p.clone(),
            domain: "a.com".into(),
            date_folder: "2024_03_05".into(),
            file_name: "compacted~day.gz".into(),
            stem: "compacted~day".into(),
            partition_by: PartitionBy::Day,
        };
        assert_ne!(layout.access("2024-03-05", "", 0).as_ref(), k.as_ref());
        let per_file = layout.access("2024-03-05", "", 0);
        let inc = incoming_key(&p, &per_file);
        assert_eq!(
            from_incoming(&relative(&p, &inc)),
            Some(relative(&p, &per_file).as_str())
        );
        assert!(is_day_file(&relative(&p, &k)));
        assert!(is_day_access(&relative(&p, &per_file)));
        assert!(!is_day_access(
            "access/domain=a/dt=2024-03-05/hour=08/x.parquet"
        ));
    }
}
