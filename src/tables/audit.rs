//! The audit tables: cache events become one row per object path, domain events one row each
//! (docs/design.md §2.2).

use super::{Column, Kind, Table};

/// Cache audit: one row per object path of a `CachedObjects*` event.
pub const CACHE_AUDIT: Table = Table {
    name: "cache_audit",
    folder: "audit/cache",
    partitions: &["event", "dt"],
    doc: "CDN cache refresh/push/block tasks, one row per object path",
    no_statistics: &[],
    columns: &[
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
    ],
};

/// Domain audit: one row per `CdnDomain*` event.
pub const DOMAIN_AUDIT: Table = Table {
    name: "domain_audit",
    folder: "audit/domain",
    partitions: &["event", "dt"],
    doc: "CDN domain added/deleted/started/stopped",
    no_statistics: &[],
    columns: &[
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
        Column::new(
            "status",
            Kind::Utf8,
            true,
            true,
            "domain status (Started/Stopped events)",
        ),
    ],
};
