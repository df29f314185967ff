//! `cdnlake report --html FILE`: one self-contained page. The charts are inline SVG drawn here,
//! so the page needs no script, font or network access and looks the same offline, in a mail
//! attachment or in a headless browser. Every string from the data is escaped ([`escape`]).
//!
//! Pure: a [`Report`] and the merged per-minute rollups in, a `String` out.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::access::time::{civil_from_days, PartitionTz, DAY_MICROS, HOUR_MICROS, MINUTE_MICROS};
use crate::query::report::{quantile, Bandwidth, Report, TopSource};
use crate::tables::traffic::{idx, merge, MinuteStats, COUNTERS, RT_BUCKETS};

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A named series of (x = micros since the epoch, y) points.
struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(i64, f64)>,
}

/// `1.2k`, `3.4M`: axis labels stay short.
fn short(v: f64) -> String {
    let a = v.abs();
    let (d, s) = if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if x.fract().abs() < 1e-9 {
        format!("{x:.0}{s}")
    } else {
        format!("{x:.1}{s}")
    }
}

/// A round axis maximum at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    // Four grid steps of each candidate stay round (0.25, 0.5, 1, 1.5, 2, 2.5 times a power of 10).
    [1.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * p)
}

fn wall_label(micros: i64, tz: PartitionTz, with_date: bool) -> String {
    let wall = micros.div_euclid(1_000_000) + i64::from(tz.offset_secs);
    let (_, m, d) = civil_from_days(wall.div_euclid(86_400));
    let secs = wall.rem_euclid(86_400);
    if with_date {
        format!("{m:02}-{d:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
    }
}

const W: f64 = 1300.0;
const H: f64 = 260.0;
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 30.0;
const B: f64 = 36.0;

/// Every chart shares the x range `(x0, x1)` (micros), so they line up one under another.
struct Frame {
    x0: i64,
    x1: i64,
    tz: PartitionTz,
}

/// A chart's scales: data (micros, value) to SVG coordinates.
struct Scale {
    x0: i64,
    x1: i64,
    ymax: f64,
}

impl Scale {
    fn x(&self, x: i64) -> f64 {
        L + (x - self.x0) as f64 / (self.x1 - self.x0) as f64 * (W - L - R)
    }

    fn y(&self, y: f64) -> f64 {
        T + (1.0 - (y / self.ymax).clamp(0.0, 1.0)) * (H - T - B)
    }
}

/// A series' points as (x, bottom, top): stacked, each series sits on the sum of the ones
/// before it (they must then share their x values); otherwise on 0.
type Layer = Vec<(i64, f64, f64)>;

/// An SVG chart over time: lines, or stacked areas when `stacked`. `y_max` fixes the axis (a
/// ratio in percent), otherwise it fits the data and `hline`, a labelled reference line.
fn chart(
    title: &str,
    unit: &str,
    series: &[Series],
    stacked: bool,
    y_max: Option<f64>,
    frame: &Frame,
    hline: Option<(&str, f64)>,
) -> String {
    let mut s = String::new();
    let layers = layers(series, stacked);
    let data_max = layers
        .iter()
        .flatten()
        .map(|p| p.2)
        .chain(hline.map(|h| h.1))
        .fold(0.0f64, f64::max);
    let scale = Scale {
        x0: frame.x0,
        x1: frame.x1.max(frame.x0 + MINUTE_MICROS),
        ymax: y_max.unwrap_or_else(|| nice_max(data_max)),
    };
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title><text x="{L}" y="18" class="ct">{t} <tspan class="unit">({u})</tspan></text>"#,
        t = escape(title),
        u = escape(unit)
    );
    y_grid(&mut s, &scale);
    x_ticks(&mut s, &scale, frame.tz);
    for (se, layer) in series.iter().zip(&layers).rev() {
        draw_layer(&mut s, &scale, se, layer, stacked);
    }
    if let Some((label, v)) = hline {
        reference_line(&mut s, &scale, label, v);
    }
    legend(&mut s, series);
    s.push_str("</svg>\n");
    s
}

