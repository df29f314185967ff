//! The access table (schema version 2): its columns, from which the Arrow schema, the DDL and
//! the readers follow. The parser fills them through `access::builder::AccessBuilder`,
//! written by hand for speed; a test there fails when the two disagree.
//!
//! Schema version 1 also stored `url`, the URL as logged. It is exactly `scheme`, `host`,
//! `path` and `query` joined again (`access::parse::join_url`, lossless by construction), and
//! it was a third of an access file's bytes, so version 2 stores only the parts and the views
//! rebuild `url` in its old place ([`URL`]). Both versions read the same by name: a reader
//! that wants the access columns of a file of either version takes [`ACCESS`]'s columns by
//! name and never the stored `url` (docs/design.md §2.1).

use super::{Column, Derived, Kind, Rebuild, Rebuilt, Table};

/// Version of the access table's schema, recorded in every manifest. 1: with `url`; 2: without
/// (the views rebuild it).
pub const SCHEMA_VERSION: u32 = 2;

/// `url`, the URL as logged: not stored since schema version 2; the views rebuild it from
/// `scheme`, `host`, `path` and `query`, after `method` where version 1 stored it.
pub const URL: Derived = Derived {
    column: Column::new(
        "url",
        Kind::Utf8,
        false,
        false,
        "URL as logged (rebuilt from scheme, host, path, query)",
    ),
    after: "method",
    rebuild: Rebuild::JoinUrl,
};

/// The access table's rebuilt columns; on MaxCompute the external table over the files is
/// `access_files` and `access` is the view with `url`.
pub const REBUILT: Rebuilt = Rebuilt {
    files_table: "access_files",
    columns: &[URL],
};

/// The access table: one row per accepted log line. Partitioned by `domain`, `dt`, `hour` (in the
/// partition time zone, `+08:00` by default).
///
/// Dictionary encoding is on for the string and number columns whose values repeat within an
/// hour (paths, agents, referers, statuses, sizes of small objects): it makes them several times
/// smaller and cheaper to compress. It is off where values are nearly unique (`response_bytes`,
/// `line_number`, `client_ip`), and for the times (`time`, `unixtime`) and `proxy_ip`:
/// plain zstd makes those as small or smaller, at half the encoding time (measured per column on
/// the generated logs, default and high-cardinality, with `cdnlake gen`; issue 18's note).
#[rustfmt::skip]
pub const ACCESS: Table = Table {
    name: "access",
    folder: "access",
    partitions: &["domain", "dt", "hour"],
    doc: "One row per CDN access log line",
    no_statistics: NO_STATISTICS,
    rebuilt: Some(&REBUILT),
    large_dictionaries: LARGE_DICTIONARIES,
    columns: &[
        Column::new("time", Kind::Timestamp, false, false, "request time (UTC instant)"),
        Column::new("unixtime", Kind::Int64, false, false, "request time, seconds since the epoch"),
        Column::new("client_ip", Kind::Utf8, false, false, "client address as logged (may be masked)"),
        Column::new("proxy_ip", Kind::Utf8, true, false, "proxy address, null for -"),
        Column::new("response_time_ms", Kind::Int64, false, true, "response time in milliseconds"),
        Column::new("referer", Kind::Utf8, true, true, "Referer header, null for -"),
        Column::new("method", Kind::Utf8, false, true, "HTTP method"),
        Column::new("scheme", Kind::Utf8, true, true, "URL scheme, null for a bare path"),
        Column::new("host", Kind::Utf8, true, true, "URL host, null for a bare path"),
        Column::new("path", Kind::Utf8, false, true, "URL path"),
        Column::new("query", Kind::Utf8, true, true, "URL query after ?, null when absent"),
        Column::new("status", Kind::Int32, false, true, "HTTP status"),
        Column::new("request_bytes", Kind::Int64, false, true, "request size in bytes"),
        Column::new("response_bytes", Kind::Int64, false, false, "response size in bytes"),
        Column::new("cache_status", Kind::Utf8, true, true, "HIT or MISS, null for -"),
        Column::new("user_agent", Kind::Utf8, false, true, "User-Agent as logged"),
        Column::new("content_type", Kind::Utf8, false, true, "Content-Type as logged"),
        Column::new("extra", Kind::Utf8, true, true, "trailing fields of newer log formats, raw"),
        Column::new("source_file", Kind::Utf8, false, true, "delivered log file name (lineage)"),
        Column::new("line_number", Kind::Int64, false, false, "1-based line in the decompressed file"),
    ],
};

/// Dictionary page limits above Parquet's 1 MiB default (see [`Table::large_dictionaries`]).
/// On the high-cardinality generated log (`cdnlake gen --high-cardinality`, ~50k user agents) a
/// row group's user agents need ~3 MiB of dictionary: with the default limit the column fell
/// back to plain after interning and came out 3.8x larger at twice the encoding time. With
/// 4 MiB, the whole lake's access files were 20% smaller and the run used less CPU and memory.
/// Larger limits for `path` (8 MiB) and `referer`/`query` (4 MiB) were measured too: 9% smaller
/// still, but 5% more CPU and 18 MiB more peak memory, so they keep the default. DuckDB, Spark and
/// pyarrow read these files (checked on the high-cardinality log); the Parquet format sets no
/// limit on a dictionary page; MaxCompute was not tried.
pub const LARGE_DICTIONARIES: &[(&str, usize)] = &[("user_agent", 4 << 20)];

/// Columns written without min/max statistics (see [`Table::no_statistics`]), because
/// their min/max never lets a reader skip a row group while computing them costs a string
/// comparison per value:
/// - free text (`user_agent`, `path`, ...): every row group spans nearly the whole range;
/// - a handful of values that every row group holds (`method`, `scheme`, `cache_status`,
///   `content_type`) or one value per file (`source_file`): measured 7% of encoding time.
///
/// `host`, the numbers and the times keep their statistics: those do prune.
pub const NO_STATISTICS: &[&str] = &[
    "client_ip",
    "referer",
    "method",
    "scheme",
    "path",
    "query",
    "cache_status",
    "user_agent",
    "content_type",
    "extra",
    "source_file",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::ViewColumn;

    /// The views show schema version 1's columns in its order: `url` back after `method`, and
    /// no stored column lost or moved.
    #[test]
    fn the_views_keep_schema_version_1s_columns() {
        let v1 = [
            "time",
            "unixtime",
            "client_ip",
            "proxy_ip",
            "response_time_ms",
            "referer",
            "method",
            "url",
            "scheme",
            "host",
            "path",
            "query",
            "status",
            "request_bytes",
            "response_bytes",
            "cache_status",
            "user_agent",
            "content_type",
            "extra",
            "source_file",
            "line_number",
        ];
        let view: Vec<&str> = ACCESS
            .view_columns()
            .iter()
            .map(|c| c.column().name)
            .collect();
        assert_eq!(view, v1);
        let stored: Vec<&str> = ACCESS.columns.iter().map(|c| c.name).collect();
        assert!(!stored.contains(&"url"));
        assert_eq!(stored.len() + 1, v1.len());
        assert!(
            matches!(ACCESS.view_columns()[7], ViewColumn::Derived(d) if d.rebuild == Rebuild::JoinUrl)
        );
        assert_eq!(ACCESS.files_table(), "access_files");
        // Every other table's views show exactly its stored columns, under its own name.
        for t in crate::tables::registry::tables().filter(|t| t.name != ACCESS.name) {
            assert_eq!(t.view_columns().len(), t.columns.len(), "{}", t.name);
            assert_eq!(t.files_table(), t.name);
        }
    }
}
