//! One log file through the whole flow:
//!
//! ```text
//! source ─ tee ─> raw dump (an upload, not yet committed)            [source.rs]
//!            └──> gunzip (all members) ─> line-aligned blocks         [source.rs, decoder thread;
//!                                                                      framer.rs cuts the lines]
//!                 ─> parse blocks in parallel                          [stages.rs, rayon]
//!                 ─> access files by partition hour, traffic rollups,
//!                    rejects                                           [crate::writers, in line order]
//!                 ─> stage ─> publish every upload ─> remove the keys
//!                    an earlier run wrote and this one did not
//!                    ─> manifest (last)                                [crate::lake::commit]
//! ```
//!
//! Bounded queues sit between the stages, so memory does not grow with the file. Every upload
//! stays uncommitted until the whole input has been read and verified (gzip CRC and length): a
//! failure before that aborts them all and leaves the lake exactly as it was. Stale keys go
//! before the new manifest, so a failed delete is found again by the next run.

pub mod framer;
pub mod source;
mod stages;

use std::io::Read;
use std::path::Path as FsPath;
use std::time::Instant;

use serde::Serialize;
use tokio::runtime::Handle;

use crate::access::filename::{parse_file_name, stem};
use crate::access::time::PartitionTz;
use crate::error::{Error, Result};
use crate::lake::commit::{read_manifest, replace_manifest, Commit, Staged};
use crate::lake::descriptor::{Descriptor, PartitionBy};
use crate::lake::layout::{relative, FileLayout};
use crate::lake::manifest::{Manifest, PartitionEntry, SourceEntry, MANIFEST_VERSION};
use crate::lake::sink::ObjectSink;
use crate::lake::store::Lake;
use crate::tables::access::SCHEMA_VERSION;
use crate::writers::parquet::ParquetOptions;
use crate::writers::LogWriters;
use source::{open_local, DecodeOptions};

/// Settings of a conversion.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Overrides the domain taken from the file name.
    pub domain: Option<String>,
    /// The partition clock: the lake's (see [`ConvertOptions::for_lake`]).
    pub tz: PartitionTz,
    /// The lake's layout, `hour` or `day` (see [`ConvertOptions::for_lake`]).
    pub partition_by: PartitionBy,
    pub decode: DecodeOptions,
    pub parquet: ParquetOptions,
    /// Blocks being parsed at once (0: one per rayon thread, plus one so a thread that finishes
    /// finds the next block ready).
    pub parse_window: usize,
}

impl ConvertOptions {
    /// These options, writing the layout and on the clock that the lake's descriptor says:
    /// what every writing entry point does after [`Descriptor::ensure`].
    pub fn for_lake(mut self, d: &Descriptor) -> ConvertOptions {
        self.tz = d.partition_tz;
        self.partition_by = d.partition_by;
        self
    }
}

/// What a run did, printed by `--json` and returned to library users.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The file name.
    pub source: String,
    /// Path or URL, signed query removed.
    pub location: String,
    pub domain: String,
    pub lines: u64,
    pub rows: u64,
    pub rejected: u64,
    pub empty: u64,
    pub invalid_utf8: u64,
    pub bytes_in: u64,
    pub bytes_decompressed: u64,
    pub bytes_out: u64,
    /// `dt=YYYY-MM-DD/hour=HH` (`dt=YYYY-MM-DD` in a day lake) of each partition written.
    pub partitions: Vec<String>,
    /// Every key written, relative to the destination, the manifest last.
    pub keys: Vec<String>,
    /// Keys of an earlier run that this run no longer writes, now removed.
    pub removed: Vec<String>,
    pub seconds: f64,
}

/// Converts a local log file (`.gz` or plain text).
pub fn convert_path(
    lake: &Lake,
    rt: &Handle,
    path: &FsPath,
    opts: &ConvertOptions,
) -> Result<RunReport> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a file"),
        })?;
    // Check the name before opening, so a bad name is reported even for a missing file.
    let layout = file_layout(lake, &name, &path.display().to_string(), opts)?;
    let file = open_local(path)?;
    convert_reader(lake, rt, &layout, &path.display().to_string(), file, opts)
}

/// Where a file's objects go: domain from `--domain` or the file name, date folder from the name.
pub fn file_layout(
    lake: &Lake,
    name: &str,
    location: &str,
    opts: &ConvertOptions,
) -> Result<FileLayout> {
    let parsed = parse_file_name(name);
    let domain = match (&opts.domain, &parsed) {
        (Some(d), _) if !d.trim().is_empty() => d.trim().to_string(),
        (_, Some(p)) => p.domain.clone(),
        _ => {
            return Err(Error::NoDomain {
                file: location.to_string(),
            })
        }
    };
    Ok(FileLayout {
        prefix: lake.prefix.clone(),
        domain,
        date_folder: parsed.map_or_else(|| "undated".to_string(), |p| p.date_folder()),
        file_name: name.to_string(),
        stem: stem(name).to_string(),
        partition_by: opts.partition_by,
    })
}

