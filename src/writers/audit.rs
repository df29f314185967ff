//! Audit tables (docs/design.md §2.2): cache events become one row per object path, domain events one
//! row each, and every event (unknown ones too) is kept as received, signed query redacted.
//!
//! ```text
//! audit/cache/event=<eventName>/dt=<YYYY-MM-DD>/<traceId>.parquet
//! audit/domain/event=<eventName>/dt=<YYYY-MM-DD>/<traceId>.parquet
//! audit/events/dt=<YYYY-MM-DD>/<traceId>.json
//! audit/events/dt=undated/<hash>.json          an element of `events` that could not be read
//! ```
//!
//! `dt` is the date of `eventTime` in the partition time zone (`+08:00` by default). The files are
//! tiny, so each is built in memory and written with one PUT; keys derive from the event (name,
//! time, traceId), so a retried event rewrites the same objects. When different events of one
//! invocation share a traceId, each key gets a hash of its event after the traceId
//! (`<traceId>-<12 hex>`) so that none overwrites another.

use std::io::Write;
use std::sync::Arc;

use tokio::runtime::Handle;

use arrow_array::builder::{StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use object_store::path::Path;
use parquet::arrow::ArrowWriter;

use crate::access::time::PartitionTz;
use crate::error::{Error, Result, StoreOp};
use crate::event::{Event, Malformed, Payload};
use crate::lake::commit::{Commit, Staged};
use crate::lake::sink::ObjectSink;
use crate::lake::store::Lake;
use crate::tables::audit::{CACHE_AUDIT, DOMAIN_AUDIT};
use crate::tables::Table;
use crate::writers::parquet::{writer_properties, ParquetOptions};

/// `YYYY-MM-DD` of the event time on `tz`'s wall clock; `undated` without a time.
pub(crate) fn event_dt(ev: &Event, tz: PartitionTz) -> String {
    match ev.time_micros {
        Some(t) => tz.partition_values(tz.hour_bucket(t)).0,
        None => "undated".to_string(),
    }
}

use crate::lake::layout::folder_key;
use crate::tables::registry::{CACHE_AUDIT_FOLDER, DOMAIN_AUDIT_FOLDER, EVENTS};

/// `audit/events/dt=<dt>/<traceId>.json` (the traceId made unique: [`Event::key_id`])
pub(crate) fn event_key(prefix: &Path, ev: &Event, tz: PartitionTz) -> Path {
    folder_key(
        prefix,
        &EVENTS,
        &[
            &format!("dt={}", event_dt(ev, tz)),
            &format!("{}.json", ev.key_id),
        ],
    )
}

/// `audit/events/dt=undated/<hash>.json` for an element that could not be read: its time and
/// traceId cannot be trusted, so the key derives from its bytes only (a retry rewrites it).
pub(crate) fn malformed_key(prefix: &Path, m: &Malformed) -> Path {
    folder_key(
        prefix,
        &EVENTS,
        &["dt=undated", &format!("{}.json", m.key_id())],
    )
}

/// The unit of work events stage under on a local destination (`_staging/audit/run-…/`).
const AUDIT_STAGING: &str = "audit";

/// Keeps an element that could not be read, as received (signed query redacted), so that no
/// event CDN sent is lost. Returns the key written, relative to the destination.
pub(crate) fn record_malformed(lake: &Lake, rt: &Handle, m: &Malformed) -> Result<String> {
    let k = malformed_key(&lake.prefix, m);
    let body = serde_json::to_vec_pretty(&m.redacted()).map_err(|source| Error::Json {
        what: format!("malformed events[{}]", m.index),
        source,
    })?;
    let lake = &lake.for_work([AUDIT_STAGING])?;
    let mut commit = Commit::new();
    commit.stage(staged_bytes(lake, rt, k, &body, None)?);
    let keys = commit.publish(lake)?;
    Ok(keys.into_iter().map(|o| o.key).collect::<Vec<_>>().concat())
}

/// A small object, written in full to an upload not yet completed.
fn staged_bytes(
    lake: &Lake,
    rt: &Handle,
    key: Path,
    bytes: &[u8],
    rows: Option<u64>,
) -> Result<Staged> {
    let mut sink = ObjectSink::create(lake, key, rt)?;
    if sink.write_all(bytes).is_err() {
        return Err(sink.store_error(StoreOp::Write));
    }
    Ok(Staged { sink, rows })
}

/// `audit/<cache|domain>/event=<name>/dt=<dt>/<traceId>.parquet` (the traceId made unique:
/// [`Event::key_id`]), for cache and domain events.
pub(crate) fn table_key(prefix: &Path, ev: &Event, tz: PartitionTz) -> Option<Path> {
    let folder = match ev.payload {
        Payload::Cache(_) => &CACHE_AUDIT_FOLDER,
        Payload::Domain(_) => &DOMAIN_AUDIT_FOLDER,
        _ => return None,
    };
    Some(folder_key(
        prefix,
        folder,
        &[
            &format!("event={}", ev.name),
            &format!("dt={}", event_dt(ev, tz)),
            &format!("{}.parquet", ev.key_id),
        ],
    ))
}

fn micros(ev: &Event) -> Result<i64> {
    ev.time_micros.ok_or_else(|| Error::Event {
        index: Some(ev.index),
        field: "eventTime".into(),
        reason: "missing".into(),
    })
}

fn secs_to_micros(s: Option<i64>) -> Option<i64> {
    s.and_then(|s| s.checked_mul(1_000_000))
}

fn ts(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    b.extend(values);
    Arc::new(b.finish())
}

fn text<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    b.extend(values);
    Arc::new(b.finish())
}

