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

/// How rows of the same minute merge, per counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    Sum,
    Max,
}

/// One counter of a minute: a BIGINT column of the table, after `minute`.
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    pub name: &'static str,
    pub merge: Merge,
    pub doc: &'static str,
}

const fn sum(name: &'static str, doc: &'static str) -> Counter {
    Counter {
        name,
        merge: Merge::Sum,
        doc,
    }
}

/// Every counter, in table column order (after `minute`): the one list the schema, the
/// rollup writer, `compact`'s merge and `report`'s reader follow. A new metric is one line here
/// (a new name: never reuse one), plus what fills it in `writers::traffic::hour_minutes` and
/// what shows it in `query::report`; it is addressed by name through [`at`] (see [`idx`]),
/// never by a number written by hand. Files written before it read it as 0.
#[rustfmt::skip]
pub const COUNTER_LIST: &[Counter] = &[
    sum("requests", "accepted log lines"),
    sum("request_bytes", "sum of request_bytes"),
    sum("response_bytes", "sum of response_bytes"),
    sum("hits", "requests with cache_status HIT"),
    sum("misses", "requests with cache_status MISS"),
    sum("status_2xx", "requests with status 200-299"),
    sum("status_3xx", "requests with status 300-399"),
    sum("status_4xx", "requests with status 400-499"),
    sum("status_5xx", "requests with status 500-599"),
    sum("status_other", "requests with any other status"),
    sum("response_time_ms_sum", "sum of response_time_ms"),
    Counter { name: "response_time_ms_max", merge: Merge::Max, doc: "max of response_time_ms (merge with MAX, not SUM)" },
    // The histogram: one bucket per bound of RT_BOUNDS_MS, then the open-ended one.
    sum("rt_le_10", "requests with response_time_ms <= 10"),
    sum("rt_le_25", "requests with response_time_ms in (10, 25]"),
    sum("rt_le_50", "requests with response_time_ms in (25, 50]"),
    sum("rt_le_100", "requests with response_time_ms in (50, 100]"),
    sum("rt_le_250", "requests with response_time_ms in (100, 250]"),
    sum("rt_le_500", "requests with response_time_ms in (250, 500]"),
    sum("rt_le_1000", "requests with response_time_ms in (500, 1000]"),
    sum("rt_le_2500", "requests with response_time_ms in (1000, 2500]"),
    sum("rt_le_5000", "requests with response_time_ms in (2500, 5000]"),
    sum("rt_le_10000", "requests with response_time_ms in (5000, 10000]"),
    sum("rt_gt_10000", "requests with response_time_ms > 10000"),
];

/// Counters per minute: every table column but `minute`.
pub const COUNTERS: usize = COUNTER_LIST.len();

/// The position of the counter `name` in a [`MinuteStats`] row. Evaluated at compile time for
/// the [`idx`] constants: a name not in [`COUNTER_LIST`] does not compile.
pub const fn at(name: &str) -> usize {
    let mut i = 0;
    while i < COUNTERS {
        if str_eq(COUNTER_LIST[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("no such traffic counter")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The counters the code reads and fills, by name ([`at`]): positions follow [`COUNTER_LIST`].
pub mod idx {
    use super::at;

    pub const REQUESTS: usize = at("requests");
    pub const REQUEST_BYTES: usize = at("request_bytes");
    pub const RESPONSE_BYTES: usize = at("response_bytes");
    pub const HITS: usize = at("hits");
    pub const MISSES: usize = at("misses");
    pub const STATUS_2XX: usize = at("status_2xx");
    pub const STATUS_3XX: usize = at("status_3xx");
    pub const STATUS_4XX: usize = at("status_4xx");
    pub const STATUS_5XX: usize = at("status_5xx");
    pub const STATUS_OTHER: usize = at("status_other");
    pub const RT_SUM: usize = at("response_time_ms_sum");
    pub const RT_MAX: usize = at("response_time_ms_max");
    /// First histogram bucket (`rt_le_10`); bucket `i` is at `RT_HIST + i`.
    pub const RT_HIST: usize = at("rt_le_10");
}

// The histogram's buckets follow each other, the open-ended one last.
const _: () = assert!(at("rt_gt_10000") == idx::RT_HIST + RT_BUCKETS - 1);

/// The table's columns: `minute`, then one BIGINT per counter.
const COLUMNS: [Column; 1 + COUNTERS] = {
    let mut out = [Column::new(
        "minute",
        Kind::Timestamp,
        false,
        false,
        "start of the minute (UTC instant)",
    ); 1 + COUNTERS];
    let mut i = 0;
    while i < COUNTERS {
        let c = COUNTER_LIST[i];
        out[1 + i] = Column::new(c.name, Kind::Int64, false, false, c.doc);
        i += 1;
    }
    out
};

/// The traffic table: one row per minute present in a log file, per partition hour.
pub const TRAFFIC: Table = Table {
    name: "traffic",
    folder: "traffic",
    partitions: &["domain", "dt", "hour"],
    doc: "Per-minute traffic rollups of the access table; sum rows of the same minute (max for response_time_ms_max)",
    no_statistics: &[],
    rebuilt: None,
    large_dictionaries: &[],
    columns: &COLUMNS,
};

/// The counters of one minute, indexed by [`idx`].
pub type MinuteStats = [i64; COUNTERS];

/// Folds `other` into `into`, each counter by its [`Merge`].
pub fn merge(into: &mut MinuteStats, other: &MinuteStats) {
    for ((a, b), c) in into.iter_mut().zip(other).zip(COUNTER_LIST) {
        *a = match c.merge {
            Merge::Sum => a.saturating_add(*b),
            Merge::Max => (*a).max(*b),
        };
    }
}

/// Histogram bucket of a response time: the first bound it does not exceed, or the last bucket.
#[inline]
pub fn rt_bucket(ms: i64) -> usize {
    RT_BOUNDS_MS.partition_point(|&b| b < ms)
}