/// Each series' points, stacked on the ones before it when `stacked`.
fn layers(series: &[Series], stacked: bool) -> Vec<Layer> {
    let mut base: BTreeMap<i64, f64> = BTreeMap::new();
    let mut layers: Vec<Layer> = Vec::new();
    for se in series {
        let layer: Layer = se
            .points
            .iter()
            .map(|&(x, y)| {
                let lo = if stacked {
                    base.get(&x).copied().unwrap_or(0.0)
                } else {
                    0.0
                };
                (x, lo, lo + y)
            })
            .collect();
        if stacked {
            for &(x, _, hi) in &layer {
                base.insert(x, hi);
            }
        }
        layers.push(layer);
    }
    layers
}

/// Five horizontal grid lines, 0 to the axis maximum, labelled.
fn y_grid(s: &mut String, scale: &Scale) {
    for i in 0..=4 {
        let v = scale.ymax * f64::from(i) / 4.0;
        let y = scale.y(v);
        let _ = write!(
            s,
            r#"<line x1="{L}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{lx}" y="{ty:.1}" class="yl">{v}</text>"#,
            x2 = W - R,
            lx = L - 6.0,
            ty = y + 4.0,
            v = short(v)
        );
    }
}

/// Time labels on round wall-clock minutes, at most about ten of them (with the date when the
/// chart spans more than a day).
fn x_ticks(s: &mut String, scale: &Scale, tz: PartitionTz) {
    let (x0, x1) = (scale.x0, scale.x1);
    let multi_day = x1 - x0 > DAY_MICROS;
    let step = [
        1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
    ]
    .into_iter()
    .map(|m: i64| m * MINUTE_MICROS)
    .find(|st| (x1 - x0) / st <= 10)
    .unwrap_or(10080 * MINUTE_MICROS);
    let off = i64::from(tz.offset_secs) * 1_000_000;
    let first = (x0 + off + step - 1).div_euclid(step) * step - off;
    for x in (0..).map(|i| first + i * step).take_while(|x| *x <= x1) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" class="xl">{}</text>"#,
            scale.x(x),
            H - B + 18.0,
            wall_label(x, tz, multi_day)
        );
    }
}

/// One series: a filled area between its bottom and top when stacked, else a line (its points
/// marked when there are few: a lone point draws no line).
fn draw_layer(s: &mut String, scale: &Scale, se: &Series, layer: &Layer, stacked: bool) {
    if layer.is_empty() {
        return;
    }
    let top: Vec<String> = layer
        .iter()
        .map(|&(x, _, hi)| format!("{:.1},{:.1}", scale.x(x), scale.y(hi)))
        .collect();
    if stacked {
        let bottom: Vec<String> = layer
            .iter()
            .rev()
            .map(|&(x, lo, _)| format!("{:.1},{:.1}", scale.x(x), scale.y(lo)))
            .collect();
        let _ = write!(
            s,
            r#"<polygon points="{} {}" fill="{c}" fill-opacity="0.75" stroke="{c}" stroke-width="0.5"/>"#,
            top.join(" "),
            bottom.join(" "),
            c = se.color
        );
        return;
    }
    let _ = write!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
        top.join(" "),
        se.color
    );
    if layer.len() <= 48 {
        for &(x, _, hi) in layer {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                scale.x(x),
                scale.y(hi),
                se.color
            );
        }
    }
}

/// A horizontal reference line (the 95th percentile), dashed, labelled at its right end.
fn reference_line(s: &mut String, scale: &Scale, label: &str, v: f64) {
    let y = scale.y(v);
    let _ = write!(
        s,
        r##"<line x1="{L}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#d62728" stroke-width="1.4" stroke-dasharray="6 4" class="hline"/><text x="{x2}" y="{ty:.1}" class="yl" fill="#d62728">{t}</text>"##,
        x2 = W - R,
        ty = y - 4.0,
        t = escape(label)
    );
}

