//! Per-minute traffic rollups, computed in the same pass as the access table.
//!
//! The writer stage already holds every accepted row as an Arrow batch; [`TrafficAccumulator`]
//! folds those batches into one row per minute, so the rollups cost neither a second read of the
//! log nor of the Parquet. At commit time each partition hour becomes one small Parquet file,
//! `traffic/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`, staged and committed with the
//! access files and listed in the manifest, so re-runs replace it like everything else.
//!
//! Every column is a sum or (for `response_time_ms_max`) a max. Rows of the same minute from
//! different files (a busy hour split into parts, or two hours' files overlapping) therefore merge
//! exactly with `SUM`/`MAX`, and response-time quantiles can be estimated after merging from the
//! histogram buckets (see [`RT_BOUNDS_MS`]).
//!
//! The accumulator is pure computation; only [`stage_files`] does I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use tokio::runtime::Handle;

use crate::access::time::{PartitionTz, HOUR_MICROS, MINUTE_MICROS};
use crate::error::{Error, Result};
use crate::lake::commit::Staged;
use crate::lake::layout::FileLayout;
use crate::lake::store::Lake;
use crate::tables::traffic::{idx, merge, rt_bucket, MinuteStats, COUNTERS, TRAFFIC};
use crate::writers::access_column as column;
use crate::writers::parquet::{writer_properties, FilePerKey, ParquetOptions};

/// The 60 minutes of one partition hour.
struct Hour {
    minutes: Box<[MinuteStats; 60]>,
}

/// Per-minute counters of everything a run has written, per partition hour.
///
/// Partition offsets are whole minutes ([`PartitionTz::parse`] accepts no seconds), so a UTC minute
/// never straddles two partition hours and each hour holds exactly 60 minute slots.
pub(crate) struct TrafficAccumulator {
    tz: PartitionTz,
    hours: BTreeMap<i64, Hour>,
}

impl TrafficAccumulator {
    pub fn new(tz: PartitionTz) -> Self {
        TrafficAccumulator {
            tz,
            hours: BTreeMap::new(),
        }
    }

    /// Adds the rows of an access batch whose rows all fall in partition hour `bucket` (as in
    /// [`crate::access::block::PartitionBatch`]). The pipeline computes the minutes on the parse
    /// pool instead ([`hour_minutes`], [`Self::add_minutes`]).
    #[cfg(test)]
    pub fn add(&mut self, bucket: i64, batch: &RecordBatch) -> Result<()> {
        let minutes = hour_minutes(self.tz, bucket, batch)?;
        self.add_minutes(bucket, &minutes);
        Ok(())
    }

    /// Merges the per-minute counters of one block's rows of partition hour `bucket` (made by
    /// [`hour_minutes`] on the parse pool): 60 sums per hour, whatever the rows.
    pub(crate) fn add_minutes(&mut self, bucket: i64, minutes: &[MinuteStats; 60]) {
        let hour = self.hours.entry(bucket).or_insert_with(|| Hour {
            minutes: Box::new([[0; COUNTERS]; 60]),
        });
        for (into, m) in hour.minutes.iter_mut().zip(minutes.iter()) {
            if m[idx::REQUESTS] > 0 {
                merge(into, m);
            }
        }
    }

    /// One batch per partition hour (ascending), one row per minute with requests (ascending).
    pub fn batches(&self) -> Vec<(i64, RecordBatch)> {
        let schema = TRAFFIC.arrow_schema();
        let off_min = i64::from(self.tz.offset_secs / 60);
        self.hours
            .iter()
            .map(|(&bucket, hour)| {
                let rows: Vec<(i64, &MinuteStats)> = hour
                    .minutes
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s[idx::REQUESTS] > 0)
                    .map(|(m, s)| ((bucket * 60 + m as i64 - off_min) * MINUTE_MICROS, s))
                    .collect();
                let mut cols: Vec<ArrayRef> = Vec::with_capacity(1 + COUNTERS);
                cols.push(Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.0))
                        .with_timezone("UTC"),
                ));
                for c in 0..COUNTERS {
                    cols.push(Arc::new(Int64Array::from_iter_values(
                        rows.iter().map(|r| r.1[c]),
                    )));
                }
                // The columns follow TRAFFIC.columns one for one (checked by a test), so this
                // cannot fail.
                let batch = RecordBatch::try_new(schema.clone(), cols)
                    .expect("traffic columns match TRAFFIC schema");
                (bucket, batch)
            })
            .collect()
    }
}

