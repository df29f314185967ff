//! Property tests of the line parser: a random record, formatted as the CDN writes it, parses back
//! to the same record; and arbitrary bytes never panic and every line is accounted for.

use cdnlake::access::block::{parse_block, BlockOptions};
use cdnlake::access::parse::{join_url, parse_line, split_url};
use cdnlake::dev::gen::{format_line, OwnedLine};
use cdnlake::tables::access::ACCESS;
use proptest::prelude::*;

/// A bare token: no spaces, not empty.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9:.]{1,39}".prop_map(|s| s)
}

/// Inside a quoted field: anything printable but `"` and `\`, plus `\"` pairs and runs of spaces.
fn quoted() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => "[ -!#-\\[\\]-~]{1,8}",
            1 => Just("\\\"".to_string()),
            1 => Just("  ".to_string()),
            1 => Just("中文".to_string()),
        ],
        0..6,
    )
    .prop_map(|v| v.concat())
}

fn url() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(""), Just("http://"), Just("https://"), Just("rtmp://")],
        "[a-z0-9.-]{1,20}",
        "(/[A-Za-z0-9._~%-]{0,12}){0,4}",
        prop::option::of("[A-Za-z0-9=&./:?-]{0,20}"),
    )
        .prop_map(|(scheme, host, path, query)| {
            let mut u = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}{host}")
            };
            u.push_str(if path.is_empty() && scheme.is_empty() {
                "/"
            } else {
                &path
            });
            if let Some(q) = query {
                u.push('?');
                u.push_str(&q);
            }
            u
        })
}

/// Any string, biased towards the pieces that steer `split_url`: scheme-like runs, `://`,
/// `/`, `?`, empty hosts, non-ASCII text.
fn odd_url() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        3 => prop::collection::vec(
            prop_oneof![
                Just("http".to_string()),
                Just("h".to_string()),
                Just("://".to_string()),
                Just(":/".to_string()),
                Just("/".to_string()),
                Just("//".to_string()),
                Just("?".to_string()),
                Just("+.-".to_string()),
                Just("中文".to_string()),
                Just(" ".to_string()),
                "[a-z0-9]{1,4}",
                "\\PC{1,3}",
            ],
            0..8,
        )
        .prop_map(|v| v.concat()),
    ]
}

fn record() -> impl Strategy<Value = OwnedLine> {
    (
        (
            0i64..4_102_444_800,
            (-56i32..=56).prop_map(|q| q * 900),
            token(),
            prop::option::of(token().prop_filter("not a dash", |t| t != "-")),
            0i64..1_000_000_000_000_000_000,
            prop::option::of(quoted().prop_filter("not a dash", |t| t != "-")),
            "[A-Z]{1,7}",
        ),
        (
            url(),
            0i32..=i32::MAX,
            0i64..1_000_000_000_000_000_000,
            0i64..1_000_000_000_000_000_000,
            prop::option::of(
                prop_oneof![Just("HIT".to_string()), Just("MISS".to_string()), token()]
                    .prop_filter("not a dash", |t| t != "-"),
            ),
            quoted(),
            quoted(),
            prop::option::of(
                "[!-~][ -~]{0,30}"
                    .prop_map(|s| s.trim_end().to_string())
                    .prop_filter("non-empty", |s| !s.is_empty()),
            ),
        ),
    )
        .prop_map(
            |(
                (secs, off, ip, proxy, rt, referer, method),
                (url, status, rq, rs, cache, ua, ct, extra),
            )| OwnedLine {
                time_micros: secs * 1_000_000,
                offset_secs: off,
                client_ip: ip,
                proxy_ip: proxy,
                response_time_ms: rt,
                referer,
                method,
                url,
                status,
                request_bytes: rq,
                response_bytes: rs,
                cache_status: cache,
                user_agent: ua,
                content_type: ct,
                extra,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn formatted_records_parse_back_equal(r in record()) {
        let mut buf = Vec::new();
        format_line(&r, &mut buf);
        let line = String::from_utf8(buf).unwrap();
        let p = parse_line(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(p.time_micros, r.time_micros);
        prop_assert_eq!(p.client_ip, r.client_ip.as_str());
        prop_assert_eq!(p.proxy_ip, r.proxy_ip.as_deref());
        prop_assert_eq!(p.response_time_ms, r.response_time_ms);
        prop_assert_eq!(p.referer, r.referer.as_deref());
        prop_assert_eq!(p.method, r.method.as_str());
        prop_assert_eq!(p.url, r.url.as_str());
        prop_assert_eq!((p.scheme, p.host, p.path, p.query), split_url(&r.url));
        prop_assert_eq!(p.status, r.status);
        prop_assert_eq!(p.request_bytes, r.request_bytes);
        prop_assert_eq!(p.response_bytes, r.response_bytes);
        prop_assert_eq!(p.cache_status, r.cache_status.as_deref());
        prop_assert_eq!(p.user_agent, r.user_agent.as_str());
        prop_assert_eq!(p.content_type, r.content_type.as_str());
        prop_assert_eq!(p.extra, r.extra.as_deref());
        // CRLF gives the same record.
        let crlf = format!("{line}\r");
        prop_assert_eq!(parse_line(&crlf).ok(), Some(p));
    }

    /// `url` is not stored since schema version 2: the views rebuild it with `join_url`'s SQL
    /// form, so the split must be lossless for URL-shaped strings ...
    #[test]
    fn url_parts_rebuild_the_url(u in url()) {
        let (scheme, host, path, query) = split_url(&u);
        prop_assert_eq!(join_url(scheme, host, path, query), u);
    }

    /// ... and for any string at all (the request field holds whatever the CDN logged).
    #[test]
    fn join_url_inverts_split_url_on_any_string(u in odd_url()) {
        let (scheme, host, path, query) = split_url(&u);
        prop_assert_eq!(join_url(scheme, host, path, query), u);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_every_line_is_counted(data in prop::collection::vec(any::<u8>(), 0..2000), first in 1u64..1000) {
        let opts = BlockOptions { max_line: 300, ..BlockOptions::default() };
        let p = parse_block(&data, first, "f", &ACCESS.arrow_schema(), &opts);
        let body = data.strip_suffix(b"\n").unwrap_or(&data);
        let expected_lines = if data.is_empty() { 0 } else { body.split(|&b| b == b'\n').count() as u64 };
        prop_assert_eq!(p.lines, expected_lines);
        prop_assert_eq!(p.lines, p.rows + p.rejects.len() as u64 + p.empty);
        prop_assert!(p.rejects.iter().all(|r| r.line_number >= first && r.line_number < first + p.lines.max(1)));
    }

    #[test]
    fn mutated_lines_never_panic(r in record(), cut in 0usize..400, flip in 0usize..400, byte in any::<u8>()) {
        let mut buf = Vec::new();
        format_line(&r, &mut buf);
        if flip < buf.len() { buf[flip] = byte; }
        buf.truncate(cut.max(1));
        let p = parse_block(&buf, 1, "f", &ACCESS.arrow_schema(), &BlockOptions::default());
        prop_assert_eq!(p.lines, p.rows + p.rejects.len() as u64 + p.empty);
    }
}
