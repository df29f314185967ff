//! `cdnlake ddl`: Print DDL for DuckDB or MaxCompute, generated from the table definitions.

use std::process::ExitCode;

use anyhow::Context;

use super::common::*;
use cdnlake::lake::descriptor::{Descriptor, PartitionBy, Wanted};
use cdnlake::lake::store::Lake;
use cdnlake::query::ddl;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[arg(long, value_enum)]
    dialect: DialectArg,
    /// Print ALTER TABLE ... ADD PARTITION for the partitions the lake holds (MaxCompute):
    /// access and traffic from the manifests, cache_audit and domain_audit from their folders.
    #[arg(long)]
    partitions: bool,
    /// With --partitions: only partitions with dt on or after this date (YYYY-MM-DD, or the
    /// date of an RFC 3339 instant as written, e.g. 2024-03-05T00:00:00+08:00).
    #[arg(long, requires = "partitions")]
    since: Option<String>,
    #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
    dest: String,
    /// OSS endpoint host for MaxCompute LOCATION (e.g. oss-cn-hangzhou-internal.aliyuncs.com).
    #[arg(long, env = "CDNLAKE_OSS_ENDPOINT")]
    oss_endpoint: Option<String>,
    /// The lake's partitions, for a lake that cannot be read here (no credentials) or does not
    /// exist yet. A lake that can be read says it itself (its _cdnlake.json); this must agree.
    #[arg(long, env = "CDNLAKE_PARTITION_BY", value_enum)]
    partition_by: Option<PartitionByArg>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        dialect,
        partitions,
        since,
        dest,
        oss_endpoint,
        partition_by,
    } = args;
    if partitions {
        let since_dt = since.as_deref().map(parse_date).transpose()?;
        let lake = open_lake(&dest)?;
        let rt = runtime()?;
        let manifests = rt
            .block_on(cdnlake::lake::manifest::load_manifests(
                &lake,
                None,
                cdnlake::lake::manifest::Unreadable::Fail,
            ))?
            .into_manifests();
        let audit = rt.block_on(ddl::audit_keys(&lake))?;
        let mut parts = ddl::manifest_partitions(&manifests);
        parts.extend(ddl::audit_partitions(audit.iter().map(String::as_str)));
        out!(
            "{}",
            ddl::maxcompute_partitions(ddl::since(parts, since_dt.as_deref()))
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let by = lake_partitioning(&dest, partition_by.map(Into::into))?;
    match dialect {
        DialectArg::Duckdb => {
            // Which tables hold files decides between a read_parquet view and an empty
            // one; a lake that cannot be listed (no credentials here) gets the former.
            let present: anyhow::Result<Vec<&str>> = (|| {
                let parsed = cdnlake::lake::dest::Destination::parse(&dest)?;
                if parsed.local_path().is_some_and(|p| !p.exists()) {
                    // Opening would create the folder; nothing is there yet.
                    return Ok(Vec::new());
                }
                let lake = open_lake(&dest)?;
                let rt = runtime()?;
                let mut out = Vec::new();
                for t in ddl::tables() {
                    if rt.block_on(ddl::has_files(&lake, t))? {
                        out.push(t.name);
                    }
                }
                Ok(out)
            })();
            let sql = match present {
                Ok(p) => ddl::duckdb_views(&dest, by, |t| p.contains(&t.name)),
                Err(e) => {
                    eprintln!(
                        "cdnlake: warning: cannot list {dest} ({}); writing views for every table",
                        super::one_line(e.as_ref())
                    );
                    ddl::duckdb(&dest, by)
                }
            };
            out!("{sql}")?;
        }
        DialectArg::Maxcompute => out!("{}", ddl::maxcompute(&dest, by, oss_endpoint.as_deref()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The lake's partitioning: its descriptor's (a contradicting `given` is an error); `given` or
/// `hour` when the lake has none (not written yet, or written before descriptors) or cannot be
/// read here (with a warning when not given, as the DDL may then not fit the lake).
fn lake_partitioning(dest: &str, given: Option<PartitionBy>) -> anyhow::Result<PartitionBy> {
    let read: anyhow::Result<Option<(Lake, Descriptor)>> = (|| {
        let parsed = cdnlake::lake::dest::Destination::parse(dest)?;
        if parsed.local_path().is_some_and(|p| !p.exists()) {
            // Opening would create the folder; nothing is there yet.
            return Ok(None);
        }
        let lake = open_lake(dest)?;
        let d = runtime()?.block_on(Descriptor::load_or_default(&lake))?;
        Ok(Some((lake, d)))
    })();
    match read {
        Ok(Some((lake, d))) if d.recorded => {
            let wanted = Wanted {
                partition_by: given,
                partition_tz: None,
            };
            d.agrees(&lake, &wanted)?;
            Ok(d.partition_by)
        }
        // No descriptor: a lake written before them (hour), or none yet.
        Ok(_) => Ok(given.unwrap_or_default()),
        Err(e) => {
            let by = given.unwrap_or_default();
            if given.is_none() {
                eprintln!(
                    "cdnlake: warning: cannot read {dest}/_cdnlake.json ({}); assuming --partition-by {by}",
                    super::one_line(e.as_ref())
                );
            }
            Ok(by)
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DialectArg {
    Duckdb,
    Maxcompute,
}

/// `YYYY-MM-DD`, or the date (as written) of an RFC 3339 instant.
fn parse_date(s: &str) -> anyhow::Result<String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.format("%Y-%m-%d").to_string());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.date_naive().format("%Y-%m-%d").to_string())
        .with_context(|| {
            format!("invalid --since {s:?}: expected YYYY-MM-DD or RFC 3339 like 2024-03-05T00:00:00+08:00")
        })
}
