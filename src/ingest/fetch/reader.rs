//! A download as a blocking, resumable [`Read`].
//!
//! When the server gives `x-oss-hash-crc64ecma` (OSS's CRC-64 of the whole object, in decimal),
//! the CRC-64 of every byte received, across resumes, must equal it at the end of the body, or
//! the read fails like a size mismatch: the bytes went to the raw dump and the decoder already,
//! so a corrupted download must end the run, not complete it.

use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crc_fast::{CrcAlgorithm, Digest};
use reqwest::header::{
    HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE,
};
use reqwest::{StatusCode, Url};
use tokio::runtime::Handle;

use super::allow::{check_url, AllowList};
use super::client::{describe, HttpOptions};
use crate::error::{Error, ReadFailure, Result};
use crate::event::redact::redact_url;

/// OSS's checksum of the whole object: CRC-64/XZ (ECMA-182 polynomial, reflected, init and
/// xorout all ones), as an unsigned decimal.
const OSS_CRC64: &str = "x-oss-hash-crc64ecma";

/// A CRC-64 as OSS computes it for `x-oss-hash-crc64ecma`.
fn crc64() -> Digest {
    Digest::new(CrcAlgorithm::Crc64Xz)
}

/// The checksum a response announces, when it announces a readable one. An unreadable value is
/// logged and not checked: it says nothing about the bytes.
fn announced_crc(h: &HeaderMap, shown: &str) -> Option<u64> {
    let v = h.get(OSS_CRC64)?;
    let parsed = v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok());
    if parsed.is_none() {
        tracing::warn!(url = %shown, value = ?v, "{OSS_CRC64} is not a decimal number; not checked");
    }
    parsed
}

/// What identifies the object, to detect a change between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Validator {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

impl Validator {
    fn of(h: &HeaderMap) -> Validator {
        Validator {
            etag: h.get(ETAG).cloned(),
            last_modified: h.get(LAST_MODIFIED).cloned(),
        }
    }

    /// Whether `resumed` (a 206) continues the object this validator (of the first response)
    /// describes. A validator the first response gave but the 206 lacks is a mismatch: the
    /// resumed bytes could come from another version of the object (another server, a
    /// replaced file) and nothing would show it.
    fn matches(&self, resumed: &Validator) -> bool {
        let same = |first: &Option<HeaderValue>, resumed: &Option<HeaderValue>| match first {
            Some(a) => resumed.as_ref() == Some(a),
            None => true,
        };
        same(&self.etag, &resumed.etag) && same(&self.last_modified, &resumed.last_modified)
    }

    /// The value of `If-Range` for a resumed request: the ETag when it is strong (a weak one is
    /// not allowed there), else `Last-Modified`. With it a server whose object changed answers
    /// 200 with the whole new object instead of a 206 of it, which is refused.
    fn if_range(&self) -> Option<&HeaderValue> {
        self.etag
            .as_ref()
            .filter(|e| !e.as_bytes().starts_with(b"W/"))
            .or(self.last_modified.as_ref())
    }
}

/// Why an attempt failed.
enum Failure {
    /// Worth another attempt (resumed from the last byte received).
    Transient(String),
    /// Retrying would not help or would be unsafe.
    Fatal(Error),
}

/// A blocking reader over an HTTP GET, resuming after transient failures.
pub struct HttpReader {
    rt: Handle,
    client: reqwest::Client,
    url: Url,
    /// The URL without its query, for messages.
    shown: String,
    opts: HttpOptions,
    expected: Option<u64>,
    response: Option<reqwest::Response>,
    chunk: Bytes,
    received: u64,
    /// Total size from the first response (`Content-Length`), when given.
    total: Option<u64>,
    validator: Option<Validator>,
    /// `x-oss-hash-crc64ecma` of the first response, checked at the end of the body.
    crc_expected: Option<u64>,
    /// CRC-64 of every byte received so far, across resumes.
    crc: Digest,
    /// Consecutive failures since the last progress.
    failures: u32,
    /// Every retry, capped by [`HttpOptions::max_retries`]; shared so that the caller can put
    /// it in its report after the reader was consumed (see [`HttpReader::with_retry_counter`]).
    retries: Arc<AtomicU32>,
    done: bool,
    /// When the download started, for its overall deadline ([`HttpOptions::deadline`]).
    started: std::time::Instant,
}

