//! The access-line parser: pure, allocation-free, one pass over the bytes.
//!
//! A line looks like
//!
//! ```text
//! [9/Jun/2015:01:58:09 +0800] 192.0.2.10 - 1542 "-" "GET http://www.example.com/index.html" 200 191 2830 MISS "Mozilla/5.0" "text/html"
//! ```
//!
//! [`parse_line`] returns an [`AccessLine`] borrowing from the input, or a [`LineError`] naming the
//! 1-based field where parsing stopped and why. It never allocates, so the cost per line is the scan
//! itself; the column builders downstream copy the borrowed slices once.
//!
//! Choices made where Alibaba's documentation is silent:
//! - Quoted fields end at a `"` followed by a space or the end of the line and not escaped by an odd
//!   number of backslashes; a `\"` inside stays in the value as logged (values are never unescaped, so
//!   what you query is byte for byte what the CDN wrote).
//! - A `"` not followed by a space is part of the value (`"a"b"` is the value `a"b`).
//! - Fields 1 to 12 are required; anything after field 12 is kept raw in `extra`.

use super::scan;
use super::time::parse_log_time;

/// One parsed access line. String fields borrow from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine<'a> {
    /// Microseconds since the Unix epoch (UTC), the logged offset applied.
    pub time_micros: i64,
    pub client_ip: &'a str,
    /// `None` when logged as `-`.
    pub proxy_ip: Option<&'a str>,
    pub response_time_ms: i64,
    /// `None` when logged as `"-"`.
    pub referer: Option<&'a str>,
    pub method: &'a str,
    /// The URL exactly as logged.
    pub url: &'a str,
    pub scheme: Option<&'a str>,
    pub host: Option<&'a str>,
    pub path: &'a str,
    /// The part after the first `?`, `None` when there is no `?`.
    pub query: Option<&'a str>,
    pub status: i32,
    pub request_bytes: i64,
    pub response_bytes: i64,
    /// `None` when logged as `-` (live streams).
    pub cache_status: Option<&'a str>,
    pub user_agent: &'a str,
    pub content_type: &'a str,
    /// Trailing fields after the content type, raw; `None` when there are none.
    pub extra: Option<&'a str>,
}

/// Field numbers (1-based) and their names, for error messages.
pub(crate) const FIELD_NAMES: [&str; 13] = [
    "time",
    "client_ip",
    "proxy_ip",
    "response_time_ms",
    "referer",
    "request",
    "status",
    "request_bytes",
    "response_bytes",
    "cache_status",
    "user_agent",
    "content_type",
    "extra",
];

/// Why a line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// The line does not start with `[`.
    MissingBracket,
    /// The time field has no closing `]`.
    UnclosedTime,
    /// The time does not read as `d/Mon/yyyy:HH:MM:SS ±hhmm`.
    BadTime,
    /// The line ended before this field.
    MissingField,
    /// The field is empty: two spaces in a row where a value was expected.
    EmptyField,
    /// A field was not followed by exactly one space.
    BadSeparator,
    /// An integer field holds something else (or overflows).
    BadNumber,
    /// A quoted field does not start with `"`.
    NotQuoted,
    /// A quoted field has no closing `"`.
    UnclosedQuote,
    /// The request field has no space between method and URL.
    BadRequest,
    /// The line is longer than the configured limit.
    TooLong,
}

impl RejectKind {
    /// A short, stable, machine-friendly reason (used in reject records).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::MissingBracket => "line does not start with '['",
            RejectKind::UnclosedTime => "time has no closing ']'",
            RejectKind::BadTime => "time is not d/Mon/yyyy:HH:MM:SS +hhmm",
            RejectKind::MissingField => "line ends before this field",
            RejectKind::EmptyField => "field is empty (two spaces in a row)",
            RejectKind::BadSeparator => "field not followed by a single space",
            RejectKind::BadNumber => "not an integer",
            RejectKind::NotQuoted => "field does not start with '\"'",
            RejectKind::UnclosedQuote => "quoted field has no closing '\"'",
            RejectKind::BadRequest => "request is not \"METHOD URL\"",
            RejectKind::TooLong => "line longer than the limit",
        }
    }
}