/// The series' names and colours, right-aligned along the top.
fn legend(s: &mut String, series: &[Series]) {
    let mut lx = W - R;
    for se in series.iter().rev() {
        lx -= 14.0 + 8.0 * se.name.len() as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx:.1}" y="8" width="10" height="10" fill="{}"/><text x="{:.1}" y="17" class="lg">{}</text>"#,
            se.color,
            lx + 13.0,
            escape(se.name)
        );
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;background:#fafafa}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.sub{color:#666;margin-bottom:16px}\
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:130px}\
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}\
.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd;border-radius:6px;margin:8px 0}\
.chart text{font-size:12px;fill:#444}.chart .ct{font-size:14px;font-weight:600;fill:#222}.chart .unit{font-weight:400;fill:#666}\
.chart .yl{text-anchor:end}.chart .xl{text-anchor:middle}.grid{stroke:#e4e4e4}\
table{border-collapse:collapse;background:#fff;font-size:12px;width:100%}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.v{word-break:break-all}\
.tops{display:grid;grid-template-columns:1fr 1fr;gap:14px}.tops h3{font-size:14px;margin:6px 0}";

fn card(s: &mut String, value: &str, label: &str) {
    let _ = write!(
        s,
        r#"<div class="card"><b>{}</b><span>{}</span></div>"#,
        escape(value),
        escape(label)
    );
}

/// The page. `minutes` are the merged rollups the report covers (minute start -> stats): the
/// heading, the figures as cards, the traffic charts, the response-time chart, the per-hour
/// table and the top lists, in that order.
pub fn render(r: &Report, minutes: &BTreeMap<i64, MinuteStats>, tz: PartitionTz) -> String {
    let mut s = String::new();
    let frame = Frame {
        x0: minutes.keys().next().copied().unwrap_or(0),
        x1: minutes
            .keys()
            .next_back()
            .map_or(MINUTE_MICROS, |m| m + MINUTE_MICROS),
        tz,
    };
    heading(&mut s, r, minutes, tz);
    cards(&mut s, r);
    traffic_charts(&mut s, r, minutes, &frame);
    response_time_chart(&mut s, minutes, &frame);
    per_hour_table(&mut s, r);
    top_lists(&mut s, r);
    s.push_str("</body></html>\n");
    s
}

/// The document's head and the page's title: the domains and the span of the minutes.
fn heading(s: &mut String, r: &Report, minutes: &BTreeMap<i64, MinuteStats>, tz: PartitionTz) {
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cdnlake report</title><style>{STYLE}</style></head><body>\n"
    );
    let span = match (minutes.keys().next(), minutes.keys().next_back()) {
        (Some(a), Some(b)) => format!(
            "{} to {} ({})",
            wall_label(*a, tz, true),
            wall_label(b + MINUTE_MICROS, tz, true),
            r.tz
        ),
        _ => "no data".into(),
    };
    let _ = writeln!(
        s,
        "<h1>cdnlake report</h1><div class=\"sub\">{} &middot; {}</div>",
        escape(&if r.domains.is_empty() {
            "(no domain)".to_string()
        } else {
            r.domains.join(", ")
        }),
        escape(&span)
    );
}

/// The report's figures, one card each: totals, hit ratio, visitors, bandwidth, status classes,
/// response times.
fn cards(s: &mut String, r: &Report) {
    s.push_str("<div class=\"cards\">");
    card(s, &r.requests.to_string(), "requests");
    card(
        s,
        &format!("{:.3} GB", r.response_bytes as f64 / 1e9),
        "bytes out",
    );
    card(
        s,
        &format!("{:.3} GB", r.request_bytes as f64 / 1e9),
        "bytes in",
    );
    card(
        s,
        &r.hit_ratio
            .map_or("n/a".into(), |h| format!("{:.2}%", h * 100.0)),
        "hit ratio",
    );
    card(
        s,
        &match r.unique_visitors {
            Some(n) if r.unique_visitors_exact => n.to_string(),
            Some(n) => format!("~{n}"),
            None => "n/a".into(),
        },
        if r.unique_visitors.is_some() || r.per_hour.is_empty() {
            "unique visitors (client IPs)"
        } else {
            "unique visitors: not in the rollups of this lake"
        },
    );
    if let (Some(peak), Some(p95)) = (r.bandwidth.peak_bps, r.bandwidth.p95_bps) {
        card(
            s,
            &format!("{:.2} Mbit/s", peak / 1e6),
            "peak bandwidth (5 min)",
        );
        card(
            s,
            &format!("{:.2} Mbit/s", p95 / 1e6),
            "95th percentile bandwidth",
        );
    }
    for (k, v) in &r.status {
        card(s, &v.to_string(), &format!("status {k}"));
    }
    if let (Some(mean), Some(max)) = (r.response_time_ms_mean, r.response_time_ms_max) {
        card(s, &format!("{mean:.1} ms"), "mean response time");
        card(s, &format!("{max} ms"), "max response time");
    }
    for q in &r.quantiles {
        card(
            s,
            &format!("~{:.0} ms", q.estimate_ms),
            &format!(
                "p{} in ({}, {}] ms",
                (q.q * 100.0).round(),
                q.lower_ms,
                q.upper_ms
            ),
        );
    }
    s.push_str("</div>\n");
}

/// The per-minute charts (requests, bandwidth, hit ratio, status classes) and the billed
/// bandwidth.
fn traffic_charts(s: &mut String, r: &Report, minutes: &BTreeMap<i64, MinuteStats>, frame: &Frame) {
    s.push_str("<h2>Traffic</h2>\n");
    let series = |name, color, f: &dyn Fn(&MinuteStats) -> Option<f64>| Series {
        name,
        color,
        points: minutes
            .iter()
            .filter_map(|(m, st)| f(st).map(|v| (*m, v)))
            .collect(),
    };
    s.push_str(&chart(
        "Requests per minute",
        "requests",
        &[series("requests", "#1f77b4", &|st| {
            Some(st[idx::REQUESTS] as f64)
        })],
        false,
        None,
        frame,
        None,
    ));
    s.push_str(&chart(
        "Bandwidth per minute",
        "Mbit/s, mean over the minute",
        &[
            series("out (response)", "#2ca02c", &|st| {
                Some(st[idx::RESPONSE_BYTES] as f64 * 8.0 / 60.0 / 1e6)
            }),
            series("in (request)", "#9467bd", &|st| {
                Some(st[idx::REQUEST_BYTES] as f64 * 8.0 / 60.0 / 1e6)
            }),
        ],
        false,
        None,
        frame,
        None,
    ));
    billed_bandwidth(s, &r.bandwidth, frame);
    s.push_str(&chart(
        "Hit ratio per minute",
        "% of HIT + MISS",
        &[series("hit ratio", "#ff7f0e", &|st| {
            let n = st[idx::HITS] + st[idx::MISSES];
            (n > 0).then(|| 100.0 * st[idx::HITS] as f64 / n as f64)
        })],
        false,
        Some(100.0),
        frame,
        None,
    ));
    s.push_str(&chart(
        "Status classes per minute",
        "requests, stacked",
        &[
            series("2xx", "#2ca02c", &|st| Some(st[idx::STATUS_2XX] as f64)),
            series("3xx", "#1f77b4", &|st| Some(st[idx::STATUS_3XX] as f64)),
            series("4xx", "#ff7f0e", &|st| Some(st[idx::STATUS_4XX] as f64)),
            series("5xx", "#d62728", &|st| Some(st[idx::STATUS_5XX] as f64)),
            series("other", "#7f7f7f", &|st| Some(st[idx::STATUS_OTHER] as f64)),
        ],
        true,
        None,
        frame,
        None,
    ));
}

/// Bandwidth as billed: 5-minute means, and the window's 95th percentile, with the peaks.
fn billed_bandwidth(s: &mut String, bw: &Bandwidth, frame: &Frame) {
    let p95_label = bw
        .p95_bps
        .map(|p| format!("95th percentile {:.2} Mbit/s", p / 1e6));
    s.push_str(&chart(
        "Bandwidth per 5 minutes (as billed)",
        "Mbit/s, response bytes × 8 / 300 s",
        &[Series {
            name: "out (response)",
            color: "#2ca02c",
            points: bw
                .series
                .iter()
                .map(|p| (p.start_micros, p.bps / 1e6))
                .collect(),
        }],
        false,
        None,
        frame,
        p95_label.as_deref().zip(bw.p95_bps.map(|p| p / 1e6)),
    ));
    if let (Some(peak), Some(at)) = (bw.peak_bps, &bw.peak_at) {
        let _ = writeln!(
            s,
            "<div class=\"sub\">peak {:.2} Mbit/s at {}; 95th percentile {:.2} Mbit/s over {} five-minute buckets{}</div>",
            peak / 1e6,
            escape(at),
            bw.p95_bps.unwrap_or(0.0) / 1e6,
            bw.buckets,
            bw.daily_peaks
                .iter()
                .map(|d| format!("; {} peak {:.2} Mbit/s at {}", escape(&d.day), d.peak_bps / 1e6, escape(&d.peak_at)))
                .collect::<String>()
        );
    }
}

/// Response-time quantiles per hour of the report's wall clock, from the merged histograms.
fn response_time_chart(s: &mut String, minutes: &BTreeMap<i64, MinuteStats>, frame: &Frame) {
    let tz_micros = i64::from(frame.tz.offset_secs) * 1_000_000;
    let mut hours: BTreeMap<i64, MinuteStats> = BTreeMap::new();
    for (m, st) in minutes {
        let h = (m + tz_micros).div_euclid(HOUR_MICROS) * HOUR_MICROS - tz_micros;
        merge(hours.entry(h).or_insert([0; COUNTERS]), st);
    }
    let q_series = |name, color, q: f64| Series {
        name,
        color,
        points: hours
            .iter()
            .filter_map(|(h, st)| {
                let mut hist = [0i64; RT_BUCKETS];
                hist.copy_from_slice(&st[idx::RT_HIST..idx::RT_HIST + RT_BUCKETS]);
                // Drawn at the middle of the hour's minutes in the report.
                let mid = (*h + 1_800_000_000).clamp(frame.x0, frame.x1);
                quantile(&hist, st[idx::RT_MAX], q).map(|e| (mid, e.estimate_ms))
            })
            .collect(),
    };
    s.push_str(&chart(
        "Response time quantiles per hour",
        "ms, estimated within histogram buckets",
        &[
            q_series("p50", "#2ca02c", 0.5),
            q_series("p95", "#ff7f0e", 0.95),
            q_series("p99", "#d62728", 0.99),
        ],
        false,
        None,
        frame,
        None,
    ));
}

/// Requests and bytes per hour of the report's wall clock.
fn per_hour_table(s: &mut String, r: &Report) {
    let _ = write!(
        s,
        "<h2>Per hour ({})</h2><table><tr><th>hour</th><th class=\"n\">requests</th><th class=\"n\">response bytes</th><th class=\"n\">request bytes</th></tr>",
        escape(&r.tz)
    );
    for h in &r.per_hour {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&h.hour),
            h.requests,
            h.response_bytes,
            h.request_bytes
        );
    }
    s.push_str("</table>\n");
}

