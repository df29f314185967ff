//! Redaction of signed URLs: a log's `filePath` carries `OSSAccessKeyId`, `Signature` and
//! `Expires` in its query, which must never reach a log line, an error or the lake. Used by the
//! event archive and by the fetcher alike, so it sits below both.

use serde_json::Value;

pub(crate) fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// Whether `s` is a URL without a scheme, as the CDN API gives `LogPath`
/// (`cdnlog.cn-hangzhou.oss.aliyun-inc.com/www.a.com/2024_03_05/x.gz?OSSAccessKeyId=...`): an
/// authority (`[user[:password]@]host[:port]`, the host a dotted name or an IPv4 address)
/// followed by `/`. A relative path (`logs/x.gz`), an e-mail address, `file:/etc/passwd` or
/// `mailto:a@b.c` is not one: its first segment is no host, or nothing follows it.
pub(crate) fn is_scheme_less_url(s: &str) -> bool {
    // `https://h/...` fails below too: its first segment, `https:`, has an empty port.
    let Some(slash) = s.find('/') else {
        return false;
    };
    let authority = &s[..slash];
    if authority.contains(['?', '#']) {
        return false;
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host_port, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    port_ok && host.contains('.') && host.split('.').all(label_ok)
}

/// A URL safe to log or store: the query (`OSSAccessKeyId`, `Signature`, `Expires`,
/// `security-token`), the fragment and any `user:password@` are removed. A scheme-less URL
/// ([`is_scheme_less_url`]) loses the same parts and stays scheme-less.
pub(crate) fn redact_url(url: &str) -> String {
    let base = strip_query(url);
    let without_userinfo = |rest: &str| {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        format!("{host}{path}")
    };
    let redacted = match base.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", without_userinfo(rest)),
        None if is_scheme_less_url(base) => without_userinfo(base),
        None => base.to_string(),
    };
    if base.len() < url.len() {
        format!("{redacted}?<redacted>")
    } else {
        redacted
    }
}

/// Every string that looks like a URL (`scheme://...`, or scheme-less `host/path...`) with a
/// query or credentials is redacted, wherever it is (unknown events may carry signed URLs under
/// other names, and a `filePath` may come without its scheme).
pub(crate) fn redact_value(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("://") || is_scheme_less_url(s) => {
            Value::String(redact_url(s))
        }
        Value::Array(a) => Value::Array(a.iter().map(redact_value).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), redact_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_credentials_go() {
        assert_eq!(
            redact_url("https://u:p@h.com/a/b.gz?Signature=x#f"),
            "https://h.com/a/b.gz?<redacted>"
        );
        assert_eq!(redact_url("http://h.com/a.gz"), "http://h.com/a.gz");
        let v = serde_json::json!({"a": ["http://h/x?Signature=s"], "b": 1});
        assert_eq!(
            redact_value(&v),
            serde_json::json!({"a": ["http://h/x?<redacted>"], "b": 1})
        );
    }

    /// `LogPath` as the CDN API returns it, without a scheme.
    const SCHEME_LESS: &str = "cdnlog.cn-hangzhou.oss.aliyun-inc.com/www.a.com/2024_03_05/www.a.com_2024_03_05_0800_0900.gz?OSSAccessKeyId=AK&Expires=1&Signature=SECRET";

    #[test]
    fn scheme_less_urls_are_recognised() {
        for yes in [
            SCHEME_LESS,
            "x.aliyuncs.com/a.gz",
            "x.aliyuncs.com:8443/a.gz",
            "127.0.0.1:8080/a.gz",
            "u:p@x.aliyuncs.com/a.gz",
            "x.aliyuncs.com/a.gz?next=http://evil.com/",
        ] {
            assert!(is_scheme_less_url(yes), "{yes}");
        }
        for no in [
            "https://x.aliyuncs.com/a.gz",
            "file:///etc/passwd",
            "file:/etc/passwd",
            "mailto:ops@example.com",
            "ops@example.com",
            "logs/x.gz",
            "/abs/x.gz",
            "//x.aliyuncs.com/a.gz",
            "x.aliyuncs.com",
            "x.aliyuncs.com:/a.gz",
            "x.aliyuncs.com:http/a.gz",
            "-x.com/a",
            "x..com/a",
            "x.com?q=/a",
            "[::1]/a",
            "",
        ] {
            assert!(!is_scheme_less_url(no), "{no}");
        }
    }

    #[test]
    fn scheme_less_urls_lose_their_query_and_credentials() {
        assert_eq!(
            redact_url(SCHEME_LESS),
            "cdnlog.cn-hangzhou.oss.aliyun-inc.com/www.a.com/2024_03_05/www.a.com_2024_03_05_0800_0900.gz?<redacted>"
        );
        assert_eq!(
            redact_url("u:pw@x.aliyuncs.com/a.gz"),
            "x.aliyuncs.com/a.gz"
        );
        // Anything else without a scheme is left as it is.
        assert_eq!(redact_url("ops@example.com"), "ops@example.com");
        let v = serde_json::json!({"filePath": SCHEME_LESS, "mail": "ops@example.com", "objectPath": ["/a/b.jpg"]});
        let red = redact_value(&v);
        let text = red.to_string();
        assert!(
            !text.contains("SECRET") && !text.contains("OSSAccessKeyId"),
            "{text}"
        );
        assert_eq!(red["mail"], "ops@example.com");
        assert_eq!(red["objectPath"][0], "/a/b.jpg");
    }
}
