//! `cdnlake rebuild`: Convert every (selected) file of the lake again from its raw dump.

use std::process::ExitCode;

use cdnlake::repair::rebuild::rebuild;

use super::common::*;
use super::verify::Select;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    select: Select,
    /// Print one JSON run report per file on stdout (as `convert --json`).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let selection = args.select.selection()?;
    let lake = open_lake(args.select.dest())?;
    let rt = runtime()?;
    let mut printed: anyhow::Result<()> = Ok(());
    let total = rebuild(&lake, rt.handle(), &selection, |r| match &r.result {
        Ok(report) if args.json => {
            if printed.is_ok() {
                printed = serde_json::to_string(report)
                    .map_err(anyhow::Error::from)
                    .and_then(|line| Ok(outln!("{line}")?));
            }
        }
        Ok(report) => eprintln!("{}", summary(report)),
        Err(e) => eprintln!("cdnlake: error: {}", super::one_line(e)),
    })?;
    printed?;
    eprintln!(
        "{}: {} files converted again from their raw dumps, {} failed; {} requests in {:.2}s",
        args.select.dest(),
        total.converted,
        total.failed,
        total.requests,
        total.seconds
    );
    Ok(if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
