//! `cdnlake compact`: one object per rollup table and partition day, so a report over months
//! reads a few objects per day instead of a few per log file (docs/design.md §10).
//!
//! A day is compacted from the per-file rollups of every file that has rollups in it (the
//! manifests say which), merged exactly as `report` merges them ([`crate::query::plan`]):
//! traffic minutes summed (one max), the day's heavy-hitter summary, the hours' distinct-IP
//! sketches united. The per-file rollups stay: they are the source of truth, and the folder
//! readers (DuckDB views, Spark, MaxCompute) keep reading them; the compacted objects live
//! under `_compacted/`, which none of them reads ([`crate::lake::compacted`]).
//!
//! Order of writes, so that no reader is ever wrong whatever is killed when: the day's old
//! marker (if any) is deleted first, then the three objects are written (each one PUT, atomic),
//! then the new marker, last. Without a marker a day is read from the per-file rollups; a
//! marker is only written over objects that match it. A day whose marker still covers its
//! files is left alone, so a second run writes nothing.

pub mod access;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use object_store::path::Path;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::lake::compacted::{marker_key, object_key, DayMarker, MARKER_VERSION};
use crate::lake::layout::relative;
use crate::lake::manifest::ObjectEntry;
use crate::lake::store::Lake;
use crate::query::filter::ReportFilter;
use crate::query::plan::{day_summary, plan, read_days_of, Day, DayPlan, DaySummary, Plan};
use crate::query::rollups::MinuteRow;
use crate::query::rollups::Sketches;
use crate::tables::top::TOP;
use crate::tables::traffic::{merge, MinuteStats, TRAFFIC};
use crate::tables::visitors::VISITORS;
use crate::tables::Table;
use crate::writers::parquet::{writer_properties, ParquetOptions};
use crate::writers::sketches::top_batch;

/// Which days a run compacts.
#[derive(Debug, Clone, Default)]
pub struct CompactOptions {
    pub domain: Option<String>,
    /// First day (`YYYY-MM-DD`), inclusive.
    pub from: Option<String>,
    /// Last day, exclusive.
    pub to: Option<String>,
    /// Only days that ended at least this long ago (micros): the FC timer leaves the last 48
    /// hours, which sync still heals, to the per-file rollups.
    pub min_age_micros: i64,
    /// Now (micros since the epoch), for `min_age_micros`.
    pub now_micros: i64,
}

/// One day a run looked at.
#[derive(Debug, Clone, Serialize)]
pub struct DayOutcome {
    pub domain: String,
    pub dt: String,
    pub action: DayAction,
    /// Log files covered.
    pub files: usize,
    pub bytes: u64,
}

/// What a run did with a day, serialised as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayAction {
    Compacted,
    /// Its marker no longer covered its files.
    Recompacted,
    UpToDate,
}

impl std::fmt::Display for DayAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DayAction::Compacted => "compacted",
            DayAction::Recompacted => "recompacted",
            DayAction::UpToDate => "up_to_date",
        })
    }
}

/// What `compact` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// Days in the selection.
    pub days: usize,
    pub compacted: usize,
    pub up_to_date: usize,
    /// Days not compacted yet because they ended less than the minimum age ago.
    pub too_recent: usize,
    pub outcomes: Vec<DayOutcome>,
    pub seconds: f64,
}

impl CompactOptions {
    fn keeps(&self, day: &Day, dp: &DayPlan) -> bool {
        if self.domain.as_deref().is_some_and(|d| d != day.domain) {
            return false;
        }
        let dt = day.dt.as_str();
        self.from.as_deref().is_none_or(|f| dt >= f)
            && self.to.as_deref().is_none_or(|t| dt < t)
            && dp.span(day).is_some()
    }

    fn old_enough(&self, day: &Day, dp: &DayPlan) -> bool {
        dp.span(day)
            .is_some_and(|s| s.end.saturating_add(self.min_age_micros) <= self.now_micros)
    }
}