/// A rejection: the 1-based field where parsing stopped, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineError {
    pub field: u8,
    pub kind: RejectKind,
}

impl LineError {
    /// Name of the field (`time`, `status`, ...).
    /// Field 0 is the line as a whole (e.g. too long).
    pub(crate) fn field_name(&self) -> &'static str {
        match usize::from(self.field) {
            0 => "line",
            n => FIELD_NAMES.get(n - 1).copied().unwrap_or("line"),
        }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "field {} ({}): {}",
            self.field,
            self.field_name(),
            self.kind.as_str()
        )
    }
}

impl std::error::Error for LineError {}

#[inline]
fn err(field: u8, kind: RejectKind) -> LineError {
    LineError { field, kind }
}

/// A forward-only cursor over the line. Slicing at positions of ASCII bytes (space, quote,
/// bracket) is always on a char boundary, so the `&str` slices below never split a character.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    #[inline]
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Consumes the single space separating this field from the next one.
    #[inline]
    fn separator(&mut self, next_field: u8) -> Result<(), LineError> {
        match self.bytes().get(self.pos) {
            Some(b' ') => {
                self.pos += 1;
                if self.at_end() {
                    Err(err(next_field, RejectKind::MissingField))
                } else {
                    Ok(())
                }
            }
            None => Err(err(next_field, RejectKind::MissingField)),
            Some(_) => Err(err(next_field - 1, RejectKind::BadSeparator)),
        }
    }

    /// A bare token up to the next space (or the end of the line). Tokens are short (an IP, a
    /// cache status), where memchr's setup costs more than the search; the inlined SSE2 search
    /// finds an IPv4 address's end in one 16-byte compare instead of a loop over its bytes.
    #[inline]
    fn token(&mut self, field: u8) -> Result<&'a str, LineError> {
        let b = self.bytes();
        let start = self.pos;
        let i = scan::find(&b[start..], b' ').map_or(b.len(), |p| start + p);
        if i == start {
            let kind = if i < b.len() {
                RejectKind::EmptyField
            } else {
                RejectKind::MissingField
            };
            return Err(err(field, kind));
        }
        self.pos = i;
        Ok(&self.s[start..i])
    }

    /// A non-negative decimal integer token (at most 18 digits, so it cannot overflow `i64`).
    #[inline]
    fn int(&mut self, field: u8) -> Result<i64, LineError> {
        let b = self.bytes();
        let start = self.pos;
        // Numbers of up to 7 digits (all but the largest byte counts) with 8 bytes to read: the
        // digits and their value in a few word operations instead of a loop per digit.
        if let Some(Ok(w)) = b.get(start..start + 8).map(<[u8; 8]>::try_from) {
            let (v, n) = leading_digits(u64::from_le_bytes(w));
            if n < 8 {
                return self.int_end(field, start, start + n, v as i64);
            }
        }
        let mut i = start;
        let mut v: i64 = 0;
        // At most 18 digits are read; a 19th is left for `int_end`, which rejects it.
        let end = b.len().min(start + 18);
        while i < end && b[i].is_ascii_digit() {
            v = v * 10 + i64::from(b[i] - b'0');
            i += 1;
        }
        self.int_end(field, start, i, v)
    }

    /// Ends an integer field whose digits are `start..i`, with value `v`: it must be followed by
    /// a space or the end of the line.
    #[inline(always)]
    fn int_end(&mut self, field: u8, start: usize, i: usize, v: i64) -> Result<i64, LineError> {
        match self.bytes().get(i) {
            None if i == start => Err(err(field, RejectKind::MissingField)),
            Some(b' ') if i == start => Err(err(field, RejectKind::EmptyField)),
            None | Some(b' ') if i > start => {
                self.pos = i;
                Ok(v)
            }
            _ => Err(err(field, RejectKind::BadNumber)),
        }
    }

    /// A `"..."` field; returns the inside, escapes left as logged.
    #[inline]
    fn quoted(&mut self, field: u8) -> Result<&'a str, LineError> {
        let b = self.bytes();
        if b.get(self.pos) != Some(&b'"') {
            return Err(err(field, RejectKind::NotQuoted));
        }
        let start = self.pos + 1;
        let mut from = start;
        loop {
            let q = match scan::find(&b[from..], b'"') {
                Some(i) => from + i,
                None => return Err(err(field, RejectKind::UnclosedQuote)),
            };
            // Escaped when preceded by an odd number of backslashes.
            let mut bs = 0;
            while q - bs > start && b[q - bs - 1] == b'\\' {
                bs += 1;
            }
            let closes = bs % 2 == 0 && matches!(b.get(q + 1), None | Some(b' '));
            if closes {
                self.pos = q + 1;
                return Ok(&self.s[start..q]);
            }
            from = q + 1;
        }
    }
}