impl HttpReader {
    /// Prepares a download of `url`; checks it against `allow` now, before any connection.
    /// `expected` is the size the event announced (`fileSize`), checked at the end.
    pub fn new(
        rt: Handle,
        client: reqwest::Client,
        url: &str,
        allow: &AllowList,
        expected: Option<u64>,
        opts: HttpOptions,
    ) -> Result<HttpReader> {
        let url = check_url(url, allow)?;
        Ok(HttpReader {
            rt,
            client,
            shown: redact_url(url.as_str()),
            url,
            opts,
            expected,
            response: None,
            chunk: Bytes::new(),
            received: 0,
            total: None,
            validator: None,
            crc_expected: None,
            crc: crc64(),
            failures: 0,
            retries: Arc::new(AtomicU32::new(0)),
            done: false,
            started: std::time::Instant::now(),
        })
    }

    /// A failure that another attempt would meet again.
    fn error(&self, reason: String) -> Error {
        Error::Http {
            url: self.shown.clone(),
            reason,
            retryable: false,
        }
    }

    /// Transient failures that outlasted the retry budget: worth trying again later.
    fn gave_up(&self, reason: String) -> Error {
        Error::Http {
            url: self.shown.clone(),
            reason,
            retryable: true,
        }
    }

    /// Sends the request (ranged after the first bytes) and checks the response. `None`: the
    /// server says there is nothing after the bytes already received (see
    /// [`HttpReader::range_past_end`]).
    async fn open(&self) -> std::result::Result<Option<reqwest::Response>, Failure> {
        let mut req = self.client.get(self.url.clone());
        if self.received > 0 {
            req = req.header(RANGE, format!("bytes={}-", self.received));
            if let Some(v) = self.validator.as_ref().and_then(Validator::if_range) {
                req = req.header(IF_RANGE, v.clone());
            }
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_redirect() {
                Failure::Fatal(Error::Refused {
                    url: self.shown.clone(),
                    reason: describe(e),
                })
            } else {
                Failure::Transient(describe(e))
            }
        })?;
        let status = resp.status();
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            return Err(Failure::Transient(format!("HTTP {status}")));
        }
        if status.is_redirection() {
            return Err(Failure::Fatal(Error::Refused {
                url: self.shown.clone(),
                reason: format!("HTTP {status} redirect not followed"),
            }));
        }
        let validator = Validator::of(resp.headers());
        if self.received == 0 {
            if status != StatusCode::OK {
                return Err(Failure::Fatal(self.error(format!("HTTP {status}"))));
            }
            return Ok(Some(resp));
        }
        // A resumed request must continue the same object where we stopped.
        if status == StatusCode::OK {
            return Err(Failure::Fatal(self.error(format!(
                "the server sent the whole object again after {} bytes (HTTP 200: the Range was ignored, or the object changed and failed If-Range); cannot resume without restarting",
                self.received
            ))));
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            return self.range_past_end(&resp).map(|()| None);
        }
        if status != StatusCode::PARTIAL_CONTENT {
            return Err(Failure::Fatal(self.error(format!(
                "HTTP {status} when resuming at byte {}",
                self.received
            ))));
        }
        let range = resp
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_content_range);
        let Some((start, total)) = range else {
            return Err(Failure::Fatal(
                self.error("206 response without a valid Content-Range".into()),
            ));
        };
        if start != self.received {
            return Err(Failure::Fatal(self.error(format!(
                "resumed at byte {start} instead of {} (Content-Range)",
                self.received
            ))));
        }
        if let (Some(a), Some(b)) = (self.total, total) {
            if a != b {
                return Err(Failure::Fatal(self.error(format!(
                    "object changed while downloading: size {a} became {b}"
                ))));
            }
        }
        if let Some(v) = &self.validator {
            if !v.matches(&validator) {
                return Err(Failure::Fatal(self.error(
                    "object changed while downloading (ETag/Last-Modified differ)".into(),
                )));
            }
        }
        // OSS sends the whole object's checksum with a 206 too: another one is another object.
        if let (Some(first), Some(now)) = (
            self.crc_expected,
            announced_crc(resp.headers(), &self.shown),
        ) {
            if first != now {
                return Err(Failure::Fatal(self.error(format!(
                    "object changed while downloading ({OSS_CRC64} {first} became {now})"
                ))));
            }
        }
        Ok(Some(resp))
    }

    /// A 416 to `Range: bytes=N-`. When the connection broke after the last byte but before the
    /// body's end was signalled (a chunked body cut before its terminating chunk), every byte is
    /// already here and the resumed range starts past the end: the server answers 416 with
    /// `Content-Range: bytes */N`. N equal to the bytes received means the body is complete; any
    /// other N (or none) means we do not know what we have, and the read fails.
    fn range_past_end(&self, resp: &reqwest::Response) -> std::result::Result<(), Failure> {
        let total = resp
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("bytes */"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        let announced = self.total.or(self.expected);
        match total {
            Some(n) if n == self.received && announced.is_none_or(|t| t == n) => Ok(()),
            Some(n) if n == self.received => Err(Failure::Fatal(self.error(format!(
                "the object has {n} bytes, not the {} announced",
                announced.unwrap_or_default()
            )))),
            Some(n) => Err(Failure::Fatal(self.error(format!(
                "HTTP 416 when resuming at byte {}: the object has {n} bytes",
                self.received
            )))),
            None => Err(Failure::Fatal(self.error(format!(
                "HTTP 416 without a Content-Range total when resuming at byte {}",
                self.received
            )))),
        }
    }

    /// Gets the next non-empty chunk, or `None` at the verified end of the body.
    fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let deadline = self.opts.deadline(self.total.or(self.expected));
            if self.started.elapsed() > deadline {
                return Err(self.gave_up(format!(
                    "not done after {} s, the deadline for {} at {} KiB/s at least ({} bytes received)",
                    deadline.as_secs(),
                    self.total
                        .or(self.expected)
                        .map_or("a file of unknown size".to_string(), |n| format!("{n} bytes")),
                    self.opts.min_rate / 1024,
                    self.received
                )));
            }
            if self.done {
                return Ok(None);
            }
            let outcome = match self.response.as_mut() {
                None => {
                    let opened = self.rt.block_on(self.open());
                    match opened {
                        // Nothing after what was received: the end of the body.
                        Ok(None) => Ok(None),
                        Ok(Some(resp)) => {
                            if self.received == 0 {
                                self.total = resp
                                    .headers()
                                    .get(CONTENT_LENGTH)
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse().ok());
                                self.validator = Some(Validator::of(resp.headers()));
                                self.crc_expected = announced_crc(resp.headers(), &self.shown);
                                if let (Some(t), Some(e)) = (self.total, self.expected) {
                                    if t != e {
                                        return Err(self.error(format!(
                                            "Content-Length {t} differs from the announced fileSize {e}"
                                        )));
                                    }
                                }
                            }
                            self.response = Some(resp);
                            continue;
                        }
                        Err(f) => Err(f),
                    }
                }
                Some(resp) => match self.rt.block_on(resp.chunk()) {
                    Ok(Some(b)) => Ok(Some(b)),
                    Ok(None) => Ok(None),
                    Err(e) => Err(Failure::Transient(describe(e))),
                },
            };
            match outcome {
                Ok(Some(b)) if b.is_empty() => continue,
                Ok(Some(b)) => {
                    self.received += b.len() as u64;
                    self.crc.update(&b);
                    self.failures = 0;
                    if let Some(t) = self.total.or(self.expected) {
                        if self.received > t {
                            return Err(self.error(format!(
                                "received {} bytes, more than the {t} announced",
                                self.received
                            )));
                        }
                    }
                    return Ok(Some(b));
                }
                Ok(None) => {
                    self.response = None;
                    let want = self.total.or(self.expected);
                    match want {
                        Some(t) if self.received < t => {
                            self.retry(format!("body ended after {} of {t} bytes", self.received))?;
                        }
                        _ => return self.finish(),
                    }
                }
                // Every announced byte is here: the failure hit only the end-of-body signal
                // (e.g. the terminating chunk), so there is nothing left to resume.
                Err(Failure::Transient(reason))
                    if self.total.or(self.expected) == Some(self.received) =>
                {
                    tracing::debug!(url = %self.shown, received = self.received, %reason, "connection failed after the last byte; body complete");
                    self.response = None;
                    return self.finish();
                }
                Err(Failure::Transient(reason)) => {
                    self.response = None;
                    self.retry(reason)?;
                }
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }

    /// The end of the body: checks the size the event announced and the server's checksum.
    fn finish(&mut self) -> Result<Option<Bytes>> {
        if let Some(e) = self.expected {
            if self.received != e {
                return Err(self.error(format!(
                    "received {} bytes but the event announced fileSize {e}",
                    self.received
                )));
            }
        }
        if let Some(want) = self.crc_expected {
            let got = self.crc.finalize();
            if got != want {
                return Err(self.error(format!(
                    "the {} bytes received have CRC-64 {got}, not the {want} of the server's {OSS_CRC64}: the download is corrupt",
                    self.received
                )));
            }
        }
        self.done = true;
        Ok(None)
    }

    /// Waits before the next attempt, or gives up after too many failures without progress or
    /// too many retries in all.
    fn retry(&mut self, reason: String) -> Result<()> {
        self.failures += 1;
        if self.failures >= self.opts.max_attempts {
            return Err(self.gave_up(format!(
                "{reason} (gave up after {} attempts)",
                self.failures
            )));
        }
        let retries = self.retries.fetch_add(1, Ordering::Relaxed) + 1;
        if retries > self.opts.max_retries {
            return Err(self.gave_up(format!(
                "{reason} (gave up after {} retries in all, the limit, at byte {})",
                self.opts.max_retries, self.received
            )));
        }
        let wait = self
            .opts
            .backoff
            .saturating_mul(1u32 << (self.failures - 1).min(16))
            .min(self.opts.max_backoff);
        tracing::warn!(url = %self.shown, received = self.received, attempt = self.failures, ?wait, %reason, "download interrupted, retrying");
        std::thread::sleep(wait);
        Ok(())
    }

    /// Counts retries into `counter`, which the caller keeps: the pipeline consumes the reader,
    /// and the count belongs in the report whether the run succeeds or not.
    pub(crate) fn with_retry_counter(mut self, counter: Arc<AtomicU32>) -> HttpReader {
        self.retries = counter;
        self
    }

    /// Retries so far.
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

