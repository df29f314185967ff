//! `cdnlake serve`: Serve the Function Compute HTTP contract (POST /invoke, POST /initialize).

use std::process::ExitCode;

use anyhow::Context;

use super::common::*;
use cdnlake::ingest::server::{serve, ServerOptions, MAX_BODY};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (FC requires 0.0.0.0).
    #[arg(long, env = "CDNLAKE_LISTEN", default_value = "0.0.0.0:9000")]
    listen: String,
    /// Memory of the instance (e.g. 512MiB, 2GiB, or bytes) when FC's x-fc-function-memory
    /// header does not say: conversions run only as many at once as it holds (192 MiB each,
    /// after 96 MiB for the server).
    #[arg(long, env = "CDNLAKE_MAX_MEMORY", default_value = "1GiB", value_parser = parse_size)]
    max_memory: u64,
    /// Domains a timer event reconciles (FC timer trigger, see deploy/s.yaml).
    #[arg(long, env = "CDNLAKE_SYNC_DOMAINS", value_delimiter = ',')]
    sync_domains: Vec<String>,
    /// Hours back a timer event reconciles.
    #[arg(long, env = "CDNLAKE_SYNC_HOURS", default_value_t = cdnlake::sync::timer::DEFAULT_HOURS)]
    sync_hours: u32,
    /// The CDN OpenAPI endpoint of timer syncs.
    #[arg(long, env = "CDNLAKE_CDN_ENDPOINT", default_value = cdnlake::cloud::cdn::ENDPOINT)]
    cdn_endpoint: String,
    /// FC endpoint a timer sync invokes through (default: the internal endpoint of the
    /// function's account and region, from FC's headers).
    #[arg(long, env = "CDNLAKE_FC_ENDPOINT")]
    fc_endpoint: Option<String>,
    /// Function a timer sync invokes per missing file (default: this one).
    #[arg(long, env = "CDNLAKE_SYNC_FUNCTION")]
    sync_function: Option<String>,
    /// Convert missing files in the timer's own invocation instead of invoking the function
    /// once per file.
    #[arg(long, env = "CDNLAKE_SYNC_CONVERT")]
    sync_convert: bool,
    #[command(flatten)]
    common: EventArgs,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        listen,
        max_memory,
        sync_domains,
        sync_hours,
        cdn_endpoint,
        fc_endpoint,
        sync_function,
        sync_convert,
        common,
    } = args;
    let (handler, oss) = common.options()?;
    let timer = cdnlake::sync::timer::TimerSync {
        domains: sync_domains
            .iter()
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .collect(),
        hours: sync_hours,
        cdn_endpoint,
        fc_endpoint,
        function: sync_function,
        convert_here: sync_convert,
        handler: handler.clone(),
        credentials: oss
            .credentials
            .as_ref()
            .map(cdnlake::cloud::acs3::Credentials::from),
    };
    let opts = ServerOptions {
        dest: common.dest.clone(),
        handler,
        oss,
        max_body: MAX_BODY,
        header_read_timeout: cdnlake::ingest::server::HEADER_READ_TIMEOUT,
        max_memory,
        timer: Some(std::sync::Arc::new(timer)),
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
