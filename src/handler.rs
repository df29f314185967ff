//! What an invocation does with its events, shared by `cdnlake handle` and `cdnlake serve` so
//! that both give the same lake for the same events.
//!
//! Every event is first kept under `audit/events/` (signed query redacted); cache and domain
//! events also become audit rows; a `LogFileCreated` event runs the log pipeline on its URL;
//! an unknown event is only kept and reported. All events of an invocation are handled even when
//! one fails, and the invocation then fails as a whole, so FC retries it: every key derives from
//! the event, so the retry rewrites the same objects.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::runtime::Handle;

use crate::access::filename::parse_file_name;
use crate::audit::record_event;
use crate::error::{Error, Result};
use crate::event::{redact_url, Event, EventKind, LogFile, Payload};
use crate::http::{client, AllowList, HttpOptions, HttpReader};
use crate::lake::store::Lake;
use crate::pipeline::{convert_reader, file_layout, ConvertOptions, RunReport};

/// Settings of event handling.
#[derive(Debug, Clone, Default)]
pub struct HandlerOptions {
    /// Hosts logs may be fetched from.
    pub allow: AllowList,
    pub http: HttpOptions,
    pub convert: ConvertOptions,
}

/// What was done with one event.
#[derive(Debug, Clone, Serialize)]
pub struct EventReport {
    pub index: usize,
    pub event_name: String,
    pub trace_id: String,
    pub trace_id_generated: bool,
    /// `log`, `cache_audit`, `domain_audit` or `unknown` (kept, not processed).
    pub action: &'static str,
    /// Keys written for the event itself (archive and audit rows), relative to the destination.
    pub keys: Vec<String>,
    /// The log run, for `LogFileCreated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<RunReport>,
    /// Times the log download was retried (resumed or restarted before any byte), for
    /// `LogFileCreated`: a sign of a flaky source even when the run succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_retries: Option<u32>,
    /// One line, when handling this event failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an invocation did.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationReport {
    pub events: usize,
    pub unknown: usize,
    pub failed: usize,
    pub reports: Vec<EventReport>,
}

/// Handles every event; fails (after trying them all) when any failed. Blocking: call it from a
/// plain thread (or `spawn_blocking`), not from inside the runtime.
pub fn handle_events(
    lake: &Lake,
    rt: &Handle,
    events: &[Event],
    opts: &HandlerOptions,
) -> (InvocationReport, Result<()>) {
    let mut reports = Vec::with_capacity(events.len());
    let mut errors = Vec::new();
    for ev in events {
        let action = match (&ev.payload, &ev.kind) {
            (Payload::LogFile(_), _) => "log",
            (Payload::Cache(_), _) => "cache_audit",
            (Payload::Domain(_), _) => "domain_audit",
            (Payload::Unknown, _) => "unknown",
        };
        if let EventKind::Unknown(name) = &ev.kind {
            tracing::warn!(index = ev.index, event = %name, version = ?ev.version, trace_id = %ev.trace_id, "unknown event kept, not processed");
        }
        let mut report = EventReport {
            index: ev.index,
            event_name: ev.name.clone(),
            trace_id: ev.trace_id.clone(),
            trace_id_generated: ev.trace_id_generated,
            action,
            keys: Vec::new(),
            log: None,
            http_retries: None,
            error: None,
        };
        let result = (|| -> Result<()> {
            report.keys = rt.block_on(record_event(lake, ev, opts.convert.tz))?;
            if let Payload::LogFile(log) = &ev.payload {
                let retries = Arc::new(AtomicU32::new(0));
                let run = handle_log(lake, rt, log, opts, &retries);
                report.http_retries = Some(retries.load(Ordering::Relaxed));
                report.log = Some(run?);
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(index = ev.index, event = %ev.name, trace_id = %ev.trace_id, error = %e, "event failed");
            report.error = Some(e.to_string());
            errors.push(e);
        }
        reports.push(report);
    }
    let report = InvocationReport {
        events: events.len(),
        unknown: reports.iter().filter(|r| r.action == "unknown").count(),
        failed: errors.len(),
        reports,
    };
    let total = events.len();
    let result = match errors.len() {
        0 => Ok(()),
        1 if total == 1 => Err(errors.remove(0)),
        failed => Err(Error::EventsFailed {
            failed,
            total,
            first: Box::new(errors.remove(0)),
        }),
    };
    (report, result)
}

/// Fetches a `LogFileCreated` event's file and runs the log pipeline on it. `retries` receives
/// the download's retry count, whether the run succeeds or not.
pub fn handle_log(
    lake: &Lake,
    rt: &Handle,
    log: &LogFile,
    opts: &HandlerOptions,
    retries: &Arc<AtomicU32>,
) -> Result<RunReport> {
    let location = redact_url(&log.file_path);
    let http = {
        let _guard = rt.enter();
        client(&opts.http)?
    };
    // The URL is checked here, before anything else touches the network.
    let reader = HttpReader::new(
        rt.clone(),
        http,
        &log.file_path,
        &opts.allow,
        log.file_size,
        opts.http.clone(),
    )?
    .with_retry_counter(retries.clone());
    let name = log.file_name().ok_or_else(|| Error::Event {
        index: None,
        field: "eventParameter.filePath".into(),
        reason: format!("{location} has no file name"),
    })?;
    let mut convert = opts.convert.clone();
    // The file name says the domain; the event's is the fallback for names that do not parse.
    if convert.domain.is_none() && parse_file_name(&name).is_none() {
        convert.domain = Some(log.domain.clone());
    }
    let layout = file_layout(lake, &name, &location, &convert)?;
    convert_reader(lake, rt, &layout, &location, reader, &convert)
}
