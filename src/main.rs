//! The `cdnlake` command: argument parsing and calls into the library, nothing more.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use cdnlake::access::time::PartitionTz;
use cdnlake::handler::{handle_events, HandlerOptions, InvocationReport};
use cdnlake::http::{AllowList, HttpOptions};
use cdnlake::lake::store::{Credentials, Lake, OssOptions};
use cdnlake::pipeline::{convert_path, ConvertOptions, RunReport};
use cdnlake::server::{serve, ServerOptions, MAX_BODY};

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

impl EventArgs {
    /// Handler settings and OSS settings; OSS credentials from the `ALIBABA_CLOUD_*` variables
    /// (read here, never taken as flags, so they do not show in `ps`).
    fn options(&self) -> anyhow::Result<(HandlerOptions, OssOptions)> {
        let allow = AllowList::from_patterns(self.allow_host.iter().map(String::as_str))?;
        let convert = ConvertOptions {
            tz: parse_tz(&self.partition_tz)?,
            ..ConvertOptions::default()
        };
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
        let oss = OssOptions {
            endpoint: self.oss_endpoint.clone(),
            region: self.oss_region.clone(),
            credentials,
            client: None,
        };
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
            let events = cdnlake::event::parse_lenient(&text)
                .with_context(|| format!("{}", event.display()))?;
            let (handler, oss) = common.options()?;
            let lake = Lake::open_with(&common.dest, &oss)?;
            let rt = runtime()?;
            let (report, result) = handle_events(&lake, rt.handle(), &events, &handler);
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
            (Some(log), None) => print_summary(log),
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
