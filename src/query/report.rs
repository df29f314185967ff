//! `cdnlake report`: answers from the traffic rollups (totals, hit ratio, status mix, response
//! time quantiles, per-hour traffic) without touching the access rows.
//!
//! [`super::rollups::read_rollups`] reads the committed traffic files; [`summarise`] is pure:
//! minute rows in, a [`Report`] out; [`super::text`] and [`super::html`] render it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::filter::ReportFilter;
use super::top::TopLists;
use crate::access::time::{civil_from_days, PartitionTz};
use crate::tables::traffic::{idx, merge, MinuteStats, COUNTERS, RT_BOUNDS_MS, RT_BUCKETS};

/// One rollup row: a minute of one domain from one file.
#[derive(Debug, Clone)]
pub struct MinuteRow {
    pub domain: String,
    pub minute_micros: i64,
    pub stats: MinuteStats,
}

/// A response-time quantile estimated from the merged histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantile {
    pub q: f64,
    /// Linear interpolation inside the bucket holding the quantile.
    pub estimate_ms: f64,
    /// The true value lies in `(lower_ms, upper_ms]`: the bucket, narrowed by the observed max.
    pub lower_ms: i64,
    pub upper_ms: i64,
}

/// Requests and bytes of one hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourRow {
    /// Start of the hour on the report's wall clock, `YYYY-MM-DD HH:00`.
    pub hour: String,
    pub requests: i64,
    pub request_bytes: i64,
    pub response_bytes: i64,
}

/// What `cdnlake report` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub domains: Vec<String>,
    /// Offset of the `hour` labels, e.g. `+08:00`.
    pub tz: String,
    pub minutes: usize,
    pub requests: i64,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub hits: i64,
    pub misses: i64,
    /// hits / (hits + misses); requests without a cache status (live streams) are left out.
    pub hit_ratio: Option<f64>,
    /// Requests per status class: `2xx`, `3xx`, `4xx`, `5xx`, `other`.
    pub status: BTreeMap<&'static str, i64>,
    pub response_time_ms_mean: Option<f64>,
    pub response_time_ms_max: Option<i64>,
    /// p50, p95, p99.
    pub quantiles: Vec<Quantile>,
    /// Histogram bucket bounds (ms) the quantiles come from.
    pub bucket_bounds_ms: Vec<i64>,
    pub per_hour: Vec<HourRow>,
    /// Top 10 per access column (`path`, `client_ip`, `referer`, `user_agent`), by requests and
    /// by bytes; read from the access files, so empty until [`crate::query::top::read_top`] fills it.
    pub top: BTreeMap<&'static str, TopLists>,
}

/// Estimates quantile `q` from histogram `hist` (counts per [`RT_BOUNDS_MS`] bucket, the last one
/// open-ended) and the observed max. `None` when the histogram is empty.
pub fn quantile(hist: &[i64; RT_BUCKETS], max_ms: i64, q: f64) -> Option<Quantile> {
    let total: i64 = hist.iter().sum();
    if total <= 0 {
        return None;
    }
    // The rank of the quantile, 1-based: the smallest value with at least q of the requests at or below it.
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut before = 0i64;
    for (i, &n) in hist.iter().enumerate() {
        if n > 0 && before + n >= rank {
            let lower = if i == 0 { 0 } else { RT_BOUNDS_MS[i - 1] };
            let upper = RT_BOUNDS_MS.get(i).copied().unwrap_or(max_ms).min(max_ms);
            let lower = lower.min(upper);
            let frac = (rank - before) as f64 / n as f64;
            return Some(Quantile {
                q,
                estimate_ms: lower as f64 + (upper - lower) as f64 * frac,
                lower_ms: lower,
                upper_ms: upper,
            });
        }
        before += n;
    }
    None
}

fn hour_label(hour_start_micros: i64, tz: PartitionTz) -> String {
    let wall = hour_start_micros.div_euclid(1_000_000) + i64::from(tz.offset_secs);
    let (y, m, d) = civil_from_days(wall.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:00",
        wall.rem_euclid(86_400) / 3600
    )
}

