//! Reading the rollups back: the committed files (those the manifests list, so a half-written
//! run is never counted), column by column by name, so a lake written before a counter existed
//! still reads (the missing counter counts 0), and a lake written before the `top` and
//! `visitors` tables existed reports those figures as missing ([`Sketches::missing_top`]).

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::cast::AsArray;
use arrow_array::{Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::filter::ReportFilter;
use crate::access::time::HOUR_MICROS;
use crate::error::{Error, Result};
use crate::tables::traffic::MinuteStats;

/// One rollup row: a minute of one domain from one file (or one compacted day).
#[derive(Debug, Clone)]
pub struct MinuteRow {
    pub domain: String,
    pub minute_micros: i64,
    pub stats: MinuteStats,
}
use crate::sketch::heavy::{Summary, CAPACITY};
use crate::sketch::hll::Hll;
use crate::tables::top::DIMENSIONS;
use crate::tables::traffic::{COUNTERS, TRAFFIC};

pub(crate) fn read_error(key: &Path, reason: impl ToString) -> Error {
    Error::ReadParquet {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// Minute rows of one traffic file.
pub(crate) fn rows_of(key: &Path, bytes: bytes::Bytes, domain: &str) -> Result<Vec<MinuteRow>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| read_error(key, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| read_error(key, e))?;
        let minute = batch
            .column_by_name("minute")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| read_error(key, "no TIMESTAMP column minute"))?;
        // A counter added after this file was written is absent: it counts 0 here. A column of
        // the wrong type is an error (something else wrote the file).
        let counters: Vec<Option<&Int64Array>> = TRAFFIC.columns[1..]
            .iter()
            .map(|c| match batch.column_by_name(c.name) {
                None => Ok(None),
                Some(a) => a
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map(Some)
                    .ok_or_else(|| read_error(key, format!("column {} is not BIGINT", c.name))),
            })
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            if minute.is_null(i) {
                continue;
            }
            let mut stats = [0i64; COUNTERS];
            for (s, c) in stats.iter_mut().zip(&counters) {
                *s = c.map_or(0, |c| if c.is_valid(i) { c.value(i) } else { 0 });
            }
            out.push(MinuteRow {
                domain: domain.to_string(),
                minute_micros: minute.value(i),
                stats,
            });
        }
    }
    Ok(out)
}

/// The merged heavy-hitter summaries and distinct-IP sketches of the partition hours a report
/// covers: every hour that overlaps the window (the sketches are per hour, so a window that does
/// not start or end on the hour is widened to whole hours; the report says so).
#[derive(Debug, Default)]
pub struct Sketches {
    /// One per [`DIMENSIONS`] entry.
    pub dims: Vec<Summary>,
    /// Distinct client IPs of every hour read.
    pub visitors: Hll,
    /// Per partition hour (start, micros): distinct client IPs.
    pub per_hour: BTreeMap<i64, Hll>,
    /// Per partition hour (start, micros): the requests the visitors files counted.
    pub requests_per_hour: BTreeMap<i64, i64>,
    /// Hours covered (start, micros): those with access rows in the window.
    pub hours: BTreeSet<i64>,
    /// Hours for which some file has access rows but no `top` file (written before it existed).
    pub missing_top: BTreeSet<i64>,
    /// Likewise for `visitors`.
    pub missing_visitors: BTreeSet<i64>,
}

/// Capacity of the report's merged summaries: larger than a stored one's, so merging many
/// hours cuts less.
pub(crate) const REPORT_CAPACITY: usize = 4 * CAPACITY;

fn hour_overlaps(start: i64, filter: &ReportFilter) -> bool {
    let end = start + HOUR_MICROS;
    filter.from_micros.is_none_or(|f| end > f) && filter.to_micros.is_none_or(|t| start < t)
}

fn int64<'a>(key: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| read_error(key, format!("no BIGINT column {name}")))
}

