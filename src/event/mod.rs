//! CDN events: the envelope `{"events": [...]}` that the FC trigger posts, and a typed payload
//! for each of the eight event names CDN sends (docs/design.md §1.1).
//!
//! Parsing is pure (bytes in, events or an error out), in two steps: the text becomes a
//! `serde_json::Value` (strictly for `serve`, or after [`lenient`]'s pre-pass that blanks out
//! comments and trailing commas for the CLI), then [`parse`] reads each element of `events` field
//! by field, so that an error can name the event index and the field, and so that numbers
//! arriving as strings (`"fileSize": "1788115"`, seen in real events) are accepted. [`redact`]
//! removes signed queries before anything is logged or kept; the fetcher uses it too.
//!
//! An event name or version this code does not know is not an error: it becomes
//! [`Payload::Unknown`], is kept verbatim under `audit/events/` and is reported.

mod lenient;
mod parse;
pub(crate) mod redact;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::event::redact::{redact_url, redact_value, strip_query};
pub use lenient::strip_comments_and_trailing_commas;
pub use parse::{
    assign_key_ids, hash_id, parse_lenient, parse_lenient_each, parse_strict, parse_strict_each,
    parse_value, parse_value_each,
};

/// The event names CDN sends, plus any other name kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EventKind {
    LogFileCreated,
    CachedObjectsRefreshed,
    CachedObjectsPushed,
    CachedObjectsBlocked,
    CdnDomainStarted,
    CdnDomainStopped,
    CdnDomainAdded,
    CdnDomainDeleted,
    /// A name this code does not know (or a known name with an unsupported version).
    Unknown(String),
}

impl EventKind {
    fn from_name(name: &str) -> EventKind {
        match name {
            "LogFileCreated" => EventKind::LogFileCreated,
            "CachedObjectsRefreshed" => EventKind::CachedObjectsRefreshed,
            "CachedObjectsPushed" => EventKind::CachedObjectsPushed,
            "CachedObjectsBlocked" => EventKind::CachedObjectsBlocked,
            "CdnDomainStarted" => EventKind::CdnDomainStarted,
            "CdnDomainStopped" => EventKind::CdnDomainStopped,
            "CdnDomainAdded" => EventKind::CdnDomainAdded,
            "CdnDomainDeleted" => EventKind::CdnDomainDeleted,
            other => EventKind::Unknown(other.to_string()),
        }
    }
}

/// `LogFileCreated`: a log file is ready to be fetched. `Debug` shows the URL redacted.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct LogFile {
    pub domain: String,
    /// The signed URL of the `.gz` file. Secret until redacted: never log or store it as is;
    /// use [`redact_url`].
    #[serde(skip)]
    pub file_path: String,
    /// Compressed size announced by CDN, checked against the bytes received.
    pub file_size: Option<u64>,
    /// Unix seconds; informative only (they do not reliably match the file's hour).
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
}

/// By hand: a derived `Debug` would print the signed `file_path`, and `{:?}` ends up in logs
/// and panic messages.
impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFile")
            .field("domain", &self.domain)
            .field("file_path", &redact_url(&self.file_path))
            .field("file_size", &self.file_size)
            .field("start_time", &self.start_time)
            .field("end_time", &self.end_time)
            .finish()
    }
}

impl LogFile {
    /// The file name: the last segment of the URL path, percent-decoded.
    pub fn file_name(&self) -> Option<String> {
        let path = strip_query(&self.file_path);
        let path = path.split_once("://").map_or(path, |(_, rest)| rest);
        let (_, path) = path.split_once('/')?;
        let last = path.rsplit('/').next().filter(|s| !s.is_empty())?;
        Some(percent_decode(last))
    }
}

/// `CachedObjectsRefreshed` / `Pushed` / `Blocked`: a cache task over some object paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheTask {
    pub domain: String,
    pub object_paths: Vec<String>,
    /// `File` or `Directory`.
    pub object_type: Option<String>,
    /// An id; kept as text (it arrives as a number or a string and is never summed).
    pub task_id: Option<String>,
    /// Unix seconds.
    pub create_time: Option<i64>,
    pub complete_time: Option<i64>,
}

/// `CdnDomainStarted` / `Stopped` (with `status`) and `CdnDomainAdded` / `Deleted` (without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainChange {
    pub domain: String,
    pub status: Option<String>,
}

/// What the event asks for, by shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Payload {
    LogFile(LogFile),
    Cache(CacheTask),
    Domain(DomainChange),
    Unknown,
}

