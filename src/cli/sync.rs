//! `cdnlake sync`: List the CDN's log files for each domain and window (DescribeCdnDomainLogs),
//! and convert (or, with --invoke-fc, hand to Function Compute) every one the lake does not hold.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};

use super::common::*;
use cdnlake::cloud::acs3::Credentials;
use cdnlake::cloud::api::ApiClient;
use cdnlake::repair::Bound;
use cdnlake::sync::{Action, FileOutcome, InvokeTarget, Progress, SyncOptions, SyncReport};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Domains to reconcile; repeat or separate with commas.
    #[arg(
        long = "domain",
        env = "CDNLAKE_SYNC_DOMAINS",
        value_delimiter = ',',
        required = true
    )]
    domains: Vec<String>,
    /// Start of the window: RFC 3339 (2024-03-05T09:00:00+08:00) or a date (midnight on the
    /// partition clock). Default: 30 days before --to (the CDN keeps logs 30 days).
    #[arg(long)]
    from: Option<String>,
    /// End of the window (excluded). Default: now.
    #[arg(long)]
    to: Option<String>,
    /// Conversions at once; fewer when --max-memory does not hold them (192 MiB each).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Memory this process may use for conversions (e.g. 1GiB).
    #[arg(long, env = "CDNLAKE_MAX_MEMORY", default_value = "1GiB", value_parser = parse_size)]
    max_memory: u64,
    /// List and check only: print what would be converted (or invoked).
    #[arg(long)]
    dry_run: bool,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// The CDN OpenAPI endpoint.
    #[arg(long, env = "CDNLAKE_CDN_ENDPOINT", default_value = cdnlake::cloud::cdn::ENDPOINT)]
    cdn_endpoint: String,
    /// Hand each missing file to this Function Compute function (an asynchronous invocation
    /// with a LogFileCreated event) instead of converting it here.
    #[arg(long, value_name = "FUNCTION")]
    invoke_fc: Option<String>,
    /// FC 3.0 endpoint, https://<account-id>.<region>.fc.aliyuncs.com (default from
    /// ALIBABA_CLOUD_ACCOUNT_ID and --oss-region).
    #[arg(long, env = "CDNLAKE_FC_ENDPOINT")]
    fc_endpoint: Option<String>,
    /// Version or alias of the function to invoke (default LATEST).
    #[arg(long)]
    qualifier: Option<String>,
    /// Files per DescribeCdnDomainLogs page (1 to 1000); smaller pages only for testing.
    #[arg(long, default_value_t = cdnlake::sync::PAGE_SIZE, hide = true)]
    page_size: u32,
    #[command(flatten)]
    common: EventArgs,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (handler, oss) = args.common.options()?;
    let lake = cdnlake::lake::store::Lake::open_with(&args.common.dest, &oss)?;
    let rt = runtime()?;
    // A date in --from/--to is midnight on the partition clock: the one given, else the lake's.
    let tz = match handler.lake.partition_tz {
        Some(tz) => tz,
        None => {
            rt.block_on(cdnlake::lake::descriptor::Descriptor::load_or_default(
                &lake,
            ))?
            .partition_tz
        }
    };
    let to = match &args.to {
        Some(s) => instant(Bound::parse("--to", s)?, tz),
        None => Utc::now(),
    };
    let from = match &args.from {
        Some(s) => instant(Bound::parse("--from", s)?, tz),
        None => to - Duration::days(30),
    };
    if from >= to {
        bail!("--from ({from}) must be before --to ({to})");
    }
    let domains: Vec<String> = args
        .domains
        .iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    if domains.is_empty() {
        bail!("--domain is empty: name at least one domain");
    }
    // The same ALIBABA_CLOUD_* variables as OSS (never flags: they would show in `ps`).
    let creds = oss.credentials.as_ref().map(Credentials::from).context(
        "sync needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET \
         (a RAM identity allowed cdn:DescribeCdnDomainLogs)",
    )?;
    let cdn = ApiClient::new(&args.cdn_endpoint, creds.clone())?;
    let invoke = match &args.invoke_fc {
        None => None,
        Some(function) => {
            let region = oss
                .region
                .clone()
                .or_else(|| env("ALIBABA_CLOUD_REGION_ID"))
                .unwrap_or_else(|| "cn-hangzhou".to_string());
            let endpoint = match (&args.fc_endpoint, env("ALIBABA_CLOUD_ACCOUNT_ID")) {
                (Some(e), _) => e.clone(),
                (None, Some(account)) => format!("https://{account}.{region}.fc.aliyuncs.com"),
                (None, None) => bail!(
                    "--invoke-fc needs --fc-endpoint (https://<account-id>.<region>.fc.aliyuncs.com) \
                     or ALIBABA_CLOUD_ACCOUNT_ID"
                ),
            };
            Some(InvokeTarget {
                client: ApiClient::new(&endpoint, creds)?,
                function: function.clone(),
                qualifier: args.qualifier.clone(),
                region,
            })
        }
    };
    let jobs = cdnlake::sync::jobs_within(args.jobs, args.max_memory);
    if jobs < args.jobs {
        eprintln!(
            "cdnlake: --jobs {} lowered to {jobs}: --max-memory holds {jobs} conversions",
            args.jobs
        );
    }
    let opts = SyncOptions {
        domains,
        from,
        to,
        jobs,
        dry_run: args.dry_run,
        page_size: args.page_size,
        handler,
        invoke,
    };
    let bar = Bar::new(!args.json && std::io::stderr().is_terminal());
    let report = rt.block_on(cdnlake::sync::sync(&lake, &cdn, &opts, &bar));
    bar.finish();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_text(&report)?;
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn instant(b: Bound, tz: cdnlake::access::time::PartitionTz) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(b.micros(tz)).unwrap_or_default()
}

