//! `cdnlake report --html FILE`: one self-contained page. The charts are inline SVG drawn here,
//! so the page needs no script, font or network access and looks the same offline, in a mail
//! attachment or in a headless browser. Every string from the data is escaped ([`escape`]).
//!
//! Pure: a [`Report`] and the merged per-minute rollups in, a `String` out.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::access::time::{civil_from_days, PartitionTz, DAY_MICROS, HOUR_MICROS, MINUTE_MICROS};
use crate::query::report::{quantile, Report, TopSource};
use crate::query::top::DIMENSIONS;
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

/// An SVG chart over time: lines, or stacked areas when `stacked` (the series must then share
/// their x values). `y_max` fixes the axis (a ratio in percent), otherwise it fits the data.
/// Every chart shares the x range `(x0, x1)` (micros), so they line up one under another.
struct Frame {
    x0: i64,
    x1: i64,
    tz: PartitionTz,
}

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
    let (x0, x1, tz) = (frame.x0, frame.x1.max(frame.x0 + MINUTE_MICROS), frame.tz);
    // Stacked: each series is drawn on top of the sum of the ones before it.
    let mut base: BTreeMap<i64, f64> = BTreeMap::new();
    let mut layers: Vec<Vec<(i64, f64, f64)>> = Vec::new();
    for se in series {
        let layer: Vec<(i64, f64, f64)> = se
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
    let data_max = layers
        .iter()
        .flatten()
        .map(|p| p.2)
        .chain(hline.map(|h| h.1))
        .fold(0.0f64, f64::max);
    let ymax = y_max.unwrap_or_else(|| nice_max(data_max));
    let px = |x: i64| L + (x - x0) as f64 / (x1 - x0) as f64 * (W - L - R);
    let py = |y: f64| T + (1.0 - (y / ymax).clamp(0.0, 1.0)) * (H - T - B);
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title><text x="{L}" y="18" class="ct">{t} <tspan class="unit">({u})</tspan></text>"#,
        t = escape(title),
        u = escape(unit)
    );
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let y = py(v);
        let _ = write!(
            s,
            r#"<line x1="{L}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{lx}" y="{ty:.1}" class="yl">{v}</text>"#,
            x2 = W - R,
            lx = L - 6.0,
            ty = y + 4.0,
            v = short(v)
        );
    }
    let multi_day = x1 - x0 > DAY_MICROS;
    // Ticks on round wall-clock minutes, at most about ten of them.
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
            px(x),
            H - B + 18.0,
            wall_label(x, tz, multi_day)
        );
    }
    for (se, layer) in series.iter().zip(&layers).rev() {
        if layer.is_empty() {
            continue;
        }
        let top: Vec<String> = layer
            .iter()
            .map(|&(x, _, hi)| format!("{:.1},{:.1}", px(x), py(hi)))
            .collect();
        if stacked {
            let bottom: Vec<String> = layer
                .iter()
                .rev()
                .map(|&(x, lo, _)| format!("{:.1},{:.1}", px(x), py(lo)))
                .collect();
            let _ = write!(
                s,
                r#"<polygon points="{} {}" fill="{c}" fill-opacity="0.75" stroke="{c}" stroke-width="0.5"/>"#,
                top.join(" "),
                bottom.join(" "),
                c = se.color
            );
        } else {
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
                top.join(" "),
                se.color
            );
            // Few points: mark them, a lone point draws no line.
            if layer.len() <= 48 {
                for &(x, _, hi) in layer {
                    let _ = write!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                        px(x),
                        py(hi),
                        se.color
                    );
                }
            }
        }
    }
    // A horizontal reference line (the 95th percentile), dashed, labelled at its right end.
    if let Some((label, v)) = hline {
        let y = py(v);
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#d62728" stroke-width="1.4" stroke-dasharray="6 4" class="hline"/><text x="{x2}" y="{ty:.1}" class="yl" fill="#d62728">{t}</text>"##,
            x2 = W - R,
            ty = y - 4.0,
            t = escape(label)
        );
    }
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
    s.push_str("</svg>\n");
    s
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

