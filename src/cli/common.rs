//! What several commands share: opening a destination, options of event handling, the runtime,
//! parsing of times and time zones, and the one-line run summaries.

use anyhow::{bail, Context};

use cdnlake::access::time::PartitionTz;
use cdnlake::convert::{ConvertOptions, RunReport};
use cdnlake::ingest::fetch::{AllowList, HttpOptions};
use cdnlake::ingest::handler::HandlerOptions;
use cdnlake::lake::descriptor::{PartitionBy, Wanted};
use cdnlake::lake::store::{Credentials, Lake, OssOptions};

/// Settings shared by `handle` and `serve`.
#[derive(clap::Args)]
pub(super) struct EventArgs {
    /// Destination: a path, file:///abs/path, oss://bucket/prefix, s3://bucket/prefix or memory://.
    #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
    pub(super) dest: String,
    /// Hosts logs may be fetched from (exact, or *.suffix); repeat or separate with commas.
    #[arg(long = "allow-host", env = "CDNLAKE_ALLOWED_HOSTS", value_delimiter = ',',
          default_value = cdnlake::ingest::fetch::DEFAULT_ALLOWED_HOSTS)]
    pub(super) allow_host: Vec<String>,
    /// OSS endpoint host (default s3.oss-<region>.aliyuncs.com).
    #[arg(long, env = "CDNLAKE_OSS_ENDPOINT")]
    pub(super) oss_endpoint: Option<String>,
    /// OSS region id, e.g. cn-hangzhou (in serve, default from the x-fc-region header).
    #[arg(long, env = "CDNLAKE_OSS_REGION")]
    pub(super) oss_region: Option<String>,
    #[command(flatten)]
    pub(super) lake: LakeArgs,
}

/// The lake settings a writing command may be given. Both are recorded in the lake's
/// `_cdnlake.json` when it is created and read from it afterwards: given to an existing lake,
/// they must agree with it.
#[derive(clap::Args)]
pub(super) struct LakeArgs {
    /// Partitions of a new lake: hour (domain/dt/hour) or day (domain/dt, for MaxCompute's
    /// partition caps). Default: the lake's own (hour for a new lake).
    #[arg(long, env = "CDNLAKE_PARTITION_BY", value_enum)]
    pub(super) partition_by: Option<PartitionByArg>,
    /// Time zone of the dt/hour partitions of a new lake, a fixed offset. Default: the lake's
    /// own (+08:00 for a new lake).
    #[arg(long, env = "CDNLAKE_PARTITION_TZ")]
    pub(super) partition_tz: Option<String>,
}

impl LakeArgs {
    pub(super) fn wanted(&self) -> anyhow::Result<Wanted> {
        Ok(Wanted {
            partition_by: self.partition_by.map(Into::into),
            partition_tz: self.partition_tz.as_deref().map(parse_tz).transpose()?,
        })
    }
}

/// `hour` or `day`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum PartitionByArg {
    Hour,
    Day,
}

impl From<PartitionByArg> for PartitionBy {
    fn from(a: PartitionByArg) -> PartitionBy {
        match a {
            PartitionByArg::Hour => PartitionBy::Hour,
            PartitionByArg::Day => PartitionBy::Day,
        }
    }
}

/// OSS settings for the CLI: endpoint and region from flags (or their variables), credentials
/// from the `ALIBABA_CLOUD_*` variables (never flags, so they do not show in `ps`).
pub(super) fn oss_from_env(endpoint: Option<String>, region: Option<String>) -> OssOptions {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let credentials = match (
        env("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        env("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ) {
        (Some(key_id), Some(secret)) => Some(Credentials {
            key_id,
            secret,
            token: env("ALIBABA_CLOUD_SECURITY_TOKEN"),
        }),
        _ => None,
    };
    OssOptions {
        endpoint,
        region: region.or_else(|| env("CDNLAKE_OSS_REGION")),
        credentials,
        client: None,
    }
}

/// Opens a destination from the CLI (oss:// configured from the environment).
pub(super) fn open_lake(dest: &str) -> anyhow::Result<Lake> {
    let endpoint = std::env::var("CDNLAKE_OSS_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    Ok(Lake::open_with(dest, &oss_from_env(endpoint, None))?)
}

impl EventArgs {
    /// Handler settings and OSS settings; OSS credentials from the `ALIBABA_CLOUD_*` variables
    /// (read here, never taken as flags, so they do not show in `ps`).
    pub(super) fn options(&self) -> anyhow::Result<(HandlerOptions, OssOptions)> {
        let allow = AllowList::from_patterns(self.allow_host.iter().map(String::as_str))?;
        let convert = ConvertOptions::default();
        let oss = oss_from_env(self.oss_endpoint.clone(), self.oss_region.clone());
        Ok((
            HandlerOptions {
                allow,
                http: HttpOptions::default(),
                convert,
                lake: self.lake.wanted()?,
            },
            oss,
        ))
    }
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(super) fn parse_tz(s: &str) -> anyhow::Result<PartitionTz> {
    match PartitionTz::parse(s) {
        Some(tz) => Ok(tz),
        None => bail!("invalid --partition-tz {s:?}: expected a fixed offset like +08:00 or UTC"),
    }
}

pub(super) fn summary(r: &RunReport) -> String {
    format!(
        "{}: {} lines -> {} rows, {} rejected, {} empty ({} partitions, {:.1} MB in, {:.1} MB decompressed, {:.1} MB out) in {:.2}s",
        r.location,
        r.lines,
        r.rows,
        r.rejected,
        r.empty,
        r.partitions.len(),
        r.bytes_in as f64 / 1e6,
        r.bytes_decompressed as f64 / 1e6,
        r.bytes_out as f64 / 1e6,
        r.seconds
    )
}

pub(super) fn parse_instant(flag: &str, s: Option<&str>) -> anyhow::Result<Option<i64>> {
    s.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_micros())
            .with_context(|| {
                format!("invalid {flag} {s:?}: expected RFC 3339 like 2024-03-05T09:00:00+08:00")
            })
    })
    .transpose()
}

/// `512MiB`, `2GiB`, `1024MB`, `800M` or a number of bytes.
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
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
