//! One log file through the whole flow:
//!
//! ```text
//! source ─ tee ─> raw dump (an upload, not yet committed)
//!            └──> gunzip (all members) ─> line-aligned blocks   [decoder thread]
//!                 ─> parse blocks in parallel                    [rayon]
//!                 ─> per-partition Parquet writers (columns encoded on rayon), traffic
//!                    rollups, rejects                             [this thread, in line order]
//!                 ─> commit every upload (concurrently) ─> remove the keys an earlier run
//!                    wrote and this one did not ─> manifest (last)
//! ```
//!
//! Bounded queues sit between the stages, so memory does not grow with the file. Every upload
//! stays uncommitted until the whole input has been read and verified (gzip CRC and length): a
//! failure before that aborts them all and leaves the lake exactly as it was. Stale keys go
//! before the new manifest, so a failed delete is found again by the next run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path as FsPath;
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;
use std::time::Instant;

use object_store::path::Path;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::access::block::{parse_block, BlockOptions, ParsedBlock};
use crate::access::filename::{parse_file_name, stem};
use crate::access::schema::{ACCESS, SCHEMA_VERSION};
use crate::access::time::PartitionTz;
use crate::error::{Error, Result};
use crate::lake::layout::{relative, FileLayout};
use crate::lake::manifest::{Manifest, ObjectEntry, PartitionEntry, SourceEntry, MANIFEST_VERSION};
use crate::lake::parquet::{writer_properties, ParquetOptions, PartFile};
use crate::lake::rejects::RejectWriter;
use crate::lake::store::{Lake, ObjectSink};
use crate::source::{decode_and_split, open_local, DecodeOptions, DecodeStats};
use crate::traffic::{self, TrafficAccumulator};

/// Settings of a conversion.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Overrides the domain taken from the file name.
    pub domain: Option<String>,
    pub tz: PartitionTz,
    pub decode: DecodeOptions,
    pub parquet: ParquetOptions,
    /// Blocks being parsed at once (0: one per rayon thread, plus one so a thread that finishes
    /// finds the next block ready).
    pub parse_window: usize,
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
    /// `dt=YYYY-MM-DD/hour=HH` of each partition written.
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
    })
}

/// One partition hour being written.
struct PartitionState {
    dt: String,
    hour: String,
    current: Option<PartFile>,
    /// Files closed because they reached the size limit, not yet committed.
    done: Vec<(ObjectSink, u64)>,
    files: usize,
    rows: u64,
}

/// Everything the writer stage holds open.
struct Writers<'a> {
    lake: &'a Lake,
    rt: &'a Handle,
    layout: &'a FileLayout,
    opts: &'a ConvertOptions,
    props: parquet::file::properties::WriterProperties,
    schema: arrow::datatypes::SchemaRef,
    partitions: BTreeMap<i64, PartitionState>,
    rejects: RejectWriter,
    /// Per-minute rollups of every row written (issue 5), staged with the access files.
    traffic: TrafficAccumulator,
    lines: u64,
    rows: u64,
    empty: u64,
    invalid_utf8: u64,
}

