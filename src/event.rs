//! CDN events: the envelope `{"events": [...]}` that the FC trigger posts, and a typed payload
//! for each of the eight event names CDN sends (DESIGN §1.1).
//!
//! Parsing is pure (bytes in, events or an error out). It is done in two steps: the text becomes
//! a `serde_json::Value` (strictly for `serve`, or after a small pre-pass that drops comments and
//! trailing commas for the CLI), then each element of `events` is read field by field, so that an
//! error can name the event index and the field, and so that numbers arriving as strings
//! (`"fileSize": "1788115"`, seen in real events) are accepted.
//!
//! An event name or version this code does not know is not an error: it becomes
//! [`Payload::Unknown`], is kept verbatim under `audit/events/` and is reported.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

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

/// Parses an invocation body as strict JSON (what `serve` receives from FC). Fails on the first
/// malformed element; [`parse_strict_each`] keeps going.
pub fn parse_strict(body: &[u8]) -> Result<Vec<Event>> {
    first_error(parse_strict_each(body)?)
}

/// Parses an invocation body as strict JSON; an element that cannot be read is returned apart
/// instead of failing the others. Only a body that is not JSON or has no `events` array fails.
pub fn parse_strict_each(body: &[u8]) -> Result<Parsed> {
    let value: Value = serde_json::from_slice(body).map_err(|source| Error::Json {
        what: "event body".into(),
        source,
    })?;
    parse_value_each(value)
}

/// Parses an event file leniently: `//` and `/* */` comments and trailing commas are accepted,
/// as in the samples of Alibaba's documentation. A missing comma is not guessed at: the error
/// gives its line and column.
pub fn parse_lenient(text: &[u8]) -> Result<Vec<Event>> {
    first_error(parse_lenient_each(text)?)
}

/// [`parse_lenient`], keeping the malformed elements apart like [`parse_strict_each`].
pub fn parse_lenient_each(text: &[u8]) -> Result<Parsed> {
    let clean = strip_comments_and_trailing_commas(text)?;
    let value: Value = serde_json::from_slice(&clean).map_err(|source| Error::Json {
        what: "event file".into(),
        source,
    })?;
    parse_value_each(value)
}

/// The events, or the error of the first malformed element.
fn first_error(parsed: Parsed) -> Result<Vec<Event>> {
    match parsed.malformed.into_iter().next() {
        Some(m) => Err(m.error),
        None => Ok(parsed.events),
    }
}

/// Reads the envelope and every element of `events`; fails on the first malformed element.
pub fn parse_value(value: Value) -> Result<Vec<Event>> {
    first_error(parse_value_each(value)?)
}

/// Reads the envelope, then each element of `events` on its own: an element that cannot be read
/// goes to [`Parsed::malformed`] and the others are still returned.
pub fn parse_value_each(value: Value) -> Result<Parsed> {
    let Value::Object(mut top) = value else {
        return Err(bad(
            None,
            "",
            format!(
                "expected an object {{\"events\": [...]}}, got {}",
                kind_of(&value)
            ),
        ));
    };
    let events = match top.remove("events") {
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(bad(
                None,
                "events",
                format!("expected an array, got {}", kind_of(&other)),
            ))
        }
        None => return Err(bad(None, "events", "missing".into())),
    };
    if events.is_empty() {
        return Err(bad(
            None,
            "events",
            "empty array: no event to handle".into(),
        ));
    }
    let mut parsed = Parsed::default();
    for (index, raw) in events.into_iter().enumerate() {
        // parse_event takes the element; a copy is kept to store it when it is malformed.
        match parse_event(index, raw.clone()) {
            Ok(ev) => parsed.events.push(ev),
            Err(error) => parsed.malformed.push(Malformed { index, raw, error }),
        }
    }
    assign_key_ids(&mut parsed.events);
    Ok(parsed)
}

/// Gives events that share a `traceId` but differ distinct object names, so that none overwrites
/// another's audit objects: each becomes `<traceId>-<first 12 hex digits of hash_id>`. The name
/// depends only on the events themselves (not on their order), so a retried invocation rewrites
/// the same keys; identical copies of one event keep one name (and one set of objects). Events
/// with a `traceId` of their own keep it as is.
pub fn assign_key_ids(events: &mut [Event]) {
    let mut hashes: HashMap<String, BTreeSet<String>> = HashMap::new();
    let hashed: Vec<String> = events.iter().map(|e| hash_id(&e.raw)).collect();
    for (e, h) in events.iter().zip(&hashed) {
        hashes
            .entry(e.trace_id.clone())
            .or_default()
            .insert(h.clone());
    }
    for (e, h) in events.iter_mut().zip(&hashed) {
        e.key_id = if hashes[&e.trace_id].len() > 1 {
            format!("{}-{}", e.trace_id, &h[..12])
        } else {
            e.trace_id.clone()
        };
    }
}

