//! The `cdnlake` binary: sets up logging, parses the command line and runs the command (all in
//! [`cli`]), and prints a failure as one line. Nothing else lives here.

#![deny(unsafe_code)]

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The static musl build (the FC deployment) uses jemalloc: with musl's own allocator `convert`
/// takes 75% longer, most of it in the kernel (see the comment in Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // CDNLAKE_LOG: a level (`info`) or per-target levels (`cdnlake=debug,warn`); warnings by
    // default, and on a value that does not parse.
    let filter = std::env::var("CDNLAKE_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .finish()
        .with(filter)
        .init();
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cdnlake: error: {}", cli::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
