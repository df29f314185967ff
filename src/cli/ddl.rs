//! `cdnlake ddl`: Print DDL for DuckDB or MaxCompute, generated from the table definitions.

use std::process::ExitCode;

use anyhow::Context;

use super::common::*;
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
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        dialect,
        partitions,
        since,
        dest,
        oss_endpoint,
    } = args;
    if partitions {
        let since_dt = since.as_deref().map(parse_date).transpose()?;
        let lake = open_lake(&dest)?;
        let rt = runtime()?;
        let manifests = rt.block_on(cdnlake::lake::manifest::list_manifests(&lake))?;
        let audit = rt.block_on(ddl::audit_keys(&lake))?;
        let mut parts = ddl::manifest_partitions(&manifests);
        parts.extend(ddl::audit_partitions(audit.iter().map(String::as_str)));
        print!(
            "{}",
            ddl::maxcompute_partitions(ddl::since(parts, since_dt.as_deref()))
        );
        return Ok(ExitCode::SUCCESS);
    }
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
                Ok(p) => ddl::duckdb_views(&dest, |t| p.contains(&t.name)),
                Err(e) => {
                    eprintln!(
                        "cdnlake: warning: cannot list {dest} ({}); writing views for every table",
                        super::one_line(e.as_ref())
                    );
                    ddl::duckdb(&dest)
                }
            };
            print!("{sql}");
        }
        DialectArg::Maxcompute => {
            print!("{}", ddl::maxcompute(&dest, oss_endpoint.as_deref()))
        }
    }
    Ok(ExitCode::SUCCESS)
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
