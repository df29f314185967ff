//! `cdnlake bench`: Measure each stage (decode, parse, rollups, write, end to end) on a log, or on a
//! generated one, and how much of the end-to-end CPU the stages explain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::common::*;
use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A .gz log; without it one is generated in a temporary folder.
    log: Option<PathBuf>,
    /// Lines of the generated log.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Generate the log in `gen`'s high-cardinality mode (2M paths, 1M client IPs).
    #[arg(long)]
    high_cardinality: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        log,
        lines,
        high_cardinality,
        json,
    } = args;
    let rt = runtime()?;
    let tmp = std::env::temp_dir().join(format!("cdnlake-bench-log-{}", std::process::id()));
    let path = match log {
        Some(p) => p,
        None => {
            std::fs::create_dir_all(&tmp)?;
            let opts = GenOptions {
                lines,
                high_cardinality,
                ..GenOptions::default()
            };
            let p = tmp.join(cdn_file_name(&opts));
            eprintln!("generating {lines} lines into {} ...", p.display());
            let f = std::fs::File::create(&p)?;
            let mut gz = flate2::write::GzEncoder::new(
                std::io::BufWriter::new(f),
                flate2::Compression::default(),
            );
            generate(&opts, &mut gz)?;
            gz.finish()?.flush()?;
            p
        }
    };
    let res = cdnlake::dev::bench::run(&path, rt.handle(), 512 << 20);
    let _ = std::fs::remove_dir_all(&tmp);
    let r = res?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        outln!(
            "{}: {:.1} MB compressed, {:.1} MB of log text; {} parse threads",
            r.file,
            r.bytes_compressed as f64 / 1e6,
            r.bytes_decompressed as f64 / 1e6,
            r.threads
        )?;
        outln!(
            "{:<32} {:>10} {:>14} {:>8} {:>10}",
            "stage",
            "MB/s",
            "lines/s",
            "cores",
            "MB/cpu-s"
        )?;
        for s in &r.stages {
            outln!(
                "{:<32} {:>10.1} {:>14.0} {:>8.2} {:>10.1}",
                s.name,
                s.mb_per_s,
                s.lines_per_s,
                s.cores_used,
                s.mb_per_cpu_s
            )?;
        }
        outln!(
            "CPU-s per GB of text: stages {:.2} (decode + parse 1 core + rollups + write), end to end {:.2}: {:.0}% of end to end in no stage",
            r.stages_cpu_s_per_gb,
            r.end_to_end_cpu_s_per_gb,
            r.gap * 100.0
        )?;
        outln!(
            "peak memory (end to end): {:.0} MiB; Parquet written: {:.1} MB ({:.2}x the .gz)",
            r.end_to_end_peak_rss_mib,
            r.parquet_bytes as f64 / 1e6,
            r.parquet_bytes as f64 / r.bytes_compressed.max(1) as f64
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