fn print_text(r: &SyncReport) -> std::io::Result<()> {
    for e in &r.listing_errors {
        eprintln!("cdnlake: error: listing {}: {}", e.domain, e.error);
    }
    for f in &r.files {
        match f.action {
            Action::Failed => eprintln!(
                "cdnlake: error: {}: {}",
                f.name,
                f.error.as_deref().unwrap_or("failed")
            ),
            Action::WouldConvert | Action::WouldInvoke => outln!(
                "{} {} ({} bytes, {})",
                f.action,
                f.name,
                f.size,
                f.reason.as_deref().unwrap_or("missing")
            )?,
            _ => {}
        }
    }
    let pending = r.files.iter().filter(|f| f.action.is_pending()).count();
    let mut line = format!(
        "sync {} .. {}: listed {}, already done {}",
        r.from, r.to, r.listed, r.done
    );
    if r.dry_run {
        line.push_str(&format!(", to do {pending}"));
    } else {
        line.push_str(&format!(", converted {}", r.converted));
        if r.invoked > 0 || r.files.iter().any(|f| f.action == Action::AlreadyInvoked) {
            let again = r
                .files
                .iter()
                .filter(|f| f.action == Action::AlreadyInvoked)
                .count();
            line.push_str(&format!(
                ", invoked {} ({again} already submitted)",
                r.invoked
            ));
        }
    }
    line.push_str(&format!(
        ", failed {}; {:.1} MB in {:.1}s",
        r.failed,
        r.bytes as f64 / 1e6,
        r.seconds
    ));
    if !r.listing_errors.is_empty() {
        line.push_str(&format!(
            "; {} domain(s) could not be listed",
            r.listing_errors.len()
        ));
    }
    eprintln!("{line}");
    Ok(())
}

/// A progress bar over the bytes to convert, on a terminal only.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(show: bool) -> Bar {
        Bar(show.then(|| {
            let pb = indicatif::ProgressBar::hidden();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files {msg} eta {eta}",
            ) {
                pb.set_style(style);
            }
            pb
        }))
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn planned(&self, files: usize, bytes: u64) {
        if let Some(pb) = &self.0 {
            pb.set_length(files as u64);
            pb.set_message(format!("({:.1} MB)", bytes as f64 / 1e6));
            pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }

    fn finished(&self, f: &FileOutcome) {
        // Failures are listed after the bar, with the summary.
        let _ = f;
        if let Some(pb) = &self.0 {
            pb.inc(1);
        }
    }
}
