//! Writers: each turns what the parser or an event produced into [`Staged`] objects of one
//! table, and none makes anything visible; [`crate::lake::commit`] does that, for all of them
//! the same way.
//!
//! A log file writes three tables at once, through [`LogWriters`]: the access rows by partition
//! hour ([`access`]), their per-minute rollups ([`traffic`]) and the rejected lines
//! ([`rejects`]). An event writes its audit objects ([`audit`]). [`parquet`] is the one Parquet
//! helper they share.

pub(crate) mod access;
pub(crate) mod audit;
pub mod parquet;
pub(crate) mod rejects;
pub mod sketches;
pub(crate) mod traffic;

use tokio::runtime::Handle;

use crate::access::block::ParsedBlock;
use crate::access::time::PartitionTz;
use crate::error::{Error, Result};
use crate::lake::commit::Staged;
use crate::lake::layout::FileLayout;
use crate::lake::manifest::PartitionEntry;
use crate::lake::store::Lake;
use access::AccessWriter;
use parquet::ParquetOptions;
use rejects::RejectWriter;
use sketches::{BlockSketch, SketchAccumulator};
use traffic::TrafficAccumulator;

/// Where every line of a file went. `lines = rows + rejected + empty` once the file is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LineCounts {
    pub lines: u64,
    pub rows: u64,
    pub rejected: u64,
    pub empty: u64,
    pub invalid_utf8: u64,
}

impl LineCounts {
    /// Every line must be accounted for before anything becomes visible; a gap is a bug.
    pub fn check(&self, location: &str) -> Result<()> {
        if self.lines == self.rows + self.rejected + self.empty {
            return Ok(());
        }
        Err(Error::Internal(format!(
            "{location}: line accounting is off: {} lines != {} rows + {} rejected + {} empty",
            self.lines, self.rows, self.rejected, self.empty
        )))
    }
}

/// The tables one log file writes, fed parsed blocks in line order.
pub(crate) struct LogWriters {
    lake: Lake,
    rt: Handle,
    layout: FileLayout,
    parquet: ParquetOptions,
    access: AccessWriter,
    traffic: TrafficAccumulator,
    sketches: SketchAccumulator,
    rejects: RejectWriter,
    counts: LineCounts,
}

/// What a log file's writers staged, in manifest order (access by partition, traffic, top and
/// visitors, rejects), and the partitions (hours, or days in a day lake) of the access table.
pub(crate) struct LogTables {
    pub staged: Vec<Staged>,
    pub partitions: Vec<PartitionEntry>,
    /// Days whose compacted access object holds this file (`compact::access`).
    pub held: std::collections::BTreeMap<String, crate::lake::access_day::HeldSource>,
    pub counts: LineCounts,
}

impl LogWriters {
    pub fn new(
        lake: &Lake,
        rt: &Handle,
        layout: &FileLayout,
        tz: PartitionTz,
        parquet: &ParquetOptions,
    ) -> Result<LogWriters> {
        Ok(LogWriters {
            lake: lake.clone(),
            rt: rt.clone(),
            layout: layout.clone(),
            parquet: parquet.clone(),
            access: AccessWriter::new(lake, rt, layout, tz, parquet)?,
            traffic: TrafficAccumulator::new(tz),
            sketches: SketchAccumulator::new(tz),
            rejects: RejectWriter::new(layout.rejects()),
            counts: LineCounts::default(),
        })
    }

    /// Writes one parsed block: its rows to the access files and the rollups (its `sketch`, made
    /// by [`sketches::sketch_block`] on the parse pool, merged into the hour's summaries and
    /// per-minute traffic counters), its
    /// rejections to the rejects file.
    pub(crate) fn write_block(&mut self, pb: ParsedBlock, mut sketch: BlockSketch) -> Result<()> {
        for (bucket, minutes) in std::mem::take(&mut sketch.traffic) {
            self.traffic.add_minutes(bucket, &minutes);
        }
        self.sketches.add(sketch);
        self.counts.lines += pb.lines;
        self.counts.rows += pb.rows;
        self.counts.empty += pb.empty;
        self.counts.invalid_utf8 += pb.invalid_utf8;
        for part in pb.parts {
            self.access.write(part.bucket, &part.batch)?;
        }
        for r in &pb.rejects {
            self.rejects.write(&self.lake, &self.rt, r)?;
        }
        self.counts.rejected = self.rejects.count;
        Ok(())
    }

    pub fn counts(&self) -> LineCounts {
        self.counts
    }

    /// Closes every file and stages them all.
    pub fn finish(mut self) -> Result<LogTables> {
        let access = self.access.finish()?;
        let mut staged = access.staged;
        // Traffic rollups: one small file per partition, committed with the access files.
        staged.extend(traffic::stage_files(
            &self.traffic,
            &self.lake,
            &self.rt,
            &self.layout,
            &self.parquet,
        )?);
        // Heavy hitters and distinct IPs: two small files per partition hour, likewise.
        staged.extend(sketches::stage_files(
            &mut self.sketches,
            &self.lake,
            &self.rt,
            &self.layout,
            &self.parquet,
        )?);
        staged.extend(self.rejects.finish());
        Ok(LogTables {
            staged,
            partitions: access.partitions,
            held: access.held,
            counts: self.counts,
        })
    }
}

/// A column of an access batch, by name and type, for the rollups computed from it (traffic,
/// sketches). A mismatch is a programming error between the access schema and a rollup, reported
/// rather than panicking.
pub(crate) fn access_column<'a, T: 'static>(
    batch: &'a arrow_array::RecordBatch,
    name: &'static str,
) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or(crate::error::Error::Rollup {
            column: name,
            reason: "missing from the access batch or of another type",
        })
}
