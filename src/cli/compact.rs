//! `cdnlake compact`: Merge the rollups (traffic, heavy_hitters, visitors) of each finished day into one object per table and day under `_compacted/`, so `report` over months reads a few objects per day; the per-file rollups stay and remain the source of truth. With `--access`, a day lake's per-file `access` objects of each finished day also become one file in the day's folder.

use std::process::ExitCode;

use anyhow::Context;
use cdnlake::access::time::HOUR_MICROS;
use cdnlake::compact::access::compact_access;
use cdnlake::compact::{compact, CompactOptions};

use super::common::*;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Destination: a path, file:///abs/path, oss://bucket/prefix, s3://bucket/prefix or memory://.
    #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
    dest: String,
    /// Only this domain.
    #[arg(long)]
    domain: Option<String>,
    /// First partition day to compact (YYYY-MM-DD), inclusive.
    #[arg(long)]
    from: Option<String>,
    /// Partition day to stop before (YYYY-MM-DD), exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Only days that ended at least this many hours ago (the FC timer uses 48: the window
    /// sync still heals).
    #[arg(long, default_value_t = 0)]
    min_age_hours: u32,
    /// Also compact each day's per-file `access` objects into one file per domain and day
    /// (`access/domain=<d>/dt=<day>/compacted~day.parquet`), for engines that pay per file.
    /// Only for lakes created with `--partition-by day`. On an object store, between the day
    /// object's PUT and the per-file objects' deletes, a folder reader can count the day twice.
    #[arg(long)]
    access: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    for (flag, v) in [("--from", &args.from), ("--to", &args.to)] {
        if let Some(v) = v {
            cdnlake::lake::layout::parse_dt(v)
                .with_context(|| format!("{flag} {v:?}: expected a date like 2024-03-05"))?;
        }
    }
    let opts = CompactOptions {
        domain: args.domain.filter(|d| !d.trim().is_empty()),
        from: args.from,
        to: args.to,
        min_age_micros: i64::from(args.min_age_hours) * HOUR_MICROS,
        now_micros: chrono::Utc::now().timestamp_micros(),
    };
    let lake = open_lake(&args.dest)?;
    let rt = runtime()?;
    let (counted, requests) = cdnlake::repair::count_requests(&lake);
    let report = rt.block_on(compact(&counted, &opts))?;
    let access = if args.access {
        Some(rt.block_on(compact_access(&counted, &opts))?)
    } else {
        None
    };
    let n = requests.snapshot();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(a) = &access {
            v["access"] = serde_json::to_value(a)?;
        }
        v["requests"] = n.total().into();
        v["requests_by_kind"] = serde_json::to_value(n)?;
        outln!("{}", serde_json::to_string(&v)?)?;
    } else {
        for o in &report.outcomes {
            if o.action != cdnlake::compact::DayAction::UpToDate {
                eprintln!("{}: {} {} ({} files)", o.action, o.domain, o.dt, o.files);
            }
        }
        eprintln!(
            "{}: {} days, {} compacted, {} up to date, {} too recent; {} requests in {:.2}s",
            args.dest,
            report.days,
            report.compacted,
            report.up_to_date,
            report.too_recent,
            n.total(),
            report.seconds
        );
        if let Some(a) = &access {
            for o in a.outcomes.iter().filter(|o| o.action != "up_to_date") {
                eprintln!(
                    "access {}: {} {} ({} files, {} objects removed)",
                    o.action, o.domain, o.dt, o.files, o.removed
                );
            }
            eprintln!(
                "access: {} days, {} compacted, {} up to date, {} too recent, {} too large",
                a.days, a.compacted, a.up_to_date, a.too_recent, a.too_large
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
