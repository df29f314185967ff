//! Function Compute 3.0's `InvokeFunction`, asynchronous: how `sync --invoke-fc` hands each
//! missing log file to the function, one invocation per file, so many instances convert at once.
//!
//! `POST /2023-03-30/functions/{name}/invocations[?qualifier=Q]` with `x-fc-invocation-type:
//! Async`; FC answers 202 once the event is queued, and runs it with its own retries. Each
//! invocation carries an `x-fc-async-task-id` derived from the file ([`async_task_id`]): FC
//! refuses a task id it already has (409), so a sync repeated the same day does not submit the
//! same file twice. The body is a `LogFileCreated` event ([`log_file_event`]) that `serve`
//! handles exactly like the CDN's own.

use crate::access::time::CDN_OFFSET_SECS;
use chrono::{DateTime, FixedOffset, Utc};
use sha2::{Digest, Sha256};

use super::api::{ApiClient, Call};
use super::cdn::LogInfo;
use crate::error::Result;

pub(crate) const VERSION: &str = "2023-03-30";
pub(crate) const ACTION: &str = "InvokeFunction";

/// The path of a function's invocations. The name is one path segment (the signer
/// percent-encodes it).
pub(crate) fn invocations_path(function: &str) -> String {
    format!("/{VERSION}/functions/{function}/invocations")
}

/// The async task id of one file: `cdnlake-<stem>-<hash>`, where the hash covers the file name,
/// its size and the UTC day of the submission.
///
/// - Name and size: the same file, unchanged, is the same task; a file the CDN rewrote (its
///   size changed) is a new one.
/// - The day: FC keeps a task id for good, and a task that failed for good (past FC's own
///   retries) would otherwise block that file forever. With the day in the id, the hourly
///   reconciliation submits a still-missing file again once a day, never twice in a day.
///
/// FC's rule: start with a letter or `_`, then letters, digits, `_` and `-`, 128 at most. The
/// readable part keeps the stem's allowed characters (others become `-`), cut to 80.
pub(crate) fn async_task_id(name: &str, size: u64, day: DateTime<Utc>) -> String {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update(size.to_string().as_bytes());
    h.update(b"\0");
    h.update(day.format("%Y-%m-%d").to_string().as_bytes());
    let hash = hex::encode(&h.finalize()[..8]);
    let readable: String = crate::access::filename::stem(name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(80)
        .collect();
    format!("cdnlake-{readable}-{hash}")
}

/// Whether `id` is a task id FC accepts.
#[cfg(test)]
pub(crate) fn valid_task_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The invocation body for one file: `{"events":[LogFileCreated]}` as the CDN sends it, with
/// `eventTime` the submission time in UTC+8 (the CDN's clock) and a `traceId` that names sync
/// as its origin.
pub(crate) fn log_file_event(log: &LogInfo, now: DateTime<Utc>, region: &str) -> serde_json::Value {
    let secs = chrono::SecondsFormat::Secs;
    let event_time = match FixedOffset::east_opt(CDN_OFFSET_SECS) {
        Some(beijing) => now.with_timezone(&beijing).to_rfc3339_opts(secs, false),
        None => now.to_rfc3339_opts(secs, false),
    };
    let trace = async_task_id(&log.name, log.size, now).replacen("cdnlake-", "cdnlake-sync-", 1);
    serde_json::json!({
        "events": [{
            "eventName": "LogFileCreated",
            "eventSource": "cdn",
            "region": region,
            "eventVersion": "1.0.0",
            "eventTime": event_time,
            "traceId": trace,
            "userIdentity": {"aliUid": ""},
            "resource": {"domain": log.domain},
            "eventParameter": {
                "domain": log.domain,
                "filePath": log.path,
                "fileSize": log.size,
                "startTime": log.start.timestamp(),
                "endTime": log.end.timestamp(),
            }
        }]
    })
}

/// How an asynchronous invocation was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Submitted {
    /// Queued (202); FC's request id.
    Queued { request_id: Option<String> },
    /// FC already has this task id (409): submitted before, not again.
    AlreadySubmitted,
}

