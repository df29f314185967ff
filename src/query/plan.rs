//! Which rollups a report reads, day by day: a compacted day when its marker still covers
//! exactly the files that have rollups in it, else the per-file rollups of those files
//! (docs/design.md §10).
//!
//! The check costs listings, not reads: a listing of `_manifests/` gives every manifest's size
//! and ETag, and a marker records those of the manifests it covers, with the days each one has
//! rollups in. A manifest the markers know (same key, size and ETag) is not read; any other
//! (a late file, a re-delivered or rebuilt one) is read, and every day it has rollups in that its
//! day's marker does not list falls back to the per-file rollups until compacted again. So a
//! reader never counts a minute twice nor misses one, whatever changed since the compaction.
//!
//! The merge order is fixed and the same on both paths: days in order (domain, dt), and within
//! a day the files sorted by source name; the heavy-hitter summaries of a day are merged first
//! into one day summary, which is then folded into the report's ([`fold_day`]). A compacted day
//! stores exactly that day summary, so a report reads the same figures with or without it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use futures::TryStreamExt;
use object_store::path::Path;

use super::filter::ReportFilter;
use super::rollups::{
    add_top_file, read_error, rows_of, visitors_rows_of, MinuteRow, Sketches, REPORT_CAPACITY,
};
use crate::access::time::PartitionTz;
use crate::error::{Error, Result};
use crate::lake::compacted::{
    key_dt, marker_dt, markers_prefix, object_key, CoveredManifest, DayMarker,
};
use crate::lake::layout::{key_partition_span, partition_span, relative};
use crate::lake::manifest::{parse_manifest, Manifest};
use crate::lake::read::{get_all, get_stream, list_meta};
use crate::lake::store::Lake;
use crate::sketch::heavy::Summary;
use crate::sketch::hll::Hll;
use crate::tables::top::{DIMENSIONS, TOP};
use crate::tables::traffic::TRAFFIC;
use crate::tables::visitors::VISITORS;

use crate::tables::registry::{MANIFESTS, TOP_FOLDER, TRAFFIC_FOLDER, VISITORS_FOLDER};

/// A partition day of one domain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day {
    pub domain: String,
    /// `YYYY-MM-DD` on the partition clock.
    pub dt: String,
}

/// What a day is read from.
#[derive(Debug, Clone)]
pub struct DayPlan {
    /// The partition clock of the day's files.
    pub tz: PartitionTz,
    /// The manifests with rollups in the day, sorted (source name, key): the merge order.
    pub contributors: Vec<CoveredManifest>,
    /// The day's marker, when it covers exactly `contributors`.
    pub marker: Option<DayMarker>,
    /// Whether a marker exists that no longer covers the day.
    pub stale: bool,
}

impl DayPlan {
    /// The day's span (micros), `None` for a `dt` that is not a date.
    pub fn span(&self, day: &Day) -> Option<Range<i64>> {
        partition_span(&day.dt, "", self.tz)
    }
}

/// The days of a lake (of a domain, within a window) and what each is read from.
#[derive(Debug, Default)]
pub struct Plan {
    pub days: BTreeMap<Day, DayPlan>,
    /// Manifests read, by key relative to the destination.
    pub manifests: BTreeMap<String, Manifest>,
    /// Manifests the listing of `_manifests/` found.
    pub listed: usize,
}

/// The record of a manifest as a marker keeps it: the listing's size and ETag, the source, and
/// the days it has rollups in.
pub(crate) fn covered(
    key: &str,
    bytes: u64,
    etag: Option<String>,
    m: &Manifest,
) -> CoveredManifest {
    let days: BTreeSet<&str> = m
        .objects
        .iter()
        .filter(|o| is_rollup(&o.key))
        .filter_map(|o| key_dt(&o.key))
        .collect();
    CoveredManifest {
        source: m.source.name.clone(),
        key: key.to_string(),
        bytes,
        etag,
        sha256: m.source.sha256.clone(),
        days: days.into_iter().map(str::to_string).collect(),
    }
}

