//! `cdnlake gen`: Write a deterministic synthetic CDN log (for demos, tests and benchmarks).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Number of lines (empty and malformed ones included).
    #[arg(long)]
    lines: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "cdn.example.com")]
    domain: String,
    /// Time of the first line, RFC 3339.
    #[arg(long, default_value = "2024-03-05T08:30:00+08:00")]
    start: String,
    /// Seconds from the first line to the last.
    #[arg(long, default_value_t = 3599)]
    span: i64,
    /// Share of malformed lines (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    bad_fraction: f64,
    /// Values as varied as a busy domain's: 2M paths and 1M client IPs with Zipf popularity,
    /// thousands of user agents (dictionaries overflow, the top lists cut), for benchmarks.
    #[arg(long)]
    high_cardinality: bool,
    /// Output file (`.gz` is gzipped), or a folder to get a CDN-style file name.
    #[arg(long)]
    out: PathBuf,
    /// Also write what was generated (counts, sums) as JSON to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        lines,
        seed,
        domain,
        start,
        span,
        bad_fraction,
        high_cardinality,
        out,
        summary,
    } = args;
    let start = chrono::DateTime::parse_from_rfc3339(&start).with_context(|| {
        format!("invalid --start {start:?}: expected RFC 3339 like 2024-03-05T08:30:00+08:00")
    })?;
    if !(0.0..=1.0).contains(&bad_fraction) {
        bail!("invalid --bad-fraction {bad_fraction}: expected 0 to 1");
    }
    let opts = GenOptions {
        lines,
        seed,
        domain,
        start_micros: start.timestamp_micros(),
        span_secs: span,
        bad_fraction,
        high_cardinality,
        ..GenOptions::default()
    };
    let path = if out.is_dir() {
        out.join(cdn_file_name(&opts))
    } else {
        out
    };
    let file = std::fs::File::create(&path)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let s = if path.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::default());
        let s = generate(&opts, &mut gz)?;
        gz.finish()?;
        s
    } else {
        generate(&opts, &mut w)?
    };
    w.flush()?;
    if let Some(sp) = summary {
        std::fs::write(&sp, serde_json::to_vec_pretty(&s)?)
            .with_context(|| format!("{}: cannot write", sp.display()))?;
    }
    eprintln!(
        "{}: {} lines ({} rows, {} malformed, {} empty), {:.1} MB of log text",
        path.display(),
        s.lines,
        s.rows,
        s.rejected_lines.len(),
        s.empty,
        s.bytes as f64 / 1e6
    );
    outln!("{}", path.display())?;
    Ok(ExitCode::SUCCESS)
}
