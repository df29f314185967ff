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
    #[command(flatten)]
    common: EventArgs,
}

/// `512MiB`, `2GiB`, `1024MB`, `800M` or a number of bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a size like 512MiB, 2GiB or a number of bytes"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too large"))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        listen,
        max_memory,
        common,
    } = args;
    let (handler, oss) = common.options()?;
    let opts = ServerOptions {
        dest: common.dest.clone(),
        handler,
        oss,
        max_body: MAX_BODY,
        header_read_timeout: cdnlake::ingest::server::HEADER_READ_TIMEOUT,
        max_memory,
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("800M"), Ok(800 << 20));
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