impl Writers<'_> {
    fn write_block(&mut self, pb: ParsedBlock) -> Result<()> {
        self.lines += pb.lines;
        self.rows += pb.rows;
        self.empty += pb.empty;
        self.invalid_utf8 += pb.invalid_utf8;
        for part in pb.parts {
            self.traffic.add(part.bucket, &part.batch)?;
            let tz = self.opts.tz;
            let st = self.partitions.entry(part.bucket).or_insert_with(|| {
                let (dt, hour) = tz.partition_values(part.bucket);
                PartitionState {
                    dt,
                    hour,
                    current: None,
                    done: Vec::new(),
                    files: 0,
                    rows: 0,
                }
            });
            if st.current.is_none() {
                let key = self.layout.access(&st.dt, &st.hour, st.files);
                st.files += 1;
                st.current = Some(PartFile::create(
                    self.lake,
                    key,
                    self.schema.clone(),
                    self.props.clone(),
                    self.rt,
                )?);
            }
            if let Some(f) = st.current.as_mut() {
                f.write(&part.batch)?;
                st.rows += part.batch.num_rows() as u64;
                if f.size() >= self.opts.parquet.max_file_bytes {
                    if let Some(f) = st.current.take() {
                        let rows = f.rows;
                        st.done.push((f.finish()?, rows));
                    }
                }
            }
        }
        for r in &pb.rejects {
            self.rejects.write(self.lake, self.rt, r)?;
        }
        Ok(())
    }
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
    let schema = ACCESS.arrow_schema();
    let block_opts = Arc::new(BlockOptions {
        tz: opts.tz,
        max_line: opts.decode.max_line,
    });
    let source_file: Arc<str> = Arc::from(layout.file_name.as_str());
    let window = if opts.parse_window == 0 {
        rayon::current_num_threads() + 1
    } else {
        opts.parse_window
    };

    let raw = ObjectSink::create(lake, layout.raw(), rt)?;
    let mut w = Writers {
        lake,
        rt,
        layout,
        opts,
        props: writer_properties(&ACCESS, &opts.parquet)?,
        schema: schema.clone(),
        partitions: BTreeMap::new(),
        rejects: RejectWriter::new(layout.rejects()),
        traffic: TrafficAccumulator::new(opts.tz),
        lines: 0,
        rows: 0,
        empty: 0,
        invalid_utf8: 0,
    };

    let (block_tx, block_rx) = sync_channel(window);
    let (decoded, written): (Result<(DecodeStats, Option<ObjectSink>)>, Result<()>) =
        std::thread::scope(|s| {
            let decoder = s.spawn(move || {
                decode_and_split(input, location, Some(raw), &opts.decode, &block_tx)
            });
            let written = (|| -> Result<()> {
                let (res_tx, res_rx) = channel::<(u64, Result<ParsedBlock>)>();
                let mut pending: BTreeMap<u64, ParsedBlock> = BTreeMap::new();
                let mut next = 0u64;
                let mut in_flight = 0usize;
                let mut source_done = false;
                loop {
                    while let Ok((seq, pb)) = res_rx.try_recv() {
                        in_flight -= 1;
                        pending.insert(seq, pb?);
                    }
                    while let Some(pb) = pending.remove(&next) {
                        w.write_block(pb)?;
                        next += 1;
                    }
                    if !source_done && in_flight + pending.len() < window {
                        match block_rx.recv() {
                            Ok(block) => {
                                in_flight += 1;
                                let tx = res_tx.clone();
                                let (schema, bo, sf) =
                                    (schema.clone(), block_opts.clone(), source_file.clone());
                                rayon::spawn(move || {
                                    // A panic in a rayon task would abort the process (and every
                                    // invocation in flight in `serve`): report it as this file's
                                    // error instead.
                                    let pb = std::panic::catch_unwind(
                                        std::panic::AssertUnwindSafe(|| {
                                            parse_block(
                                                &block.data,
                                                block.first_line,
                                                &sf,
                                                &schema,
                                                &bo,
                                            )
                                        }),
                                    )
                                    .map_err(|_| {
                                        Error::Internal(format!(
                                            "parsing the block at line {} panicked",
                                            block.first_line
                                        ))
                                    });
                                    let _ = tx.send((block.seq, pb));
                                });
                            }
                            Err(_) => source_done = true,
                        }
                        continue;
                    }
                    if in_flight == 0 {
                        // Here the source is done or the window is full of blocks that cannot
                        // be written: either everything is written or a block went missing.
                        if source_done && pending.is_empty() {
                            return Ok(());
                        }
                        return Err(Error::Internal(format!("block {next} never arrived")));
                    }
                    // The writer holds a sender itself, so this only fails if every task is gone.
                    let (seq, pb) = res_rx
                        .recv()
                        .map_err(|_| Error::Internal("parser stopped".into()))?;
                    in_flight -= 1;
                    pending.insert(seq, pb?);
                }
            })();
            // Unblock the decoder if the writer stopped early, then collect its result.
            drop(block_rx);
            let decoded = decoder
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("decoder thread panicked".into())));
            (decoded, written)
        });
    // A decoding error explains a writer error (not the other way round): report it first,
    // unless the decoder only stopped because the writer failed.
    let (stats, raw) = match decoded {
        Err(Error::Cancelled { .. }) if written.is_err() => {
            return Err(written
                .err()
                .unwrap_or_else(|| Error::Internal("writer failed".into())))
        }
        other => other?,
    };
    written?;
    let raw = raw.ok_or_else(|| Error::Internal("raw dump missing".into()))?;

    // Every line must be accounted for before anything becomes visible.
    let rejected = w.rejects.count;
    if w.lines != w.rows + rejected + w.empty {
        return Err(Error::Internal(format!(
            "{location}: line accounting is off: {} lines != {} rows + {rejected} rejected + {} empty",
            w.lines, w.rows, w.empty
        )));
    }

    // The input is complete and verified. First finish every file (the steps that can still
    // fail on our side), then commit the uploads, the manifest last.
    let mut staged: Vec<(ObjectSink, Option<u64>)> = vec![(raw, None)];
    let mut partitions = Vec::new();
    let mut partition_names = Vec::new();
    for st in std::mem::take(&mut w.partitions).into_values() {
        staged.extend(st.done.into_iter().map(|(sink, rows)| (sink, Some(rows))));
        if let Some(f) = st.current {
            let rows = f.rows;
            staged.push((f.finish()?, Some(rows)));
        }
        partition_names.push(format!("dt={}/hour={}", st.dt, st.hour));
        partitions.push(PartitionEntry {
            dt: st.dt,
            hour: st.hour,
            rows: st.rows,
        });
    }
    // Traffic rollups: one small file per partition hour, committed with the access files.
    for (sink, rows) in traffic::stage_files(&w.traffic, lake, rt, layout, &opts.parquet)? {
        staged.push((sink, Some(rows)));
    }
    if let Some(sink) = w.rejects.into_sink() {
        staged.push((sink, Some(rejected)));
    }
    // Commit every upload at once: one round trip to the store rather than one per object.
    let keys: Vec<(String, Option<u64>)> = staged
        .iter()
        .map(|(sink, rows)| (relative(&lake.prefix, sink.key()), *rows))
        .collect();
    let sizes = ObjectSink::complete_all(staged.into_iter().map(|(sink, _)| sink).collect())?;
    let objects: Vec<ObjectEntry> = keys
        .into_iter()
        .zip(sizes)
        .map(|((key, rows), bytes)| ObjectEntry { key, bytes, rows })
        .collect();
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        schema_version: SCHEMA_VERSION,
        tool: format!("cdnlake {}", env!("CARGO_PKG_VERSION")),
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
        lines: w.lines,
        rows: w.rows,
        rejected,
        empty: w.empty,
        invalid_utf8: w.invalid_utf8,
        partitions,
        objects,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|source| Error::Json {
        what: format!("manifest {manifest_key}"),
        source,
    })?;
    // Remove what an earlier run wrote and this one did not, before the new manifest replaces
    // the old one: if a delete fails, the old manifest still lists the key and a retry finds it.
    let keep: BTreeSet<&str> = manifest.keys().collect();
    let mut removed = Vec::new();
    if let Some(prev) = &previous {
        for k in prev.keys().filter(|k| !keep.contains(k)) {
            rt.block_on(lake.delete(&lake.key_of(k)))?;
            removed.push(k.to_string());
        }
    }
    rt.block_on(lake.put(&manifest_key, body))?;
    let bytes_out = manifest.objects.iter().skip(1).map(|o| o.bytes).sum();
    let mut keys: Vec<String> = manifest.keys().map(str::to_string).collect();
    keys.push(relative(&lake.prefix, &manifest_key));
    Ok(RunReport {
        source: layout.file_name.clone(),
        location: location.to_string(),
        domain: layout.domain.clone(),
        lines: manifest.lines,
        rows: manifest.rows,
        rejected,
        empty: manifest.empty,
        invalid_utf8: manifest.invalid_utf8,
        bytes_in: stats.bytes_in,
        bytes_decompressed: stats.bytes_decompressed,
        bytes_out,
        partitions: partition_names,
        keys,
        removed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads the manifest of an earlier run, if any. An unreadable one is reported and ignored (the
/// new run rewrites everything it owns anyway; only stale-key cleanup is lost).
fn read_manifest(lake: &Lake, rt: &Handle, key: &Path) -> Result<Option<Manifest>> {
    let Some(bytes) = rt.block_on(lake.get_opt(key))? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(m) => Ok(Some(m)),
        Err(e) => {
            tracing::warn!(%key, error = %e, "ignoring unreadable manifest of an earlier run");
            Ok(None)
        }
    }
}