/// One element of `events`. `Debug` shows `raw` redacted.
#[derive(Clone, Serialize)]
pub struct Event {
    /// Position in `events`, for messages.
    pub index: usize,
    pub kind: EventKind,
    /// `eventName` as received.
    pub name: String,
    pub source: Option<String>,
    pub region: Option<String>,
    pub version: Option<String>,
    /// `eventTime` as received (RFC 3339 with offset).
    pub time: Option<String>,
    /// `eventTime` as microseconds since the epoch.
    pub time_micros: Option<i64>,
    /// `traceId`, or a hash of the event's bytes when missing (see [`Event::trace_id_generated`]).
    pub trace_id: String,
    pub trace_id_generated: bool,
    /// The name of the event's objects under `audit/`: the `traceId`, unless different events of
    /// the same invocation share that `traceId`; then each of them gets
    /// `<traceId>-<12 hex digits of its hash>` (see [`assign_key_ids`]).
    pub key_id: String,
    pub ali_uid: Option<String>,
    /// `resource.domain`.
    pub resource_domain: Option<String>,
    pub payload: Payload,
    /// The element as received, to be kept under `audit/events/` (after [`Event::redacted`]).
    #[serde(skip)]
    pub raw: Value,
}

/// By hand: a derived `Debug` would print `raw` (and the payload's `file_path`) with the
/// signed query, and `{:?}` ends up in logs and panic messages.
impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("index", &self.index)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("source", &self.source)
            .field("region", &self.region)
            .field("version", &self.version)
            .field("time", &self.time)
            .field("time_micros", &self.time_micros)
            .field("trace_id", &self.trace_id)
            .field("trace_id_generated", &self.trace_id_generated)
            .field("key_id", &self.key_id)
            .field("ali_uid", &self.ali_uid)
            .field("resource_domain", &self.resource_domain)
            .field("payload", &self.payload)
            .field("raw", &self.redacted())
            .finish()
    }
}

impl Event {
    /// The event as received with every signed URL's query removed: what may be stored or logged.
    pub fn redacted(&self) -> Value {
        redact_value(&self.raw)
    }

    /// The event's domain: from the payload, else `resource.domain`.
    pub fn domain(&self) -> Option<&str> {
        match &self.payload {
            Payload::LogFile(l) => Some(&l.domain),
            Payload::Cache(c) => Some(&c.domain),
            Payload::Domain(d) => Some(&d.domain),
            Payload::Unknown => self.resource_domain.as_deref(),
        }
    }
}

/// An element of `events` that could not be read. It is still kept as received (redacted, under
/// `audit/events/dt=undated/`), and it fails the invocation after the other elements were
/// handled: one bad element must not stop the good ones, nor be dropped silently.
pub struct Malformed {
    /// Position in `events`.
    pub index: usize,
    /// The element as received; holds signed URLs, use [`Malformed::redacted`].
    pub raw: Value,
    /// What is wrong, naming the index and the field.
    pub error: Error,
}

impl Malformed {
    /// The element with every signed URL's query removed: what may be stored or logged.
    pub fn redacted(&self) -> Value {
        redact_value(&self.raw)
    }

    /// The name of its object under `audit/events/dt=undated/`: [`hash_id`] of the element, so a
    /// retried invocation rewrites the same key.
    pub fn key_id(&self) -> String {
        hash_id(&self.raw)
    }
}

impl std::fmt::Debug for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Malformed")
            .field("index", &self.index)
            .field("raw", &self.redacted())
            .field("error", &self.error)
            .finish()
    }
}

/// The elements of `events`, read one by one: those that could be read and those that could
/// not.
#[derive(Debug, Default)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub malformed: Vec<Malformed>,
}

