//! The traffic table: per-minute rollups of the access table, one row per minute present in a
//! log file, per partition hour. Every column is a sum or (for `response_time_ms_max`) a max, so
//! rows of the same minute from different files merge exactly with `SUM`/`MAX`.

use super::{Column, Kind, Table};

/// Upper bounds (inclusive, milliseconds) of the response-time histogram buckets; one more bucket,
/// `rt_gt_10000`, counts everything slower. Roughly 1-2.5-5 steps per decade: a quantile estimated
/// from the merged histogram is known to lie within its bucket, e.g. between 100 and 250 ms.
/// Changing these bounds changes the table's columns: add new ones, never reuse a name.
pub const RT_BOUNDS_MS: [i64; 10] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// Number of histogram buckets (the bounds plus the open-ended last one).
pub const RT_BUCKETS: usize = RT_BOUNDS_MS.len() + 1;

/// Index of each counter in a [`MinuteStats`] row, in table column order after `minute`.
pub mod idx {
    pub const REQUESTS: usize = 0;
    pub const REQUEST_BYTES: usize = 1;
    pub const RESPONSE_BYTES: usize = 2;
    pub const HITS: usize = 3;
    pub const MISSES: usize = 4;
    pub const STATUS_2XX: usize = 5;
    pub const STATUS_3XX: usize = 6;
    pub const STATUS_4XX: usize = 7;
    pub const STATUS_5XX: usize = 8;
    pub const STATUS_OTHER: usize = 9;
    pub const RT_SUM: usize = 10;
    pub const RT_MAX: usize = 11;
    /// First histogram bucket (`rt_le_10`); bucket `i` is at `RT_HIST + i`.
    pub const RT_HIST: usize = 12;
}

/// Counters per minute: every table column but `minute`.
pub const COUNTERS: usize = idx::RT_HIST + RT_BUCKETS;

const fn counter(name: &'static str, doc: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int64,
        nullable: false,
        dictionary: false,
        doc,
    }
}

/// The traffic table: one row per minute present in a log file, per partition hour.
pub const TRAFFIC: Table = Table {
    name: "traffic",
    folder: "traffic",
    partitions: &["domain", "dt", "hour"],
    doc: "Per-minute traffic rollups of the access table; sum rows of the same minute (max for response_time_ms_max)",
    no_statistics: &[],
    columns: &[
        Column {
            name: "minute",
            kind: Kind::Timestamp,
            nullable: false,
            dictionary: false,
            doc: "start of the minute (UTC instant)",
        },
        counter("requests", "accepted log lines"),
        counter("request_bytes", "sum of request_bytes"),
        counter("response_bytes", "sum of response_bytes"),
        counter("hits", "requests with cache_status HIT"),
        counter("misses", "requests with cache_status MISS"),
        counter("status_2xx", "requests with status 200-299"),
        counter("status_3xx", "requests with status 300-399"),
        counter("status_4xx", "requests with status 400-499"),
        counter("status_5xx", "requests with status 500-599"),
        counter("status_other", "requests with any other status"),
        counter("response_time_ms_sum", "sum of response_time_ms"),
        counter(
            "response_time_ms_max",
            "max of response_time_ms (merge with MAX, not SUM)",
        ),
        counter("rt_le_10", "requests with response_time_ms <= 10"),
        counter("rt_le_25", "requests with response_time_ms in (10, 25]"),
        counter("rt_le_50", "requests with response_time_ms in (25, 50]"),
        counter("rt_le_100", "requests with response_time_ms in (50, 100]"),
        counter("rt_le_250", "requests with response_time_ms in (100, 250]"),
        counter("rt_le_500", "requests with response_time_ms in (250, 500]"),
        counter("rt_le_1000", "requests with response_time_ms in (500, 1000]"),
        counter("rt_le_2500", "requests with response_time_ms in (1000, 2500]"),
        counter("rt_le_5000", "requests with response_time_ms in (2500, 5000]"),
        counter(
            "rt_le_10000",
            "requests with response_time_ms in (5000, 10000]",
        ),
        counter("rt_gt_10000", "requests with response_time_ms > 10000"),
    ],
};

/// The counters of one minute, indexed by [`idx`].
pub type MinuteStats = [i64; COUNTERS];

/// Folds `other` into `into`: sums, except the max column.
pub fn merge(into: &mut MinuteStats, other: &MinuteStats) {
    for (i, (a, b)) in into.iter_mut().zip(other).enumerate() {
        *a = if i == idx::RT_MAX {
            (*a).max(*b)
        } else {
            a.saturating_add(*b)
        };
    }
}

/// Histogram bucket of a response time: the first bound it does not exceed, or the last bucket.
#[inline]
pub fn rt_bucket(ms: i64) -> usize {
    RT_BOUNDS_MS.partition_point(|&b| b < ms)
}
