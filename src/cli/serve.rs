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
    #[command(flatten)]
    common: EventArgs,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { listen, common } = args;
    let (handler, oss) = common.options()?;
    let opts = ServerOptions {
        dest: common.dest.clone(),
        handler,
        oss,
        max_body: MAX_BODY,
        header_read_timeout: cdnlake::ingest::server::HEADER_READ_TIMEOUT,
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
