//! Heavy hitters and distinct client IPs per partition hour, in the same pass as the access
//! table (docs/design.md §2.4).
//!
//! The work per row (hashing five strings) runs where the rows are born: [`sketch_block`] runs in
//! the parallel parse stage, on each parsed block, and hands the writer small per-block summaries
//! (at most [`CAPACITY`](crate::sketch::heavy::CAPACITY) keys per dimension, counted exactly
//! with keys borrowed from the batch and then cut, and the block's distinct-IP sketch). The writer thread, which also encodes Parquet, only merges those
//! ([`SketchAccumulator::add`]), so its cost grows with distinct keys per block, not with rows.
//!
//! At commit each partition hour becomes two small Parquet files, `heavy_hitters/…/<stem>.parquet` and
//! `visitors/…/<stem>.parquet`, staged and committed with the access files and listed in the
//! manifest, so re-runs replace them like everything else.
//!
//! Pure computation but for [`stage_files`].

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use tokio::runtime::Handle;

use crate::access::block::ParsedBlock;
use crate::access::time::PartitionTz;
use crate::error::Result;
use crate::lake::commit::Staged;
use crate::lake::layout::FileLayout;
use crate::lake::store::Lake;
use crate::sketch::heavy::{BlockSummary, Counts, Summary, CAPACITY};
use crate::sketch::hll::{self, Hll};
use crate::tables::top::{DIMENSIONS, TOP};
use crate::tables::traffic::MinuteStats;
use crate::tables::visitors::VISITORS;
use crate::writers::access_column as column;
use crate::writers::parquet::{writer_properties, FilePerKey, ParquetOptions};

/// The summaries of one partition hour.
#[derive(Debug, Default)]
pub(crate) struct HourSketch {
    /// One per [`DIMENSIONS`] entry.
    pub dims: [Summary; DIMENSIONS.len()],
    /// Distinct client IPs.
    pub ips: Hll,
    pub requests: i64,
}

/// What the parse stage hands the writer for one block: per partition hour, the block's
/// summaries (cut to capacity) and its distinct-IP sketch, and the hour's per-minute traffic
/// counters.
#[derive(Debug, Default)]
pub struct BlockSketch {
    pub hours: Vec<(i64, BlockHour)>,
    /// Per partition hour, the per-minute counters of the traffic rollups
    /// ([`crate::writers::traffic::hour_minutes`]).
    pub traffic: Vec<(i64, Box<[MinuteStats; 60]>)>,
}

/// One partition hour of one block.
#[derive(Debug, Default)]
pub struct BlockHour {
    pub dims: [BlockSummary; DIMENSIONS.len()],
    pub ips: Hll,
    pub requests: i64,
}

/// One key's exact count in a block, with its hash kept so the table grows and probes without
/// hashing the string again. The key is borrowed from the batch.
struct KeyCount<'a> {
    key: &'a str,
    hash: u64,
    counts: Counts,
}

/// Status codes below this are counted in an array (every code a server sends); others, which
/// the parser accepts as any non-negative INT32, in a map.
const STATUS_ARRAY: usize = 1000;

