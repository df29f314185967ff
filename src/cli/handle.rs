//! `cdnlake handle`: Handle one CDN event file (as FC would post it) and exit; `-` reads stdin. Comments and trailing commas are accepted.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::common::*;
use cdnlake::ingest::handler::{handle_parsed, InvocationReport};
use cdnlake::lake::descriptor::Descriptor;
use cdnlake::lake::store::Lake;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Event JSON file, or `-` for stdin.
    event: PathBuf,
    #[command(flatten)]
    common: EventArgs,
    /// Print the invocation report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        event,
        common,
        json,
    } = args;
    let text = if event.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
            .context("reading the event from stdin")?;
        buf
    } else {
        std::fs::read(&event).with_context(|| format!("{}: cannot read", event.display()))?
    };
    // Every element is tried: a malformed one is kept and reported after the others ran.
    let parsed = cdnlake::event::parse_lenient_each(&text)
        .with_context(|| format!("{}", event.display()))?;
    let (mut handler, oss) = common.options()?;
    let lake = Lake::open_with(&common.dest, &oss)?;
    let rt = runtime()?;
    if parsed
        .events
        .iter()
        .any(|e| matches!(e.payload, cdnlake::event::Payload::LogFile(_)))
    {
        // Logs go in the lake's layout, on its clock (recorded now for a new lake).
        let d = rt.block_on(Descriptor::ensure(&lake, &handler.lake))?;
        handler.convert = handler.convert.for_lake(&d);
    }
    let (report, result) = handle_parsed(&lake, rt.handle(), &parsed, &handler);
    if json {
        outln!("{}", serde_json::to_string(&report)?)?;
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