/// Compacts every selected day that has ended (and is old enough) and whose marker does not
/// cover its files. Days are compacted one after the other; each day's reads go
/// [`crate::lake::read::concurrency`] at a time.
pub async fn compact(lake: &Lake, opts: &CompactOptions) -> Result<CompactReport> {
    let started = Instant::now();
    let p = plan(
        lake,
        opts.domain.as_deref(),
        &ReportFilter::default(),
        &Default::default(),
    )
    .await?;
    let mut report = CompactReport::default();
    for (day, dp) in &p.days {
        if !opts.keeps(day, dp) {
            continue;
        }
        report.days += 1;
        let outcome = |action| DayOutcome {
            domain: day.domain.clone(),
            dt: day.dt.clone(),
            action,
            files: dp.contributors.len(),
            bytes: 0,
        };
        if dp.marker.is_some() {
            report.up_to_date += 1;
            report.outcomes.push(outcome(DayAction::UpToDate));
            continue;
        }
        if !opts.old_enough(day, dp) {
            report.too_recent += 1;
            continue;
        }
        let bytes = compact_day(lake, &p, day, dp).await?;
        report.compacted += 1;
        let mut o = outcome(if dp.stale {
            DayAction::Recompacted
        } else {
            DayAction::Compacted
        });
        o.bytes = bytes;
        report.outcomes.push(o);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Compacts one day from its files' rollups (`dp.marker` must be `None`); returns the bytes
/// written. Deletes the old marker first and writes the new one last (module doc).
pub(crate) async fn compact_day(lake: &Lake, p: &Plan, day: &Day, dp: &DayPlan) -> Result<u64> {
    let whole = ReportFilter {
        domain: Some(day.domain.clone()),
        ..ReportFilter::default()
    };
    let (rows, sk) = match read_days_of(lake, &p.manifests, [(day, dp)], &whole, true).await? {
        Ok(r) => r,
        Err(_) => {
            return Err(Error::Internal(
                "a day without marker wanted compacted objects".into(),
            ))
        }
    };
    let tz = dp.tz;
    let day_start = dp.span(day).map_or(0, |s| s.start);
    let marker_path = marker_key(&lake.prefix, &day.domain, &day.dt);
    lake.delete(&marker_path).await?;

    let traffic = traffic_batch(&rows)?;
    let top = day_top_batch(day_start, &day_summary(&sk.dims));
    let visitors = visitors_batch(&sk)?;
    let mut objects = Vec::new();
    let mut puts = Vec::new();
    for (table, batch) in [(&TRAFFIC, traffic), (&TOP, top), (&VISITORS, visitors)] {
        let key = object_key(&lake.prefix, table.folder, &day.domain, &day.dt);
        let body = encode(table, &key, &batch)?;
        objects.push(ObjectEntry {
            key: relative(&lake.prefix, &key),
            bytes: body.len() as u64,
            rows: Some(batch.num_rows() as u64),
        });
        puts.push(async move { lake.put(&key, body).await });
    }
    // The three objects at once (one round trip); the marker only after all of them.
    futures::future::try_join_all(puts).await?;
    let marker = DayMarker {
        marker_version: MARKER_VERSION,
        tool: format!("cdnlake {}", env!("CARGO_PKG_VERSION")),
        domain: day.domain.clone(),
        dt: day.dt.clone(),
        partition_tz: tz.to_string(),
        manifests: dp.contributors.clone(),
        hours: sk.hours.iter().copied().collect(),
        missing_top: sk.missing_top.iter().copied().collect(),
        missing_visitors: sk.missing_visitors.iter().copied().collect(),
        objects,
    };
    let body = serde_json::to_vec_pretty(&marker).map_err(|source| Error::Json {
        what: format!("compaction marker {marker_path}"),
        source,
    })?;
    let total = marker.objects.iter().map(|o| o.bytes).sum::<u64>() + body.len() as u64;
    lake.put(&marker_path, body).await?;
    Ok(total)
}

/// Parquet bytes of one batch, with the table's writer settings.
fn encode(table: &Table, key: &Path, batch: &RecordBatch) -> Result<Vec<u8>> {
    let props = writer_properties(table, &ParquetOptions::default())?;
    let err = |source| Error::Parquet {
        key: key.to_string(),
        source,
    };
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, table.arrow_schema(), Some(props))
        .map_err(err)?;
    w.write(batch).map_err(err)?;
    w.close().map_err(err)?;
    Ok(buf)
}

/// The day's minutes, each merged over every file (sums, one max), in minute order.
fn traffic_batch(rows: &[MinuteRow]) -> Result<RecordBatch> {
    let mut minutes: BTreeMap<i64, MinuteStats> = BTreeMap::new();
    for r in rows {
        merge(minutes.entry(r.minute_micros).or_insert([0; _]), &r.stats);
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(
        TimestampMicrosecondArray::from_iter_values(minutes.keys().copied()).with_timezone("UTC"),
    )];
    for i in 0..TRAFFIC.columns.len() - 1 {
        cols.push(Arc::new(Int64Array::from_iter_values(
            minutes.values().map(|s| s[i]),
        )));
    }
    batch(&TRAFFIC, cols)
}

/// The day summary as [`TOP`] rows, in key order (as the summary holds them).
fn day_top_batch(day_start: i64, summary: &DaySummary) -> RecordBatch {
    top_batch(
        day_start,
        summary.iter().map(|(rows, error, total)| {
            (
                rows.iter().map(|(k, c)| (k.as_str(), *c)).collect(),
                *error,
                *total,
            )
        }),
    )
}

/// One row per hour: the requests counted and the united sketch.
fn visitors_batch(sk: &Sketches) -> Result<RecordBatch> {
    let hours: Vec<i64> = sk.per_hour.keys().copied().collect();
    let sketches: Vec<Vec<u8>> = sk.per_hour.values().map(|h| h.to_bytes()).collect();
    batch(
        &VISITORS,
        vec![
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(hours.iter().copied())
                    .with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from_iter_values(
                hours
                    .iter()
                    .map(|h| sk.requests_per_hour.get(h).copied().unwrap_or(0)),
            )),
            Arc::new(Int64Array::from_iter_values(
                sk.per_hour.values().map(|h| h.estimate() as i64),
            )),
            Arc::new(BinaryArray::from_iter_values(sketches.iter())),
        ],
    )
}