/// Summarises the rows of a parsed block (pure; runs on the parse pool): the heavy-hitter
/// summaries and the distinct-IP sketch of each partition hour, and its per-minute traffic
/// counters (on `tz`'s clock). The writer thread then only merges them.
pub fn sketch_block(pb: &ParsedBlock, tz: PartitionTz) -> Result<BlockSketch> {
    let mut out = BlockSketch::default();
    // Reused for every column and hour of the block; sized once for the block's rows so the
    // counting loop never grows it (most columns hold far fewer keys; the memory is a few
    // hundred KiB per block).
    let rows: usize = pb
        .parts
        .iter()
        .map(|p| p.batch.num_rows())
        .max()
        .unwrap_or(0);
    let hasher = ahash::RandomState::new();
    let mut table: HashTable<KeyCount<'_>> = HashTable::with_capacity(rows);
    let mut scratch: Vec<i64> = Vec::new();
    let mut codes = vec![[0i64; 2]; STATUS_ARRAY];
    for part in &pb.parts {
        let batch = &part.batch;
        out.traffic.push((
            part.bucket,
            crate::writers::traffic::hour_minutes(tz, part.bucket, batch)?,
        ));
        let strings: [&StringArray; 4] = [
            column(batch, "path")?,
            column(batch, "client_ip")?,
            column(batch, "referer")?,
            column(batch, "user_agent")?,
        ];
        let status = column::<Int32Array>(batch, "status")?;
        let bytes = column::<Int64Array>(batch, "response_bytes")?;
        let bytes = bytes.values();
        let mut h = BlockHour {
            requests: batch.num_rows() as i64,
            ..BlockHour::default()
        };
        // Exact counts of the block with keys borrowed from the batch (no copy per row), then
        // the Misra-Gries cut: only surviving keys are copied.
        for (d, col) in strings.iter().enumerate() {
            if d == CLIENT_IP {
                // One xxHash64 per row feeds the distinct-IP sketch and the exact count.
                let ips = &mut h.ips;
                count_keys(col, bytes, &mut table, |ip| {
                    let hash = hll::hash(ip.as_bytes());
                    ips.insert(hash);
                    hash
                });
            } else {
                // The bytes alone (ahash mixes in the length), not `str`'s terminator too.
                count_keys(col, bytes, &mut table, |k| {
                    let mut h = hasher.build_hasher();
                    h.write(k.as_bytes());
                    h.finish()
                });
            }
            h.dims[d] = BlockSummary::from_exact(
                table.iter().map(|e| (e.key, e.counts)),
                CAPACITY,
                &mut scratch,
            );
        }
        // Status codes: few distinct values, counted exactly first, then added once each in
        // ascending order.
        codes.fill([0, 0]);
        let mut other: BTreeMap<i32, Counts> = BTreeMap::new();
        for (&code, &b) in status.values().iter().zip(bytes) {
            let c = match usize::try_from(code).ok().and_then(|k| codes.get_mut(k)) {
                Some(c) => c,
                None => other.entry(code).or_default(),
            };
            c[0] += 1;
            c[1] = c[1].saturating_add(b);
        }
        let codes: Vec<(String, Counts)> = codes
            .iter()
            .enumerate()
            .filter(|(_, c)| c[0] > 0)
            .map(|(k, c)| (k.to_string(), *c))
            .chain(other.into_iter().map(|(k, c)| (k.to_string(), c)))
            .collect();
        h.dims[DIMENSIONS.len() - 1] = BlockSummary::from_exact(
            codes.iter().map(|(k, c)| (k.as_str(), *c)),
            CAPACITY,
            &mut scratch,
        );
        out.hours.push((part.bucket, h));
    }
    Ok(out)
}

/// Counts the non-null values of `col` into `table` (cleared first): per value its rows and the
/// sum of their `bytes`, under `hash` (called once per row). One probe per row finds the key or
/// the slot for it; a column without nulls skips the per-row validity test.
fn count_keys<'a>(
    col: &'a StringArray,
    bytes: &[i64],
    table: &mut HashTable<KeyCount<'a>>,
    mut hash: impl FnMut(&str) -> u64,
) {
    table.clear();
    let bytes = &bytes[..col.len().min(bytes.len())];
    match col.nulls().filter(|n| n.null_count() > 0) {
        None => {
            for (i, &b) in bytes.iter().enumerate() {
                count_row(col, table, &mut hash, i, b);
            }
        }
        Some(nulls) => {
            for i in nulls.valid_indices() {
                if let Some(&b) = bytes.get(i) {
                    count_row(col, table, &mut hash, i, b);
                }
            }
        }
    }
}

