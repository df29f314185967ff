//! The `cdnlake` command: argument parsing and calls into the library, nothing more.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use std::io::Write;

use cdnlake::access::time::PartitionTz;
use cdnlake::ddl;
use cdnlake::gen::{cdn_file_name, generate, GenOptions};
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
    /// Write a deterministic synthetic CDN log (for demos, tests and benchmarks).
    Gen {
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
        /// Output file (`.gz` is gzipped), or a folder to get a CDN-style file name.
        #[arg(long)]
        out: PathBuf,
        /// Also write what was generated (counts, sums) as JSON to this file.
        #[arg(long)]
        summary: Option<PathBuf>,
    },
    /// Print DDL for DuckDB or MaxCompute, generated from the table definitions.
    Ddl {
        #[arg(long, value_enum)]
        dialect: DialectArg,
        /// Print ALTER TABLE ... ADD PARTITION for the partitions the manifests record (MaxCompute).
        #[arg(long)]
        partitions: bool,
        #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
        dest: String,
        /// OSS endpoint host for MaxCompute LOCATION (e.g. oss-cn-hangzhou-internal.aliyuncs.com).
        #[arg(long, env = "CDNLAKE_OSS_ENDPOINT")]
        oss_endpoint: Option<String>,
    },
    /// Summarise the traffic rollups: totals, hit ratio, status mix, response-time quantiles,
    /// requests and bytes per hour.
    Report {
        #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
        dest: String,
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Minutes from this instant on, RFC 3339 (e.g. 2024-03-05T09:00:00+08:00).
        #[arg(long)]
        from: Option<String>,
        /// Minutes before this instant, RFC 3339.
        #[arg(long)]
        to: Option<String>,
        /// Wall clock of the per-hour rows, a fixed offset.
        #[arg(long, env = "CDNLAKE_PARTITION_TZ", default_value = "+08:00")]
        partition_tz: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DialectArg {
    Duckdb,
    Maxcompute,
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

fn parse_instant(flag: &str, s: Option<&str>) -> anyhow::Result<Option<i64>> {
    s.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_micros())
            .with_context(|| {
                format!("invalid {flag} {s:?}: expected RFC 3339 like 2024-03-05T09:00:00+08:00")
            })
    })
    .transpose()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Report {
            dest,
            domain,
            from,
            to,
            partition_tz,
            json,
        } => {
            let filter = cdnlake::report::ReportFilter {
                domain,
                from_micros: parse_instant("--from", from.as_deref())?,
                to_micros: parse_instant("--to", to.as_deref())?,
            };
            let tz = parse_tz(&partition_tz)?;
            let lake = Lake::open(&dest)?;
            let rt = runtime()?;
            let rows = rt.block_on(cdnlake::report::read_rollups(&lake, &filter))?;
            let report = cdnlake::report::summarise(&rows, &filter, tz);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", cdnlake::report::render_text(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gen {
            lines,
            seed,
            domain,
            start,
            span,
            bad_fraction,
            out,
            summary,
        } => {
            let start = chrono::DateTime::parse_from_rfc3339(&start).with_context(|| {
                format!(
                    "invalid --start {start:?}: expected RFC 3339 like 2024-03-05T08:30:00+08:00"
                )
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
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Ddl {
            dialect,
            partitions,
            dest,
            oss_endpoint,
        } => {
            if partitions {
                let lake = Lake::open(&dest)?;
                let rt = runtime()?;
                let manifests = rt.block_on(cdnlake::lake::manifest::list_manifests(&lake))?;
                print!(
                    "{}",
                    ddl::maxcompute_partitions(ddl::manifest_partitions(&manifests))
                );
                return Ok(ExitCode::SUCCESS);
            }
            match dialect {
                DialectArg::Duckdb => print!("{}", ddl::duckdb(&dest)),
                DialectArg::Maxcompute => {
                    print!("{}", ddl::maxcompute(&dest, oss_endpoint.as_deref()))
                }
            }
            Ok(ExitCode::SUCCESS)
        }
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
