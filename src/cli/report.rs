//! `cdnlake report`: Summarise the rollups: totals, hit ratio, status mix, response-time quantiles, requests and bytes per hour, 5-minute bandwidth with its daily peaks and 95th percentile, unique visitors, and the top 10 paths, client IPs, referers, user agents and status codes by requests and by bytes (approximate, with error bounds; --exact counts them from the access rows).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::common::*;

#[derive(clap::Args)]
pub(crate) struct Args {
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
    /// Wall clock of the per-hour rows, a fixed offset. Default: the lake's partition clock.
    #[arg(long, env = "CDNLAKE_PARTITION_TZ")]
    partition_tz: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML page with charts to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Count the top lists and unique visitors exactly from the access rows (reads every row of
    /// the window) instead of from the rollups.
    #[arg(long)]
    exact: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        dest,
        domain,
        from,
        to,
        partition_tz,
        json,
        html,
        exact,
    } = args;
    let filter = cdnlake::query::ReportFilter {
        domain,
        from_micros: parse_instant("--from", from.as_deref())?,
        to_micros: parse_instant("--to", to.as_deref())?,
    };
    let lake = open_lake(&dest)?;
    let rt = runtime()?;
    let tz = match partition_tz {
        Some(tz) => parse_tz(&tz)?,
        None => {
            rt.block_on(cdnlake::lake::descriptor::Descriptor::load_or_default(
                &lake,
            ))?
            .partition_tz
        }
    };
    // Per day, a compacted day when it still covers its files, else the files' rollups.
    let (rows, sketches) =
        rt.block_on(cdnlake::query::plan::read_report(&lake, &filter, !exact))?;
    let mut report = cdnlake::query::report::summarise(&rows, &filter, tz);
    if exact {
        let counter = rt.block_on(cdnlake::query::top::read_top(&lake, &filter, tz))?;
        cdnlake::query::report::apply_exact(&mut report, &counter);
    } else {
        cdnlake::query::report::apply_sketches(&mut report, &sketches, &filter, tz);
    }
    if let Some(path) = html {
        let minutes = cdnlake::query::report::per_minute(&rows, &filter);
        std::fs::write(&path, cdnlake::query::html::render(&report, &minutes, tz))
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", cdnlake::query::text::render_text(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}