/// The run of ASCII digits at the start of 8 bytes loaded little-endian (the first byte lowest):
/// its value and its length (8 when all are digits; the value is then that of all 8).
#[inline(always)]
fn leading_digits(w: u64) -> (u64, usize) {
    const LO: u64 = 0x0101_0101_0101_0101;
    // A digit byte becomes 0..=9, and only a digit byte does.
    let a = w ^ (0x30 * LO);
    // The high bit of each byte that is not 0..=9: set already (>= 0x80), or set by adding
    // 0x76 (10 + 0x76 = 0x80). A carry out of a byte >= 0x8a may mark the byte after it, but
    // only after a non-digit, so the first non-digit is always found right.
    let non = (a | a.wrapping_add(0x76 * LO)) & (0x80 * LO);
    let n = (non.trailing_zeros() / 8) as usize;
    if n == 0 {
        return (0, 0);
    }
    // The n digits moved to the top bytes (those after them shifted out), zeros before them:
    // leading zeros of an 8-digit number. Then pairs, quads and the whole, each lane holding
    // (first * 10^k + second) of the lanes below it (the usual SWAR decimal parse).
    let d = a << (8 * (8 - n));
    let d = (d.wrapping_mul(10 << 8 | 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let d = (d.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_ffff_0000_ffff;
    let d = d.wrapping_mul(10_000 << 32 | 1) >> 32;
    (d, n)
}

/// `-` (or `"-"` for quoted fields) means absent.
#[inline]
fn dash_none(s: &str) -> Option<&str> {
    if s == "-" {
        None
    } else {
        Some(s)
    }
}

/// Splits a logged URL into (scheme, host, path, query).
///
/// `http://h/p?q` gives (`http`, `h`, `/p`, `q`); a bare path `/p?q` gives no scheme or host.
/// A URL with a scheme and no path (`http://h`) has an empty path.
///
/// Lossless: [`join_url`] of the parts is the URL again, for every string (a property test
/// checks it). The access table stores only the parts since schema version 2, and the views
/// rebuild `url` with that function's SQL form (`query::ddl`, docs/design.md §2.1).
#[inline]
pub fn split_url(url: &str) -> (Option<&str>, Option<&str>, &str, Option<&str>) {
    let b = url.as_bytes();
    // Most URLs are either a bare path or `scheme://host...`; a scheme is letters, digits, '+',
    // '-', '.' directly followed by "://".
    let mut i = 0;
    // The common schemes first: where the loop below would stop, without the loop.
    if b.starts_with(b"http://") {
        i = 4;
    } else if b.starts_with(b"https://") {
        i = 5;
    } else if b.first() != Some(&b'/') {
        while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'+' | b'-' | b'.')) {
            i += 1;
        }
    }
    let (scheme, host, rest_start) = if i > 0 && b[i..].starts_with(b"://") {
        let host_start = i + 3;
        let host_end =
            scan::find2(&b[host_start..], b'/', b'?').map_or(b.len(), |e| host_start + e);
        (Some(&url[..i]), Some(&url[host_start..host_end]), host_end)
    } else {
        (None, None, 0)
    };
    let rest = &url[rest_start..];
    match scan::find(rest.as_bytes(), b'?') {
        Some(q) => (scheme, host, &rest[..q], Some(&rest[q + 1..])),
        None => (scheme, host, rest, None),
    }
}

/// The URL as logged, from the parts [`split_url`] gave: `scheme://host` when both are
/// present, then the path, then `?query` when there is a query. `join_url(split_url(u)) == u`
/// for every string `u`.
///
/// This is the one definition of the rebuild: the `url` column of the DuckDB and MaxCompute
/// views is this function in SQL (`query::ddl::join_url_sql`), tested against the parser on
/// the real and generated lines. A scheme without a host (which `split_url` never gives)
/// writes no prefix, as the SQL's `CASE` does.
pub fn join_url(
    scheme: Option<&str>,
    host: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> String {
    let prefix = match (scheme, host) {
        (Some(s), Some(h)) => s.len() + 3 + h.len(),
        _ => 0,
    };
    let mut url = String::with_capacity(prefix + path.len() + query.map_or(0, |q| q.len() + 1));
    if let (Some(s), Some(h)) = (scheme, host) {
        url.push_str(s);
        url.push_str("://");
        url.push_str(h);
    }
    url.push_str(path);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Parses one access line (without its line terminator; a trailing `\r` is tolerated).
pub fn parse_line(line: &str) -> Result<AccessLine<'_>, LineError> {
    LineParser::default().parse(line)
}

/// A line parser that remembers the last time field it decoded: consecutive lines of a log
/// mostly share their second, so the date arithmetic runs once per second of log, not per line.
#[derive(Debug, Default, Clone)]
pub(crate) struct LineParser {
    last_time: [u8; 32],
    last_len: usize,
    last_micros: i64,
}

impl LineParser {
    #[inline]
    fn time(&mut self, t: &[u8]) -> Option<i64> {
        // `last_len` is 0 until a time was decoded: an empty field never hits the cache.
        if self.last_len > 0 && t.len() == self.last_len && self.same_as_last(t) {
            return Some(self.last_micros);
        }
        let micros = parse_log_time(t)?;
        if t.len() <= self.last_time.len() {
            self.last_time[..t.len()].copy_from_slice(t);
            self.last_len = t.len();
            self.last_micros = micros;
        }
        Some(micros)
    }

    /// `t == last_time[..t.len()]` for a `t` of the cached length. A time field is 25 or 26
    /// bytes: two overlapping 16-byte compares cover it without a call to `memcmp`.
    #[inline]
    fn same_as_last(&self, t: &[u8]) -> bool {
        let n = t.len();
        let last = &self.last_time[..n];
        match (
            <[u8; 16]>::try_from(t.get(..16).unwrap_or_default()),
            <[u8; 16]>::try_from(t.get(n.saturating_sub(16)..).unwrap_or_default()),
            <[u8; 16]>::try_from(last.get(..16).unwrap_or_default()),
            <[u8; 16]>::try_from(last.get(n.saturating_sub(16)..).unwrap_or_default()),
        ) {
            (Ok(a), Ok(b), Ok(c), Ok(d)) => a == c && b == d,
            _ => t == last,
        }
    }

    /// Parses one access line (see [`parse_line`]).
    pub fn parse<'a>(&mut self, line: &'a str) -> Result<AccessLine<'a>, LineError> {
        parse_with(self, line)
    }
}

