//! `cdnlake bench`: throughput of each stage on this machine, for users sizing a backfill.
//!
//! Stages, each measured alone and then together:
//! - gunzip: decompressing the file (all members), nothing else;
//! - parse: log text to Arrow column builders, one core, then all cores;
//! - encode: Arrow batches to zstd Parquet (in memory), one writer;
//! - end to end: `convert` of the file into a temporary local lake.
//!
//! All rates are in MB (10^6 bytes) of decompressed log text per second, so they compare directly.
//! End to end runs first so its peak memory is not mixed up with the in-memory samples the
//! other stages use.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::access::block::{parse_block, BlockOptions};
use crate::convert::{convert_path, ConvertOptions};
use crate::error::{Error, Result};
use crate::lake::store::Lake;
use crate::tables::access::ACCESS;
use crate::writers::parquet::{writer_properties, ParquetOptions};

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
}

/// CPU seconds used by this process so far (user + system), from /proc (Linux); 0 elsewhere.
pub fn cpu_seconds() -> f64 {
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
pub fn peak_rss_mib() -> f64 {
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
/// memory for the parse and encode stages.
pub fn run(path: &Path, rt: &Handle, sample_limit: usize) -> Result<BenchReport> {
    let bytes_compressed = std::fs::metadata(path).map_err(io(path))?.len();

    // End to end first (see the module doc), into a throw-away local lake.
    let dir = std::env::temp_dir().join(format!("cdnlake-bench-{}", std::process::id()));
    let lake = Lake::open(dir.to_string_lossy().as_ref())?;
    let mut report = None;
    let e2e_cpu0 = cpu_seconds();
    let t = Instant::now();
    let res = convert_path(&lake, rt, path, &ConvertOptions::default());
    let e2e_secs = t.elapsed().as_secs_f64().max(1e-9);
    let e2e_cores = (cpu_seconds() - e2e_cpu0) / e2e_secs;
    let peak = peak_rss_mib();
    let _ = std::fs::remove_dir_all(&dir);
    if let Ok(r) = &res {
        report = Some(r.clone());
    }
    let r = res?;
    let total = r.bytes_decompressed;
    let end_to_end = Stage {
        name: "end to end (convert)",
        bytes: total,
        lines: r.lines,
        seconds: e2e_secs,
        mb_per_s: total as f64 / 1e6 / e2e_secs,
        lines_per_s: r.lines as f64 / e2e_secs,
        cores_used: e2e_cores,
        mb_per_cpu_s: total as f64 / 1e6 / (e2e_cores * e2e_secs).max(0.01),
    };

    // Gunzip alone.
    let gunzip = stage("gunzip", total, r.lines, || {
        let f = std::fs::File::open(path).map_err(io(path))?;
        let mut d =
            flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(256 * 1024, f));
        let mut buf = vec![0u8; 256 * 1024];
        while d.read(&mut buf).map_err(io(path))? > 0 {}
        Ok(())
    })?;

    // A sample of the text in memory, in line-aligned blocks of the pipeline's size.
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f))
        .take(sample_limit as u64)
        .read_to_end(&mut text)
        .map_err(io(path))?;
    if let Some(end) = memchr::memrchr(b'\n', &text) {
        text.truncate(end + 1);
    }
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end =
            (start + crate::convert::source::DecodeOptions::default().block_size).min(text.len());
        let end = memchr::memrchr(b'\n', &text[start..end]).map_or(end, |i| start + i + 1);
        blocks.push(&text[start..end]);
        start = end;
    }
    let sample_bytes = text.len() as u64;
    let sample_lines = memchr::memchr_iter(b'\n', &text).count() as u64;
    let schema = ACCESS.arrow_schema();
    let bo = BlockOptions::default();
    let parse_1 = stage("parse (1 core)", sample_bytes, sample_lines, || {
        for b in &blocks {
            std::hint::black_box(parse_block(b, 1, "bench", &schema, &bo));
        }
        Ok(())
    })?;
    let mut parsed = Vec::new();
    let parse_n = stage("parse (all cores)", sample_bytes, sample_lines, || {
        parsed = blocks
            .par_iter()
            .map(|b| parse_block(b, 1, "bench", &schema, &bo))
            .collect();
        Ok(())
    })?;
    let props = writer_properties(&ACCESS, &ParquetOptions::default())?;
    let mut parquet_bytes = 0;
    let encode = stage(
        "encode (Arrow -> zstd Parquet)",
        sample_bytes,
        sample_lines,
        || {
            let mut w =
                parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
                    .map_err(|source| Error::Parquet {
                        key: "bench".into(),
                        source,
                    })?;
            for p in parsed.iter().flat_map(|p| &p.parts) {
                w.write(&p.batch).map_err(|source| Error::Parquet {
                    key: "bench".into(),
                    source,
                })?;
            }
            parquet_bytes = w
                .into_inner()
                .map_err(|source| Error::Parquet {
                    key: "bench".into(),
                    source,
                })?
                .len() as u64;
            Ok(())
        },
    )?;
    let _ = report;
    Ok(BenchReport {
        file: path.display().to_string(),
        bytes_compressed,
        bytes_decompressed: total,
        threads: rayon::current_num_threads(),
        stages: vec![gunzip, parse_1, parse_n, encode, end_to_end],
        end_to_end_peak_rss_mib: peak,
        parquet_bytes: r.bytes_out,
    })
    .map(|mut b| {
        if b.parquet_bytes == 0 {
            b.parquet_bytes = parquet_bytes;
        }
        b
    })
}
