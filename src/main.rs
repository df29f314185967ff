//! The `cdnlake` command: argument parsing and calls into the library, nothing more.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use cdnlake::access::time::PartitionTz;
use cdnlake::lake::store::Lake;
use cdnlake::pipeline::{convert_path, ConvertOptions, RunReport};

#[derive(Parser)]
#[command(
    name = "cdnlake",
    version,
    about = "Alibaba Cloud CDN access logs into a Parquet data lake"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert log files (.gz or plain text; a folder means every log file in it) into the lake.
    Convert {
        /// Log files or folders.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Destination: a path, file:///abs/path, s3://bucket/prefix or memory://.
        #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
        dest: String,
        /// Domain to use when the file name does not say (overrides the name).
        #[arg(long, env = "CDNLAKE_DOMAIN")]
        domain: Option<String>,
        /// Time zone of the dt/hour partitions, a fixed offset.
        #[arg(long, env = "CDNLAKE_PARTITION_TZ", default_value = "+08:00")]
        partition_tz: String,
        /// Print one JSON run report per file on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CDNLAKE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cdnlake: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn parse_tz(s: &str) -> anyhow::Result<PartitionTz> {
    match PartitionTz::parse(s) {
        Some(tz) => Ok(tz),
        None => bail!("invalid --partition-tz {s:?}: expected a fixed offset like +08:00 or UTC"),
    }
}

/// Expands folders into the log files they hold (sorted, not recursive).
fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list folder", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                            !n.starts_with('.')
                                && (n.ends_with(".gz")
                                    || cdnlake::access::filename::parse_file_name(n).is_some())
                        })
                })
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("{}: folder holds no log files (*.gz)", p.display());
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn print_summary(r: &RunReport) {
    eprintln!(
        "{}: {} lines -> {} rows, {} rejected, {} empty ({} partitions, {:.1} MB in, {:.1} MB decompressed, {:.1} MB out) in {:.2}s",
        r.location,
        r.lines,
        r.rows,
        r.rejected,
        r.empty,
        r.partitions.len(),
        r.bytes_in as f64 / 1e6,
        r.bytes_decompressed as f64 / 1e6,
        r.bytes_out as f64 / 1e6,
        r.seconds
    );
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Convert {
            inputs,
            dest,
            domain,
            partition_tz,
            json,
        } => {
            let opts = ConvertOptions {
                domain,
                tz: parse_tz(&partition_tz)?,
                ..ConvertOptions::default()
            };
            let files = expand_inputs(&inputs)?;
            let lake = Lake::open(&dest)?;
            let rt = runtime()?;
            let mut failed = 0;
            for f in &files {
                match convert_path(&lake, rt.handle(), f, &opts) {
                    Ok(r) => {
                        if json {
                            println!("{}", serde_json::to_string(&r)?);
                        } else {
                            print_summary(&r);
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("cdnlake: error: {e}");
                    }
                }
            }
            if failed > 0 {
                if files.len() > 1 {
                    eprintln!("cdnlake: {failed} of {} files failed", files.len());
                }
                return Ok(ExitCode::FAILURE);
            }
            if !json {
                eprintln!("lake: {dest}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