/// Whether a key is a per-file rollup (`traffic`, `heavy_hitters`, `visitors`).
pub(crate) fn is_rollup(key: &str) -> bool {
    crate::tables::registry::is_rollup(key)
}

/// Whether a marker covers exactly these manifests: the same keys, sizes and ETags (a manifest
/// without ETag never matches).
fn covers(marker: &DayMarker, contributors: &[CoveredManifest]) -> bool {
    let set = |v: &[CoveredManifest]| -> Option<BTreeSet<(String, u64, String)>> {
        v.iter()
            .map(|c| Some((c.key.clone(), c.bytes, c.etag.clone()?)))
            .collect()
    };
    match (set(&marker.manifests), set(contributors)) {
        (Some(a), Some(b)) => a == b && marker.manifests.len() == contributors.len(),
        _ => false,
    }
}

/// Builds the plan: one listing of `_manifests/`, one of the markers, a read of each marker,
/// and a read of each manifest the markers do not vouch for
/// (and of the manifests of any day in the window that must be read file by file). Days in
/// `exclude` are read file by file whatever their marker says.
pub async fn plan(
    lake: &Lake,
    domain: Option<&str>,
    window: &ReportFilter,
    exclude: &BTreeSet<Day>,
) -> Result<Plan> {
    let (listed, marker_keys) = list_manifests_and_markers(lake, domain).await?;
    let markers = read_markers(lake, marker_keys).await?;
    let known = vouched_for(&markers, &listed);
    let mut out = Plan {
        listed: listed.len(),
        ..Plan::default()
    };
    let unknown: Vec<String> = listed
        .keys()
        .filter(|k| !known.contains_key(*k))
        .cloned()
        .collect();
    read_manifests(lake, &unknown, &mut out.manifests).await?;
    let days = contributors_by_day(domain, &listed, &out.manifests, &known);
    let mut to_read = plan_days(days, &markers, window, exclude, &mut out);
    to_read.sort();
    to_read.dedup();
    read_manifests(lake, &to_read, &mut out.manifests).await?;
    Ok(out)
}

/// Manifests as listed: key relative to the destination → (size, ETag).
type Listed = BTreeMap<String, (u64, Option<String>)>;

/// Manifests a marker vouches for, by key: (domain, partition clock, record).
type Known = HashMap<String, (String, PartitionTz, CoveredManifest)>;

/// The days with rollups, each with its partition clock and the manifests with rollups in it.
type Days = BTreeMap<Day, (PartitionTz, Vec<CoveredManifest>)>;

/// Lists `_manifests/` (of `domain`) and the markers at once, in one round trip: the manifests'
/// sizes and ETags, and the marker keys, sorted. Every marker is kept, also of days outside the
/// window: they vouch for the manifests of those days, which are then not read (one read per day
/// instead of one per file).
async fn list_manifests_and_markers(
    lake: &Lake,
    domain: Option<&str>,
) -> Result<(Listed, Vec<Path>)> {
    let mprefix = match domain {
        Some(d) => crate::lake::layout::key(&lake.prefix, &[MANIFESTS, d]),
        None => crate::lake::layout::key(&lake.prefix, &[MANIFESTS]),
    };
    let kprefix = markers_prefix(&lake.prefix, domain);
    let (listed, marker_metas) =
        futures::try_join!(list_meta(lake, &mprefix), list_meta(lake, &kprefix))?;
    let listed: Listed = listed
        .into_iter()
        .filter(|m| m.location.as_ref().ends_with(".json"))
        .map(|m| (relative(&lake.prefix, &m.location), (m.size, m.e_tag)))
        .collect();
    let mut marker_keys: Vec<Path> = marker_metas
        .into_iter()
        .map(|m| m.location)
        .filter(|k| marker_dt(k.as_ref()).is_some())
        .collect();
    marker_keys.sort();
    Ok((listed, marker_keys))
}

