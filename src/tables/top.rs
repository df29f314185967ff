//! The `heavy_hitters` table: per log file and partition hour, the heavy hitters of five access columns,
//! each with its requests and response bytes (docs/design.md §2.4).
//!
//! Long rather than one column per list, so SQL reads it like any other table and a new
//! dimension is new rows, not new columns. The counters are lower bounds from a Misra-Gries
//! summary ([`crate::sketch::heavy`]): for the file-hour of a row, the true count of `key` lies
//! in `[requests, requests + requests_error]` (bytes alike), and a key without a row there had at
//! most `requests_error` requests in it (the error is the same on every row of one dimension of
//! one file-hour). Rows of the same key sum across hours and files; so do the errors. A
//! dimension whose keys were all cut (every value seen about once: client IPs of a busy hour)
//! keeps one row with a null key, so its errors and totals are not lost.

use super::{Column, Kind, Table};

/// The dimensions summarised, in report order: access columns, `status` as its decimal text.
/// Null values (a referer logged as `-`) are not a value and are not counted.
pub const DIMENSIONS: [&str; 5] = ["path", "client_ip", "referer", "user_agent", "status"];

/// The heavy_hitters table (`top` in the code: it feeds the report's top lists).
pub const TOP: Table = Table {
    name: "heavy_hitters",
    folder: "heavy_hitters",
    partitions: &["domain", "dt", "hour"],
    doc: "Heavy hitters per file and hour (Misra-Gries, lower bounds): the true count lies in [requests, requests + requests_error]; sum rows of the same key",
    no_statistics: &["key"],
    rebuilt: None,
    large_dictionaries: &[],
    columns: &[
        Column::new("hour_start", Kind::Timestamp, false, false, "start of the partition hour (UTC instant)"),
        Column::new("dimension", Kind::Utf8, false, true, "path, client_ip, referer, user_agent or status"),
        Column::new("key", Kind::Utf8, true, false, "the value (cut to 1 KiB, ending in …, when longer); null on the one row of a dimension whose keys were all cut, which carries its errors and totals"),
        Column::new("requests", Kind::Int64, false, false, "requests with this value (lower bound)"),
        Column::new("bytes", Kind::Int64, false, false, "sum of response_bytes of those requests (lower bound)"),
        Column::new("requests_error", Kind::Int64, false, false, "at most this many requests are missing from requests; 0 = exact"),
        Column::new("bytes_error", Kind::Int64, false, false, "at most this many bytes are missing from bytes; 0 = exact"),
        Column::new("requests_total", Kind::Int64, false, false, "requests of this dimension in the file-hour (non-null values)"),
        Column::new("bytes_total", Kind::Int64, false, false, "response bytes of those requests"),
    ],
};