fn parse_with<'a>(p: &mut LineParser, line: &'a str) -> Result<AccessLine<'a>, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let b = line.as_bytes();
    if b.first() != Some(&b'[') {
        return Err(err(1, RejectKind::MissingBracket));
    }
    // The time field is 25 or 26 bytes; look there before searching.
    let close = match (b.get(26), b.get(27)) {
        (Some(b']'), _) => 26,
        (_, Some(b']')) => 27,
        _ => memchr::memchr(b']', b).ok_or(err(1, RejectKind::UnclosedTime))?,
    };
    let time_micros = p.time(&b[1..close]).ok_or(err(1, RejectKind::BadTime))?;
    let mut c = Cursor {
        s: line,
        pos: close + 1,
    };

    c.separator(2)?;
    let client_ip = c.token(2)?;
    c.separator(3)?;
    let proxy_ip = dash_none(c.token(3)?);
    c.separator(4)?;
    let response_time_ms = c.int(4)?;
    c.separator(5)?;
    let referer = dash_none(c.quoted(5)?);
    c.separator(6)?;
    let request = c.quoted(6)?;
    let sp = request
        .bytes()
        .position(|c| c == b' ')
        .filter(|&i| i > 0)
        .ok_or(err(6, RejectKind::BadRequest))?;
    let (method, url) = (&request[..sp], &request[sp + 1..]);
    c.separator(7)?;
    let status = c.int(7)?;
    let status = i32::try_from(status).map_err(|_| err(7, RejectKind::BadNumber))?;
    c.separator(8)?;
    let request_bytes = c.int(8)?;
    c.separator(9)?;
    let response_bytes = c.int(9)?;
    c.separator(10)?;
    let cache_status = dash_none(c.token(10)?);
    c.separator(11)?;
    let user_agent = c.quoted(11)?;
    c.separator(12)?;
    let content_type = c.quoted(12)?;
    let extra = if c.at_end() {
        None
    } else {
        // quoted() only stops before a space or the end, so this byte is a space.
        let rest = &line[c.pos + 1..];
        if rest.is_empty() {
            None
        } else {
            Some(rest)
        }
    };
    let (scheme, host, path, query) = split_url(url);
    Ok(AccessLine {
        time_micros,
        client_ip,
        proxy_ip,
        response_time_ms,
        referer,
        method,
        url,
        scheme,
        host,
        path,
        query,
        status,
        request_bytes,
        response_bytes,
        cache_status,
        user_agent,
        content_type,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a line that lives for the rest of the test.
    fn p(s: String) -> AccessLine<'static> {
        parse_line(Box::leak(s.into_boxed_str())).unwrap()
    }

    const DOC_LINE: &str = r#"[9/Jun/2015:01:58:09 +0800] 192.0.2.10 - 1542 "-" "GET http://www.example.com/index.html" 200 191 2830 MISS "Mozilla/5.0 (compatible; ExampleBot/1.0)" "text/html""#;

    fn line_with(
        time: &str,
        ip: &str,
        referer: &str,
        request: &str,
        ua: &str,
        ct: &str,
        tail: &str,
    ) -> String {
        format!(
            r#"[{time}] {ip} - 12 "{referer}" "{request}" 200 191 2830 HIT "{ua}" "{ct}"{tail}"#
        )
    }

    #[test]
    fn documentation_line() {
        let l = parse_line(DOC_LINE).unwrap();
        assert_eq!(l.time_micros, 1_433_786_289_000_000);
        assert_eq!(l.client_ip, "192.0.2.10");
        assert_eq!(l.proxy_ip, None);
        assert_eq!(l.response_time_ms, 1542);
        assert_eq!(l.referer, None);
        assert_eq!(l.method, "GET");
        assert_eq!(l.url, "http://www.example.com/index.html");
        assert_eq!(l.scheme, Some("http"));
        assert_eq!(l.host, Some("www.example.com"));
        assert_eq!(l.path, "/index.html");
        assert_eq!(l.query, None);
        assert_eq!(l.status, 200);
        assert_eq!(l.request_bytes, 191);
        assert_eq!(l.response_bytes, 2830);
        assert_eq!(l.cache_status, Some("MISS"));
        assert_eq!(l.user_agent, "Mozilla/5.0 (compatible; ExampleBot/1.0)");
        assert_eq!(l.content_type, "text/html");
        assert_eq!(l.extra, None);
    }

    #[test]
    fn ipv6_masked_and_proxy() {
        let l = p(DOC_LINE.replace("192.0.2.10 -", "2001:db8::1 10.0.0.1"));
        assert_eq!(l.client_ip, "2001:db8::1");
        assert_eq!(l.proxy_ip, Some("10.0.0.1"));
        let l = p(DOC_LINE.replace("192.0.2.10", "139.224.XXX.XXX"));
        assert_eq!(l.client_ip, "139.224.XXX.XXX");
    }

    #[test]
    fn odd_referer_kept_and_dash_is_null() {
        let t = "9/Jun/2015:01:58:09 +0800";
        let l = p(line_with(t, "1.2.3.4", "_", "GET /a", "ua", "ct", ""));
        assert_eq!(l.referer, Some("_"));
        let l = p(line_with(t, "1.2.3.4", "", "GET /a", "ua", "ct", ""));
        assert_eq!(l.referer, Some(""));
    }

    #[test]
    fn urls_of_every_kind() {
        let t = "9/Jun/2015:01:58:09 +0800";
        let cases = [
            ("GET /a/b.js", (None, None, "/a/b.js", None)),
            ("GET /a/b.js?x=1&y", (None, None, "/a/b.js", Some("x=1&y"))),
            (
                "GET https://h.example.com/p?q=1",
                (Some("https"), Some("h.example.com"), "/p", Some("q=1")),
            ),
            (
                "PLAY rtmp://live.example.com/app/stream",
                (Some("rtmp"), Some("live.example.com"), "/app/stream", None),
            ),
            (
                "GET http://h.example.com",
                (Some("http"), Some("h.example.com"), "", None),
            ),
            (
                "GET http://h.example.com?x",
                (Some("http"), Some("h.example.com"), "", Some("x")),
            ),
            (
                "GET http://h/p?a?b",
                (Some("http"), Some("h"), "/p", Some("a?b")),
            ),
            ("GET /p?", (None, None, "/p", Some(""))),
            (
                "GET /r?u=http://x/y",
                (None, None, "/r", Some("u=http://x/y")),
            ),
            (
                "GET http://h/a b c",
                (Some("http"), Some("h"), "/a b c", None),
            ),
        ];
        for (req, want) in cases {
            let l = p(line_with(t, "1.2.3.4", "-", req, "ua", "ct", ""));
            assert_eq!((l.scheme, l.host, l.path, l.query), want, "{req}");
            assert_eq!(format!("{} {}", l.method, l.url), req);
        }
    }

    /// (scheme, host, path, query), as `split_url` gives them.
    type Parts<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);

    #[test]
    fn join_url_rebuilds_odd_urls_exactly() {
        let cases: [(&str, Parts); 14] = [
            ("", (None, None, "", None)),
            ("http://", (Some("http"), Some(""), "", None)),
            ("http:///p", (Some("http"), Some(""), "/p", None)),
            ("//x", (None, None, "//x", None)),
            ("?", (None, None, "", Some(""))),
            ("a?b?c", (None, None, "a", Some("b?c"))),
            ("h://x?y/z", (Some("h"), Some("x"), "", Some("y/z"))),
            ("http://h?", (Some("http"), Some("h"), "", Some(""))),
            ("://h/p", (None, None, "://h/p", None)),
            ("/a://b", (None, None, "/a://b", None)),
            (
                "http://中文.cn/路径?q=é",
                (Some("http"), Some("中文.cn"), "/路径", Some("q=é")),
            ),
            ("ht tp://h/p", (None, None, "ht tp://h/p", None)),
            (
                "rtmp://h:1935/live",
                (Some("rtmp"), Some("h:1935"), "/live", None),
            ),
            ("-", (None, None, "-", None)),
        ];
        for (url, parts) in cases {
            assert_eq!(split_url(url), parts, "{url:?}");
            let (scheme, host, path, query) = parts;
            assert_eq!(join_url(scheme, host, path, query), url);
        }
        // A scheme without a host (never split so) writes no prefix, as the SQL's CASE does.
        assert_eq!(join_url(Some("http"), None, "/p", None), "/p");
    }

    #[test]
    fn empty_and_space_quoted_fields_and_double_spaces() {
        let t = "9/Jun/2015:01:58:09 +0800";
        let l = p(line_with(t, "1.2.3.4", "-", "GET /", "", " ", ""));
        assert_eq!(l.user_agent, "");
        assert_eq!(l.content_type, " ");
        let l = p(line_with(
            t,
            "1.2.3.4",
            "-",
            "GET /",
            "Mozilla/5.0  (X11;  Linux)",
            "text/html; charset=utf-8",
            "",
        ));
        assert_eq!(l.user_agent, "Mozilla/5.0  (X11;  Linux)");
        assert_eq!(l.content_type, "text/html; charset=utf-8");
    }

    #[test]
    fn escaped_quotes_stay_as_logged() {
        let t = "9/Jun/2015:01:58:09 +0800";
        let l = p(line_with(
            t,
            "1.2.3.4",
            r#"a \" b"#,
            "GET /",
            r#"say \"hi\" "#,
            "ct",
            "",
        ));
        assert_eq!(l.referer, Some(r#"a \" b"#));
        assert_eq!(l.user_agent, r#"say \"hi\" "#);
        // An escaped backslash before the closing quote closes the field.
        let l = p(line_with(t, "1.2.3.4", r"x\\", "GET /", "ua", "ct", ""));
        assert_eq!(l.referer, Some(r"x\\"));
        // A bare quote not followed by a space is part of the value.
        let l = p(line_with(t, "1.2.3.4", r#"a"b"#, "GET /", "ua", "ct", ""));
        assert_eq!(l.referer, Some(r#"a"b"#));
    }

    #[test]
    fn extra_fields_kept_raw() {
        let l = p(format!("{DOC_LINE} HTTP/1.1"));
        assert_eq!(l.extra, Some("HTTP/1.1"));
        let l = p(format!("{DOC_LINE} https 2001:db8::2 \"x y\""));
        assert_eq!(l.extra, Some("https 2001:db8::2 \"x y\""));
        let l = p(format!("{DOC_LINE} "));
        assert_eq!(l.extra, None);
    }

    #[test]
    fn crlf_and_live_stream_cache_status() {
        let l = p(format!("{DOC_LINE}\r"));
        assert_eq!(l.content_type, "text/html");
        let l = p(DOC_LINE.replace(" MISS ", " - "));
        assert_eq!(l.cache_status, None);
    }

    #[test]
    fn the_time_cache_tells_apart_times_that_differ_in_any_byte() {
        let mut p = LineParser::default();
        let base = p.parse(DOC_LINE).unwrap().time_micros;
        // Day (byte 0), month (2-4), minute (13-14), second (16-17), offset (23-24); the 25-byte
        // field is compared as two overlapping 16-byte halves.
        for (from, to, delta) in [
            ("9/Jun/2015:01:58:09", "8/Jun/2015:01:58:09", -86_400),
            ("9/Jun/2015:01:58:09", "9/Jul/2015:01:58:09", 30 * 86_400),
            ("9/Jun/2015:01:58:09", "9/Jun/2015:01:59:09", 60),
            ("9/Jun/2015:01:58:09", "9/Jun/2015:01:58:08", -1),
            ("+0800", "+0801", -60),
        ] {
            let line = DOC_LINE.replace(from, to);
            let l = p.parse(&line).unwrap();
            assert_eq!(l.time_micros, base + delta * 1_000_000, "{to}");
            assert_eq!(p.parse(DOC_LINE).unwrap().time_micros, base);
        }
    }

    /// The integer reader as it was before the word-at-a-time path: the reference.
    fn int_by_loop(b: &[u8]) -> Result<(i64, usize), RejectKind> {
        let mut i = 0;
        let mut v: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            if i == 18 {
                return Err(RejectKind::BadNumber);
            }
            v = v * 10 + i64::from(b[i] - b'0');
            i += 1;
        }
        match b.get(i) {
            None if i == 0 => Err(RejectKind::MissingField),
            Some(b' ') if i == 0 => Err(RejectKind::EmptyField),
            None | Some(b' ') if i > 0 => Ok((v, i)),
            _ => Err(RejectKind::BadNumber),
        }
    }

    #[test]
    fn int_agrees_with_a_digit_loop() {
        // Every string of up to 6 bytes over digits, space and the bytes around '0'..'9',
        // then those strings with long digit runs in front (up to 20 digits) and text after.
        let alphabet = [b'0', b'1', b'9', b' ', b'/', b':', b'a'];
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..6 {
            last = last
                .iter()
                .flat_map(|p: &Vec<u8>| {
                    alphabet.iter().map(move |&c| {
                        let mut q = p.clone();
                        q.push(c);
                        q
                    })
                })
                .collect();
            cases.extend(last.iter().cloned());
        }
        let short: Vec<Vec<u8>> = cases.iter().filter(|c| c.len() <= 3).cloned().collect();
        for digits in 1..=20 {
            let run: Vec<u8> = (0..digits).map(|i| b"9876543210"[i % 10]).collect();
            for tail in &short {
                cases.push([&run[..], tail, b" x 12345678"].concat());
                cases.push([&run[..], tail].concat());
            }
        }
        for case in cases {
            let s = String::from_utf8(case).unwrap();
            for prefix in ["", "[x] "] {
                let line = format!("{prefix}{s}");
                let mut c = Cursor {
                    s: &line,
                    pos: prefix.len(),
                };
                let got = c.int(4).map(|v| (v, c.pos - prefix.len()));
                let want = int_by_loop(s.as_bytes());
                assert_eq!(got.map_err(|e| e.kind), want, "{s:?}");
                if let Err(e) = got {
                    assert_eq!(e.field, 4);
                    assert_eq!(c.pos, prefix.len(), "no move on error");
                }
            }
        }
        assert_eq!(
            leading_digits(u64::from_le_bytes(*b"12345678")),
            (12_345_678, 8)
        );
        assert_eq!(leading_digits(u64::from_le_bytes(*b"0000042 ")), (42, 7));
        assert_eq!(
            leading_digits(u64::from_le_bytes([b'7', 0xff, 0xff, b'1', 0, 0, 0, 0])),
            (7, 1)
        );
    }

    #[test]
    fn big_response_bytes() {
        let l = p(DOC_LINE.replace(" 2830 ", " 5000000000 "));
        assert_eq!(l.response_bytes, 5_000_000_000);
    }

    #[test]
    fn rejections_name_the_field() {
        let cases: [(String, u8, RejectKind); 14] = [
            (DOC_LINE[1..].to_string(), 1, RejectKind::MissingBracket),
            (DOC_LINE.replace(']', ")"), 1, RejectKind::UnclosedTime),
            (DOC_LINE.replace("Jun", "Foo"), 1, RejectKind::BadTime),
            (
                DOC_LINE.replace(" 1542 ", " 15x2 "),
                4,
                RejectKind::BadNumber,
            ),
            (DOC_LINE.replace(" 1542 ", " -1 "), 4, RejectKind::BadNumber),
            (
                DOC_LINE.replace(" 200 ", " 99999999999 "),
                7,
                RejectKind::BadNumber,
            ),
            (
                DOC_LINE.replace(" 2830 ", " 1e3 "),
                9,
                RejectKind::BadNumber,
            ),
            (DOC_LINE.replace("\"-\"", "-"), 5, RejectKind::NotQuoted),
            (
                DOC_LINE.replace("\"GET http://www.example.com/index.html\"", "\"GET\""),
                6,
                RejectKind::BadRequest,
            ),
            (
                DOC_LINE.replace(" \"text/html\"", ""),
                12,
                RejectKind::MissingField,
            ),
            (
                DOC_LINE.replace("\"text/html\"", "\"text/html"),
                12,
                RejectKind::UnclosedQuote,
            ),
            (
                DOC_LINE.replace("192.0.2.10 -", "192.0.2.10  -"),
                3,
                RejectKind::EmptyField,
            ),
            (
                "[9/Jun/2015:01:58:09 +0800]".to_string(),
                2,
                RejectKind::MissingField,
            ),
            (DOC_LINE.replace("] ", "]x"), 1, RejectKind::BadSeparator),
        ];
        for (line, field, kind) in cases {
            let e = parse_line(&line).unwrap_err();
            assert_eq!((e.field, e.kind), (field, kind), "{line}");
            assert!(e.to_string().starts_with(&format!("field {field} (")));
        }
        assert!(parse_line("").is_err());
    }

    #[test]
    fn empty_time_is_rejected_even_first_in_a_block() {
        let mut p = LineParser::default();
        let e = p
            .parse(&DOC_LINE.replace("9/Jun/2015:01:58:09 +0800", ""))
            .unwrap_err();
        assert_eq!((e.field, e.kind), (1, RejectKind::BadTime));
        // The cache serves a repeated time, and only an identical one.
        assert!(p.parse(DOC_LINE).is_ok());
        let utc = DOC_LINE.replace("+0800", "+0000");
        let l = p.parse(&utc).unwrap();
        assert_eq!(l.time_micros, 1_433_786_289_000_000 + 8 * 3_600_000_000);
        assert_eq!(
            LineError {
                field: 0,
                kind: RejectKind::TooLong
            }
            .field_name(),
            "line"
        );
    }
}
