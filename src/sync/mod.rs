//! `cdnlake sync`: make the lake hold every log file the CDN still offers.
//!
//! The CDN trigger calls the function once per file, synchronously; a failed call is not
//! retried, and the CDN deletes its logs after 30 days. Sync closes that gap:
//!
//! 1. **List** each domain's files for the window with `DescribeCdnDomainLogs`
//!    ([`crate::cloud::cdn`]).
//! 2. **Check** each against the lake: a file is done when its manifest (written last by every
//!    run, docs/design.md §3) exists and records the same source size. The manifest's key
//!    derives from the file name exactly as a conversion's does, so the UTC+8 date of the name,
//!    not the API's UTC times, decides where it is looked for.
//! 3. **Convert** what is missing, `jobs` at a time, through the same allow-list, resumable
//!    download and commit as an event ([`handle_log`]); or, with an [`InvokeTarget`], hand each
//!    missing file to Function Compute as an asynchronous invocation of the function itself.
//!
//! Every step is idempotent: a re-run after a failure or a `kill -9` finds the manifests of what
//! finished and converts only the rest; a half-done file has no manifest and is converted again
//! over its own keys.

pub mod timer;

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::cloud::api::ApiClient;
use crate::cloud::cdn::{list_logs, LogInfo, MAX_PAGE_SIZE};
use crate::cloud::fc::{async_task_id, invoke_async, log_file_event, Submitted};
use crate::convert::file_layout;
use crate::error::{Error, Result};
use crate::event::redact::redact_url;
use crate::event::LogFile;
use crate::ingest::handler::{handle_log, HandlerOptions};
use crate::lake::descriptor::Descriptor;
use crate::lake::manifest::Manifest;
use crate::lake::store::Lake;

/// The same AccessKey (or STS token) for the cloud APIs as for OSS: one set of credentials
/// comes from the environment or from FC's headers, and both signers take it.
impl From<&crate::lake::store::Credentials> for crate::cloud::acs3::Credentials {
    fn from(c: &crate::lake::store::Credentials) -> Self {
        crate::cloud::acs3::Credentials {
            access_key_id: c.key_id.clone(),
            access_key_secret: c.secret.clone(),
            security_token: c.token.clone(),
        }
    }
}

/// Manifest reads in flight during the check, and invocations in flight: the read side's one
/// setting ([`crate::lake::read::concurrency`]), enough to hide a store's latency (a month of one
/// domain is 720 files), few enough not to be throttled.
fn checks_in_flight() -> usize {
    crate::lake::read::concurrency()
}

/// Where missing files go when they are handed to Function Compute.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
    pub client: ApiClient,
    pub function: String,
    /// Version or alias (`LATEST` when `None`).
    pub qualifier: Option<String>,
    /// Written into the events' `region`.
    pub region: String,
}

/// Settings of one sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub domains: Vec<String>,
    /// The window, `[from, to)`, as the API reads it (UTC instants).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Conversions at once (ignored when invoking).
    pub jobs: usize,
    /// List and check only: say what would be converted or invoked.
    pub dry_run: bool,
    pub page_size: u32,
    pub handler: HandlerOptions,
    pub invoke: Option<InvokeTarget>,
}

/// What happened to one listed file, serialised as the snake-case names the JSON report has
/// always used (`done`, `would_convert`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Already in the lake: its manifest records the listed size.
    Done,
    Converted,
    Invoked,
    /// FC has this file's task id: submitted earlier today.
    AlreadyInvoked,
    WouldConvert,
    WouldInvoke,
    Failed,
}

impl Action {
    /// The name the report gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Done => "done",
            Action::Converted => "converted",
            Action::Invoked => "invoked",
            Action::AlreadyInvoked => "already_invoked",
            Action::WouldConvert => "would_convert",
            Action::WouldInvoke => "would_invoke",
            Action::Failed => "failed",
        }
    }

    /// A dry run's "would" action.
    pub fn is_pending(self) -> bool {
        matches!(self, Action::WouldConvert | Action::WouldInvoke)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one listed file.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub domain: String,
    pub name: String,
    /// `LogSize`, bytes.
    pub size: u64,
    /// What was done with it ([`Action`]).
    pub action: Action,
    /// Why it was (or would be) converted: `missing`, or `size changed (lake N, CDN M)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// One line, for `failed`.
    pub error: Option<String>,
}

