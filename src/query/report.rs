//! `cdnlake report`: answers from the rollups (totals, hit ratio, status mix, response time
//! quantiles, per-hour traffic, bandwidth, unique visitors, top lists) without touching the
//! access rows; `--exact` counts the top lists and visitors from the access rows instead.
//!
//! [`super::rollups`] reads the committed rollup files; [`summarise`], [`bandwidth`],
//! [`apply_sketches`] and [`apply_exact`] are pure: rows and summaries in, a [`Report`] out;
//! [`super::text`] and [`super::html`] render it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::filter::ReportFilter;
pub use super::rollups::MinuteRow;
use super::rollups::Sketches;
use super::top::{TopCounter, TopEntry, TopLists, DIMENSIONS, TOP_N};
use crate::access::time::{civil_from_days, PartitionTz, DAY_MICROS, HOUR_MICROS};
use crate::sketch::heavy::Summary;
use crate::tables::traffic::{idx, merge, MinuteStats, COUNTERS, RT_BOUNDS_MS, RT_BUCKETS};

/// Seconds per bandwidth bucket: the CDN bills on 5-minute means.
pub(crate) const BUCKET_SECS: i64 = 300;

/// Message for figures an old lake's rollups do not hold.
pub(crate) const NOT_IN_ROLLUPS: &str =
    "not in the rollups of this lake: re-convert or use --exact";

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
    /// Distinct client IPs of the hour; `null` when the rollups do not hold them.
    pub unique_visitors: Option<i64>,
    /// Start of the hour (micros), to join other per-hour figures.
    #[serde(skip)]
    pub start_micros: i64,
}

/// One 5-minute bandwidth value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandwidthPoint {
    /// Start of the bucket, RFC 3339 on the report's wall clock.
    pub at: String,
    /// `response_bytes × 8 / 300` of the bucket.
    pub bps: f64,
    #[serde(skip)]
    pub start_micros: i64,
}

/// The peak of one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyPeak {
    /// `YYYY-MM-DD` on the report's wall clock.
    pub day: String,
    pub peak_bps: f64,
    /// Start of the (first) bucket with the peak.
    pub peak_at: String,
}

/// Bandwidth as the CDN bills it: 5-minute buckets aligned to the report's wall clock.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Bandwidth {
    pub bucket_seconds: i64,
    /// First and last bucket of the window the p95 is taken over: `--from`/`--to` when given,
    /// else the first and the last bucket with traffic.
    pub window_from: Option<String>,
    pub window_to: Option<String>,
    /// Buckets in the window, those without traffic included (they count as 0).
    pub buckets: usize,
    pub peak_bps: Option<f64>,
    pub peak_at: Option<String>,
    /// 95th percentile: the window's bucket values sorted descending, the top 5% (floor of
    /// buckets × 0.05) discarded, the next one.
    pub p95_bps: Option<f64>,
    pub daily_peaks: Vec<DailyPeak>,
    pub series: Vec<BandwidthPoint>,
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
    pub bandwidth: Bandwidth,
    /// Distinct client IPs over the window's hours; `null` when the rollups do not hold them
    /// (see `notes`).
    pub unique_visitors: Option<i64>,
    /// Whether `unique_visitors` is exact (counted, or a sketch in its exact mode) rather than
    /// estimated (HyperLogLog, standard error 0.81%).
    pub unique_visitors_exact: bool,
    /// Top 10 per column ([`DIMENSIONS`]), by requests and by bytes; empty when the rollups do
    /// not hold them (see `notes`).
    pub top: BTreeMap<&'static str, TopLists>,
    /// `rollups` (the `top` table: approximate, each count with its error bound) or `access`
    /// (`--exact`: counted from the access rows).
    pub top_source: TopSource,
    /// Whether any count in `top` may be short (an entry's `requests_error`/`bytes_error` > 0).
    pub top_approximate: bool,
    /// What the figures cover and what is missing.
    pub notes: Vec<String>,
}

/// Where a report's top lists come from (serialised `rollups` / `access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopSource {
    /// The `heavy_hitters` table: approximate, each count with its error bound.
    Rollups,
    /// `--exact`: counted from the access rows.
    Access,
}

