//! `report --html`: a self-contained page (nothing fetched from the network), one SVG per chart,
//! and every value from the logs escaped, here a `<script>` planted in a user agent and a path.

use crate::support::*;
use cdnlake::dev::gen::GenOptions;

#[test]
fn html_report_is_self_contained_and_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 500,
            ..GenOptions::default()
        },
    );
    let evil = (0..3)
        .map(|i| {
            format!(
                "[5/Mar/2024:08:4{i}:00 +0800] 192.0.2.10 - 12 \"-\" \"GET http://evil.example.com/p<b>{i}\" 200 191 2830 HIT \"<script>alert(1)</script>\" \"text/html\"\n"
            )
        })
        .collect::<String>();
    let evil_log = tmp
        .path()
        .join("evil.example.com_2024_03_05_084000_085000.gz");
    std::fs::write(&evil_log, gzip(evil.as_bytes())).unwrap();
    let o = cdnlake(
        tmp.path(),
        &["convert", log.to_str().unwrap(), evil_log.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let o = cdnlake(tmp.path(), &["report", "--html", "report.html"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    let lower = html.to_lowercase();

    // Nothing is loaded: no attribute points anywhere, no script, stylesheet link or CSS import.
    for needle in [
        "src=", "href=", "<script", "<link", "@import", "url(", "<iframe", "<img",
    ] {
        assert!(!lower.contains(needle), "page contains {needle:?}");
    }
    // URLs from the data appear only as escaped text, never as a reference.
    for (i, _) in lower.match_indices("http") {
        let before = lower[..i].chars().next_back();
        assert!(
            !matches!(before, Some('"' | '\'' | '=' | '(')),
            "a quoted or referenced URL: {}",
            &lower[i.saturating_sub(20)..i + 10]
        );
    }
    // One inline SVG per chart.
    for title in [
        "Requests per minute",
        "Bandwidth per minute",
        "Bandwidth per 5 minutes (as billed)",
        "Hit ratio per minute",
        "Status classes per minute",
        "Response time quantiles per hour",
    ] {
        assert!(html.contains(&format!("<title>{title}</title>")), "{title}");
    }
    assert_eq!(html.matches("<svg").count(), 6);
    assert_eq!(html.matches("</svg>").count(), 6);
    // The bandwidth chart carries its 95th-percentile line, labelled.
    assert_eq!(html.matches("class=\"hline\"").count(), 1);
    assert!(html.contains(">95th percentile "), "p95 label");
    assert!(html.matches("<polyline").count() >= 6, "lines drawn");
    assert_eq!(html.matches("<polygon").count(), 5, "five status areas");
    // The planted values are escaped text (this domain's report has them in its top lists).
    let o = cdnlake(
        tmp.path(),
        &[
            "report",
            "--domain",
            "evil.example.com",
            "--html",
            "evil.html",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(tmp.path().join("evil.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 6);
    assert!(!html.to_lowercase().contains("<script"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("/p&lt;b&gt;0"));
    assert!(!html.contains("/p<b>"));
}