impl FileOutcome {
    /// What happened to `log`: `action`, and why it was (or would be) converted.
    fn new(log: &LogInfo, action: Action, reason: Option<String>) -> Self {
        FileOutcome {
            domain: log.domain.clone(),
            name: log.name.clone(),
            size: log.size,
            action,
            reason,
            rows: None,
            error: None,
        }
    }

    /// The same outcome, failed with `error`.
    fn failed(self, error: impl std::fmt::Display) -> Self {
        FileOutcome {
            action: Action::Failed,
            error: Some(error.to_string()),
            ..self
        }
    }
}

/// A domain whose files could not be listed.
#[derive(Debug, Clone, Serialize)]
pub struct ListingError {
    pub domain: String,
    pub error: String,
}

/// What a sync did; `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub from: String,
    pub to: String,
    pub domains: Vec<String>,
    pub dry_run: bool,
    pub listed: usize,
    pub done: usize,
    pub converted: usize,
    pub invoked: usize,
    pub failed: usize,
    /// Bytes of the files converted (or invoked) by this run.
    pub bytes: u64,
    pub listing_errors: Vec<ListingError>,
    pub files: Vec<FileOutcome>,
    pub seconds: f64,
}

impl SyncReport {
    /// Whether anything failed (a file, or the listing of a domain): the exit status.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.listing_errors.is_empty()
    }
}

/// Told of the work as it goes (the CLI's progress bar).
pub trait Progress: Send + Sync {
    /// The files to convert or invoke, and their bytes.
    fn planned(&self, _files: usize, _bytes: u64) {}
    fn finished(&self, _outcome: &FileOutcome) {}
}

/// No progress display.
pub(crate) struct Quiet;
impl Progress for Quiet {}

/// Whether a listed file is already in the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Done,
    Missing,
    /// The manifest records another source size: the CDN's file changed since it was converted.
    SizeChanged {
        recorded: u64,
    },
}

/// Checks one listed file against its manifest.
pub async fn status(lake: &Lake, log: &LogInfo, handler: &HandlerOptions) -> Result<Status> {
    let layout = file_layout_of(lake, log, handler)?;
    let key = layout.manifest();
    let Some(bytes) = lake.get_opt(&key).await? else {
        return Ok(Status::Missing);
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(m) if m.source.bytes == log.size => Ok(Status::Done),
        Ok(m) => Ok(Status::SizeChanged {
            recorded: m.source.bytes,
        }),
        Err(e) => {
            tracing::warn!(%key, error = %e, "unreadable manifest: the file counts as missing");
            Ok(Status::Missing)
        }
    }
}

/// The layout a conversion of `log` writes: the domain from the name, else the domain listed.
fn file_layout_of(
    lake: &Lake,
    log: &LogInfo,
    handler: &HandlerOptions,
) -> Result<crate::lake::layout::FileLayout> {
    let mut convert = handler.convert.clone();
    if convert.domain.is_none() && crate::access::filename::parse_file_name(&log.name).is_none() {
        convert.domain = Some(log.domain.clone());
    }
    file_layout(lake, &log.name, &redact_url(&log.path), &convert)
}