// The status classes follow each other (hour_minutes indexes them from the 2xx one).
const _: () = assert!(
    idx::STATUS_3XX == idx::STATUS_2XX + 1
        && idx::STATUS_4XX == idx::STATUS_2XX + 2
        && idx::STATUS_5XX == idx::STATUS_2XX + 3
);

/// The per-minute counters of an access batch whose rows all fall in partition hour `bucket`.
///
/// Pure, and run on the parse pool for each parsed block ([`crate::writers::sketches::sketch_block`]),
/// so the per-row loop is spread over the cores; the writer thread, which is serial, only adds
/// 60 rows per hour and block ([`TrafficAccumulator::add_minutes`]).
pub(crate) fn hour_minutes(
    tz: PartitionTz,
    bucket: i64,
    batch: &RecordBatch,
) -> Result<Box<[MinuteStats; 60]>> {
    let time = column::<TimestampMicrosecondArray>(batch, "time")?;
    let req_bytes = column::<Int64Array>(batch, "request_bytes")?;
    let resp_bytes = column::<Int64Array>(batch, "response_bytes")?;
    let cache = column::<StringArray>(batch, "cache_status")?;
    let status = column::<Int32Array>(batch, "status")?;
    let rt = column::<Int64Array>(batch, "response_time_ms")?;
    // Every counter starts at 0 but the max, which starts at i64::MIN so the first row of a
    // minute sets it (a minute without rows gets 0 back at the end).
    let mut empty = [0; COUNTERS];
    empty[idx::RT_MAX] = i64::MIN;
    let mut minutes: Box<[MinuteStats; 60]> = Box::new([empty; 60]);
    // A row's minute is its offset from the hour's first instant (on `tz`'s wall clock) in whole
    // minutes: one subtraction and one unsigned division by a constant per row. In i128 so that
    // no instant, however far from the hour, wraps into it.
    let first = bucket * 60 - i64::from(tz.offset_secs / 60);
    let start = i128::from(first) * i128::from(MINUTE_MICROS);
    let cache_nulls = cache.nulls().filter(|n| n.null_count() > 0);
    let rows = time
        .values()
        .iter()
        .zip(req_bytes.values())
        .zip(resp_bytes.values())
        .zip(status.values())
        .zip(rt.values())
        .enumerate();
    for (i, ((((&t, &req), &resp), &code), &ms)) in rows {
        let offset = i128::from(t) - start;
        let Some(s) = u64::try_from(offset)
            .ok()
            .filter(|&o| o < HOUR_MICROS as u64)
            .and_then(|o| minutes.get_mut((o / MINUTE_MICROS as u64) as usize))
        else {
            return Err(Error::Rollup {
                column: "time",
                reason: "row outside its batch's partition hour",
            });
        };
        s[idx::REQUESTS] += 1;
        s[idx::REQUEST_BYTES] = s[idx::REQUEST_BYTES].saturating_add(req);
        s[idx::RESPONSE_BYTES] = s[idx::RESPONSE_BYTES].saturating_add(resp);
        if cache_nulls.is_none_or(|n| n.is_valid(i)) {
            match cache.value(i).as_bytes() {
                b"HIT" => s[idx::HITS] += 1,
                b"MISS" => s[idx::MISSES] += 1,
                _ => {}
            }
        }
        // 200-299 → 2xx … 500-599 → 5xx (consecutive counters); anything else, negative codes
        // included (they wrap to large values), → other.
        let class = (code as u32).wrapping_sub(200) / 100;
        s[if class < 4 {
            idx::STATUS_2XX + class as usize
        } else {
            idx::STATUS_OTHER
        }] += 1;
        s[idx::RT_SUM] = s[idx::RT_SUM].saturating_add(ms);
        // Starts at i64::MIN (below) so the first row of a minute sets it.
        s[idx::RT_MAX] = s[idx::RT_MAX].max(ms);
        s[idx::RT_HIST + rt_bucket(ms)] += 1;
    }
    // A minute without rows keeps 0 as its max, as its other counters.
    for s in minutes.iter_mut() {
        if s[idx::REQUESTS] == 0 {
            s[idx::RT_MAX] = 0;
        }
    }
    Ok(minutes)
}