/// The top lists, each a table, with where their counts come from and the report's notes.
fn top_lists(s: &mut String, r: &Report) {
    let source = match (r.top_source, r.top_approximate) {
        (TopSource::Access, _) => "counted from the access rows (exact)".to_string(),
        (_, true) => {
            "from the rollups, approximate: each count is a lower bound, short by at most +N"
                .to_string()
        }
        _ => "from the rollups (exact: no summary had to drop a value)".to_string(),
    };
    let _ = write!(
        s,
        "<h2>Top 10</h2><div class=\"sub\">{}</div>",
        escape(&source)
    );
    for n in &r.notes {
        let _ = write!(s, "<div class=\"sub\">{}</div>", escape(n));
    }
    s.push_str("<div class=\"tops\">\n");
    for (name, by, list) in r.top_lists() {
        let _ = write!(
            s,
            "<div><h3>{} by {by}</h3><table><tr><th>{}</th><th class=\"n\">requests</th><th class=\"n\">bytes</th></tr>",
            escape(name),
            escape(name)
        );
        for e in list {
            let _ = write!(
                s,
                "<tr><td class=\"v\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                if e.value.is_empty() {
                    "<i>(empty)</i>".to_string()
                } else {
                    escape(&e.value)
                },
                e.requests_shown(),
                e.bytes_shown()
            );
        }
        s.push_str("</table></div>\n");
    }
    s.push_str("</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_shortens() {
        assert_eq!(
            escape(r#"<script>alert("x&'y")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(2e6), "2M");
        assert_eq!(nice_max(730.0), 800.0);
        assert_eq!(nice_max(0.0), 1.0);
    }
}
