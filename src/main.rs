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
use cdnlake::handler::{handle_parsed, HandlerOptions, InvocationReport};
use cdnlake::http::{AllowList, HttpOptions};
use cdnlake::lake::store::{Credentials, Lake, OssOptions};
use cdnlake::pipeline::{convert_path, ConvertOptions, RunReport};
use cdnlake::server::{serve, ServerOptions, MAX_BODY};
use cdnlake::source::Progress;

/// The static musl build (the FC deployment) uses jemalloc: with musl's own allocator `convert`
/// takes 75% longer, most of it in the kernel (see the comment in Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use std::sync::Arc;

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
    /// Measure each stage (gunzip, parse, encode, end to end) on a log, or on a generated one.
    Bench {
        /// A .gz log; without it one is generated in a temporary folder.
        log: Option<PathBuf>,
        /// Lines of the generated log.
        #[arg(long, default_value_t = 1_000_000)]
        lines: u64,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print DDL for DuckDB or MaxCompute, generated from the table definitions.
    Ddl {
        #[arg(long, value_enum)]
        dialect: DialectArg,
        /// Print ALTER TABLE ... ADD PARTITION for the partitions the lake holds (MaxCompute):
        /// access and traffic from the manifests, cache_audit and domain_audit from their folders.
        #[arg(long)]
        partitions: bool,
        /// With --partitions: only partitions with dt on or after this date (YYYY-MM-DD, or the
        /// date of an RFC 3339 instant as written, e.g. 2024-03-05T00:00:00+08:00).
        #[arg(long, requires = "partitions")]
        since: Option<String>,
        #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
        dest: String,
        /// OSS endpoint host for MaxCompute LOCATION (e.g. oss-cn-hangzhou-internal.aliyuncs.com).
        #[arg(long, env = "CDNLAKE_OSS_ENDPOINT")]
        oss_endpoint: Option<String>,
    },
    /// Handle one CDN event file (as FC would post it) and exit; `-` reads stdin. Comments and
    /// trailing commas are accepted.
    Handle {
        /// Event JSON file, or `-` for stdin.
        event: PathBuf,
        #[command(flatten)]
        common: EventArgs,
        /// Print the invocation report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Serve the Function Compute HTTP contract (POST /invoke, POST /initialize).
    Serve {
        /// Address to listen on (FC requires 0.0.0.0).
        #[arg(long, env = "CDNLAKE_LISTEN", default_value = "0.0.0.0:9000")]
        listen: String,
        #[command(flatten)]
        common: EventArgs,
    },
    /// Summarise the traffic rollups: totals, hit ratio, status mix, response-time quantiles,
    /// requests and bytes per hour; and the access rows: top 10 paths, client IPs, referers and
    /// user agents by requests and by bytes.
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
        /// Also write a self-contained HTML page with charts to this file.
        #[arg(long)]
        html: Option<PathBuf>,
    },
}

/// Settings shared by `handle` and `serve`.
#[derive(clap::Args)]
struct EventArgs {
    /// Destination: a path, file:///abs/path, oss://bucket/prefix, s3://bucket/prefix or memory://.
    #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
    dest: String,
    /// Hosts logs may be fetched from (exact, or *.suffix); repeat or separate with commas.
    #[arg(long = "allow-host", env = "CDNLAKE_ALLOWED_HOSTS", value_delimiter = ',',
          default_value = cdnlake::http::DEFAULT_ALLOWED_HOSTS)]
    allow_host: Vec<String>,
    /// OSS endpoint host (default s3.oss-<region>.aliyuncs.com).
    #[arg(long, env = "CDNLAKE_OSS_ENDPOINT")]
    oss_endpoint: Option<String>,
    /// OSS region id, e.g. cn-hangzhou (in serve, default from the x-fc-region header).
    #[arg(long, env = "CDNLAKE_OSS_REGION")]
    oss_region: Option<String>,
    /// Time zone of the dt/hour partitions, a fixed offset.
    #[arg(long, env = "CDNLAKE_PARTITION_TZ", default_value = "+08:00")]
    partition_tz: String,
}