/// Reads the markers, by day. One gone since the listing is skipped; an unreadable one is
/// ignored with a warning (its day is then read file by file, which is always right).
async fn read_markers(lake: &Lake, marker_keys: Vec<Path>) -> Result<BTreeMap<Day, DayMarker>> {
    let mut markers: BTreeMap<Day, DayMarker> = BTreeMap::new();
    for (key, body) in marker_keys
        .iter()
        .zip(get_all(lake, marker_keys.clone()).await?)
    {
        let Some(body) = body else { continue };
        match serde_json::from_slice::<DayMarker>(&body) {
            Ok(m) => {
                let day = Day {
                    domain: m.domain.clone(),
                    dt: m.dt.clone(),
                };
                markers.insert(day, m);
            }
            Err(e) => tracing::warn!(%key, error = %e, "ignoring an unreadable compaction marker"),
        }
    }
    Ok(markers)
}

/// Manifests a marker vouches for: same key, size and ETag as listed now. These need not be
/// read: the marker's record says which days they have rollups in.
fn vouched_for(markers: &BTreeMap<Day, DayMarker>, listed: &Listed) -> Known {
    let mut known = Known::new();
    for mk in markers.values() {
        let tz = PartitionTz::parse(&mk.partition_tz).unwrap_or_default();
        for c in &mk.manifests {
            let same = listed
                .get(&c.key)
                .is_some_and(|(b, e)| *b == c.bytes && e.is_some() && *e == c.etag);
            if same {
                known
                    .entry(c.key.clone())
                    .or_insert_with(|| (mk.domain.clone(), tz, c.clone()));
            }
        }
    }
    known
}

/// Who has rollups in which day: the manifests read (of `domain`), and those markers vouch for.
fn contributors_by_day(
    domain: Option<&str>,
    listed: &Listed,
    manifests: &BTreeMap<String, Manifest>,
    known: &Known,
) -> Days {
    let mut days = Days::new();
    for (key, m) in manifests {
        if domain.is_some_and(|d| d != m.domain) {
            continue;
        }
        let (bytes, etag) = listed.get(key).cloned().unwrap_or_default();
        let c = covered(key, bytes, etag, m);
        let tz = PartitionTz::parse(&m.partition_tz).unwrap_or_default();
        add_to_days(&mut days, &m.domain, tz, &c);
    }
    for (domain, tz, c) in known.values() {
        add_to_days(&mut days, domain, *tz, c);
    }
    days
}

/// Adds a manifest to each day it has rollups in.
fn add_to_days(days: &mut Days, domain: &str, tz: PartitionTz, c: &CoveredManifest) {
    for dt in &c.days {
        let day = Day {
            domain: domain.to_string(),
            dt: dt.clone(),
        };
        days.entry(day)
            .or_insert((tz, Vec::new()))
            .1
            .push(c.clone());
    }
}

/// Plans each day in the window into `out.days`: from its marker when the marker covers exactly
/// its contributors and the window takes the whole day, else file by file. Returns the manifests
/// still to read for the days read file by file (unsorted, with repeats).
fn plan_days(
    days: Days,
    markers: &BTreeMap<Day, DayMarker>,
    window: &ReportFilter,
    exclude: &BTreeSet<Day>,
    out: &mut Plan,
) -> Vec<String> {
    let mut to_read = Vec::new();
    for (day, (tz, mut contributors)) in days {
        contributors.sort();
        let span = partition_span(&day.dt, "", tz);
        if !overlaps(window, span.as_ref()) {
            continue;
        }
        let marker = markers.get(&day);
        let valid = marker.filter(|m| !exclude.contains(&day) && covers(m, &contributors));
        // A day the window cuts reads its top lists and visitors per hour, from the files.
        if valid.is_none() || !takes_whole(window, span.as_ref()) {
            to_read.extend(
                contributors
                    .iter()
                    .filter(|c| !out.manifests.contains_key(&c.key))
                    .map(|c| c.key.clone()),
            );
        }
        out.days.insert(
            day,
            DayPlan {
                tz,
                stale: marker.is_some() && valid.is_none(),
                marker: valid.cloned(),
                contributors,
            },
        );
    }
    to_read
}

