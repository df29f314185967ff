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
use crate::convert::{convert_reader, file_layout, ConvertOptions, RunReport};
use crate::error::{Error, Result};
use crate::event::redact::redact_url;
use crate::event::{Event, EventKind, LogFile, Malformed, Parsed, Payload};
use crate::ingest::fetch::{client, AllowList, HttpOptions, HttpReader};
use crate::lake::store::Lake;
use crate::writers::audit::{record_event, record_malformed};

/// Settings of event handling.
#[derive(Debug, Clone, Default)]
pub struct HandlerOptions {
    /// Hosts logs may be fetched from.
    pub allow: AllowList,
    pub http: HttpOptions,
    /// How logs are converted. Its `tz` and `partition_by` are the lake's: whoever starts the
    /// work calls [`Descriptor::ensure`](crate::lake::descriptor::Descriptor::ensure) with
    /// `lake` and applies the result ([`ConvertOptions::for_lake`]); `handle_*` do not read the
    /// descriptor themselves.
    pub convert: ConvertOptions,
    /// The lake settings this handler was given (`--partition-by`, `--partition-tz`), checked
    /// against the lake's descriptor by whoever starts the work (`handle`, `serve`).
    pub lake: crate::lake::descriptor::Wanted,
}

/// What was done with one event.
#[derive(Debug, Clone, Serialize)]
pub struct EventReport {
    pub index: usize,
    pub event_name: String,
    pub trace_id: String,
    pub trace_id_generated: bool,
    pub action: EventAction,
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

/// What was done with an event, serialised as its snake_case name (`log`, `cache_audit`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// `LogFileCreated`: the log was converted.
    Log,
    CacheAudit,
    DomainAudit,
    /// An unknown event: kept, not processed.
    Unknown,
    /// Could not be read: kept under `audit/events/dt=undated/`, and the invocation fails.
    Malformed,
}

impl EventAction {
    /// The name the report gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Log => "log",
            EventAction::CacheAudit => "cache_audit",
            EventAction::DomainAudit => "domain_audit",
            EventAction::Unknown => "unknown",
            EventAction::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for EventAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an invocation did.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationReport {
    /// Elements of `events`, malformed ones included.
    pub events: usize,
    pub unknown: usize,
    /// Elements that could not be read.
    pub malformed: usize,
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
    handle(lake, rt, events, &[], opts)
}

/// Handles every element of an invocation, those that could not be read included: the good
/// events are handled as by [`handle_events`], each malformed one is kept as received (redacted)
/// under `audit/events/dt=undated/`, and then the invocation fails, naming the first bad element
/// and its field, so that FC retries it (the retry rewrites the same keys).
pub fn handle_parsed(
    lake: &Lake,
    rt: &Handle,
    parsed: &Parsed,
    opts: &HandlerOptions,
) -> (InvocationReport, Result<()>) {
    handle(lake, rt, &parsed.events, &parsed.malformed, opts)
}

fn handle(
    lake: &Lake,
    rt: &Handle,
    events: &[Event],
    malformed: &[Malformed],
    opts: &HandlerOptions,
) -> (InvocationReport, Result<()>) {
    let mut reports = Vec::with_capacity(events.len() + malformed.len());
    // (index, error), to report the failures in the order of `events`.
    let mut errors: Vec<(usize, Error)> = Vec::new();
    for m in malformed {
        tracing::error!(index = m.index, error = %m.error, "malformed event kept, not processed");
        let name = m
            .raw
            .get("eventName")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let mut report = EventReport {
            index: m.index,
            event_name: name.to_string(),
            trace_id: m.key_id(),
            trace_id_generated: true,
            action: EventAction::Malformed,
            keys: Vec::new(),
            log: None,
            http_retries: None,
            error: Some(m.error.to_string()),
        };
        match record_malformed(lake, rt, m) {
            Ok(k) => report.keys.push(k),
            Err(e) => {
                tracing::error!(index = m.index, error = %e, "keeping the malformed event failed");
            }
        }
        errors.push((m.index, clone_event_error(&m.error)));
        reports.push(report);
    }
    for ev in events {
        let action = match &ev.payload {
            Payload::LogFile(_) => EventAction::Log,
            Payload::Cache(_) => EventAction::CacheAudit,
            Payload::Domain(_) => EventAction::DomainAudit,
            Payload::Unknown => EventAction::Unknown,
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
            report.keys = record_event(lake, rt, ev, opts.convert.tz)?;
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
            errors.push((ev.index, e));
        }
        reports.push(report);
    }
    reports.sort_by_key(|r| r.index);
    errors.sort_by_key(|(i, _)| *i);
    let mut errors: Vec<Error> = errors.into_iter().map(|(_, e)| e).collect();
    let total = events.len() + malformed.len();
    let report = InvocationReport {
        events: total,
        unknown: reports
            .iter()
            .filter(|r| r.action == EventAction::Unknown)
            .count(),
        malformed: malformed.len(),
        failed: errors.len(),
        reports,
    };
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

/// A copy of a parse error (the parser's errors are all [`Error::Event`]; anything else is
/// carried as its text).
fn clone_event_error(e: &Error) -> Error {
    match e {
        Error::Event {
            index,
            field,
            reason,
        } => Error::Event {
            index: *index,
            field: field.clone(),
            reason: reason.clone(),
        },
        other => Error::Event {
            index: None,
            field: String::new(),
            reason: other.to_string(),
        },
    }
}

/// Fetches a `LogFileCreated` event's file and runs the log pipeline on it. `retries` receives
/// the download's retry count, whether the run succeeds or not.
pub(crate) fn handle_log(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_serialise_to_their_report_names() {
        for a in [
            EventAction::Log,
            EventAction::CacheAudit,
            EventAction::DomainAudit,
            EventAction::Unknown,
            EventAction::Malformed,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
            assert_eq!(a.to_string(), a.as_str());
        }
        assert_eq!(
            serde_json::to_value(EventAction::CacheAudit).unwrap(),
            "cache_audit"
        );
    }
}