/// Converts one log stream. `layout` says where its objects go; `location` names it in errors.
pub fn convert_reader(
    lake: &Lake,
    rt: &Handle,
    layout: &FileLayout,
    location: &str,
    input: impl Read + Send,
    opts: &ConvertOptions,
) -> Result<RunReport> {
    let started = Instant::now();
    let manifest_key = layout.manifest();
    let previous = read_manifest(lake, rt, &manifest_key)?;
    // This run's uploads stage in a folder of its own (other runs of the same file may be in
    // flight); what killed runs of this file left is removed first, a partial manifest too.
    let lake = &lake.for_work(layout.staging_group())?;
    lake.remove_partial_writes(&manifest_key)?;

    // Read: tee into the raw dump, gunzip, frame, parse in parallel, write in line order.
    let raw = ObjectSink::create(lake, layout.raw(), rt)?;
    let mut writers = LogWriters::new(lake, rt, layout, opts.tz, &opts.parquet)?;
    let (stats, raw) = stages::run(
        input,
        location,
        &layout.file_name,
        raw,
        opts,
        |block, sketch| writers.write_block(block, sketch),
    )?;
    // The input is complete and verified; every line must be accounted for.
    writers.counts().check(location)?;

    // Stage: finish every file (the steps that can still fail on our side).
    let tables = writers.finish()?;
    let mut commit = Commit::new();
    commit.stage(Staged {
        sink: raw,
        rows: None,
    });
    let tool = format!("cdnlake {}", env!("CARGO_PKG_VERSION"));
    // Days whose compacted access object holds this file already have its rows: the same rows
    // are not published again; other rows are spliced into the day object (compact::access).
    let (staged, unpublished) = crate::compact::access::drop_unchanged(
        &lake.prefix,
        &tables.held,
        &stats.sha256,
        &tool,
        tables.staged,
        1,
    );
    commit.stage_all(staged);

    // Commit: publish every object, remove what an earlier run wrote and this one did not, and
    // write the manifest last.
    let objects = commit.publish(lake)?;
    let manifest_rel = relative(&lake.prefix, &manifest_key);
    let objects = crate::compact::access::finish_held(
        lake,
        rt,
        &crate::compact::access::Converted {
            domain: &layout.domain,
            source: &layout.file_name,
            manifest: &manifest_rel,
            sha256: &stats.sha256,
            tool: &tool,
        },
        &tables.held,
        objects,
        unpublished,
        previous.as_ref(),
    )?;
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        schema_version: SCHEMA_VERSION,
        tool,
        domain: layout.domain.clone(),
        partition_tz: opts.tz.to_string(),
        source: SourceEntry {
            name: layout.file_name.clone(),
            location: location.to_string(),
            bytes: stats.bytes_in,
            sha256: stats.sha256.clone(),
            gzip: stats.gzip,
            bytes_decompressed: stats.bytes_decompressed,
        },
        lines: tables.counts.lines,
        rows: tables.counts.rows,
        rejected: tables.counts.rejected,
        empty: tables.counts.empty,
        invalid_utf8: tables.counts.invalid_utf8,
        partitions: tables.partitions,
        objects,
    };
    let removed = replace_manifest(lake, rt, &manifest_key, previous.as_ref(), &manifest, |k| {
        layout.owns(k)
    })?;
    // Every staged object was renamed into place; the run's folder goes when `lake` is dropped.
    Ok(RunReport::of(
        &manifest,
        relative(&lake.prefix, &manifest_key),
        removed,
        started,
    ))
}

impl RunReport {
    /// The report of a committed run, from its manifest.
    fn of(m: &Manifest, manifest_key: String, removed: Vec<String>, started: Instant) -> RunReport {
        let mut keys: Vec<String> = m.keys().map(str::to_string).collect();
        keys.push(manifest_key);
        RunReport {
            source: m.source.name.clone(),
            location: m.source.location.clone(),
            domain: m.domain.clone(),
            lines: m.lines,
            rows: m.rows,
            rejected: m.rejected,
            empty: m.empty,
            invalid_utf8: m.invalid_utf8,
            bytes_in: m.source.bytes,
            bytes_decompressed: m.source.bytes_decompressed,
            // Everything but the raw dump, which is the input itself.
            bytes_out: m.objects.iter().skip(1).map(|o| o.bytes).sum(),
            partitions: m.partitions.iter().map(PartitionEntry::path).collect(),
            keys,
            removed,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}
