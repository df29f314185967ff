//! `cdnlake bench`: throughput of each stage on this machine, for users sizing a backfill, and
//! how much of a real run the stages explain.
//!
//! Stages, each measured alone, then the whole run:
//! - decode: the decoder thread's work (read, SHA-256 of the source, gunzip of every member, line
//!   framing into blocks), without the raw dump's copy;
//! - parse: log text to Arrow batches, one core (and all cores, for scale: not in the sum);
//! - rollups: the per-block heavy-hitter summaries, distinct-IP sketch and per-minute traffic
//!   counters that the real run computes on the parse pool, one core;
//! - write: the real writers ([`LogWriters`]: access Parquet with columns encoded in parallel,
//!   the rollups merged, the rollup files encoded), into an in-memory lake;
//! - end to end: `convert` of the file into a temporary local lake.
//!
//! The sum of the stages' CPU seconds is compared with the end-to-end run's: the gap is work no
//! stage shows (thread hand-offs, allocator and page faults under concurrency, the raw dump and
//! the commit), printed so it cannot hide.
//!
//! All rates are in MB (10^6 bytes) of decompressed log text per second, so they compare directly.
//! End to end runs first so its peak memory is not mixed up with the in-memory samples the
//! other stages use.

use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::access::block::{parse_block, BlockOptions, ParsedBlock};
use crate::convert::source::{decode_and_split, open_local, DecodeOptions};
use crate::convert::{convert_path, file_layout, ConvertOptions};
use crate::error::{Error, Result};
use crate::lake::store::Lake;
use crate::tables::access::ACCESS;
use crate::writers::sketches::{sketch_block, BlockSketch};
use crate::writers::LogWriters;

/// One stage's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub bytes: u64,
    pub lines: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub lines_per_s: f64,
    /// CPU seconds per wall second over the stage.
    pub cores_used: f64,
    /// MB per CPU second: the cost per byte, steadier than MB/s on a busy machine.
    pub mb_per_cpu_s: f64,
}

/// The whole bench report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub file: String,
    pub bytes_compressed: u64,
    pub bytes_decompressed: u64,
    pub threads: usize,
    pub stages: Vec<Stage>,
    /// Peak resident memory of the process during the end-to-end run (MiB).
    pub end_to_end_peak_rss_mib: f64,
    pub parquet_bytes: u64,
    /// CPU seconds per GB of log text of the stages that make up a run (decode, parse 1 core,
    /// rollups, write), summed.
    pub stages_cpu_s_per_gb: f64,
    /// CPU seconds per GB of log text of the end-to-end run.
    pub end_to_end_cpu_s_per_gb: f64,
    /// End to end minus the sum of the stages, as a share of end to end: what no stage explains.
    pub gap: f64,
}