/// Whether the window overlaps a day's span (a `dt` that is not a date is kept).
fn overlaps(window: &ReportFilter, span: Option<&Range<i64>>) -> bool {
    span.is_none_or(|s| {
        window.from_micros.is_none_or(|f| s.end > f) && window.to_micros.is_none_or(|t| s.start < t)
    })
}

/// Whether the window takes a day's whole span (only then can its marker's day-level top lists
/// and visitors answer).
fn takes_whole(window: &ReportFilter, span: Option<&Range<i64>>) -> bool {
    span.is_some_and(|s| {
        window.from_micros.is_none_or(|f| f <= s.start)
            && window.to_micros.is_none_or(|t| s.end <= t)
    })
}

/// Reads manifests (keys relative to the destination) into `into`; one that disappeared since
/// the listing is skipped, one that does not parse is an error naming it.
async fn read_manifests(
    lake: &Lake,
    keys: &[String],
    into: &mut BTreeMap<String, Manifest>,
) -> Result<()> {
    let paths: Vec<Path> = keys.iter().map(|k| lake.key_of(k)).collect();
    for ((key, path), body) in keys
        .iter()
        .zip(&paths)
        .zip(get_all(lake, paths.clone()).await?)
    {
        if let Some(body) = body {
            into.insert(key.clone(), parse_manifest(path, &body)?);
        }
    }
    Ok(())
}

/// Folds a day's heavy-hitter summary into the report's: its errors and totals, then its keys
/// in key order. The same call for a day read from the per-file rollups and for a compacted
/// one, so both give the same figures.
pub(crate) fn fold_day(into: &mut [Summary], day: &[DimSummary]) {
    for (s, (rows, error, total)) in into.iter_mut().zip(day) {
        s.add_bounds(*error, *total);
        for (k, c) in rows {
            s.add_stored(k, *c);
        }
    }
}

/// One dimension of a day summary: its rows in key order, its error and its total.
pub(crate) type DimSummary = (Vec<(String, [i64; 2])>, [i64; 2], [i64; 2]);

/// A day summary as [`fold_day`] takes it: one [`DimSummary`] per dimension.
pub(crate) type DaySummary = Vec<DimSummary>;

/// The day summary of merged per-file summaries.
pub(crate) fn day_summary(dims: &[Summary]) -> DaySummary {
    dims.iter()
        .map(|s| {
            (
                s.rows()
                    .into_iter()
                    .map(|(k, c)| (k.to_string(), c))
                    .collect(),
                s.error,
                s.total,
            )
        })
        .collect()
}

/// Empty summaries, one per dimension, of the report's capacity.
pub(crate) fn new_dims() -> Vec<Summary> {
    DIMENSIONS
        .iter()
        .map(|_| Summary::new(REPORT_CAPACITY))
        .collect()
}

/// What one day contributes, read from its per-file rollups (`filter` picks the minutes and
/// hours; the whole day when it covers it).
#[derive(Debug, Default)]
pub struct DayRollups {
    pub rows: Vec<MinuteRow>,
    /// Per dimension, the files' summaries merged in order (only when sketches were read).
    pub dims: Vec<Summary>,
    /// Per span start: requests and merged sketch.
    pub visitors: BTreeMap<i64, (i64, Hll)>,
    pub hours: BTreeSet<i64>,
    pub missing_top: BTreeSet<i64>,
    pub missing_visitors: BTreeSet<i64>,
}

/// One object to read for a day, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// A per-file traffic file.
    Traffic,
    /// A per-file heavy_hitters file.
    Top,
    /// A per-file visitors file.
    Visitors,
    /// The compacted traffic of the day.
    DayTraffic,
    DayTop,
    DayVisitors,
}