/// An [`Error::Event`] for element `index` (when known) and `field`.
fn bad(index: Option<usize>, field: &str, reason: String) -> Error {
    Error::Event {
        index,
        field: field.to_string(),
        reason,
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"events":[{"eventName":"LogFileCreated","eventSource":"cdn","region":"cn-hangzhou",
        "eventVersion":"1.0.0","eventTime":"2018-06-14T15:31:49+08:00","traceId":"t-1",
        "userIdentity":{"aliUid":"1234"},"resource":{"domain":"example.com"},
        "eventParameter":{"domain":"example.com","endTime":"1528959900","fileSize":"1788115",
        "filePath":"http://cdnlog.cn-hangzhou.oss.aliyun-inc.com/example.com/2018_06_14/example.com_2018_06_14_1400_1500.gz?OSSAccessKeyId=AK&Expires=1&Signature=SIG",
        "startTime":1528959600}}]}"#;

    #[test]
    fn log_event_with_string_numbers() {
        let ev = parse_strict(LOG.as_bytes()).unwrap();
        assert_eq!(ev.len(), 1);
        let Payload::LogFile(l) = &ev[0].payload else {
            panic!("{:?}", ev[0].payload)
        };
        assert_eq!(l.file_size, Some(1788115));
        assert_eq!(l.end_time, Some(1528959900));
        assert_eq!(l.start_time, Some(1528959600));
        assert_eq!(
            l.file_name().as_deref(),
            Some("example.com_2018_06_14_1400_1500.gz")
        );
        assert_eq!(ev[0].kind, EventKind::LogFileCreated);
        assert_eq!(ev[0].ali_uid.as_deref(), Some("1234"));
        let red = serde_json::to_string(&ev[0].redacted()).unwrap();
        assert!(
            !red.contains("Signature") && !red.contains("SIG") && !red.contains("OSSAccessKeyId"),
            "{red}"
        );
        assert!(red.contains("example.com_2018_06_14_1400_1500.gz"));
    }

    #[test]
    fn every_element_and_unknown_names() {
        let body = r#"{"events":[
          {"eventName":"CachedObjectsPushed","eventTime":"2018-03-16T14:19:55+08:00","traceId":"a",
           "resource":{"domain":"d.com"},"eventParameter":{"objectPath":["/a","/b"],"taskId":2089687230,
           "objectType":"File","createTime":1521180769,"completeTime":"1521180777","domain":"d.com"}},
          {"eventName":"CdnDomainStopped","eventTime":"2018-03-16T14:19:55+08:00","traceId":"b",
           "eventParameter":{"domain":"d.com","status":"offline"}},
          {"eventName":"CdnDomainDeleted","eventTime":"2018-03-16T14:19:55+08:00",
           "resource":{"domain":"e.com"},"eventParameter":{}},
          {"eventName":"SomethingNew","x":1}
        ]}"#;
        let ev = parse_strict(body.as_bytes()).unwrap();
        assert_eq!(ev.len(), 4);
        let Payload::Cache(c) = &ev[0].payload else {
            panic!()
        };
        assert_eq!(c.object_paths, ["/a", "/b"]);
        assert_eq!(c.task_id.as_deref(), Some("2089687230"));
        assert_eq!(c.complete_time, Some(1521180777));
        assert_eq!(
            ev[1].payload,
            Payload::Domain(DomainChange {
                domain: "d.com".into(),
                status: Some("offline".into())
            })
        );
        assert_eq!(
            ev[2].payload,
            Payload::Domain(DomainChange {
                domain: "e.com".into(),
                status: None
            })
        );
        assert!(ev[2].trace_id_generated);
        assert_eq!(ev[2].trace_id.len(), 32);
        assert_eq!(ev[3].kind, EventKind::Unknown("SomethingNew".into()));
        assert_eq!(ev[3].payload, Payload::Unknown);
        // The generated id is stable.
        let again = parse_strict(body.as_bytes()).unwrap();
        assert_eq!(again[2].trace_id, ev[2].trace_id);
    }

    #[test]
    fn errors_name_the_event_and_field() {
        let e = parse_strict(br#"{"events":[{"eventName":"CdnDomainAdded","eventTime":"2018-03-16T14:19:55+08:00","eventParameter":{"domain":"a"}},
            {"eventName":"LogFileCreated","eventTime":"2018-03-16T14:19:55+08:00","eventParameter":{"domain":"a","filePath":"http://x/y.gz","fileSize":"12a"}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("events[1]") && e.contains("eventParameter.fileSize") && e.contains("12a"),
            "{e}"
        );
        let e =
            parse_strict(br#"{"events":[{"eventName":"LogFileCreated","eventTime":"yesterday"}]}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("events[0]") && e.contains("eventTime"), "{e}");
        let e = parse_strict(br#"{"events":{}}"#).unwrap_err().to_string();
        assert!(e.contains("events") && e.contains("array"), "{e}");
        let e = parse_strict(b"[1,2]").unwrap_err().to_string();
        assert!(e.contains("object"), "{e}");
        let e = parse_strict(br#"{"events":[{"eventName":"LogFileCreated","eventTime":"2018-03-16T14:19:55+08:00","eventParameter":{"domain":"a"}}]}"#).unwrap_err().to_string();
        assert!(e.contains("filePath") && e.contains("missing"), "{e}");
    }

    /// The same event with `filePath` as the CDN API's `LogPath` gives it, without a scheme:
    /// the file name is still the last segment, and the signed query is redacted everywhere.
    #[test]
    fn scheme_less_file_path() {
        let text = LOG.replace("\"filePath\":\"http://", "\"filePath\":\"");
        assert!(text.contains("\"filePath\":\"cdnlog."));
        let ev = parse_strict(text.as_bytes()).unwrap();
        let Payload::LogFile(l) = &ev[0].payload else {
            panic!("not a log event")
        };
        assert_eq!(
            l.file_name().as_deref(),
            Some("example.com_2018_06_14_1400_1500.gz")
        );
        for shown in [
            serde_json::to_string(&ev[0].redacted()).unwrap(),
            format!("{:?}", ev[0]),
            format!("{l:?}"),
        ] {
            assert!(
                !shown.contains("SIG") && !shown.contains("OSSAccessKeyId"),
                "{shown}"
            );
            assert!(
                shown.contains("cdnlog.cn-hangzhou.oss.aliyun-inc.com/example.com/2018_06_14/example.com_2018_06_14_1400_1500.gz?<redacted>"),
                "{shown}"
            );
        }
        // A host alone names no file.
        let bare = LogFile {
            file_path: "cdnlog.cn-hangzhou.oss.aliyun-inc.com?x=1".into(),
            ..l.clone()
        };
        assert_eq!(bare.file_name(), None);
    }

    #[test]
    fn debug_output_is_redacted() {
        let ev = parse_strict(LOG.as_bytes()).unwrap();
        let Payload::LogFile(l) = &ev[0].payload else {
            panic!("not a log event")
        };
        for shown in [
            format!("{:?}", ev[0]),
            format!("{:#?}", ev),
            format!("{l:?}"),
        ] {
            assert!(
                !shown.contains("Signature") && !shown.contains("OSSAccessKeyId"),
                "{shown}"
            );
            assert!(shown.contains("example.com_2018_06_14_1400_1500.gz?<redacted>"));
        }
    }

    #[test]
    fn each_element_is_read_on_its_own() {
        let body = br#"{"events":[
          {"eventName":"CdnDomainAdded","eventTime":"2018-03-16T14:19:55+08:00","eventParameter":{"domain":"a"}},
          {"eventName":"CdnDomainAdded","eventParameter":{"url":"http://h/a.gz?Signature=SIG"}},
          7
        ]}"#;
        let p = parse_strict_each(body).unwrap();
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.events[0].index, 0);
        let bad: Vec<(usize, String)> = p
            .malformed
            .iter()
            .map(|m| (m.index, m.error.to_string()))
            .collect();
        assert_eq!(bad[0], (1, "events[1].eventTime: missing".to_string()));
        assert_eq!(bad[1].0, 2);
        assert!(bad[1].1.starts_with("events[2]"), "{bad:?}");
        assert_eq!(p.malformed[0].key_id(), hash_id(&p.malformed[0].raw));
        let shown = format!("{:?}", p.malformed[0]);
        assert!(!shown.contains("SIG"), "{shown}");
        // The fail-fast parser gives the first error.
        let e = parse_strict(body).unwrap_err().to_string();
        assert_eq!(e, "events[1].eventTime: missing");
    }

    #[test]
    fn lenient_accepts_comments_and_trailing_commas_not_in_strings() {
        let text = br#"{
            "events": [ // list
                {
                    "eventName": "CdnDomainAdded", /* block, with } and , inside */
                    "eventTime": "2018-03-16T14:19:55+08:00",
                    "traceId": "http://a//b, }",
                    "eventParameter": { "domain": "x.com", },
                },
            ],
        }"#;
        assert!(parse_strict(text).is_err());
        let ev = parse_lenient(text).unwrap();
        assert_eq!(ev[0].trace_id, "http://a//b, }");
        assert_eq!(
            ev[0].payload,
            Payload::Domain(DomainChange {
                domain: "x.com".into(),
                status: None
            })
        );
    }

    #[test]
    fn lenient_reports_missing_comma_with_line_and_column() {
        let text = b"{\"events\": [{\n  \"eventName\": \"CdnDomainAdded\", // c\n  \"traceId\": \"t\" // c\n  \"x\": 1\n}]}";
        let e = parse_lenient(text).unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        let e = parse_lenient(b"{\"events\": [] /* open")
            .unwrap_err()
            .to_string();
        assert!(e.contains("never closed"), "{e}");
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("https://u:p@h.com/a/b.gz?Signature=x#f"),
            "https://h.com/a/b.gz?<redacted>"
        );
        assert_eq!(redact_url("http://h.com/a.gz"), "http://h.com/a.gz");
        assert_eq!(
            redact_url("http://h.com/a.gz?"),
            "http://h.com/a.gz?<redacted>"
        );
    }
}