/// OSS settings for the CLI: endpoint and region from flags (or their variables), credentials
/// from the `ALIBABA_CLOUD_*` variables (never flags, so they do not show in `ps`).
fn oss_from_env(endpoint: Option<String>, region: Option<String>) -> OssOptions {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let credentials = match (
        env("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        env("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ) {
        (Some(key_id), Some(secret)) => Some(Credentials {
            key_id,
            secret,
            token: env("ALIBABA_CLOUD_SECURITY_TOKEN"),
        }),
        _ => None,
    };
    OssOptions {
        endpoint,
        region: region.or_else(|| env("CDNLAKE_OSS_REGION")),
        credentials,
        client: None,
    }
}

/// Opens a destination from the CLI (oss:// configured from the environment).
fn open_lake(dest: &str) -> anyhow::Result<Lake> {
    let endpoint = std::env::var("CDNLAKE_OSS_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    Ok(Lake::open_with(dest, &oss_from_env(endpoint, None))?)
}

impl EventArgs {
    /// Handler settings and OSS settings; OSS credentials from the `ALIBABA_CLOUD_*` variables
    /// (read here, never taken as flags, so they do not show in `ps`).
    fn options(&self) -> anyhow::Result<(HandlerOptions, OssOptions)> {
        let allow = AllowList::from_patterns(self.allow_host.iter().map(String::as_str))?;
        let convert = ConvertOptions {
            tz: parse_tz(&self.partition_tz)?,
            ..ConvertOptions::default()
        };
        let oss = oss_from_env(self.oss_endpoint.clone(), self.oss_region.clone());
        Ok((
            HandlerOptions {
                allow,
                http: HttpOptions::default(),
                convert,
            },
            oss,
        ))
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
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

/// A progress bar over the inputs' bytes, only on a terminal and only for long work.
fn progress_bar(files: &[PathBuf]) -> Option<indicatif::ProgressBar> {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    if !std::io::stderr().is_terminal() || total < (16 << 20) {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style);
    }
    Some(pb)
}

fn summary(r: &RunReport) -> String {
    format!(
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
    )
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

/// `YYYY-MM-DD`, or the date (as written) of an RFC 3339 instant.
fn parse_date(s: &str) -> anyhow::Result<String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.format("%Y-%m-%d").to_string());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.date_naive().format("%Y-%m-%d").to_string())
        .with_context(|| {
            format!("invalid --since {s:?}: expected YYYY-MM-DD or RFC 3339 like 2024-03-05T00:00:00+08:00")
        })
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
            html,
        } => {
            let filter = cdnlake::report::ReportFilter {
                domain,
                from_micros: parse_instant("--from", from.as_deref())?,
                to_micros: parse_instant("--to", to.as_deref())?,
            };
            let tz = parse_tz(&partition_tz)?;
            let lake = open_lake(&dest)?;
            let rt = runtime()?;
            let rows = rt.block_on(cdnlake::report::read_rollups(&lake, &filter))?;
            let mut report = cdnlake::report::summarise(&rows, &filter, tz);
            report.top = rt.block_on(cdnlake::top::read_top(&lake, &filter))?.lists();
            if let Some(path) = html {
                let minutes = cdnlake::report::per_minute(&rows, &filter);
                std::fs::write(&path, cdnlake::html::render(&report, &minutes, tz))
                    .with_context(|| format!("{}: cannot write", path.display()))?;
            }
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
        Command::Bench { log, lines, json } => {
            let rt = runtime()?;
            let tmp =
                std::env::temp_dir().join(format!("cdnlake-bench-log-{}", std::process::id()));
            let path = match log {
                Some(p) => p,
                None => {
                    std::fs::create_dir_all(&tmp)?;
                    let opts = GenOptions {
                        lines,
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
            let res = cdnlake::bench::run(&path, rt.handle(), 512 << 20);
            let _ = std::fs::remove_dir_all(&tmp);
            let r = res?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{}: {:.1} MB compressed, {:.1} MB of log text; {} parse threads",
                    r.file,
                    r.bytes_compressed as f64 / 1e6,
                    r.bytes_decompressed as f64 / 1e6,
                    r.threads
                );
                println!(
                    "{:<32} {:>10} {:>14} {:>8} {:>10}",
                    "stage", "MB/s", "lines/s", "cores", "MB/cpu-s"
                );
                for s in &r.stages {
                    println!(
                        "{:<32} {:>10.1} {:>14.0} {:>8.2} {:>10.1}",
                        s.name, s.mb_per_s, s.lines_per_s, s.cores_used, s.mb_per_cpu_s
                    );
                }
                println!(
                    "peak memory (end to end): {:.0} MiB; Parquet written: {:.1} MB ({:.2}x the .gz)",
                    r.end_to_end_peak_rss_mib,
                    r.parquet_bytes as f64 / 1e6,
                    r.parquet_bytes as f64 / r.bytes_compressed.max(1) as f64
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ddl {
            dialect,
            partitions,
            since,
            dest,
            oss_endpoint,
        } => {
            if partitions {
                let since_dt = since.as_deref().map(parse_date).transpose()?;
                let lake = open_lake(&dest)?;
                let rt = runtime()?;
                let manifests = rt.block_on(cdnlake::lake::manifest::list_manifests(&lake))?;
                let audit = rt.block_on(ddl::audit_keys(&lake))?;
                let mut parts = ddl::manifest_partitions(&manifests);
                parts.extend(ddl::audit_partitions(audit.iter().map(String::as_str)));
                print!(
                    "{}",
                    ddl::maxcompute_partitions(ddl::since(parts, since_dt.as_deref()))
                );
                return Ok(ExitCode::SUCCESS);
            }
            match dialect {
                DialectArg::Duckdb => {
                    // Which tables hold files decides between a read_parquet view and an empty
                    // one; a lake that cannot be listed (no credentials here) gets the former.
                    let present: anyhow::Result<Vec<&str>> = (|| {
                        let local = !dest.contains("://") || dest.starts_with("file://");
                        if local && !std::path::Path::new(&ddl::duckdb_location(&dest)).exists() {
                            // Opening would create the folder; nothing is there yet.
                            return Ok(Vec::new());
                        }
                        let lake = open_lake(&dest)?;
                        let rt = runtime()?;
                        let mut out = Vec::new();
                        for t in ddl::tables() {
                            if rt.block_on(ddl::has_files(&lake, t))? {
                                out.push(t.name);
                            }
                        }
                        Ok(out)
                    })();
                    let sql = match present {
                        Ok(p) => ddl::duckdb_views(&dest, |t| p.contains(&t.name)),
                        Err(e) => {
                            eprintln!("cdnlake: warning: cannot list {dest} ({e:#}); writing views for every table");
                            ddl::duckdb(&dest)
                        }
                    };
                    print!("{sql}");
                }
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
            let lake = open_lake(&dest)?;
            let rt = runtime()?;
            let bar = progress_bar(&files);
            let mut failed = 0;
            let mut done = 0;
            for f in &files {
                let mut opts = opts.clone();
                if let Some(pb) = &bar {
                    let (pb, base) = (pb.clone(), done);
                    opts.decode.progress =
                        Some(Progress(Arc::new(move |n| pb.set_position(base + n))));
                }
                let res = convert_path(&lake, rt.handle(), f, &opts);
                done += std::fs::metadata(f).map_or(0, |m| m.len());
                let say = |line: String| match &bar {
                    Some(pb) => pb.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                };
                match res {
                    Ok(r) => {
                        if json {
                            println!("{}", serde_json::to_string(&r)?);
                        } else {
                            say(summary(&r));
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        say(format!("cdnlake: error: {e}"));
                    }
                }
            }
            if let Some(pb) = bar {
                pb.finish_and_clear();
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
        Command::Handle {
            event,
            common,
            json,
        } => {
            let text = if event.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
                    .context("reading the event from stdin")?;
                buf
            } else {
                std::fs::read(&event)
                    .with_context(|| format!("{}: cannot read", event.display()))?
            };
            // Every element is tried: a malformed one is kept and reported after the others ran.
            let parsed = cdnlake::event::parse_lenient_each(&text)
                .with_context(|| format!("{}", event.display()))?;
            let (handler, oss) = common.options()?;
            let lake = Lake::open_with(&common.dest, &oss)?;
            let rt = runtime()?;
            let (report, result) = handle_parsed(&lake, rt.handle(), &parsed, &handler);
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_invocation(&report);
            }
            if let Err(e) = result {
                // The library error already names its cause; anyhow's chain would repeat it.
                eprintln!("cdnlake: error: {e}");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen, common } => {
            let (handler, oss) = common.options()?;
            let opts = ServerOptions {
                dest: common.dest.clone(),
                handler,
                oss,
                max_body: MAX_BODY,
                header_read_timeout: cdnlake::server::HEADER_READ_TIMEOUT,
            };
            let rt = runtime()?;
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(%listen, dest = %opts.dest, "serving the FC contract");
                eprintln!("cdnlake: listening on {listen}");
                serve(listener, opts, shutdown_signal()).await?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_invocation(r: &InvocationReport) {
    for e in &r.reports {
        match (&e.log, &e.error) {
            (_, Some(err)) => eprintln!(
                "events[{}] {} {}: failed: {err}",
                e.index, e.event_name, e.trace_id
            ),
            (Some(log), None) => eprintln!("{}", summary(log)),
            (None, None) => eprintln!(
                "events[{}] {} {}: {} ({} keys)",
                e.index,
                e.event_name,
                e.trace_id,
                e.action,
                e.keys.len()
            ),
        }
    }
}