/// The reads of one day: per-file objects of its contributors (in merge order) restricted to
/// the day and the window, or its compacted objects.
fn day_reads(
    lake: &Lake,
    manifests: &BTreeMap<String, Manifest>,
    day: &Day,
    dp: &DayPlan,
    filter: &ReportFilter,
    sketches: bool,
) -> (Vec<(Part, Path)>, DayRollups) {
    let mut reads = Vec::new();
    let mut acc = DayRollups::default();
    let overlaps = |r: &Range<i64>| {
        filter.from_micros.is_none_or(|f| r.end > f) && filter.to_micros.is_none_or(|t| r.start < t)
    };
    let whole_day = dp.span(day).is_some_and(|s| {
        filter.from_micros.is_none_or(|f| f <= s.start)
            && filter.to_micros.is_none_or(|t| s.end <= t)
    });
    if let Some(mk) = &dp.marker {
        reads.push((
            Part::DayTraffic,
            object_key(&lake.prefix, TRAFFIC.folder, &day.domain, &day.dt),
        ));
        if sketches && whole_day {
            reads.push((
                Part::DayTop,
                object_key(&lake.prefix, TOP.folder, &day.domain, &day.dt),
            ));
            reads.push((
                Part::DayVisitors,
                object_key(&lake.prefix, VISITORS.folder, &day.domain, &day.dt),
            ));
            acc.hours.extend(&mk.hours);
            acc.missing_top.extend(&mk.missing_top);
            acc.missing_visitors.extend(&mk.missing_visitors);
            return (reads, acc);
        }
        if !sketches {
            return (reads, acc);
        }
    }
    let traffic_from_files = dp.marker.is_none();
    for c in &dp.contributors {
        let Some(m) = manifests.get(&c.key) else {
            continue;
        };
        let tz = PartitionTz::parse(&m.partition_tz).unwrap_or_default();
        let span_of = |k: &str| {
            (key_dt(k) == Some(day.dt.as_str()))
                .then(|| key_partition_span(k, tz))
                .flatten()
                .filter(overlaps)
        };
        let hours: BTreeSet<i64> = m
            .objects
            .iter()
            .filter(|o| TRAFFIC_FOLDER.holds(&o.key))
            .filter_map(|o| span_of(&o.key).map(|r| r.start))
            .collect();
        if traffic_from_files {
            for o in &m.objects {
                if TRAFFIC_FOLDER.holds(&o.key) && span_of(&o.key).is_some() {
                    reads.push((Part::Traffic, lake.key_of(&o.key)));
                }
            }
        }
        if !sketches {
            continue;
        }
        let (mut with_top, mut with_visitors) = (BTreeSet::new(), BTreeSet::new());
        for o in &m.objects {
            let is_top = TOP_FOLDER.holds(&o.key);
            if !is_top && !VISITORS_FOLDER.holds(&o.key) {
                continue;
            }
            let Some(h) = span_of(&o.key)
                .map(|r| r.start)
                .filter(|h| hours.contains(h))
            else {
                continue;
            };
            if is_top {
                with_top.insert(h);
                reads.push((Part::Top, lake.key_of(&o.key)));
            } else {
                with_visitors.insert(h);
                reads.push((Part::Visitors, lake.key_of(&o.key)));
            }
        }
        acc.missing_top.extend(hours.difference(&with_top));
        acc.missing_visitors
            .extend(hours.difference(&with_visitors));
        acc.hours.extend(hours);
    }
    (reads, acc)
}

/// A compacted object listed by a valid marker is missing: the day must be read file by file.
#[derive(Debug)]
pub(crate) struct MissingCompacted(pub Day);

/// Reads every day of `plan` that `filter` overlaps: traffic rows and (with `sketches`) the
/// merged summaries, visitors and hour sets, all objects [`get_all`] at a time, merged in the
/// plan's order. `Err(MissingCompacted)` when a compacted object is gone.
pub(crate) async fn read_days(
    lake: &Lake,
    plan: &Plan,
    filter: &ReportFilter,
    sketches: bool,
) -> Result<std::result::Result<(Vec<MinuteRow>, Sketches), MissingCompacted>> {
    read_days_of(lake, &plan.manifests, plan.days.iter(), filter, sketches).await
}