/// Adds the rows of one `heavy_hitters` file whose hour overlaps `filter` to `dims`: each
/// (dimension, hour)'s error and totals once (they are the same on all its rows), and its keyed
/// rows. A file holds one hour in an hour lake and the hours of a day in a day lake, so rows are
/// told apart by their `hour_start`. A dimension this version does not know is skipped.
pub(crate) fn add_top_file(
    key: &Path,
    bytes: bytes::Bytes,
    dims: &mut [Summary],
    filter: &ReportFilter,
) -> Result<()> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| read_error(key, e))?;
    let mut bounds_added: BTreeSet<(usize, i64)> = BTreeSet::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| read_error(key, e))?;
        let hour = hour_starts(key, &batch)?;
        let string = |name: &str| {
            batch
                .column_by_name(name)
                .filter(|c| c.data_type() == &arrow_schema::DataType::Utf8)
                .map(|c| c.as_string::<i32>())
                .ok_or_else(|| read_error(key, format!("no STRING column {name}")))
        };
        let (dim, k) = (string("dimension")?, string("key")?);
        let [req, byt, req_err, byt_err, req_tot, byt_tot] = [
            "requests",
            "bytes",
            "requests_error",
            "bytes_error",
            "requests_total",
            "bytes_total",
        ]
        .map(|n| int64(key, &batch, n));
        let (req, byt, req_err, byt_err, req_tot, byt_tot) =
            (req?, byt?, req_err?, byt_err?, req_tot?, byt_tot?);
        for i in 0..batch.num_rows() {
            if hour.is_null(i) || !hour_overlaps(hour.value(i), filter) {
                continue;
            }
            let Some(d) = DIMENSIONS.iter().position(|d| *d == dim.value(i)) else {
                continue;
            };
            if bounds_added.insert((d, hour.value(i))) {
                dims[d].add_bounds(
                    [req_err.value(i), byt_err.value(i)],
                    [req_tot.value(i), byt_tot.value(i)],
                );
            }
            if k.is_valid(i) {
                dims[d].add_stored(k.value(i), [req.value(i), byt.value(i)]);
            }
        }
    }
    Ok(())
}

/// The `hour_start` column of a rollup batch.
fn hour_starts<'a>(key: &Path, batch: &'a RecordBatch) -> Result<&'a TimestampMicrosecondArray> {
    batch
        .column_by_name("hour_start")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| read_error(key, "no TIMESTAMP column hour_start"))
}

/// [`visitors_of`] with each row's requests.
pub(crate) fn visitors_rows_of(
    key: &Path,
    bytes: bytes::Bytes,
    filter: &ReportFilter,
) -> Result<Vec<(i64, i64, Hll)>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| read_error(key, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| read_error(key, e))?;
        let hour = hour_starts(key, &batch)?;
        let requests = int64(key, &batch, "requests")?;
        let hll = batch
            .column_by_name("hll")
            .and_then(|c| c.as_binary_opt::<i32>())
            .ok_or_else(|| read_error(key, "no BINARY column hll"))?;
        for i in 0..batch.num_rows() {
            if hour.is_null(i) || hll.is_null(i) || !hour_overlaps(hour.value(i), filter) {
                continue;
            }
            let h = Hll::from_bytes(hll.value(i))
                .map_err(|e| read_error(key, format!("column hll: {e}")))?;
            let r = if requests.is_valid(i) {
                requests.value(i)
            } else {
                0
            };
            out.push((hour.value(i), r, h));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, RecordBatch};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    /// A traffic file from a lake written before most counters existed: only `minute` and
    /// `requests`. It still reads, every missing counter as 0.
    #[test]
    fn a_file_without_newer_columns_reads_them_as_zero() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "minute",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("requests", DataType::Int64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::from(vec![60_000_000, 120_000_000]).with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(vec![5, 7])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let rows = rows_of(&Path::from("old.parquet"), bytes::Bytes::from(buf), "d").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].minute_micros, 120_000_000);
        assert_eq!(rows[1].stats[crate::tables::traffic::idx::REQUESTS], 7);
        assert!(
            rows[1].stats[1..].iter().all(|&v| v == 0),
            "{:?}",
            rows[1].stats
        );
        // A counter of the wrong type is an error, not a silent zero.
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "minute",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("requests", DataType::Utf8, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(vec![60_000_000]).with_timezone("UTC")),
            Arc::new(arrow_array::StringArray::from(vec!["x"])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let e = rows_of(&Path::from("bad.parquet"), bytes::Bytes::from(buf), "d").unwrap_err();
        assert!(e.to_string().contains("requests"), "{e}");
    }
}
