//! The report as text for a terminal.

use std::fmt::Write;

use super::report::{Bandwidth, Report, NOT_IN_ROLLUPS};

/// `1.23 Gbit/s`: bandwidth in the unit that reads best.
pub(crate) fn bits(bps: f64) -> String {
    let (d, u) = if bps >= 1e9 {
        (1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (1e3, "kbit/s")
    } else {
        (1.0, "bit/s")
    };
    format!("{:.2} {u}", bps / d)
}

/// The terminal summary: the totals, response times, bandwidth and visitors, then the per-hour
/// table, the top lists and the notes.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    totals(&mut s, r);
    response_times(&mut s, r);
    bandwidth(&mut s, &r.bandwidth);
    visitors(&mut s, r);
    per_hour(&mut s, r);
    top_lists(&mut s, r);
    notes(&mut s, r);
    s
}

/// Domains, minutes, requests, bytes, hit ratio and the status mix.
fn totals(s: &mut String, r: &Report) {
    let pct = |n: i64| {
        if r.requests > 0 {
            100.0 * n as f64 / r.requests as f64
        } else {
            0.0
        }
    };
    let _ = writeln!(
        s,
        "domains:        {}",
        if r.domains.is_empty() {
            "(none)".to_string()
        } else {
            r.domains.join(", ")
        }
    );
    let _ = writeln!(s, "minutes:        {}", r.minutes);
    let _ = writeln!(s, "requests:       {}", r.requests);
    let _ = writeln!(
        s,
        "bytes:          {:.3} GB out, {:.3} GB in",
        r.response_bytes as f64 / 1e9,
        r.request_bytes as f64 / 1e9
    );
    let _ = writeln!(
        s,
        "hit ratio:      {} ({} hits, {} misses)",
        r.hit_ratio
            .map_or("n/a".into(), |h| format!("{:.2}%", h * 100.0)),
        r.hits,
        r.misses
    );
    let mix: Vec<String> = r
        .status
        .iter()
        .map(|(k, v)| format!("{k} {v} ({:.2}%)", pct(*v)))
        .collect();
    let _ = writeln!(s, "status:         {}", mix.join(", "));
}

/// Mean and max response time, and the quantiles with their histogram buckets.
fn response_times(s: &mut String, r: &Report) {
    if let (Some(mean), Some(max)) = (r.response_time_ms_mean, r.response_time_ms_max) {
        let _ = writeln!(s, "response time:  mean {mean:.1} ms, max {max} ms");
    }
    for q in &r.quantiles {
        let _ = writeln!(
            s,
            "  p{:<3}          ~{:.0} ms (histogram bucket ({}, {}] ms)",
            (q.q * 100.0).round(),
            q.estimate_ms,
            q.lower_ms,
            q.upper_ms
        );
    }
}

/// The peak and 95th percentile of the 5-minute bandwidth, and each day's peak.
fn bandwidth(s: &mut String, bw: &Bandwidth) {
    match (bw.peak_bps, &bw.peak_at, bw.p95_bps) {
        (Some(peak), Some(at), Some(p95)) => {
            let _ = writeln!(
                s,
                "bandwidth:      peak {} at {at}, 95th percentile {} (5-minute buckets, {} in {} to {})",
                bits(peak),
                bits(p95),
                bw.buckets,
                bw.window_from.as_deref().unwrap_or("?"),
                bw.window_to.as_deref().unwrap_or("?"),
            );
            for d in &bw.daily_peaks {
                let _ = writeln!(
                    s,
                    "  peak {}    {} at {}",
                    d.day,
                    bits(d.peak_bps),
                    d.peak_at
                );
            }
        }
        _ => {
            let _ = writeln!(s, "bandwidth:      (no traffic)");
        }
    }
}

/// Distinct client IPs, counted or estimated.
fn visitors(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "unique visitors: {}",
        match r.unique_visitors {
            Some(n) if r.unique_visitors_exact => format!("{n} distinct client IPs"),
            Some(n) =>
                format!("~{n} distinct client IPs (HyperLogLog estimate, standard error 0.8%)"),
            None if r.per_hour.is_empty() => "(no traffic)".to_string(),
            None => NOT_IN_ROLLUPS.to_string(),
        }
    );
}

/// Requests, bytes and visitors per hour of the report's wall clock.
fn per_hour(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\nper hour ({}):", r.tz);
    let _ = writeln!(
        s,
        "  {:<16} {:>12} {:>16} {:>16} {:>10}",
        "hour", "requests", "response bytes", "request bytes", "visitors"
    );
    for h in &r.per_hour {
        let _ = writeln!(
            s,
            "  {:<16} {:>12} {:>16} {:>16} {:>10}",
            h.hour,
            h.requests,
            h.response_bytes,
            h.request_bytes,
            h.unique_visitors
                .map_or("n/a".to_string(), |n| n.to_string())
        );
    }
}

/// Each top list, values made safe for the terminal; first whether the lists are approximate
/// or missing.
fn top_lists(s: &mut String, r: &Report) {
    if r.top.is_empty() && !r.per_hour.is_empty() {
        let _ = writeln!(s, "\ntop lists: {NOT_IN_ROLLUPS}");
    } else if r.top_approximate {
        let _ = writeln!(
            s,
            "\ntop lists from the rollups, approximate: each count is a lower bound, short by at most +N"
        );
    }
    for (name, by, list) in r.top_lists() {
        let _ = writeln!(s, "\ntop {name} by {by}:");
        let _ = writeln!(s, "  {:>20} {:>28}  value", "requests", "bytes");
        if list.is_empty() {
            let _ = writeln!(s, "  (none)");
        }
        for e in list {
            let _ = writeln!(
                s,
                "  {:>20} {:>28}  {}",
                e.requests_shown(),
                e.bytes_shown(),
                terminal_safe(&e.value, 100)
            );
        }
    }
}

/// What the figures cover and what is missing.
fn notes(s: &mut String, r: &Report) {
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\nnotes:");
        for n in &r.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
}

/// Log values are untrusted: control characters (an escape sequence in a user agent) are shown
/// escaped rather than sent to the terminal, and long values are cut. An empty value (a `""` user
/// agent, an empty path) is shown as `(empty)`, not as a blank a reader would take for a gap.
fn terminal_safe(v: &str, max_chars: usize) -> String {
    if v.is_empty() {
        return "(empty)".to_string();
    }
    let mut out = String::new();
    for c in v.chars().take(max_chars) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if v.chars().count() > max_chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn values_are_shown_safely() {
        assert_eq!(terminal_safe("", 100), "(empty)");
        // An escape sequence is shown, not sent to the terminal.
        assert_eq!(terminal_safe("/a\u{1b}[2J", 100), "/a\\u{1b}[2J");
        assert_eq!(terminal_safe("abcdef", 3), "abc…");
    }
}
