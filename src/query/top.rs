//! `cdnlake report --exact`: top-10 lists and unique visitors counted exactly from the `access`
//! files (the default reads the `top` and `visitors` rollups instead, [`super::rollups`]).
//!
//! The files are read batch by batch through range requests, projected to the five columns the
//! lists need, so memory is bounded by the number of distinct values, never by the rows or the file
//! size. [`TopCounter`] is pure (batches in, lists out); [`read_top`] is the I/O.
//!
//! Null values (a referer logged as `-`) are not a value and are left out of the lists, so the
//! equivalent SQL is `... WHERE referer IS NOT NULL GROUP BY referer`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::DataType;
use futures::future::{BoxFuture, FutureExt};
use futures::TryStreamExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use serde::Serialize;

use super::filter::ReportFilter;
use crate::access::time::{PartitionTz, HOUR_MICROS, MINUTE_MICROS};
use crate::error::{Error, Result};
use crate::lake::layout::key_partition_span;
use crate::lake::manifest::{load_manifests, Unreadable};
use crate::lake::store::Lake;
use crate::sketch::hll::{self, HashSet64};
use crate::tables::access::ACCESS;

/// Length of each list.
pub(crate) const TOP_N: usize = 10;

pub use crate::tables::top::DIMENSIONS;

/// One entry of a top list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopEntry {
    pub value: String,
    /// Requests; from the rollups a lower bound: the true count is at most `requests_error` more.
    pub requests: i64,
    /// Sum of `response_bytes`; from the rollups a lower bound, at most `bytes_error` short.
    pub bytes: i64,
    /// 0 when exact.
    pub requests_error: i64,
    pub bytes_error: i64,
}

impl TopEntry {
    /// The requests as reports show them: `n`, or `n +e` when the count may be short by `e`.
    pub fn requests_shown(&self) -> String {
        with_bound(self.requests, self.requests_error)
    }

    /// The bytes as reports show them: `n`, or `n +e` when the sum may be short by `e`.
    pub fn bytes_shown(&self) -> String {
        with_bound(self.bytes, self.bytes_error)
    }
}

fn with_bound(v: i64, e: i64) -> String {
    if e > 0 {
        format!("{v} +{e}")
    } else {
        v.to_string()
    }
}

/// The two rankings of one column. Ties break on the value, ascending, so the lists are the same
/// on every run and equal `ORDER BY n DESC, value ASC` in SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TopLists {
    pub by_requests: Vec<TopEntry>,
    pub by_bytes: Vec<TopEntry>,
}

/// Requests and bytes per distinct value of each [`DIMENSIONS`] column, and the distinct client
/// IPs (as 64-bit hashes: exact but for hash collisions, about n²/2⁶⁵) in the window and per hour.
#[derive(Debug, Default)]
pub struct TopCounter {
    counts: [HashMap<String, (i64, i64)>; DIMENSIONS.len()],
    /// Rows counted (after the time filter), for the caller to cross-check with the rollups.
    pub rows: u64,
    /// Wall clock of the per-hour distinct IPs.
    pub tz: PartitionTz,
    pub ips: HashSet64,
    /// Hour start (micros) on `tz`'s wall clock -> distinct IPs.
    pub ips_per_hour: BTreeMap<i64, HashSet64>,
}

fn column_error(key: &str, column: &str, reason: impl std::fmt::Display) -> Error {
    Error::ReadParquet {
        key: key.to_string(),
        reason: format!("column {column}: {reason}"),
    }
}

impl TopCounter {
    /// An empty counter whose per-hour figures follow `tz`'s wall clock.
    pub fn new(tz: PartitionTz) -> Self {
        TopCounter {
            tz,
            ..TopCounter::default()
        }
    }