/// [`read_days`] of some days of a plan.
pub(crate) async fn read_days_of<'a>(
    lake: &Lake,
    manifests: &BTreeMap<String, Manifest>,
    days: impl IntoIterator<Item = (&'a Day, &'a DayPlan)>,
    filter: &ReportFilter,
    sketches: bool,
) -> Result<std::result::Result<(Vec<MinuteRow>, Sketches), MissingCompacted>> {
    let mut per_day = Vec::new();
    let mut keys = Vec::new();
    for (day, dp) in days {
        let (reads, acc) = day_reads(lake, manifests, day, dp, filter, sketches);
        keys.extend(reads.iter().map(|(_, k)| k.clone()));
        per_day.push((day, reads, acc));
    }
    // Merged as the answers come, in order: only the objects in flight are held in memory.
    let mut bodies = std::pin::pin!(get_stream(lake, keys));
    let mut rows = Vec::new();
    let mut out = Sketches {
        dims: new_dims(),
        ..Sketches::default()
    };
    for (day, reads, acc) in per_day {
        let mut dims = new_dims();
        let mut day_summary_read: Option<DaySummary> = None;
        for (part, key) in reads {
            let Some(bytes) = bodies.try_next().await?.flatten() else {
                match part {
                    Part::DayTraffic | Part::DayTop | Part::DayVisitors => {
                        tracing::warn!(%key, "compacted object missing: reading the day's files");
                        return Ok(Err(MissingCompacted(day.clone())));
                    }
                    _ => {
                        tracing::warn!(%key, "rollup file listed in a manifest is missing");
                        continue;
                    }
                }
            };
            // A compacted object that cannot be read is like a missing one: the day is read
            // from its files (verify reports it, `verify --repair` compacts it again).
            let unreadable = |e: Error| {
                tracing::warn!(%key, error = %e, "compacted object unreadable: reading the day's files");
                MissingCompacted(day.clone())
            };
            match part {
                Part::DayTraffic => match rows_of(&key, bytes, &day.domain) {
                    Ok(r) => rows.extend(r),
                    Err(e) => return Ok(Err(unreadable(e))),
                },
                Part::DayTop => match read_day_top(&key, bytes) {
                    Ok(s) => day_summary_read = Some(s),
                    Err(e) => return Ok(Err(unreadable(e))),
                },
                Part::DayVisitors => match visitors_rows_of(&key, bytes, filter) {
                    Ok(v) => {
                        for (h_start, requests, h) in v {
                            *out.requests_per_hour.entry(h_start).or_default() += requests;
                            out.visitors.merge(&h);
                            out.per_hour.entry(h_start).or_default().merge(&h);
                        }
                    }
                    Err(e) => return Ok(Err(unreadable(e))),
                },
                Part::Traffic => rows.extend(rows_of(&key, bytes, &day.domain)?),
                Part::Top => add_top_file(&key, bytes, &mut dims, filter)?,
                Part::Visitors => {
                    for (h_start, requests, h) in visitors_rows_of(&key, bytes, filter)? {
                        *out.requests_per_hour.entry(h_start).or_default() += requests;
                        out.visitors.merge(&h);
                        out.per_hour.entry(h_start).or_default().merge(&h);
                    }
                }
            }
        }
        if sketches {
            let summary = match day_summary_read {
                Some(s) => s,
                None => day_summary(&dims),
            };
            fold_day(&mut out.dims, &summary);
        }
        out.hours.extend(acc.hours);
        out.missing_top.extend(acc.missing_top);
        out.missing_visitors.extend(acc.missing_visitors);
    }
    Ok(Ok((rows, out)))
}

