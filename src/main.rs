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

/// Keeps glibc's allocator from handing the pipeline's large buffers back to the kernel between
/// blocks. Every 4 MiB block makes a few MiB of Arrow buffers that are freed a moment later on
/// another thread; with glibc's defaults (a 128 KiB mmap threshold that adapts, and top-of-heap
/// trimming) many of them are unmapped and the next block's are faulted in again, page by page
/// and zero-filled. Serving every allocation under 32 MiB (glibc's maximum) from the arenas and
/// trimming only past 32 MiB of free memory at a heap's top cut the minor faults of `convert`
/// on a 360 MB log from 58-61k to about 50k and on a 458 MB high-cardinality log from 76-78k to
/// 59-64k, and its system time by a quarter (README, Performance); peak memory moved within its
/// run-to-run noise (±10 MiB). A trim threshold of 64 MiB saved no more. These are the settings
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=33554432`
/// would make (and override such a variable for these two). musl builds use jemalloc instead
/// (above).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists, and both values are within glibc's accepted ranges (it returns 0 otherwise, which
    // leaves the defaults: harmless, so the result is not checked).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
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
        // The reader of standard output went away (`cdnlake report | head`): what it took was
        // written, so end quietly, with the status a shell gives a process ended by SIGPIPE.
        Err(e) if broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("cdnlake: error: {}", cli::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is, or was caused by, a write to a closed pipe.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
