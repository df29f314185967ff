//! The HTTP client of log downloads and its retry and timeout policy.

use std::time::Duration;

use reqwest::Url;

use crate::error::{Error, Result};

/// Retry and timeout settings of a download.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Consecutive failed attempts (without progress) before giving up.
    pub max_attempts: u32,
    /// Retries of one download in all, progress or not. Progress resets the count of
    /// consecutive failures, so without this bound a server that sends a byte and drops would
    /// be retried once per byte of the file; 10 covers real interruptions of a log of a few
    /// hundred MB and ends such a server in seconds.
    pub max_retries: u32,
    /// First backoff; doubles after each failure, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a body.
    pub read_timeout: Duration,
    /// The whole download must end within `deadline_base` plus its size at `min_rate` bytes
    /// per second: a server sending one byte just inside every read timeout would otherwise
    /// hold the invocation until FC's own timeout, and then nothing would say why.
    pub deadline_base: Duration,
    pub min_rate: u64,
    /// The deadline when no size is known (no `fileSize`, no `Content-Length`).
    pub deadline_unknown_size: Duration,
}

impl HttpOptions {
    /// The overall deadline of a download of `size` bytes (when known).
    pub fn deadline(&self, size: Option<u64>) -> Duration {
        match size {
            Some(n) => self
                .deadline_base
                .saturating_add(Duration::from_secs(n / self.min_rate.max(1))),
            None => self.deadline_unknown_size,
        }
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_attempts: 6,
            max_retries: 10,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            // 460 MB: 2 + 29 minutes, inside FC's 60-minute timeout of deploy/s.yaml.
            deadline_base: Duration::from_secs(120),
            min_rate: 256 * 1024,
            deadline_unknown_size: Duration::from_secs(3600),
        }
    }
}

/// Same scheme, host and port (the scheme's default when not written). The allow-list names hosts
/// only, so a redirect that kept the host but changed the port (`x.aliyuncs.com:6379`) or
/// downgraded `https` to `http` would reach a service or a channel nobody allowed.
pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// An HTTP client for log downloads: redirects only to the same origin, timeouts set, no
/// automatic decompression (the raw dump must get the bytes as delivered).
pub fn client(opts: &HttpOptions) -> Result<reqwest::Client> {
    crate::tls::ensure_provider();
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else if !same {
            attempt.error("redirect to another origin (scheme, host or port) refused")
        } else if !matches!(attempt.url().scheme(), "http" | "https") {
            attempt.error("redirect to a scheme other than http/https refused")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .user_agent(concat!("cdnlake/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config {
            setting: "HTTP client",
            value: String::new(),
            reason: describe(e),
        })
}

/// A reqwest error as one line, without the URL (it may carry the signature).
pub(super) fn describe(e: reqwest::Error) -> String {
    crate::error::http_error_line(e)
}