/// Reads a compacted `heavy_hitters` day: per dimension (in [`DIMENSIONS`] order), its rows in
/// stored order and its error and total (the same on every row of a dimension).
pub(crate) fn read_day_top(key: &Path, bytes: bytes::Bytes) -> Result<DaySummary> {
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, Int64Array, RecordBatch};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| read_error(key, e))?;
    let mut out: DaySummary = DIMENSIONS
        .iter()
        .map(|_| (Vec::new(), [0, 0], [0, 0]))
        .collect();
    let mut bounds_seen = vec![false; DIMENSIONS.len()];
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| read_error(key, e))?;
        let string = |name: &str| {
            batch
                .column_by_name(name)
                .filter(|c| c.data_type() == &arrow_schema::DataType::Utf8)
                .map(|c| c.as_string::<i32>())
                .ok_or_else(|| read_error(key, format!("no STRING column {name}")))
        };
        let int = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| read_error(key, format!("no BIGINT column {name}")))
        };
        let (dim, k) = (string("dimension")?, string("key")?);
        let (req, byt) = (int("requests")?, int("bytes")?);
        let (re, be) = (int("requests_error")?, int("bytes_error")?);
        let (rt, bt) = (int("requests_total")?, int("bytes_total")?);
        for i in 0..batch.num_rows() {
            let Some(d) = DIMENSIONS.iter().position(|d| *d == dim.value(i)) else {
                continue;
            };
            if !bounds_seen[d] {
                bounds_seen[d] = true;
                out[d].1 = [re.value(i), be.value(i)];
                out[d].2 = [rt.value(i), bt.value(i)];
            }
            if k.is_valid(i) {
                out[d]
                    .0
                    .push((k.value(i).to_string(), [req.value(i), byt.value(i)]));
            }
        }
    }
    Ok(out)
}

/// Everything a report reads from the rollups: the plan (retried day by day, should a
/// compacted object have gone missing since its marker was read), the minute rows and, with
/// `sketches`, the merged summaries and sketches.
pub async fn read_report(
    lake: &Lake,
    filter: &ReportFilter,
    sketches: bool,
) -> Result<(Vec<MinuteRow>, Sketches)> {
    let mut exclude = BTreeSet::new();
    loop {
        let p = plan(lake, filter.domain.as_deref(), filter, &exclude).await?;
        match read_days(lake, &p, filter, sketches).await? {
            Ok(out) => return Ok(out),
            Err(MissingCompacted(day)) => {
                if !exclude.insert(day.clone()) {
                    return Err(Error::Internal(format!(
                        "day {} {} read file by file still wants its compacted objects",
                        day.domain, day.dt
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, bytes: u64, etag: Option<&str>) -> CoveredManifest {
        CoveredManifest {
            source: key.into(),
            key: key.into(),
            bytes,
            etag: etag.map(str::to_string),
            sha256: String::new(),
            days: vec!["2024-03-05".into()],
        }
    }

    fn marker(manifests: Vec<CoveredManifest>) -> DayMarker {
        DayMarker {
            marker_version: 1,
            tool: String::new(),
            domain: "d".into(),
            dt: "2024-03-05".into(),
            partition_tz: "+08:00".into(),
            manifests,
            objects: Vec::new(),
            hours: Vec::new(),
            missing_top: Vec::new(),
            missing_visitors: Vec::new(),
        }
    }

    #[test]
    fn a_marker_covers_exactly_the_same_manifests_with_etags() {
        let m = marker(vec![rec("a", 1, Some("x")), rec("b", 2, Some("y"))]);
        assert!(covers(
            &m,
            &[rec("a", 1, Some("x")), rec("b", 2, Some("y"))]
        ));
        // A late file, a missing one, a rewritten one (size or ETag), no ETag at all.
        let late = [
            rec("a", 1, Some("x")),
            rec("b", 2, Some("y")),
            rec("c", 3, Some("z")),
        ];
        assert!(!covers(&m, &late));
        assert!(!covers(&m, &[rec("a", 1, Some("x"))]));
        assert!(!covers(
            &m,
            &[rec("a", 1, Some("x")), rec("b", 3, Some("y"))]
        ));
        assert!(!covers(
            &m,
            &[rec("a", 1, Some("x")), rec("b", 2, Some("w"))]
        ));
        let none = marker(vec![rec("a", 1, None)]);
        assert!(!covers(&none, &[rec("a", 1, None)]));
    }
}