fn parse_event(index: usize, raw: Value) -> Result<Event> {
    let at = Some(index);
    let Value::Object(obj) = &raw else {
        return Err(bad(
            at,
            "",
            format!("expected an object, got {}", kind_of(&raw)),
        ));
    };
    let name =
        opt_str(at, obj, "eventName")?.ok_or_else(|| bad(at, "eventName", "missing".into()))?;
    let version = opt_str(at, obj, "eventVersion")?;
    let mut kind = EventKind::from_name(&name);
    // Only version 1.x is understood; other versions are kept verbatim like unknown names.
    if version
        .as_deref()
        .is_some_and(|v| !(v == "1" || v.starts_with("1.")))
    {
        kind = EventKind::Unknown(name.clone());
    }
    let known = !matches!(kind, EventKind::Unknown(_));
    let time = opt_str(at, obj, "eventTime")?;
    let time_micros = match &time {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    bad(
                        at,
                        "eventTime",
                        format!("{t:?} is not RFC 3339 with an offset: {e}"),
                    )
                })?
                .timestamp_micros(),
        ),
        None if known => return Err(bad(at, "eventTime", "missing".into())),
        None => None,
    };
    let (trace_id, trace_id_generated) = match opt_str(at, obj, "traceId")? {
        Some(t) if !t.trim().is_empty() => (t, false),
        _ => (hash_id(&raw), true),
    };
    let ali_uid = match obj.get("userIdentity") {
        Some(Value::Object(u)) => opt_text(at, u, "userIdentity.aliUid", "aliUid")?,
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(bad(
                at,
                "userIdentity",
                format!("expected an object, got {}", kind_of(other)),
            ))
        }
    };
    let resource_domain = match obj.get("resource") {
        Some(Value::Object(r)) => opt_text(at, r, "resource.domain", "domain")?,
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(bad(
                at,
                "resource",
                format!("expected an object, got {}", kind_of(other)),
            ))
        }
    };
    let payload = if known {
        let empty = Map::new();
        let params = match obj.get("eventParameter") {
            Some(Value::Object(p)) => p,
            None | Some(Value::Null) => &empty,
            Some(other) => {
                return Err(bad(
                    at,
                    "eventParameter",
                    format!("expected an object, got {}", kind_of(other)),
                ))
            }
        };
        parse_payload(at, &kind, params, resource_domain.as_deref())?
    } else {
        Payload::Unknown
    };
    Ok(Event {
        index,
        kind,
        name,
        source: opt_str(at, obj, "eventSource")?,
        region: opt_str(at, obj, "region")?,
        version,
        time,
        time_micros,
        key_id: trace_id.clone(),
        trace_id,
        trace_id_generated,
        ali_uid,
        resource_domain,
        payload,
        raw,
    })
}

fn parse_payload(
    at: Option<usize>,
    kind: &EventKind,
    p: &Map<String, Value>,
    resource: Option<&str>,
) -> Result<Payload> {
    let field = |name: &str| format!("eventParameter.{name}");
    let domain = match opt_text(at, p, &field("domain"), "domain")? {
        Some(d) if !d.trim().is_empty() => d,
        _ => resource
            .filter(|d| !d.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                bad(
                    at,
                    &field("domain"),
                    "missing (and no resource.domain)".into(),
                )
            })?,
    };
    Ok(match kind {
        EventKind::LogFileCreated => {
            let file_path = opt_str(at, p, "filePath")
                .map_err(|_| bad(at, &field("filePath"), "expected a string".into()))?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad(at, &field("filePath"), "missing".into()))?;
            let file_size = match opt_i64(at, p, &field("fileSize"), "fileSize")? {
                Some(n) if n < 0 => {
                    return Err(bad(at, &field("fileSize"), format!("negative: {n}")))
                }
                n => n.map(|n| n as u64),
            };
            Payload::LogFile(LogFile {
                domain,
                file_path,
                file_size,
                start_time: opt_i64(at, p, &field("startTime"), "startTime")?,
                end_time: opt_i64(at, p, &field("endTime"), "endTime")?,
            })
        }
        EventKind::CachedObjectsRefreshed
        | EventKind::CachedObjectsPushed
        | EventKind::CachedObjectsBlocked => {
            let object_paths = match p.get("objectPath") {
                Some(Value::Array(a)) => a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(bad(
                            at,
                            &format!("eventParameter.objectPath[{i}]"),
                            format!("expected a string, got {}", kind_of(other)),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?,
                // A single path sent as a string is accepted as a list of one.
                Some(Value::String(s)) => vec![s.clone()],
                Some(other) => {
                    return Err(bad(
                        at,
                        &field("objectPath"),
                        format!("expected an array of strings, got {}", kind_of(other)),
                    ))
                }
                None => return Err(bad(at, &field("objectPath"), "missing".into())),
            };
            Payload::Cache(CacheTask {
                domain,
                object_paths,
                object_type: opt_text(at, p, &field("objectType"), "objectType")?,
                task_id: opt_text(at, p, &field("taskId"), "taskId")?,
                create_time: opt_i64(at, p, &field("createTime"), "createTime")?,
                complete_time: opt_i64(at, p, &field("completeTime"), "completeTime")?,
            })
        }
        EventKind::CdnDomainStarted
        | EventKind::CdnDomainStopped
        | EventKind::CdnDomainAdded
        | EventKind::CdnDomainDeleted => Payload::Domain(DomainChange {
            domain,
            status: opt_text(at, p, &field("status"), "status")?,
        }),
        EventKind::Unknown(_) => Payload::Unknown,
    })
}