/// The audit rows of a cache or domain event as one batch; `None` for other events.
pub(crate) fn audit_batch(ev: &Event) -> Result<Option<(Table, RecordBatch)>> {
    // The columns both tables start with (`tables::audit::ENVELOPE`), `n` rows of the event's values.
    let envelope = |n: usize, domain: &str| -> Result<Vec<ArrayRef>> {
        let t = micros(ev)?;
        Ok(vec![
            text(std::iter::repeat_n(Some(ev.name.as_str()), n)),
            ts(std::iter::repeat_n(Some(t), n)),
            text(std::iter::repeat_n(Some(ev.trace_id.as_str()), n)),
            text(std::iter::repeat_n(ev.region.as_deref(), n)),
            text(std::iter::repeat_n(ev.ali_uid.as_deref(), n)),
            text(std::iter::repeat_n(Some(domain), n)),
        ])
    };
    let (table, columns) = match &ev.payload {
        Payload::Cache(c) => {
            let n = c.object_paths.len();
            let mut cols = envelope(n, &c.domain)?;
            cols.push(text(std::iter::repeat_n(c.task_id.as_deref(), n)));
            cols.push(text(std::iter::repeat_n(c.object_type.as_deref(), n)));
            cols.push(text(c.object_paths.iter().map(|p| Some(p.as_str()))));
            cols.push(ts(std::iter::repeat_n(secs_to_micros(c.create_time), n)));
            cols.push(ts(std::iter::repeat_n(secs_to_micros(c.complete_time), n)));
            (CACHE_AUDIT, cols)
        }
        Payload::Domain(d) => {
            let mut cols = envelope(1, &d.domain)?;
            cols.push(text([d.status.as_deref()]));
            (DOMAIN_AUDIT, cols)
        }
        _ => return Ok(None),
    };
    let batch = RecordBatch::try_new(table.arrow_schema(), columns).map_err(|e| {
        Error::Internal(format!(
            "{} batch does not match its table: {e}",
            table.name
        ))
    })?;
    Ok(Some((table, batch)))
}

/// Encodes a batch as a whole Parquet file in memory.
pub fn parquet_bytes(table: &Table, batch: &RecordBatch, key: &str) -> Result<Vec<u8>> {
    let props = writer_properties(table, &ParquetOptions::default())?;
    let mut w =
        ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(|source| {
            Error::Parquet {
                key: key.to_string(),
                source,
            }
        })?;
    w.write(batch).map_err(|source| Error::Parquet {
        key: key.to_string(),
        source,
    })?;
    w.into_inner().map_err(|source| Error::Parquet {
        key: key.to_string(),
        source,
    })
}