    /// Counts the rows of one access batch whose minute `filter` keeps. `key` names the file in
    /// errors. Strings are copied only the first time a value is seen.
    pub fn add(&mut self, key: &str, batch: &RecordBatch, filter: &ReportFilter) -> Result<()> {
        let time = batch
            .column_by_name("time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| column_error(key, "time", "missing or not a TIMESTAMP"))?;
        let bytes = batch
            .column_by_name("response_bytes")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| column_error(key, "response_bytes", "missing or not a BIGINT"))?;
        // Rows of the window, decided once for all four columns.
        let keep: Vec<bool> = (0..batch.num_rows())
            .map(|i| {
                time.is_valid(i)
                    && filter.keeps_minute(time.value(i).div_euclid(MINUTE_MICROS) * MINUTE_MICROS)
            })
            .collect();
        self.rows += keep.iter().filter(|k| **k).count() as u64;
        let off = i64::from(self.tz.offset_secs) * 1_000_000;
        for (d, name) in DIMENSIONS.iter().enumerate() {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| column_error(key, name, "missing"))?;
            // The writer stores plain Utf8; anything else (a dictionary from another writer) is
            // cast once per batch rather than rejected.
            let cast;
            let col = if col.data_type() == &DataType::Utf8 {
                col
            } else {
                cast = arrow_cast::cast(col, &DataType::Utf8)
                    .map_err(|e| column_error(key, name, e))?;
                &cast
            };
            let strings = col.as_string::<i32>();
            if *name == "client_ip" {
                for (i, kept) in keep.iter().enumerate() {
                    if *kept && strings.is_valid(i) {
                        let h = hll::hash(strings.value(i).as_bytes());
                        let hour =
                            (time.value(i) + off).div_euclid(HOUR_MICROS) * HOUR_MICROS - off;
                        self.ips.insert(h);
                        self.ips_per_hour.entry(hour).or_default().insert(h);
                    }
                }
            }
            let map = &mut self.counts[d];
            for (i, kept) in keep.iter().enumerate() {
                if !kept || strings.is_null(i) {
                    continue;
                }
                let b = if bytes.is_valid(i) { bytes.value(i) } else { 0 };
                let v = strings.value(i);
                match map.get_mut(v) {
                    Some(e) => {
                        e.0 += 1;
                        e.1 = e.1.saturating_add(b);
                    }
                    None => {
                        map.insert(v.to_owned(), (1, b));
                    }
                }
            }
        }
        Ok(())
    }

    /// The top [`TOP_N`] of each column by requests and by bytes.
    pub fn lists(&self) -> BTreeMap<&'static str, TopLists> {
        DIMENSIONS
            .iter()
            .zip(&self.counts)
            .map(|(name, map)| {
                let rank = |metric: fn(&(i64, i64)) -> i64| {
                    let mut all: Vec<(&String, &(i64, i64))> = map.iter().collect();
                    let cmp = |a: &(&String, &(i64, i64)), b: &(&String, &(i64, i64))| {
                        metric(b.1).cmp(&metric(a.1)).then_with(|| a.0.cmp(b.0))
                    };
                    // Partial selection first: O(distinct) instead of a full sort.
                    if all.len() > TOP_N {
                        all.select_nth_unstable_by(TOP_N - 1, cmp);
                        all.truncate(TOP_N);
                    }
                    all.sort_by(cmp);
                    all.into_iter()
                        .map(|(v, &(requests, bytes))| TopEntry {
                            value: v.clone(),
                            requests,
                            bytes,
                            requests_error: 0,
                            bytes_error: 0,
                        })
                        .collect()
                };
                (
                    *name,
                    TopLists {
                        by_requests: rank(|e| e.0),
                        by_bytes: rank(|e| e.1),
                    },
                )
            })
            .collect()
    }
}

/// Range reads of one lake object for the Parquet reader: the footer, then only the column chunks
/// of the projected columns. The size comes from the manifest, so no HEAD or suffix request.
struct StoreReader {
    lake: Lake,
    path: Path,
    size: u64,
}