/// Counts row `i` of `col` (with its `b` bytes) into `table`: one probe finds the key or the
/// slot for it. Inlined into both loops of [`count_keys`] (a call per row costs as much as the
/// counting around it).
#[inline(always)]
fn count_row<'a>(
    col: &'a StringArray,
    table: &mut HashTable<KeyCount<'a>>,
    hash: &mut impl FnMut(&str) -> u64,
    i: usize,
    b: i64,
) {
    let key = col.value(i);
    let h = hash(key);
    match table.entry(h, |e| e.hash == h && e.key == key, |e| e.hash) {
        Entry::Occupied(mut e) => {
            let c = &mut e.get_mut().counts;
            c[0] += 1;
            c[1] = c[1].saturating_add(b);
        }
        Entry::Vacant(v) => {
            v.insert(KeyCount {
                key,
                hash: h,
                counts: [1, b],
            });
        }
    }
}

/// Index of `client_ip` in [`DIMENSIONS`] (and in the string columns of [`sketch_block`]).
const CLIENT_IP: usize = 1;

/// The summaries of every partition hour a run has written.
pub(crate) struct SketchAccumulator {
    tz: PartitionTz,
    hours: BTreeMap<i64, HourSketch>,
}

impl SketchAccumulator {
    pub fn new(tz: PartitionTz) -> Self {
        SketchAccumulator {
            tz,
            hours: BTreeMap::new(),
        }
    }

    /// Merges a block's summaries (blocks in any order give the same counts; in line order, the
    /// same bytes).
    pub fn add(&mut self, block: BlockSketch) {
        for (bucket, b) in block.hours {
            let h = self.hours.entry(bucket).or_default();
            h.requests += b.requests;
            for (into, s) in h.dims.iter_mut().zip(b.dims) {
                into.merge_block(s);
            }
            h.ips.merge(&b.ips);
        }
    }

    /// Per partition hour (ascending): the top rows and the visitors row, as batches of the
    /// [`TOP`] and [`VISITORS`] tables. Each summary is cut to [`CAPACITY`] keys first.
    pub fn batches(&mut self) -> Vec<(i64, RecordBatch, RecordBatch)> {
        let off = i64::from(self.tz.offset_secs);
        let mut out = Vec::new();
        for (&bucket, h) in self.hours.iter_mut() {
            let hour = (bucket * 3600 - off) * 1_000_000;
            for s in h.dims.iter_mut() {
                s.cut(CAPACITY);
            }
            let top = top_batch(hour, h.dims.iter().map(|s| (s.rows(), s.error, s.total)));
            let visitors = RecordBatch::try_new(
                VISITORS.arrow_schema(),
                vec![
                    Arc::new(
                        TimestampMicrosecondArray::from_iter_values([hour]).with_timezone("UTC"),
                    ),
                    Arc::new(Int64Array::from(vec![h.requests])),
                    Arc::new(Int64Array::from(vec![h.ips.estimate() as i64])),
                    Arc::new(BinaryArray::from_vec(vec![&h.ips.to_bytes()[..]])),
                ],
            )
            .expect("visitors columns match the VISITORS schema");
            out.push((bucket, top, visitors));
        }
        out
    }
}