fn bad(index: Option<usize>, field: &str, reason: String) -> Error {
    Error::Event {
        index,
        field: field.to_string(),
        reason,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string field; null counts as missing.
fn opt_str(at: Option<usize>, obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(
            at,
            key,
            format!("expected a string, got {}", kind_of(other)),
        )),
    }
}

/// A text field that may arrive as a string or a number (ids such as `aliUid`, `taskId`).
fn opt_text(
    at: Option<usize>,
    obj: &Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(bad(
            at,
            field,
            format!("expected a string or a number, got {}", kind_of(other)),
        )),
    }
}

/// An integer field that may arrive as a JSON number or a numeric string.
fn opt_i64(
    at: Option<usize>,
    obj: &Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<i64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            _ => Err(bad(at, field, format!("expected an integer, got {n}"))),
        },
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(at, field, format!("expected an integer, got {s:?}"))),
        Some(other) => Err(bad(
            at,
            field,
            format!("expected an integer, got {}", kind_of(other)),
        )),
    }
}

/// The id given to an event without `traceId`: the first 32 hex digits of the SHA-256 of the
/// event's JSON (keys sorted, so the same event gives the same id whoever parsed it).
pub fn hash_id(raw: &Value) -> String {
    let bytes = serde_json::to_vec(raw).unwrap_or_default();
    let mut h = hex::encode(Sha256::digest(&bytes));
    h.truncate(32);
    h
}

fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// A URL safe to log or store: the query (`OSSAccessKeyId`, `Signature`, `Expires`,
/// `security-token`), the fragment and any `user:password@` are removed.
pub fn redact_url(url: &str) -> String {
    let base = strip_query(url);
    let redacted = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    };
    if base.len() < url.len() {
        format!("{redacted}?<redacted>")
    } else {
        redacted
    }
}

/// Every string that looks like a URL (`scheme://...`) with a query or credentials is redacted,
/// wherever it is (unknown events may carry signed URLs under other names).
pub fn redact_value(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("://") => Value::String(redact_url(s)),
        Value::Array(a) => Value::Array(a.iter().map(redact_value).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), redact_value(v)))
                .collect(),
        ),
        other => other.clone(),
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

/// Replaces `//` and `/* */` comments (outside strings) and trailing commas before `}`/`]` by
/// spaces, keeping newlines, so the line and column of a later JSON error stay right.
pub fn strip_comments_and_trailing_commas(text: &[u8]) -> Result<Vec<u8>> {
    let mut out = text.to_vec();
    let n = text.len();
    let mut i = 0;
    let mut in_string = false;
    // Position of a comma outside strings not yet followed by a significant character.
    let mut pending_comma: Option<usize> = None;
    while i < n {
        let c = text[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'/' if text.get(i + 1) == Some(&b'/') => {
                while i < n && text[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
                continue;
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                let start = i;
                out[i] = b' ';
                out[i + 1] = b' ';
                i += 2;
                loop {
                    if i + 1 >= n {
                        let (line, col) = line_col(text, start);
                        return Err(bad(
                            None,
                            "",
                            format!("comment opened at line {line} column {col} is never closed"),
                        ));
                    }
                    if text[i] == b'*' && text[i + 1] == b'/' {
                        out[i] = b' ';
                        out[i + 1] = b' ';
                        i += 2;
                        break;
                    }
                    if text[i] != b'\n' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b',' => pending_comma = Some(i),
            b'}' | b']' => {
                if let Some(p) = pending_comma.take() {
                    out[p] = b' ';
                }
            }
            b'"' => {
                in_string = true;
                pending_comma = None;
            }
            _ => pending_comma = None,
        }
        i += 1;
    }
    Ok(out)
}

fn line_col(text: &[u8], at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let col = at
        - before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
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
