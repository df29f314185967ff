//! The audit tables: cache events become one row per object path, domain events one row each
//! (docs/design.md §2.2).

use super::{Column, Kind, Table};

/// The columns both audit tables start with: the event's envelope and its domain, filled alike
/// by `writers/audit.rs` for either kind of event.
pub const ENVELOPE: [Column; 6] = [
    Column::new("event_name", Kind::Utf8, false, true, "eventName"),
    Column::new(
        "event_time",
        Kind::Timestamp,
        false,
        false,
        "eventTime (UTC instant)",
    ),
    Column::new(
        "trace_id",
        Kind::Utf8,
        false,
        false,
        "traceId, or a hash of the event when missing",
    ),
    Column::new("region", Kind::Utf8, true, true, "region of the event"),
    Column::new("ali_uid", Kind::Utf8, true, true, "userIdentity.aliUid"),
    Column::new("domain", Kind::Utf8, false, true, "CDN domain"),
];

/// [`ENVELOPE`] followed by a table's own columns; `N` must be their sum (checked when the
/// constant is built, so a wrong count does not compile).
const fn after_envelope<const K: usize, const N: usize>(own: [Column; K]) -> [Column; N] {
    assert!(N == ENVELOPE.len() + K, "N must be 6 + the own columns");
    let mut out = [ENVELOPE[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < ENVELOPE.len() {
            ENVELOPE[i]
        } else {
            own[i - ENVELOPE.len()]
        };
        i += 1;
    }
    out
}

const CACHE_COLUMNS: [Column; 11] = after_envelope([
    Column::new("task_id", Kind::Utf8, true, false, "CDN task id"),
    Column::new("object_type", Kind::Utf8, true, true, "File or Directory"),
    Column::new(
        "object_path",
        Kind::Utf8,
        false,
        false,
        "one object path of the task",
    ),
    Column::new(
        "create_time",
        Kind::Timestamp,
        true,
        false,
        "when the task started",
    ),
    Column::new(
        "complete_time",
        Kind::Timestamp,
        true,
        false,
        "when the task ended",
    ),
]);

/// Cache audit: one row per object path of a `CachedObjects*` event.
pub const CACHE_AUDIT: Table = Table {
    name: "cache_audit",
    folder: "audit/cache",
    partitions: &["event", "dt"],
    doc: "CDN cache refresh/push/block tasks, one row per object path",
    no_statistics: &[],
    rebuilt: None,
    large_dictionaries: &[],
    columns: &CACHE_COLUMNS,
};

const DOMAIN_COLUMNS: [Column; 7] = after_envelope([Column::new(
    "status",
    Kind::Utf8,
    true,
    true,
    "domain status (Started/Stopped events)",
)]);

/// Domain audit: one row per `CdnDomain*` event.
pub const DOMAIN_AUDIT: Table = Table {
    name: "domain_audit",
    folder: "audit/domain",
    partitions: &["event", "dt"],
    doc: "CDN domain added/deleted/started/stopped",
    no_statistics: &[],
    rebuilt: None,
    large_dictionaries: &[],
    columns: &DOMAIN_COLUMNS,
};