/// CPU seconds used by this process so far (user + system), from /proc (Linux); 0 elsewhere.
pub(crate) fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process in MiB (VmHWM), from /proc (Linux); 0 elsewhere.
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn stage(
    name: &'static str,
    bytes: u64,
    lines: u64,
    f: impl FnOnce() -> Result<()>,
) -> Result<Stage> {
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    f()?;
    let seconds = t.elapsed().as_secs_f64().max(1e-9);
    Ok(Stage {
        name,
        bytes,
        lines,
        seconds,
        mb_per_s: bytes as f64 / 1e6 / seconds,
        lines_per_s: lines as f64 / seconds,
        cores_used: (cpu_seconds() - cpu0) / seconds,
        mb_per_cpu_s: bytes as f64 / 1e6 / (cpu_seconds() - cpu0).max(0.01),
    })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs every stage on `path` (a `.gz` log). `sample_limit` caps the decompressed bytes kept in
/// memory for the parse, rollup and write stages.
pub fn run(path: &Path, rt: &Handle, sample_limit: usize) -> Result<BenchReport> {
    let bytes_compressed = std::fs::metadata(path).map_err(io(path))?.len();

    // End to end first (see the module doc), into a throw-away local lake.
    let dir = std::env::temp_dir().join(format!("cdnlake-bench-{}", std::process::id()));
    let lake = Lake::open(dir.to_string_lossy().as_ref())?;
    let e2e_cpu0 = cpu_seconds();
    let t = Instant::now();
    let res = convert_path(&lake, rt, path, &ConvertOptions::default());
    let e2e_secs = t.elapsed().as_secs_f64().max(1e-9);
    let e2e_cpu = cpu_seconds() - e2e_cpu0;
    let peak = peak_rss_mib();
    let _ = std::fs::remove_dir_all(&dir);
    let r = res?;
    let total = r.bytes_decompressed;
    let end_to_end = Stage {
        name: "end to end (convert)",
        bytes: total,
        lines: r.lines,
        seconds: e2e_secs,
        mb_per_s: total as f64 / 1e6 / e2e_secs,
        lines_per_s: r.lines as f64 / e2e_secs,
        cores_used: e2e_cpu / e2e_secs,
        mb_per_cpu_s: total as f64 / 1e6 / e2e_cpu.max(0.01),
    };

    // The decoder thread's work, blocks dropped as they come; the first `sample_limit` bytes
    // of blocks are kept for the next stages.
    let decode_opts = DecodeOptions::default();
    let mut blocks: Vec<(u64, Vec<u8>)> = Vec::new();
    let decode = stage("decode (read, SHA-256, gunzip)", total, r.lines, || {
        let (tx, rx) = sync_channel::<crate::convert::framer::Block>(4);
        // Blocks not kept hand their buffers back, as parsed blocks do in a real run: the
        // decoder fills warm buffers instead of fresh zeroed ones.
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(2);
        let file = open_local(path)?;
        let name = path.display().to_string();
        std::thread::scope(|s| {
            let keep = s.spawn(move || {
                let mut kept = 0;
                let mut blocks = Vec::new();
                for b in rx {
                    if kept < sample_limit {
                        kept += b.data.len();
                        blocks.push((b.first_line, b.data));
                    } else {
                        let _ = spare_tx.try_send(b.data);
                    }
                }
                blocks
            });
            let res = decode_and_split(file, &name, None, &decode_opts, &tx, Some(spare_rx));
            drop(tx);
            blocks = keep.join().unwrap_or_default();
            res.map(|_| ())
        })
    })?;
    let sample_bytes: u64 = blocks.iter().map(|b| b.1.len() as u64).sum();
    let sample_lines = blocks
        .iter()
        .map(|b| memchr::memchr_iter(b'\n', &b.1).count() as u64)
        .sum();
    let schema = ACCESS.arrow_schema();
    let bo = BlockOptions::default();
    let source = r.source.clone();
    let parse = |b: &(u64, Vec<u8>)| parse_block(&b.1, b.0, &source, &schema, &bo);
    let parse_1 = stage("parse (1 core)", sample_bytes, sample_lines, || {
        for b in &blocks {
            std::hint::black_box(parse(b));
        }
        Ok(())
    })?;
    let mut parsed: Vec<ParsedBlock> = Vec::new();
    let parse_n = stage("parse (all cores)", sample_bytes, sample_lines, || {
        parsed = blocks.par_iter().map(parse).collect();
        Ok(())
    })?;
    drop(blocks);
    let mut sketches: Vec<BlockSketch> = Vec::new();
    let rollups = stage(
        "rollups per block (1 core)",
        sample_bytes,
        sample_lines,
        || {
            sketches = parsed
                .iter()
                .map(|pb| sketch_block(pb, bo.tz))
                .collect::<Result<_>>()?;
            Ok(())
        },
    )?;
    let mut parquet_bytes = 0;
    let write = stage(
        "write (Parquet, rollup merges)",
        sample_bytes,
        sample_lines,
        || {
            let lake = Lake::open("memory://")?;
            let opts = ConvertOptions::default();
            let layout = file_layout(&lake, &r.source, &r.source, &opts)?;
            let mut w = LogWriters::new(&lake, rt, &layout, opts.tz, &opts.parquet)?;
            for (pb, sk) in parsed.drain(..).zip(sketches.drain(..)) {
                w.write_block(pb, sk)?;
            }
            for st in w.finish()?.staged {
                parquet_bytes += st.sink.complete()?;
            }
            Ok(())
        },
    )?;
    let per_gb = |s: &Stage| 1000.0 / s.mb_per_cpu_s;
    let stages_cpu_s_per_gb = [&decode, &parse_1, &rollups, &write]
        .iter()
        .map(|s| per_gb(s))
        .sum::<f64>();
    let end_to_end_cpu_s_per_gb = per_gb(&end_to_end);
    Ok(BenchReport {
        file: path.display().to_string(),
        bytes_compressed,
        bytes_decompressed: total,
        threads: rayon::current_num_threads(),
        stages: vec![decode, parse_1, parse_n, rollups, write, end_to_end],
        end_to_end_peak_rss_mib: peak,
        parquet_bytes: if r.bytes_out > 0 {
            r.bytes_out
        } else {
            parquet_bytes
        },
        stages_cpu_s_per_gb,
        end_to_end_cpu_s_per_gb,
        gap: 1.0 - stages_cpu_s_per_gb / end_to_end_cpu_s_per_gb.max(1e-9),
    })
}