impl Read for HttpReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.chunk.is_empty() {
            match self.next_chunk() {
                Ok(Some(b)) => self.chunk = b,
                Ok(None) => return Ok(0),
                // The pipeline reports this as a read failure of the (redacted) URL, so only the
                // reason goes here: the URL once per message, not twice.
                Err(Error::Http {
                    reason, retryable, ..
                }) => return Err(std::io::Error::other(ReadFailure { reason, retryable })),
                Err(e) => {
                    return Err(std::io::Error::other(ReadFailure {
                        reason: e.to_string(),
                        retryable: e.is_retryable(),
                    }))
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`) → (START, TOTAL).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((start.trim().parse().ok()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        let v = |etag: Option<&'static str>, lm: Option<&'static str>| Validator {
            etag: etag.map(HeaderValue::from_static),
            last_modified: lm.map(HeaderValue::from_static),
        };
        let first = v(Some("\"a\""), Some("Mon, 01 Jan 2024 00:00:00 GMT"));
        assert!(first.matches(&first.clone()));
        // Missing from the 206 while the first response had it: not the same object.
        assert!(!first.matches(&v(None, Some("Mon, 01 Jan 2024 00:00:00 GMT"))));
        assert!(!first.matches(&v(Some("\"a\""), None)));
        assert!(!first.matches(&v(Some("\"b\""), Some("Mon, 01 Jan 2024 00:00:00 GMT"))));
        // Given only by the 206: nothing to compare with.
        assert!(v(None, None).matches(&first));
        assert_eq!(first.if_range(), first.etag.as_ref());
        let weak = v(Some("W/\"a\""), Some("Mon, 01 Jan 2024 00:00:00 GMT"));
        assert_eq!(weak.if_range(), weak.last_modified.as_ref());
        assert_eq!(v(Some("W/\"a\""), None).if_range(), None);
    }

    /// CRC-64/XZ's published check value (the CRC of the ASCII digits `123456789`, in the
    /// catalogue of parametrised CRC algorithms, reveng.sourceforge.io/crc-catalogue) and
    /// one computed in pieces, as chunks arrive.
    #[test]
    fn crc64_is_oss_crc64ecma() {
        let mut d = crc64();
        d.update(b"123456789");
        assert_eq!(d.finalize(), 0x995D_C9BB_DF19_39FA);
        let mut parts = crc64();
        for piece in [&b"1234"[..], b"", b"56789"] {
            parts.update(piece);
        }
        assert_eq!(parts.finalize(), d.finalize());
        assert_eq!(crc64().finalize(), 0);
        let h = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(OSS_CRC64, HeaderValue::from_static(v));
            h
        };
        assert_eq!(
            announced_crc(&h("11051210869376104954"), "u"),
            Some(0x995D_C9BB_DF19_39FA)
        );
        assert_eq!(announced_crc(&h("0x12"), "u"), None);
        assert_eq!(announced_crc(&HeaderMap::new(), "u"), None);
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