/// Submits one asynchronous invocation of `function` (at `qualifier`, e.g. `LATEST` or an
/// alias) with `body` and `task_id`.
pub(crate) async fn invoke_async(
    client: &ApiClient,
    function: &str,
    qualifier: Option<&str>,
    task_id: &str,
    body: &[u8],
) -> Result<Submitted> {
    let path = invocations_path(function);
    let query: Vec<(&str, &str)> = qualifier.map(|q| ("qualifier", q)).into_iter().collect();
    let headers = [
        ("x-fc-invocation-type", "Async"),
        ("x-fc-async-task-id", task_id),
        ("x-fc-log-type", "None"),
    ];
    let reply = client
        .call(
            &Call {
                method: "POST",
                path: &path,
                query: &query,
                action: ACTION,
                version: VERSION,
                content_type: Some("application/json"),
                headers: &headers,
                body,
            },
            |status| status == 409,
        )
        .await?;
    if reply.status == 409 {
        return Ok(Submitted::AlreadySubmitted);
    }
    Ok(Submitted::Queued {
        request_id: reply
            .headers
            .get("x-fc-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn log(name: &str, size: u64) -> LogInfo {
        LogInfo {
            domain: "www.example.com".into(),
            name: name.into(),
            path: "cdnlog.example/x.gz?Signature=SIG".into(),
            size,
            start: Utc.with_ymd_and_hms(2024, 3, 5, 0, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2024, 3, 5, 1, 0, 0).unwrap(),
        }
    }

    #[test]
    fn task_ids_follow_fc_rules_and_change_with_size_and_day() {
        let day = Utc.with_ymd_and_hms(2024, 3, 6, 10, 0, 0).unwrap();
        let later = Utc.with_ymd_and_hms(2024, 3, 6, 23, 59, 0).unwrap();
        let next = Utc.with_ymd_and_hms(2024, 3, 7, 0, 0, 0).unwrap();
        let name = "www.example.com_2024_03_05_080000_090000_1.gz";
        let id = async_task_id(name, 100, day);
        assert!(valid_task_id(&id), "{id}");
        assert!(
            id.starts_with("cdnlake-www-example-com_2024_03_05_080000_090000_1-"),
            "{id}"
        );
        assert_eq!(id, async_task_id(name, 100, later));
        assert_ne!(id, async_task_id(name, 101, day));
        assert_ne!(id, async_task_id(name, 100, next));
        assert_ne!(
            id,
            async_task_id("www.example.com_2024_03_05_080000_090000_2.gz", 100, day)
        );
        let long = format!("{}.gz", "a".repeat(300));
        assert!(valid_task_id(&async_task_id(&long, 1, day)));
        assert!(!valid_task_id("1abc"));
        assert!(!valid_task_id("a.b"));
    }

    #[test]
    fn the_event_is_one_serve_reads_as_the_cdn_s() {
        let now = Utc.with_ymd_and_hms(2024, 3, 6, 10, 0, 0).unwrap();
        let body = serde_json::to_vec(&log_file_event(
            &log("www.example.com_2024_03_05_0800_0900.gz", 77),
            now,
            "cn-hangzhou",
        ))
        .unwrap();
        let events = crate::event::parse_strict(&body).unwrap();
        assert_eq!(events.len(), 1);
        let crate::event::Payload::LogFile(f) = &events[0].payload else {
            panic!("not a log file event: {:?}", events[0].payload);
        };
        assert_eq!(f.file_size, Some(77));
        assert_eq!(f.domain, "www.example.com");
        assert_eq!(f.file_path, "cdnlog.example/x.gz?Signature=SIG");
        assert!(events[0].trace_id.starts_with("cdnlake-sync-"));
    }
}