/// The [`TOP`] rows of one period starting at `start` (micros): per dimension in [`DIMENSIONS`]
/// order (`dims`: its kept keys with their counts, its error, its total), each row carrying its
/// dimension's error and total. A dimension whose keys were all cut keeps one null-key row, so
/// its errors and totals survive. Shared by the per-file writer (an hour) and `compact` (a day).
pub(crate) fn top_batch<'a>(
    start: i64,
    dims: impl IntoIterator<Item = (Vec<(&'a str, Counts)>, Counts, Counts)>,
) -> RecordBatch {
    let mut dim = Vec::new();
    let mut key: Vec<Option<&str>> = Vec::new();
    let mut c: [Vec<i64>; 6] = Default::default();
    for (name, (rows, error, total)) in DIMENSIONS.iter().zip(dims) {
        let mut rows: Vec<(Option<&str>, Counts)> =
            rows.into_iter().map(|(k, c)| (Some(k), c)).collect();
        if rows.is_empty() && (total != [0, 0] || error != [0, 0]) {
            rows.push((None, [0, 0]));
        }
        for (k, counts) in rows {
            dim.push(*name);
            key.push(k);
            c[0].push(counts[0]);
            c[1].push(counts[1]);
            c[2].push(error[0]);
            c[3].push(error[1]);
            c[4].push(total[0]);
            c[5].push(total[1]);
        }
    }
    let n = key.len();
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(start, n))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(dim)),
        Arc::new(StringArray::from(key)),
    ];
    cols.extend(
        c.into_iter()
            .map(|v| Arc::new(Int64Array::from(v)) as ArrayRef),
    );
    // The columns follow TOP.columns one for one (checked by a test).
    RecordBatch::try_new(TOP.arrow_schema(), cols).expect("top columns match the TOP schema")
}

/// Encodes the `top` and `visitors` files of every partition hour and hands back the uploads,
/// not yet completed, with their row counts: the caller commits them with the run's other files.
pub(crate) fn stage_files(
    acc: &mut SketchAccumulator,
    lake: &Lake,
    rt: &Handle,
    layout: &FileLayout,
    opts: &ParquetOptions,
) -> Result<Vec<Staged>> {
    let top_props = writer_properties(&TOP, opts)?;
    let vis_props = writer_properties(&VISITORS, opts)?;
    let tz = acc.tz;
    let mut out = Vec::new();
    // Hours in order: in a day lake the hours of one day share a key, so they go into one file
    // (each row keeps its `hour_start`), as the traffic rollups do.
    let mut tops = FilePerKey::new(lake, rt, &top_props);
    let mut visitor_files = FilePerKey::new(lake, rt, &vis_props);
    for (bucket, top, visitors) in acc.batches() {
        let (dt, hour) = tz.partition_values(bucket);
        tops.write(layout.top(&dt, &hour), &top, &mut out)?;
        visitor_files.write(layout.visitors(&dt, &hour), &visitors, &mut out)?;
    }
    tops.finish(&mut out)?;
    visitor_files.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::block::{parse_block, BlockOptions};
    use crate::tables::access::ACCESS;

    #[test]
    fn columns_match() {
        let mut acc = SketchAccumulator::new(PartitionTz::default());
        let text = r#"[5/Mar/2024:09:00:00 +0800] 192.0.2.10 - 1 "-" "GET http://a/x" 200 1 5 HIT "ua" "t"
[5/Mar/2024:09:00:01 +0800] 192.0.2.11 - 1 "r" "GET http://a/x" 404 1 7 HIT "ua" "t"
[5/Mar/2024:10:00:01 +0800] 192.0.2.11 - 1 "r" "GET http://a/y" 404 1 7 HIT "" "t""#;
        let pb = parse_block(
            text.as_bytes(),
            1,
            "f.gz",
            &ACCESS.arrow_schema(),
            &BlockOptions::default(),
        );
        acc.add(sketch_block(&pb, PartitionTz::default()).unwrap());
        let b = acc.batches();
        assert_eq!(b.len(), 2);
        let (_, top, vis) = &b[0];
        assert_eq!(top.schema(), TOP.arrow_schema());
        assert_eq!(vis.schema(), VISITORS.arrow_schema());
        // path /x, 2 IPs, referer r (the null one is not counted), ua, statuses 200 and 404.
        assert_eq!(top.num_rows(), 1 + 2 + 1 + 1 + 2);
        let uniq = vis
            .column_by_name("unique_ips")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(uniq, 2);
        let keys = top
            .column_by_name("key")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let keys: Vec<&str> = keys.iter().map(|k| k.unwrap_or("NULL")).collect();
        assert_eq!(
            keys,
            ["/x", "192.0.2.10", "192.0.2.11", "r", "ua", "200", "404"]
        );
    }
}