fn store_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        async move {
            self.lake
                .get_range(&self.path, range)
                .await
                .map_err(store_err)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move {
            self.lake
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(store_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Compacted access days up to this size are read whole (one GET) by `--exact`.
const WHOLE_READ_BYTES: u64 = 64 * 1024 * 1024;

/// Counts the access rows of every committed file (those the manifests list) of the filter's
/// domain and window. Files whose partition (hour or day) lies outside the window are not opened.
pub async fn read_top(lake: &Lake, filter: &ReportFilter, tz: PartitionTz) -> Result<TopCounter> {
    let mut counter = TopCounter::new(tz);
    let prefix = format!("{}/", ACCESS.folder);
    let mut wanted = Vec::new();
    for m in load_manifests(lake, None, Unreadable::Fail)
        .await?
        .into_manifests()
    {
        if filter.domain.as_deref().is_some_and(|d| d != m.domain) {
            continue;
        }
        let tz = PartitionTz::parse(&m.partition_tz).unwrap_or_default();
        for o in m.objects.iter().filter(|o| o.key.starts_with(&prefix)) {
            // An hour or, in a day lake, a day.
            if let Some(span) = key_partition_span(&o.key, tz) {
                let (start, end) = (span.start, span.end);
                if filter.from_micros.is_some_and(|f| end <= f)
                    || filter.to_micros.is_some_and(|t| start >= t)
                {
                    continue;
                }
            }
            wanted.push((m.domain.clone(), m.source.name.clone(), o.clone()));
        }
    }
    // A file a compacted access day holds is read from the day object, never also from its
    // own objects (compact::access).
    for (okey, obytes) in crate::lake::access_day::exact_reads(lake, wanted).await? {
        let key = lake.key_of(&okey);
        let err = |e: parquet::errors::ParquetError| Error::ReadParquet {
            key: key.to_string(),
            reason: e.to_string(),
        };
        let columns = ["time", "response_bytes"].into_iter().chain(DIMENSIONS);
        // A day object holds a row group per file: read in one GET (up to 64 MiB) rather than
        // a range read per row group.
        if crate::lake::access_day::is_day_file(&okey) && obytes <= WHOLE_READ_BYTES {
            let Some(bytes) = lake.get_opt(&key).await? else {
                tracing::warn!(%key, "compacted access day disappeared");
                continue;
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(err)?;
            let mask = ProjectionMask::columns(builder.parquet_schema(), columns);
            let reader = builder
                .with_projection(mask)
                .with_batch_size(8192)
                .build()
                .map_err(err)?;
            for batch in reader {
                let batch = batch.map_err(|e| Error::ReadParquet {
                    key: key.to_string(),
                    reason: e.to_string(),
                })?;
                counter.add(key.as_ref(), &batch, filter)?;
            }
            continue;
        }
        let reader = StoreReader {
            lake: lake.clone(),
            path: key.clone(),
            size: obytes,
        };
        let builder = match ParquetRecordBatchStreamBuilder::new(reader).await {
            Ok(b) => b,
            Err(parquet::errors::ParquetError::External(e))
                if matches!(
                    e.downcast_ref::<object_store::Error>(),
                    Some(object_store::Error::NotFound { .. })
                ) =>
            {
                tracing::warn!(%key, "access file listed in a manifest is missing");
                continue;
            }
            Err(e) => return Err(err(e)),
        };
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns);
        let mut stream = builder
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(err)?;
        while let Some(batch) = stream.try_next().await.map_err(err)? {
            counter.add(key.as_ref(), &batch, filter)?;
        }
    }
    Ok(counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow_array::{ArrayRef, StringArray};

    /// (minute, path, referer, response_bytes)
    type Row<'a> = (i64, &'a str, Option<&'a str>, i64);

    fn batch(rows: &[Row]) -> RecordBatch {
        let s = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        RecordBatch::try_from_iter([
            (
                "time",
                Arc::new(
                    TimestampMicrosecondArray::from(
                        rows.iter().map(|r| r.0 * 60_000_000).collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ) as ArrayRef,
            ),
            ("path", s(&|r| Some(r.1.to_string()))),
            ("client_ip", s(&|_| Some("1.1.1.1".into()))),
            ("referer", s(&|r| r.2.map(str::to_string))),
            ("user_agent", s(&|_| Some("ua".into()))),
            (
                "status",
                Arc::new(arrow_array::Int32Array::from(vec![200; rows.len()])) as ArrayRef,
            ),
            (
                "response_bytes",
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn ranks_with_deterministic_ties_and_skips_nulls() {
        let mut c = TopCounter::default();
        let mut rows = vec![
            (0, "/b", None, 5),
            (0, "/a", Some("r"), 5),
            (1, "/c", None, 100),
        ];
        // 12 more distinct paths with one request each: only 10 entries survive.
        let names: Vec<String> = (0..12).map(|i| format!("/z{i:02}")).collect();
        rows.extend(names.iter().map(|n| (2, n.as_str(), None, 1)));
        c.add("k", &batch(&rows), &ReportFilter::default()).unwrap();
        let l = c.lists();
        let p = &l["path"];
        assert_eq!(p.by_requests.len(), TOP_N);
        // All have one request: ascending value order.
        assert_eq!(p.by_requests[0].value, "/a");
        assert_eq!(p.by_requests[1].value, "/b");
        assert_eq!(p.by_bytes[0].value, "/c");
        assert_eq!(p.by_bytes[1].value, "/a", "5 bytes each: /a before /b");
        assert_eq!(l["referer"].by_requests.len(), 1, "nulls are no value");
        assert_eq!(l["client_ip"].by_requests[0].requests, 15);
        assert_eq!(c.rows, 15);
        assert_eq!(l["status"].by_requests[0].value, "200");
        assert_eq!(c.ips.len(), 1);

        // The minute window applies per row.
        let mut w = TopCounter::default();
        let f = ReportFilter {
            from_micros: Some(60_000_000),
            to_micros: Some(120_000_000),
            ..ReportFilter::default()
        };
        w.add("k", &batch(&rows), &f).unwrap();
        assert_eq!(w.rows, 1);
        assert_eq!(w.lists()["path"].by_requests[0].value, "/c");
    }

    #[test]
    fn partition_hours() {
        let tz = PartitionTz::default();
        let k = "access/domain=d/dt=2024-03-05/hour=09/x.parquet";
        // 09:00 +08:00 = 01:00 UTC.
        let start = |k| key_partition_span(k, tz).map(|r| r.start);
        assert_eq!(start(k), Some(1_709_600_400_000_000));
        assert_eq!(start("access/x.parquet"), None);
    }
}