/// The page. `minutes` are the merged rollups the report covers (minute start -> stats).
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
    let _ = write!(
        s,
        "<h1>cdnlake report</h1><div class=\"sub\">{} &middot; {}</div>\n<div class=\"cards\">",
        escape(&if r.domains.is_empty() {
            "(no domain)".to_string()
        } else {
            r.domains.join(", ")
        }),
        escape(&span)
    );
    card(&mut s, &r.requests.to_string(), "requests");
    card(
        &mut s,
        &format!("{:.3} GB", r.response_bytes as f64 / 1e9),
        "bytes out",
    );
    card(
        &mut s,
        &format!("{:.3} GB", r.request_bytes as f64 / 1e9),
        "bytes in",
    );
    card(
        &mut s,
        &r.hit_ratio
            .map_or("n/a".into(), |h| format!("{:.2}%", h * 100.0)),
        "hit ratio",
    );
    card(
        &mut s,
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
            &mut s,
            &format!("{:.2} Mbit/s", peak / 1e6),
            "peak bandwidth (5 min)",
        );
        card(
            &mut s,
            &format!("{:.2} Mbit/s", p95 / 1e6),
            "95th percentile bandwidth",
        );
    }
    for (k, v) in &r.status {
        card(&mut s, &v.to_string(), &format!("status {k}"));
    }
    if let (Some(mean), Some(max)) = (r.response_time_ms_mean, r.response_time_ms_max) {
        card(&mut s, &format!("{mean:.1} ms"), "mean response time");
        card(&mut s, &format!("{max} ms"), "max response time");
    }
    for q in &r.quantiles {
        card(
            &mut s,
            &format!("~{:.0} ms", q.estimate_ms),
            &format!(
                "p{} in ({}, {}] ms",
                (q.q * 100.0).round(),
                q.lower_ms,
                q.upper_ms
            ),
        );
    }
    s.push_str("</div>\n<h2>Traffic</h2>\n");

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
        &frame,
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
        &frame,
        None,
    ));
    // Bandwidth as billed: 5-minute means, and the window's 95th percentile.
    let bw = &r.bandwidth;
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
        &frame,
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
    s.push_str(&chart(
        "Hit ratio per minute",
        "% of HIT + MISS",
        &[series("hit ratio", "#ff7f0e", &|st| {
            let n = st[idx::HITS] + st[idx::MISSES];
            (n > 0).then(|| 100.0 * st[idx::HITS] as f64 / n as f64)
        })],
        false,
        Some(100.0),
        &frame,
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
        &frame,
        None,
    ));

    // Quantiles per hour of the report's wall clock, from the merged histograms.
    let tz_micros = i64::from(tz.offset_secs) * 1_000_000;
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
        &frame,
        None,
    ));

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
        "</table>\n<h2>Top 10</h2><div class=\"sub\">{}</div>",
        escape(&source)
    );
    for n in &r.notes {
        let _ = write!(s, "<div class=\"sub\">{}</div>", escape(n));
    }
    s.push_str("<div class=\"tops\">\n");
    for name in DIMENSIONS {
        let Some(t) = r.top.get(name) else { continue };
        for (by, list) in [("requests", &t.by_requests), ("bytes", &t.by_bytes)] {
            let _ = write!(
                s,
                "<div><h3>{} by {by}</h3><table><tr><th>{}</th><th class=\"n\">requests</th><th class=\"n\">bytes</th></tr>",
                escape(name),
                escape(name)
            );
            let bound = |v: i64, e: i64| {
                if e > 0 {
                    format!("{v} +{e}")
                } else {
                    v.to_string()
                }
            };
            for e in list {
                let _ = write!(
                    s,
                    "<tr><td class=\"v\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    if e.value.is_empty() {
                        "<i>(empty)</i>".to_string()
                    } else {
                        escape(&e.value)
                    },
                    bound(e.requests, e.requests_error),
                    bound(e.bytes, e.bytes_error)
                );
            }
            s.push_str("</table></div>\n");
        }
    }
    s.push_str("</div>\n</body></html>\n");
    s
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