/// Merges rollup rows (any order, any number of files) into a report. Hours are labelled on
/// `tz`'s wall clock.
pub fn summarise(rows: &[MinuteRow], filter: &ReportFilter, tz: PartitionTz) -> Report {
    let mut total = [0i64; COUNTERS];
    let mut per_minute: BTreeMap<i64, MinuteStats> = BTreeMap::new();
    let mut domains = std::collections::BTreeSet::new();
    for r in rows.iter().filter(|r| {
        filter.keeps_minute(r.minute_micros)
            && filter.domain.as_deref().is_none_or(|d| d == r.domain)
    }) {
        domains.insert(r.domain.clone());
        merge(&mut total, &r.stats);
        merge(per_minute.entry(r.minute_micros).or_default(), &r.stats);
    }
    let mut per_hour: BTreeMap<i64, [i64; 3]> = BTreeMap::new();
    let tz_micros = i64::from(tz.offset_secs) * 1_000_000;
    for (m, s) in &per_minute {
        let hour = (m + tz_micros).div_euclid(3_600_000_000) * 3_600_000_000 - tz_micros;
        let h = per_hour.entry(hour).or_default();
        h[0] += s[idx::REQUESTS];
        h[1] = h[1].saturating_add(s[idx::REQUEST_BYTES]);
        h[2] = h[2].saturating_add(s[idx::RESPONSE_BYTES]);
    }
    let requests = total[idx::REQUESTS];
    let (hits, misses) = (total[idx::HITS], total[idx::MISSES]);
    let mut hist = [0i64; RT_BUCKETS];
    hist.copy_from_slice(&total[idx::RT_HIST..idx::RT_HIST + RT_BUCKETS]);
    let max = (requests > 0).then_some(total[idx::RT_MAX]);
    Report {
        domains: domains.into_iter().collect(),
        tz: tz.to_string(),
        minutes: per_minute.len(),
        requests,
        request_bytes: total[idx::REQUEST_BYTES],
        response_bytes: total[idx::RESPONSE_BYTES],
        hits,
        misses,
        hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        status: BTreeMap::from([
            ("2xx", total[idx::STATUS_2XX]),
            ("3xx", total[idx::STATUS_3XX]),
            ("4xx", total[idx::STATUS_4XX]),
            ("5xx", total[idx::STATUS_5XX]),
            ("other", total[idx::STATUS_OTHER]),
        ]),
        response_time_ms_mean: (requests > 0).then(|| total[idx::RT_SUM] as f64 / requests as f64),
        response_time_ms_max: max,
        quantiles: [0.5, 0.95, 0.99]
            .into_iter()
            .filter_map(|q| quantile(&hist, max.unwrap_or(0), q))
            .collect(),
        bucket_bounds_ms: RT_BOUNDS_MS.to_vec(),
        per_hour: per_hour
            .into_iter()
            .map(|(h, [requests, request_bytes, response_bytes])| HourRow {
                hour: hour_label(h, tz),
                requests,
                request_bytes,
                response_bytes,
            })
            .collect(),
        top: BTreeMap::new(),
    }
}

/// The rows the filter keeps, merged per minute across domains and files (the series the HTML
/// charts draw).
pub fn per_minute(rows: &[MinuteRow], filter: &ReportFilter) -> BTreeMap<i64, MinuteStats> {
    let mut out: BTreeMap<i64, MinuteStats> = BTreeMap::new();
    for r in rows.iter().filter(|r| {
        filter.keeps_minute(r.minute_micros)
            && filter.domain.as_deref().is_none_or(|d| d == r.domain)
    }) {
        merge(out.entry(r.minute_micros).or_default(), &r.stats);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(minute: i64, requests: i64, rt_bucket: usize, max: i64) -> MinuteRow {
        let mut stats = [0; COUNTERS];
        stats[idx::REQUESTS] = requests;
        stats[idx::RESPONSE_BYTES] = requests * 10;
        stats[idx::HITS] = requests;
        stats[idx::STATUS_2XX] = requests;
        stats[idx::RT_MAX] = max;
        stats[idx::RT_HIST + rt_bucket] = requests;
        MinuteRow {
            domain: "a".into(),
            minute_micros: minute * 60_000_000,
            stats,
        }
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let mut h = [0; RT_BUCKETS];
        h[0] = 50; // <= 10
        h[3] = 50; // (50, 100]
        let p50 = quantile(&h, 80, 0.5).unwrap();
        assert_eq!((p50.lower_ms, p50.upper_ms, p50.estimate_ms), (0, 10, 10.0));
        let p99 = quantile(&h, 80, 0.99).unwrap();
        assert_eq!((p99.lower_ms, p99.upper_ms), (50, 80), "capped by the max");
        assert!(p99.estimate_ms > 50.0 && p99.estimate_ms <= 80.0);
        h = [0; RT_BUCKETS];
        h[RT_BUCKETS - 1] = 1;
        let q = quantile(&h, 30_000, 0.5).unwrap();
        assert_eq!((q.lower_ms, q.upper_ms), (10_000, 30_000));
        assert_eq!(quantile(&[0; RT_BUCKETS], 0, 0.5), None);
    }

    #[test]
    fn merges_files_and_filters() {
        // Two files share minute 100 (hour 1 UTC = 09:00 +08:00).
        let rows = vec![row(100, 3, 0, 5), row(100, 1, 2, 40), row(200, 2, 1, 20)];
        let tz = PartitionTz::default();
        let r = summarise(&rows, &ReportFilter::default(), tz);
        assert_eq!((r.requests, r.minutes, r.hits), (6, 2, 6));
        assert_eq!(r.response_time_ms_max, Some(40));
        assert_eq!(r.hit_ratio, Some(1.0));
        assert_eq!(r.per_hour.len(), 2);
        assert_eq!(r.per_hour[0].hour, "1970-01-01 09:00");
        assert_eq!(r.per_hour[0].requests, 4);
        let only = summarise(
            &rows,
            &ReportFilter {
                from_micros: Some(150 * 60_000_000),
                ..ReportFilter::default()
            },
            tz,
        );
        assert_eq!((only.requests, only.response_time_ms_max), (2, Some(20)));
        let none = summarise(
            &rows,
            &ReportFilter {
                domain: Some("b".into()),
                ..ReportFilter::default()
            },
            tz,
        );
        assert_eq!(
            (none.requests, none.hit_ratio, none.quantiles.len()),
            (0, None, 0)
        );
    }
}
