//! Reading the traffic rollups back: the committed traffic files (those the manifests list, so a
//! half-written run is never counted), column by column by name, so a lake written before a
//! counter existed still reads (the missing counter counts 0).

use arrow_array::{Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::filter::ReportFilter;
use super::report::MinuteRow;
use crate::error::{Error, Result};
use crate::lake::manifest::list_manifests;
use crate::lake::store::Lake;
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

/// Reads the rollup rows of every committed traffic file of `domain` (all domains when `None`).
pub async fn read_rollups(lake: &Lake, filter: &ReportFilter) -> Result<Vec<MinuteRow>> {
    let mut out = Vec::new();
    for m in list_manifests(lake).await? {
        if filter.domain.as_deref().is_some_and(|d| d != m.domain) {
            continue;
        }
        for o in &m.objects {
            if !o.key.starts_with(&format!("{}/", TRAFFIC.folder)) {
                continue;
            }
            let key = lake.key_of(&o.key);
            let Some(bytes) = lake.get_opt(&key).await? else {
                tracing::warn!(%key, "traffic file listed in a manifest is missing");
                continue;
            };
            out.extend(rows_of(&key, bytes, &m.domain)?);
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
