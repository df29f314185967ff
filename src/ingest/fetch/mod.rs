//! Fetching a log over HTTP as a blocking [`Read`], for the synchronous pipeline.
//!
//! The body is streamed chunk by chunk from reqwest (async, driven on a tokio runtime through a
//! [`Handle`]); nothing holds the whole file. Transient failures (connection errors, timeouts,
//! 5xx/429/408, a body cut short) are retried with exponential backoff and resumed with
//! `Range: bytes=N-` from the last byte received, at most [`HttpOptions::max_retries`] times in
//! all (10 by default) so that a server dropping every connection after a few bytes ends the run
//! instead of being retried once per byte. A resumed response must continue the same
//! object: it must be a 206 whose `Content-Range` starts at N with the same total, and its
//! `ETag`/`Last-Modified` must match the first response's when those were given. Anything else
//! fails the read: the bytes already passed on (to the raw dump and the decoder) cannot be taken
//! back, so restarting silently is not an option.
//!
//! A connection can also break after the last byte but before the end of the body is signalled
//! (a chunked body without its terminating chunk). Then nothing is missing: when the received
//! count equals the announced size the body is complete, and when no size was announced the
//! resume's `416` with `Content-Range: bytes */N`, N being the count received, says so.
//!
//! Before any connection the URL is checked: `http`/`https` only, no credentials in it, and a
//! host on the allow-list. Redirects are followed only to the same origin (scheme, host, port). The signed query of a
//! URL (`OSSAccessKeyId`, `Signature`, `Expires`, `security-token`) never appears in an error or a
//! log line: messages use [`redact_url`] and reqwest errors are stripped of their URL.

mod allow;
mod client;
mod reader;

pub use allow::{check_url, AllowList, DEFAULT_ALLOWED_HOSTS};
pub use client::{client, HttpOptions};
pub use reader::HttpReader;

#[cfg(test)]
mod tests {
    use super::client::same_origin;
    use super::*;
    use reqwest::Url;

    #[test]
    fn allow_list() {
        let a = AllowList::default();
        assert!(a.allows("cdnlog.cn-hangzhou.oss.aliyun-inc.com"));
        assert!(a.allows("x.aliyuncs.com"));
        assert!(a.allows("X.AliyunCS.com."));
        assert!(!a.allows("aliyuncs.com"));
        assert!(!a.allows("evilaliyuncs.com"));
        assert!(!a.allows("aliyuncs.com.evil.net"));
        assert!(!a.allows("127.0.0.1"));
        let t = AllowList::from_patterns(["127.0.0.1", "*.example.com"]).unwrap();
        assert!(t.allows("127.0.0.1"));
        assert!(!t.allows("127.0.0.2"));
        assert!(AllowList::parse("*").is_err());
        assert!(AllowList::parse("a.*.com").is_err());
        assert!(AllowList::parse(" , ").is_err());
    }

    #[test]
    fn urls_are_checked_before_connecting() {
        let a = AllowList::from_patterns(["127.0.0.1", "*.aliyuncs.com"]).unwrap();
        assert!(check_url("http://127.0.0.1:8080/a.gz?Signature=s", &a).is_ok());
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
            "ftp://x.aliyuncs.com/a",
            "http://user:pw@x.aliyuncs.com/a",
            "http://evil.com/a.gz?Signature=SECRET",
            "http://[::1]/a",
            "not a url",
        ] {
            let e = check_url(bad, &a).unwrap_err().to_string();
            assert!(e.starts_with("refused"), "{bad}: {e}");
            assert!(!e.contains("SECRET") && !e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn redirects_stay_on_the_same_origin() {
        let u = |s: &str| Url::parse(s).unwrap();
        let from = u("https://x.aliyuncs.com/a");
        assert!(same_origin(&from, &u("https://x.aliyuncs.com/b?q")));
        assert!(same_origin(&from, &u("https://X.aliyuncs.com:443/b")));
        for to in [
            "http://x.aliyuncs.com:6379/",
            "https://x.aliyuncs.com:6379/",
            "http://x.aliyuncs.com/a",
            "https://y.aliyuncs.com/a",
        ] {
            assert!(!same_origin(&from, &u(to)), "{to}");
        }
    }
}
