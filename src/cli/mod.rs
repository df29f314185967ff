//! The `cdnlake` command line: one module per command, each with its arguments and a `run`
//! that calls into the library and renders the result. Shared pieces are in [`common`].

/// `print!` to standard output, returning its `io::Result` instead of panicking when the
/// reader went away (`cdnlake report | head`): `main` ends quietly on a broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `println!` to standard output, returning its `io::Result` (see [`out!`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod bench;
mod common;
mod compact;
mod convert;
mod ddl;
mod gen;
mod handle;
mod rebuild;
mod report;
mod serve;
mod sync;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cdnlake",
    version,
    about = "Alibaba Cloud CDN access logs into a Parquet data lake"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Store requests the read side keeps in flight (manifests, rollups, footers: report,
    /// verify, ddl --partitions, sync's check, compact).
    #[arg(long, global = true, env = "CDNLAKE_CONCURRENCY", default_value_t = cdnlake::lake::read::DEFAULT_CONCURRENCY as u64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Convert log files (.gz or plain text; a folder means every log file in it) into the lake.
    Convert(convert::Args),
    /// Write a deterministic synthetic CDN log (for demos, tests and benchmarks).
    Gen(gen::Args),
    /// Measure each stage (gunzip, parse, encode, end to end) on a log, or on a generated one.
    Bench(bench::Args),
    /// Print DDL for DuckDB or MaxCompute, generated from the table definitions.
    Ddl(ddl::Args),
    /// Handle one CDN event file (as FC would post it) and exit; `-` reads stdin. Comments and
    /// trailing commas are accepted.
    Handle(handle::Args),
    /// Serve the Function Compute HTTP contract (POST /invoke, POST /initialize).
    Serve(serve::Args),
    /// Summarise the traffic rollups: totals, hit ratio, status mix, response-time quantiles,
    /// requests and bytes per hour; and the access rows: top 10 paths, client IPs, referers and
    /// user agents by requests and by bytes.
    Report(report::Args),
    /// Check the lake against its manifests: every listed object present with its size and
    /// Parquet row count, the counts reconciled, no orphans; --repair deletes orphans and
    /// converts damaged files again from their raw dumps.
    Verify(verify::Args),
    /// Make the lake complete: list the CDN's log files for each domain and window
    /// (DescribeCdnDomainLogs) and convert, or hand to Function Compute, every one it lacks.
    Sync(sync::Args),
    /// Convert every (selected) file of the lake again from its raw dump, e.g. after a schema
    /// change.
    Rebuild(rebuild::Args),
    /// Merge each finished day's rollups (traffic, heavy_hitters, visitors) into one object per
    /// table and day under _compacted/, so report reads a few objects per day; the per-file
    /// rollups stay the source of truth, and report falls back to them for a day whose files
    /// changed since. With --access (day lakes), also one access file per domain and day.
    Compact(compact::Args),
}

/// Runs the command the arguments name.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    cdnlake::lake::read::set_concurrency(usize::try_from(cli.concurrency).unwrap_or(1));
    match cli.command {
        Command::Convert(a) => convert::run(a),
        Command::Gen(a) => gen::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Ddl(a) => ddl::run(a),
        Command::Handle(a) => handle::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Report(a) => report::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Rebuild(a) => rebuild::run(a),
        Command::Sync(a) => sync::run(a),
        Command::Compact(a) => compact::run(a),
    }
}

/// An error and its causes as one line, each cause said once.
///
/// The library's errors already put their cause in their own message (`{file}: {source}`),
/// and also expose it as `source()` for callers that walk the chain; printing the whole chain
/// would then say every cause twice. A cause whose text the line already holds is skipped.
pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        // A store's error document may span lines; the library prints it on one.
        let text = cdnlake::error::one_line(&c.to_string());
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Leaf;
    impl std::fmt::Display for Leaf {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("recursion limit exceeded at line 1 column 128")
        }
    }
    impl std::error::Error for Leaf {}

    #[test]
    fn each_cause_is_said_once() {
        // A library error that already shows its source, wrapped in a context.
        let json = serde_json::from_str::<serde_json::Value>(&"[".repeat(200)).unwrap_err();
        let lib = cdnlake::Error::Json {
            what: "event file".into(),
            source: json,
        };
        let e = anyhow::Error::new(lib).context("e.json");
        let line = one_line(e.as_ref());
        assert_eq!(
            line.matches("recursion limit exceeded").count(),
            1,
            "{line}"
        );
        assert!(
            line.starts_with("e.json: event file: recursion limit"),
            "{line}"
        );
        // A cause the message does not show is still said.
        let e = anyhow::Error::new(Leaf).context("reading x");
        assert_eq!(
            one_line(e.as_ref()),
            "reading x: recursion limit exceeded at line 1 column 128"
        );
    }
}