impl Report {
    /// The top lists in the order reports show them: each column of [`DIMENSIONS`] the report
    /// holds, by requests then by bytes, as (column, `requests` or `bytes`, list).
    pub fn top_lists(&self) -> impl Iterator<Item = (&'static str, &'static str, &[TopEntry])> {
        DIMENSIONS
            .iter()
            .filter_map(|name| self.top.get(name).map(|t| (*name, t)))
            .flat_map(|(name, t)| {
                [("requests", &t.by_requests), ("bytes", &t.by_bytes)]
                    .map(|(by, list)| (name, by, list.as_slice()))
            })
    }
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
        let hour = (m + tz_micros).div_euclid(HOUR_MICROS) * HOUR_MICROS - tz_micros;
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
                unique_visitors: None,
                start_micros: h,
            })
            .collect(),
        bandwidth: bandwidth(&per_minute, filter, tz),
        unique_visitors: None,
        unique_visitors_exact: false,
        top: BTreeMap::new(),
        top_source: TopSource::Rollups,
        top_approximate: false,
        notes: Vec::new(),
    }
}

/// RFC 3339 of an instant on `tz`'s wall clock, to the second.
pub fn rfc3339(micros: i64, tz: PartitionTz) -> String {
    let wall = micros.div_euclid(1_000_000) + i64::from(tz.offset_secs);
    let (y, m, d) = civil_from_days(wall.div_euclid(86_400));
    let sod = wall.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{tz}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Start (micros) of the 5-minute bucket holding `micros`, aligned to `tz`'s wall clock: a
/// `+05:45` report's buckets start at :00, :05, … of its own clock (the offset is whole minutes,
/// so a bucket is always 5 whole UTC minutes).
pub(crate) fn bucket_start(micros: i64, tz: PartitionTz) -> i64 {
    let off = i64::from(tz.offset_secs) * 1_000_000;
    let b = BUCKET_SECS * 1_000_000;
    (micros + off).div_euclid(b) * b - off
}

/// The bandwidth figures of the merged per-minute rollups (already narrowed to the filter's
/// domain and minutes). The window is `--from`/`--to` when given (a bucket cut by its edge holds
/// only its minutes inside), else the first to the last bucket with traffic; buckets without
/// traffic count 0.
pub fn bandwidth(
    per_minute: &BTreeMap<i64, MinuteStats>,
    filter: &ReportFilter,
    tz: PartitionTz,
) -> Bandwidth {
    let step = BUCKET_SECS * 1_000_000;
    let mut bytes: BTreeMap<i64, i64> = BTreeMap::new();
    for (m, s) in per_minute {
        let b = bytes.entry(bucket_start(*m, tz)).or_default();
        *b = b.saturating_add(s[idx::RESPONSE_BYTES]);
    }
    let first = filter
        .from_micros
        .map(|f| bucket_start(f, tz))
        .or_else(|| bytes.keys().next().copied());
    let last = filter
        .to_micros
        .map(|t| bucket_start(t - 1, tz))
        .or_else(|| bytes.keys().next_back().copied());
    let mut out = Bandwidth {
        bucket_seconds: BUCKET_SECS,
        ..Bandwidth::default()
    };
    let (Some(first), Some(last)) = (first, last) else {
        return out;
    };
    if last < first {
        return out;
    }
    let bps = |b: i64| b as f64 * 8.0 / BUCKET_SECS as f64;
    out.series = (0..)
        .map(|i| first + i * step)
        .take_while(|b| *b <= last)
        .map(|b| BandwidthPoint {
            at: rfc3339(b, tz),
            bps: bps(bytes.get(&b).copied().unwrap_or(0)),
            start_micros: b,
        })
        .collect();
    out.window_from = Some(rfc3339(first, tz));
    out.window_to = Some(rfc3339(last, tz));
    out.buckets = out.series.len();
    // The first bucket with the largest value.
    let peak = out
        .series
        .iter()
        .fold(None::<&BandwidthPoint>, |best, p| match best {
            Some(b) if b.bps >= p.bps => Some(b),
            _ => Some(p),
        });
    if let Some(p) = peak {
        out.peak_bps = Some(p.bps);
        out.peak_at = Some(p.at.clone());
    }
    let mut sorted: Vec<f64> = out.series.iter().map(|p| p.bps).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let discard = sorted.len() * 5 / 100;
    out.p95_bps = sorted.get(discard).copied();
    let off = i64::from(tz.offset_secs) * 1_000_000;
    let mut days: BTreeMap<i64, &BandwidthPoint> = BTreeMap::new();
    for p in &out.series {
        let day = (p.start_micros + off).div_euclid(DAY_MICROS);
        match days.get(&day) {
            Some(b) if b.bps >= p.bps => {}
            _ => {
                days.insert(day, p);
            }
        }
    }
    out.daily_peaks = days
        .into_iter()
        .map(|(day, p)| {
            let (y, m, d) = civil_from_days(day);
            DailyPeak {
                day: format!("{y:04}-{m:02}-{d:02}"),
                peak_bps: p.bps,
                peak_at: p.at.clone(),
            }
        })
        .collect();
    out
}

fn entry(value: &str, c: [i64; 2], s: &Summary) -> TopEntry {
    TopEntry {
        value: value.to_string(),
        requests: c[0],
        bytes: c[1],
        requests_error: s.error[0],
        bytes_error: s.error[1],
    }
}

/// Whole partition hours from `first` to `last` (starts, micros) as `HH:00` labels.
fn hours_note(what: &str, hours: &std::collections::BTreeSet<i64>, tz: PartitionTz) -> String {
    let (Some(a), Some(b)) = (hours.first(), hours.last()) else {
        return format!("{what}: no hour");
    };
    format!(
        "{what} {} hour(s): {} to {}",
        hours.len(),
        hour_label(*a, tz),
        hour_label(*b, tz)
    )
}

/// Fills the top lists and unique visitors from the rollup sketches. A figure some hour of the
/// window has no sketch for (a lake converted before the `top`/`visitors` tables) is left out
/// (`null`) with a note, never guessed from the hours that have one.
pub fn apply_sketches(r: &mut Report, sk: &Sketches, filter: &ReportFilter, tz: PartitionTz) {
    r.top_source = TopSource::Rollups;
    let off = i64::from(tz.offset_secs) * 1_000_000;
    let aligned = |t: Option<i64>| t.is_none_or(|t| (t + off).rem_euclid(HOUR_MICROS) == 0);
    let whole_hours = aligned(filter.from_micros) && aligned(filter.to_micros);
    if !sk.hours.is_empty() && !whole_hours {
        r.notes.push(
            "top lists and unique visitors are kept per partition hour: they cover the whole hours the window overlaps"
                .to_string(),
        );
    }
    if sk.missing_top.is_empty() {
        r.top = DIMENSIONS
            .iter()
            .zip(&sk.dims)
            .map(|(name, s)| {
                let list = |m: usize| -> Vec<TopEntry> {
                    s.top(m, TOP_N)
                        .into_iter()
                        .map(|(k, c)| entry(k, c, s))
                        .collect()
                };
                (
                    *name,
                    TopLists {
                        by_requests: list(0),
                        by_bytes: list(1),
                    },
                )
            })
            .collect();
        r.top_approximate = sk.dims.iter().any(|s| s.error != [0, 0]);
    } else {
        r.notes.push(format!(
            "{}: top lists {NOT_IN_ROLLUPS}",
            hours_note("missing for", &sk.missing_top, tz)
        ));
    }
    if sk.missing_visitors.is_empty() {
        if !sk.hours.is_empty() {
            r.unique_visitors = Some(sk.visitors.estimate() as i64);
            r.unique_visitors_exact = sk.visitors.is_exact();
        }
    } else {
        r.notes.push(format!(
            "{}: unique visitors {NOT_IN_ROLLUPS}",
            hours_note("missing for", &sk.missing_visitors, tz)
        ));
    }
    for h in &mut r.per_hour {
        if !sk.missing_visitors.contains(&h.start_micros) {
            h.unique_visitors = sk
                .per_hour
                .get(&h.start_micros)
                .map(|x| x.estimate() as i64);
        }
    }
}

/// Fills the top lists and unique visitors from an exact scan of the access rows (`--exact`).
pub fn apply_exact(r: &mut Report, c: &TopCounter) {
    r.top = c.lists();
    r.top_source = TopSource::Access;
    r.top_approximate = false;
    r.unique_visitors = Some(c.ips.len() as i64);
    r.unique_visitors_exact = true;
    for h in &mut r.per_hour {
        h.unique_visitors = Some(
            c.ips_per_hour
                .get(&h.start_micros)
                .map_or(0, |s| s.len() as i64),
        );
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
