//! Reading events field by field, so an error names the event index and the field.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::bad;
use super::lenient::strip_comments_and_trailing_commas;
use super::{CacheTask, DomainChange, Event, EventKind, LogFile, Malformed, Parsed, Payload};
use crate::error::{Error, Result};

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