/// Encodes one Parquet file per partition (hour, or day in a day lake) to
/// `layout.traffic(dt, hour)` and hands back the
/// uploads, not yet completed, with their row counts: the caller commits them with the run's
/// other files, so the rollups appear and disappear together with the access rows.
pub(crate) fn stage_files(
    acc: &TrafficAccumulator,
    lake: &Lake,
    rt: &Handle,
    layout: &FileLayout,
    opts: &ParquetOptions,
) -> Result<Vec<Staged>> {
    let props = writer_properties(&TRAFFIC, opts)?;
    let mut out = Vec::new();
    let mut files = FilePerKey::new(lake, rt, &props);
    for (bucket, batch) in acc.batches() {
        let (dt, hour) = acc.tz.partition_values(bucket);
        files.write(layout.traffic(&dt, &hour), &batch, &mut out)?;
    }
    files.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::block::{parse_block, BlockOptions};
    use crate::tables::access::ACCESS;
    use crate::tables::traffic::RT_BOUNDS_MS;

    fn line(time: &str, rt: i64, status: i32, cache: &str, bytes: i64) -> String {
        format!(
            r#"[{time} +0800] 192.0.2.10 - {rt} "-" "GET http://a.example.com/x" {status} 100 {bytes} {cache} "ua" "text/html""#
        )
    }

    #[test]
    fn columns_match_counters() {
        assert_eq!(TRAFFIC.columns.len(), 1 + COUNTERS);
        assert_eq!(
            TRAFFIC.columns[1 + idx::RT_SUM].name,
            "response_time_ms_sum"
        );
        assert_eq!(
            TRAFFIC.columns[1 + idx::RT_MAX].name,
            "response_time_ms_max"
        );
        assert_eq!(TRAFFIC.columns[1 + idx::STATUS_OTHER].name, "status_other");
        for (i, b) in RT_BOUNDS_MS.iter().enumerate() {
            assert_eq!(
                TRAFFIC.columns[1 + idx::RT_HIST + i].name,
                format!("rt_le_{b}")
            );
        }
        assert_eq!(TRAFFIC.columns[COUNTERS].name, "rt_gt_10000");
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(rt_bucket(-1), 0);
        assert_eq!(rt_bucket(10), 0);
        assert_eq!(rt_bucket(11), 1);
        assert_eq!(rt_bucket(10000), 9);
        assert_eq!(rt_bucket(10001), 10);
        assert_eq!(rt_bucket(i64::MAX), 10);
    }

    #[test]
    fn rolls_up_per_minute() {
        let text = [
            line("5/Mar/2024:08:59:59", 5, 200, "HIT", 1000),
            line("5/Mar/2024:09:00:00", 30, 304, "MISS", 10),
            line("5/Mar/2024:09:00:59", 20000, 502, "-", 5),
            line("5/Mar/2024:09:07:00", 100, 404, "HIT", 7),
            line("5/Mar/2024:09:07:30", 0, 101, "HIT", 0),
        ]
        .join("\n");
        let tz = PartitionTz::default();
        let schema = ACCESS.arrow_schema();
        let pb = parse_block(
            text.as_bytes(),
            1,
            "f.gz",
            &schema,
            &BlockOptions::default(),
        );
        assert_eq!(pb.rows, 5);
        let mut acc = TrafficAccumulator::new(tz);
        for p in &pb.parts {
            acc.add(p.bucket, &p.batch).unwrap();
        }
        let batches = acc.batches();
        assert_eq!(batches.len(), 2, "two partition hours");
        let (_, b8) = &batches[0];
        let (_, b9) = &batches[1];
        assert_eq!((b8.num_rows(), b9.num_rows()), (1, 2));
        let get = |b: &RecordBatch, c: &str| -> Vec<i64> {
            b.column_by_name(c)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        let minute = b9
            .column_by_name("minute")
            .unwrap()
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap()
            .values()
            .to_vec();
        // 2024-03-05T09:00+08:00 = 01:00Z.
        assert_eq!(
            minute,
            vec![
                1_709_600_400_000_000,
                1_709_600_400_000_000 + 7 * 60_000_000
            ]
        );
        assert_eq!(get(b9, "requests"), vec![2, 2]);
        assert_eq!(get(b9, "response_bytes"), vec![15, 7]);
        assert_eq!(get(b9, "request_bytes"), vec![200, 200]);
        assert_eq!(get(b9, "hits"), vec![0, 2]);
        assert_eq!(get(b9, "misses"), vec![1, 0]);
        assert_eq!(get(b9, "status_3xx"), vec![1, 0]);
        assert_eq!(get(b9, "status_5xx"), vec![1, 0]);
        assert_eq!(get(b9, "status_4xx"), vec![0, 1]);
        assert_eq!(get(b9, "status_other"), vec![0, 1]);
        assert_eq!(get(b9, "response_time_ms_sum"), vec![20030, 100]);
        assert_eq!(get(b9, "response_time_ms_max"), vec![20000, 100]);
        assert_eq!(get(b9, "rt_le_50"), vec![1, 0]);
        assert_eq!(get(b9, "rt_gt_10000"), vec![1, 0]);
        assert_eq!(get(b9, "rt_le_10"), vec![0, 1]);
        assert_eq!(get(b9, "rt_le_100"), vec![0, 1]);
        assert_eq!(get(b8, "status_2xx"), vec![1]);
    }

    /// The status classes at their edges; the max response time of a minute, and 0 for a minute
    /// without rows.
    #[test]
    fn status_classes_and_the_first_max() {
        let codes = [0, 199, 200, 299, 300, 399, 400, 499, 500, 599, 600, 999];
        let text: Vec<String> = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| line("5/Mar/2024:09:00:00", 20 - i as i64, c, "HIT", 1))
            .collect();
        let pb = parse_block(
            text.join("\n").as_bytes(),
            1,
            "f.gz",
            &ACCESS.arrow_schema(),
            &BlockOptions::default(),
        );
        assert_eq!(pb.rows, codes.len() as u64);
        let p = &pb.parts[0];
        let m = hour_minutes(PartitionTz::default(), p.bucket, &p.batch).unwrap();
        let got = [
            idx::STATUS_2XX,
            idx::STATUS_3XX,
            idx::STATUS_4XX,
            idx::STATUS_5XX,
            idx::STATUS_OTHER,
        ]
        .map(|i| m[0][i]);
        assert_eq!(got, [2, 2, 2, 2, 4]);
        assert_eq!(m[0][idx::RT_MAX], 20);
        assert_eq!(m[1][idx::RT_MAX], 0);
        assert_eq!(m[1][idx::REQUESTS], 0);
    }

    #[test]
    fn merge_sums_and_maxes() {
        let mut a = [1; COUNTERS];
        let mut b = [2; COUNTERS];
        b[idx::RT_MAX] = 0;
        merge(&mut a, &b);
        assert_eq!(a[idx::REQUESTS], 3);
        assert_eq!(a[idx::RT_MAX], 1);
    }

    #[test]
    fn a_row_outside_its_hour_is_an_error() {
        let text = line("5/Mar/2024:09:00:00", 1, 200, "HIT", 1);
        let pb = parse_block(
            text.as_bytes(),
            1,
            "f.gz",
            &ACCESS.arrow_schema(),
            &BlockOptions::default(),
        );
        let mut acc = TrafficAccumulator::new(PartitionTz::default());
        let p = &pb.parts[0];
        assert!(acc.add(p.bucket + 1, &p.batch).is_err());
    }
}