fn batch(table: &Table, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(table.arrow_schema(), cols)
        .map_err(|e| Error::Internal(format!("compacted {} batch: {e}", table.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::plan::{fold_day, new_dims, read_day_top};

    #[test]
    fn day_actions_serialise_to_their_report_names() {
        for (a, name) in [
            (DayAction::Compacted, "compacted"),
            (DayAction::Recompacted, "recompacted"),
            (DayAction::UpToDate, "up_to_date"),
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), name);
            assert_eq!(a.to_string(), name);
        }
        assert_eq!(
            serde_json::to_value(crate::query::report::TopSource::Access).unwrap(),
            "access"
        );
        assert_eq!(
            serde_json::to_value(crate::query::report::TopSource::Rollups).unwrap(),
            "rollups"
        );
    }

    /// A day summary written as a compacted heavy_hitters object reads back as the same values,
    /// so folding it gives what folding the files' summaries gives; a dimension whose keys were
    /// all cut keeps its error and total on a null-key row.
    #[test]
    fn a_day_summary_round_trips_through_its_object() {
        let mut dims = new_dims();
        dims[0].add_bounds([1, 2], [10, 20]);
        dims[0].add_stored("/b", [3, 30]);
        dims[0].add_stored("/a", [2, 20]);
        dims[1].add_bounds([5, 50], [7, 70]);
        let day = day_summary(&dims);
        let key = Path::from("_compacted/heavy_hitters/domain=d/dt=2024-03-05/day.parquet");
        let bytes = encode(&TOP, &key, &day_top_batch(0, &day)).unwrap();
        let back = read_day_top(&key, bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(back, day);
        let (mut x, mut y) = (new_dims(), new_dims());
        fold_day(&mut x, &day);
        fold_day(&mut y, &back);
        for (a, b) in x.iter().zip(&y) {
            assert_eq!((a.rows(), a.error, a.total), (b.rows(), b.error, b.total));
        }
        assert_eq!((y[1].error, y[1].total), ([5, 50], [7, 70]));
    }
}