/// Stages what the lake keeps of one event: the event itself (redacted) and, for cache and
/// domain events, its audit rows. On a local destination `lake` must be a run's handle
/// ([`Lake::for_work`]), as [`record_event`] makes.
pub(crate) fn stage_event(
    lake: &Lake,
    rt: &Handle,
    ev: &Event,
    tz: PartitionTz,
) -> Result<Vec<Staged>> {
    let mut out = Vec::new();
    let k = event_key(&lake.prefix, ev, tz);
    let body = serde_json::to_vec_pretty(&ev.redacted()).map_err(|source| Error::Json {
        what: format!("event {}", ev.trace_id),
        source,
    })?;
    out.push(staged_bytes(lake, rt, k, &body, None)?);
    if let (Some((table, batch)), Some(k)) = (audit_batch(ev)?, table_key(&lake.prefix, ev, tz)) {
        let bytes = parquet_bytes(&table, &batch, k.as_ref())?;
        let rows = batch.num_rows() as u64;
        out.push(staged_bytes(lake, rt, k, &bytes, Some(rows))?);
    }
    Ok(out)
}

/// Writes what the lake keeps of one event ([`stage_event`]), committed at once. Returns the
/// keys written, relative to the destination.
pub(crate) fn record_event(
    lake: &Lake,
    rt: &Handle,
    ev: &Event,
    tz: PartitionTz,
) -> Result<Vec<String>> {
    let lake = &lake.for_work([AUDIT_STAGING])?;
    let mut commit = Commit::new();
    commit.stage_all(stage_event(lake, rt, ev, tz)?);
    Ok(commit.publish(lake)?.into_iter().map(|o| o.key).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_strict;

    const BODY: &str = r#"{"events":[
      {"eventName":"CachedObjectsRefreshed","eventTime":"2018-03-16T23:19:55+08:00","traceId":"../x/y",
       "region":"cn-hangzhou","userIdentity":{"aliUid":"1"},
       "eventParameter":{"objectPath":["/a","/b"],"taskId":2089687230,"objectType":"File","createTime":1521180769,"domain":"d.com"}},
      {"eventName":"CdnDomainStarted","eventTime":"2018-03-16T16:30:00Z","traceId":"t2",
       "eventParameter":{"domain":"d.com","status":"online"}},
      {"eventName":"Weird/..","traceId":"t3"}
    ]}"#;

    #[test]
    fn keys_and_rows() {
        let ev = parse_strict(BODY.as_bytes()).unwrap();
        let p = Path::from("lake");
        let tz = PartitionTz::default();
        let k = table_key(&p, &ev[0], tz).unwrap();
        assert_eq!(
            k.as_ref(),
            "lake/audit/cache/event=CachedObjectsRefreshed/dt=2018-03-16/..%2Fx%2Fy.parquet"
        );
        assert_eq!(k.parts().count(), 6);
        // 16:30Z is 00:30 the next day at +08:00.
        assert_eq!(
            table_key(&p, &ev[1], tz).unwrap().as_ref(),
            "lake/audit/domain/event=CdnDomainStarted/dt=2018-03-17/t2.parquet"
        );
        assert!(table_key(&p, &ev[2], tz).is_none());
        let k = event_key(&p, &ev[2], tz);
        assert_eq!(k.as_ref(), "lake/audit/events/dt=undated/t3.json");

        let (t, b) = audit_batch(&ev[0]).unwrap().unwrap();
        assert_eq!(t.name, "cache_audit");
        assert_eq!(b.num_rows(), 2);
        let (t, b) = audit_batch(&ev[1]).unwrap().unwrap();
        assert_eq!(t.name, "domain_audit");
        assert_eq!(b.num_rows(), 1);
        let bytes = parquet_bytes(&t, &b, "k").unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
    }

    #[test]
    fn malformed_elements_are_kept_undated_and_redacted() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let lake = Lake::open("memory://").unwrap();
        let body = br#"{"events":[{"eventName":"CdnDomainAdded","eventParameter":{"u":"http://h/a?Signature=SIG&OSSAccessKeyId=AK"}}]}"#;
        let p = crate::event::parse_strict_each(body).unwrap();
        let m = &p.malformed[0];
        let k = record_malformed(&lake, rt.handle(), m).unwrap();
        assert_eq!(k, format!("audit/events/dt=undated/{}.json", m.key_id()));
        let bytes = rt
            .block_on(lake.get_opt(&Path::from(k.as_str())))
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("CdnDomainAdded"), "{text}");
        assert!(
            !text.contains("Signature") && !text.contains("OSSAccessKeyId"),
            "{text}"
        );
    }

    #[test]
    fn writes_into_a_lake() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let lake = Lake::open("memory://").unwrap();
        let ev = parse_strict(BODY.as_bytes()).unwrap();
        let mut all = Vec::new();
        for e in &ev {
            all.extend(record_event(&lake, rt.handle(), e, PartitionTz::default()).unwrap());
        }
        assert_eq!(all.len(), 5, "{all:?}");
    }

    /// Two different events with one traceId and eventName, plus an identical copy of one.
    const DUPLICATES: [&str; 3] = [
        r#"{"eventName":"CachedObjectsRefreshed","eventTime":"2018-03-16T14:19:55+08:00","traceId":"same","eventParameter":{"objectPath":["/a"],"domain":"d.com"}}"#,
        r#"{"eventName":"CachedObjectsRefreshed","eventTime":"2018-03-16T14:19:55+08:00","traceId":"same","eventParameter":{"objectPath":["/b","/c"],"domain":"d.com"}}"#,
        r#"{"eventName":"CachedObjectsRefreshed","eventTime":"2018-03-16T14:19:55+08:00","traceId":"same","eventParameter":{"objectPath":["/a"],"domain":"d.com"}}"#,
    ];

    /// Writes the events of one invocation; returns every object of the lake with its rows.
    fn run(rt: &tokio::runtime::Runtime, lake: &Lake, events: &[&str]) -> Vec<(String, usize)> {
        let body = format!("{{\"events\":[{}]}}", events.join(","));
        for e in parse_strict(body.as_bytes()).unwrap() {
            assert_eq!(e.trace_id, "same");
            record_event(lake, rt.handle(), &e, PartitionTz::default()).unwrap();
        }
        let mut out = Vec::new();
        for m in rt
            .block_on(lake.list(&object_store::path::Path::default()))
            .unwrap()
        {
            let bytes = rt.block_on(lake.get_opt(&m.location)).unwrap().unwrap();
            let rows = if m.location.as_ref().ends_with(".parquet") {
                parquet::file::reader::FileReader::metadata(
                    &parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap(),
                )
                .file_metadata()
                .num_rows() as usize
            } else {
                0
            };
            out.push((m.location.to_string(), rows));
        }
        out.sort();
        out
    }

    #[test]
    fn same_trace_id_does_not_overwrite_and_retries_rewrite_the_same_keys() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let lake = Lake::open("memory://").unwrap();
        let first = run(&rt, &lake, &DUPLICATES);
        let parquet: Vec<_> = first
            .iter()
            .filter(|(k, _)| k.ends_with(".parquet"))
            .collect();
        let json: Vec<_> = first.iter().filter(|(k, _)| k.ends_with(".json")).collect();
        // Two different events: two objects each; the identical copy shares its twin's.
        assert_eq!(parquet.len(), 2, "{first:?}");
        assert_eq!(json.len(), 2, "{first:?}");
        let mut rows: Vec<usize> = parquet.iter().map(|(_, r)| *r).collect();
        rows.sort();
        assert_eq!(rows, [1, 2]);
        for (k, _) in &first {
            let name = k.rsplit('/').next().unwrap();
            let stem = name.split('.').next().unwrap();
            let hash = stem.strip_prefix("same-").unwrap_or_else(|| panic!("{k}"));
            assert!(
                hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{k}"
            );
        }
        // A retry, in another order: the same keys, nothing more.
        let again = run(&rt, &lake, &[DUPLICATES[1], DUPLICATES[2], DUPLICATES[0]]);
        assert_eq!(again, first);
        // A traceId used once keeps the plain name.
        let lake = Lake::open("memory://").unwrap();
        let single = run(&rt, &lake, &DUPLICATES[..1]);
        assert!(
            single.iter().all(|(k, _)| k.contains("/same.")),
            "{single:?}"
        );
    }
}