/// Lists every domain's files in the window. A domain whose listing fails is reported and the
/// others go on.
pub(crate) async fn list_all(
    cdn: &ApiClient,
    opts: &SyncOptions,
) -> (Vec<LogInfo>, Vec<ListingError>) {
    let mut logs = Vec::new();
    let mut errors = Vec::new();
    for domain in &opts.domains {
        match list_logs(cdn, domain, opts.from, opts.to, opts.page_size).await {
            Ok(found) => {
                for log in &found {
                    if log.name_matches_times() == Some(false) {
                        tracing::warn!(name = %log.name, start = %log.start, "the name's UTC+8 hour and the API's StartTime differ; the name decides the partition folders");
                    }
                }
                tracing::info!(%domain, files = found.len(), "listed");
                logs.extend(found);
            }
            Err(e) => {
                // In the report, which the caller prints or returns: not logged twice.
                tracing::debug!(%domain, error = %e, "listing failed");
                errors.push(ListingError {
                    domain: domain.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    (logs, errors)
}

/// Runs a whole sync: list, check, convert or invoke. Call from inside the runtime; the
/// conversions run on its blocking pool.
pub async fn sync(
    lake: &Lake,
    cdn: &ApiClient,
    opts: &SyncOptions,
    progress: &dyn Progress,
) -> SyncReport {
    let started = Instant::now();
    let (logs, listing_errors) = list_all(cdn, opts).await;
    let listed = logs.len();
    let (mut files, todo) = check_all(lake, logs, opts).await;
    let bytes: u64 = todo.iter().map(|(l, _)| l.size).sum();
    progress.planned(todo.len(), bytes);
    files.extend(work(lake, todo, opts, progress).await);
    finish(opts, started, listed, bytes, listing_errors, files)
}

/// A listed file to convert or invoke, and why (`missing`, `size changed ...`).
type Todo = (LogInfo, String);

/// Checks every listed file against the lake: the outcomes of the files done (or whose check
/// failed), and the files still to do.
async fn check_all(
    lake: &Lake,
    logs: Vec<LogInfo>,
    opts: &SyncOptions,
) -> (Vec<FileOutcome>, Vec<Todo>) {
    let checks: Vec<(LogInfo, Result<Status>)> = futures::stream::iter(logs)
        .map(|log| async move {
            let s = status(lake, &log, &opts.handler).await;
            (log, s)
        })
        .buffered(checks_in_flight())
        .collect()
        .await;
    let mut files: Vec<FileOutcome> = Vec::with_capacity(checks.len());
    let mut todo: Vec<Todo> = Vec::new();
    for (log, s) in checks {
        match s {
            Ok(Status::Done) => files.push(FileOutcome::new(&log, Action::Done, None)),
            Ok(Status::Missing) => todo.push((log, "missing".into())),
            Ok(Status::SizeChanged { recorded }) => {
                let why = format!("size changed (lake {recorded}, CDN {})", log.size);
                todo.push((log, why));
            }
            Err(e) => files.push(FileOutcome::new(&log, Action::Failed, None).failed(e)),
        }
    }
    (files, todo)
}

/// Does the files to do: names them in a dry run, else invokes the function for each (with an
/// [`InvokeTarget`]) or converts them here.
async fn work(
    lake: &Lake,
    todo: Vec<Todo>,
    opts: &SyncOptions,
    progress: &dyn Progress,
) -> Vec<FileOutcome> {
    if opts.dry_run {
        let action = if opts.invoke.is_some() {
            Action::WouldInvoke
        } else {
            Action::WouldConvert
        };
        return todo
            .into_iter()
            .map(|(log, why)| FileOutcome::new(&log, action, Some(why)))
            .collect();
    }
    match &opts.invoke {
        Some(target) => invoke_all(target, todo, progress).await,
        None => convert_all(lake, todo, opts, progress).await,
    }
}

/// Hands each file to Function Compute, [`checks_in_flight`] at a time.
async fn invoke_all(
    target: &InvokeTarget,
    todo: Vec<Todo>,
    progress: &dyn Progress,
) -> Vec<FileOutcome> {
    let day = Utc::now();
    futures::stream::iter(todo)
        .map(|(log, why)| async move {
            let out = invoke_one(target, &log, why, day).await;
            progress.finished(&out);
            out
        })
        .buffer_unordered(checks_in_flight())
        .collect()
        .await
}

/// Converts each file here, `jobs` at a time. Every file fails when the lake's descriptor
/// cannot be read or written.
async fn convert_all(
    lake: &Lake,
    todo: Vec<Todo>,
    opts: &SyncOptions,
    progress: &dyn Progress,
) -> Vec<FileOutcome> {
    // The lake's layout and clock, recorded by its first run (or by this one, for a new
    // lake): read once, before the first conversion, as `convert` and `serve` do.
    let handler = match ensure_descriptor(lake, &opts.handler, todo.is_empty()).await {
        Ok(h) => h,
        Err(e) => {
            let error = e.to_string();
            let failed: Vec<FileOutcome> = todo
                .into_iter()
                .map(|(log, why)| {
                    FileOutcome::new(&log, Action::Converted, Some(why)).failed(&error)
                })
                .collect();
            for f in &failed {
                progress.finished(f);
            }
            return failed;
        }
    };
    let handler = &handler;
    let rt = Handle::current();
    futures::stream::iter(todo)
        .map(|(log, why)| {
            let rt = rt.clone();
            async move {
                let out = convert_one(lake, rt, &log, why, handler).await;
                progress.finished(&out);
                out
            }
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await
}

/// The handler settings with the lake's descriptor applied (none read when nothing is to be
/// converted: a sync that finds the lake complete costs no extra request).
async fn ensure_descriptor(
    lake: &Lake,
    handler: &HandlerOptions,
    nothing_to_do: bool,
) -> Result<HandlerOptions> {
    let mut h = handler.clone();
    if !nothing_to_do {
        let d = Descriptor::ensure(lake, &handler.lake).await?;
        h.convert = h.convert.for_lake(&d);
    }
    Ok(h)
}

fn finish(
    opts: &SyncOptions,
    started: Instant,
    listed: usize,
    bytes: u64,
    listing_errors: Vec<ListingError>,
    mut files: Vec<FileOutcome>,
) -> SyncReport {
    files.sort_by(|a, b| a.domain.cmp(&b.domain).then_with(|| a.name.cmp(&b.name)));
    let count = |a: Action| files.iter().filter(|f| f.action == a).count();
    let worked: u64 = files
        .iter()
        .filter(|f| matches!(f.action, Action::Converted | Action::Invoked))
        .map(|f| f.size)
        .sum();
    SyncReport {
        from: crate::cloud::cdn::api_time(opts.from),
        to: crate::cloud::cdn::api_time(opts.to),
        domains: opts.domains.clone(),
        dry_run: opts.dry_run,
        listed,
        done: count(Action::Done),
        converted: count(Action::Converted),
        invoked: count(Action::Invoked),
        failed: count(Action::Failed),
        bytes: if opts.dry_run { bytes } else { worked },
        listing_errors,
        files,
        seconds: started.elapsed().as_secs_f64(),
    }
}

async fn convert_one(
    lake: &Lake,
    rt: Handle,
    log: &LogInfo,
    why: String,
    handler: &HandlerOptions,
) -> FileOutcome {
    let file = LogFile {
        domain: log.domain.clone(),
        file_path: log.path.clone(),
        file_size: Some(log.size),
        start_time: Some(log.start.timestamp()),
        end_time: Some(log.end.timestamp()),
    };
    let (lake2, handler2) = (lake.clone(), handler.clone());
    let result = tokio::task::spawn_blocking(move || {
        let retries = Arc::new(AtomicU32::new(0));
        handle_log(&lake2, &rt, &file, &handler2, &retries)
    })
    .await
    .unwrap_or_else(|e| Err(Error::Internal(format!("conversion task failed: {e}"))));
    let out = FileOutcome::new(log, Action::Converted, Some(why));
    match result {
        Ok(run) => FileOutcome {
            rows: Some(run.rows),
            ..out
        },
        Err(e) => {
            tracing::debug!(name = %log.name, error = %e, "conversion failed");
            out.failed(e)
        }
    }
}

async fn invoke_one(
    target: &InvokeTarget,
    log: &LogInfo,
    why: String,
    day: DateTime<Utc>,
) -> FileOutcome {
    let out = FileOutcome::new(log, Action::Invoked, Some(why));
    let body = match serde_json::to_vec(&log_file_event(log, day, &target.region)) {
        Ok(b) => b,
        Err(e) => return out.failed(e),
    };
    let task = async_task_id(&log.name, log.size, day);
    match invoke_async(
        &target.client,
        &target.function,
        target.qualifier.as_deref(),
        &task,
        &body,
    )
    .await
    {
        Ok(Submitted::Queued { request_id }) => {
            tracing::info!(name = %log.name, task = %task, request_id = ?request_id, "invoked");
            out
        }
        Ok(Submitted::AlreadySubmitted) => FileOutcome {
            action: Action::AlreadyInvoked,
            ..out
        },
        Err(e) => {
            tracing::debug!(name = %log.name, error = %e, "invocation failed");
            out.failed(e)
        }
    }
}

/// The conversions `requested` may run at once within `memory` bytes (the same budget as
/// `serve`: [`crate::ingest::server::conversion_slots`]).
pub fn jobs_within(requested: usize, memory: u64) -> usize {
    requested
        .max(1)
        .min(crate::ingest::server::conversion_slots(memory))
}

/// The default page size: the largest the API gives.
pub const PAGE_SIZE: u32 = MAX_PAGE_SIZE;
