//! Calling an Alibaba Cloud API over HTTP: every request signed with [`acs3`](super::acs3), the
//! service's error document turned into one line ([`Error::Api`]), and the failures that pass
//! (throttling, 5xx, a dropped connection) retried with backoff, each attempt signed afresh (a
//! new date and nonce: the service refuses a replayed nonce).
//!
//! Both APIs cdnlake calls speak this: the CDN OpenAPI (RPC style, parameters in the query) and
//! Function Compute 3.0 (ROA style, a path and a body).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use sha2::{Digest, Sha256};

use super::acs3::{self, Credentials};
use crate::error::{Error, Result};

/// How failures that may pass are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts over about 7.5 s: the CDN API's throttle is per second (100 calls/s per
    /// account), so a throttled call passes within a few seconds; longer outages are reported.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
        }
    }
}

/// One API operation to call. Names and values as meant, not percent-encoded.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub action: &'a str,
    pub version: &'a str,
    pub content_type: Option<&'a str>,
    /// Further headers (e.g. `x-fc-invocation-type`); `x-acs-*` ones are signed.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// A reply the caller accepted (see [`ApiClient::call`]).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

/// A signed-request client for one endpoint and one set of credentials.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    /// `scheme://host[:port]`, no path.
    origin: Url,
    /// What the `host` header (and the signature) says: the host, with `:port` when the URL
    /// names one that is not the scheme's default.
    host: String,
    creds: Credentials,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("origin", &self.origin.as_str())
            .field("creds", &self.creds)
            .finish()
    }
}

impl ApiClient {
    /// A client for `endpoint`: `https://cdn.aliyuncs.com`, `cdn.aliyuncs.com` (https implied),
    /// or `http://127.0.0.1:8080` for a stand-in. A path in the URL is refused: operations
    /// name their own.
    pub fn new(endpoint: &str, creds: Credentials) -> Result<ApiClient> {
        let bad = |reason: String| Error::Config {
            setting: "API endpoint",
            value: endpoint.to_string(),
            reason,
        };
        let with_scheme = if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("https://{endpoint}")
        };
        let origin = Url::parse(&with_scheme).map_err(|e| bad(e.to_string()))?;
        if !matches!(origin.scheme(), "http" | "https") {
            return Err(bad("only http:// and https:// endpoints".into()));
        }
        if !matches!(origin.path(), "" | "/") || origin.query().is_some() {
            return Err(bad(
                "an endpoint is scheme://host[:port], without a path".into()
            ));
        }
        let host = match (origin.host_str(), origin.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(bad("no host".into())),
        };
        crate::tls::ensure_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cdnlake/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(ApiClient {
            http,
            origin,
            host,
            creds,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> ApiClient {
        self.retry = retry;
        self
    }

    /// The endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        self.origin.as_str().trim_end_matches('/')
    }

    /// Calls the operation until a reply `accept`s its status, or a failure that will not pass,
    /// or the attempts run out. A 2xx is always accepted; `accept` can take more (FC's 409 for
    /// a task id already submitted).
    pub async fn call(&self, call: &Call<'_>, accept: impl Fn(u16) -> bool) -> Result<Reply> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.once(call).await {
                Ok(reply) if (200..300).contains(&reply.status) || accept(reply.status) => {
                    return Ok(reply)
                }
                Ok(reply) => service_failure(&reply),
                Err(reason) => Failure {
                    reason,
                    retryable: true,
                },
            };
            if !failure.retryable || attempt >= self.retry.attempts {
                let reason = if failure.retryable && attempt > 1 {
                    format!("{} (gave up after {attempt} attempts)", failure.reason)
                } else {
                    failure.reason
                };
                return Err(Error::Api {
                    action: call.action.to_string(),
                    endpoint: self.endpoint().to_string(),
                    reason,
                    retryable: failure.retryable,
                });
            }
            let wait = self
                .retry
                .backoff
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(self.retry.max_backoff);
            tracing::warn!(action = call.action, attempt, reason = %failure.reason, wait_ms = wait.as_millis() as u64, "API call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// One signed attempt. `Err` is a transport failure (no reply), as one line.
    async fn once(&self, call: &Call<'_>) -> Result<Reply, String> {
        let date = acs3::acs_date(chrono::Utc::now());
        let nonce = nonce();
        let signed = acs3::sign(
            &acs3::Request {
                method: call.method,
                host: &self.host,
                path: call.path,
                query: call.query,
                action: call.action,
                version: call.version,
                date: &date,
                nonce: &nonce,
                content_type: call.content_type,
                extra_headers: call.headers,
                body: call.body,
            },
            &self.creds,
        )
        .map_err(|e| e.to_string())?;
        let url = self
            .origin
            .join(&signed.path_and_query)
            .map_err(|e| format!("request URL: {e}"))?;
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|e| format!("method {}: {e}", call.method))?;
        let mut req = self.http.request(method, url);
        for (name, value) in &signed.headers {
            // reqwest writes `host` from the URL, the same value the signature covers.
            if name != "host" {
                req = req.header(name.as_str(), value.as_str());
            }
        }
        let resp = req
            .body(call.body.to_vec())
            .send()
            .await
            .map_err(crate::error::http_error_line)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(crate::error::http_error_line)?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// A unique `x-acs-signature-nonce`: the service refuses a nonce it has seen (replay
/// protection), so it must differ for every attempt, across processes too.
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_le_bytes());
    hex::encode(&h.finalize()[..16])
}

struct Failure {
    reason: String,
    retryable: bool,
}

/// What a non-accepted reply means: the service's error code and message when the body is its
/// JSON error document (`{"Code", "Message", "RequestId"}`), else the status and the start of
/// the body.
fn service_failure(reply: &Reply) -> Failure {
    let doc = ServiceError::parse(&reply.body);
    let request_id = doc
        .request_id
        .clone()
        .or_else(|| header(&reply.headers, "x-acs-request-id"))
        .or_else(|| header(&reply.headers, "x-fc-request-id"));
    let mut reason = format!("HTTP {}", reply.status);
    match (&doc.code, &doc.message) {
        (Some(c), Some(m)) => reason.push_str(&format!(" {c}: {m}")),
        (Some(c), None) => reason.push_str(&format!(" {c}")),
        (None, Some(m)) => reason.push_str(&format!(": {m}")),
        (None, None) => {
            let text = String::from_utf8_lossy(&reply.body);
            let text = crate::error::one_line(text.trim());
            if !text.is_empty() {
                let cut: String = text.chars().take(200).collect();
                reason.push_str(&format!(": {cut}"));
            }
        }
    }
    if let Some(id) = request_id {
        reason.push_str(&format!(" (RequestId {id})"));
    }
    Failure {
        reason: crate::error::one_line(&reason),
        retryable: is_retryable(reply.status, doc.code.as_deref().unwrap_or("")),
    }
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether an error reply may pass when the call is repeated: throttling (`Throttling`,
/// `Throttling.User`, `Throttling.Api`, HTTP 429), the service being busy or failing (5xx,
/// `ServiceUnavailable`, `InternalError`). A bad signature, an unknown domain or key, a refused
/// permission stay as they are until someone changes something.
pub fn is_retryable(status: u16, code: &str) -> bool {
    status == 429
        || status >= 500
        || code.starts_with("Throttling")
        || matches!(
            code,
            "ServiceUnavailable" | "InternalError" | "TooManyRequests" | "ResourceThrottled"
        )
}

/// The error document of Alibaba Cloud APIs. CDN (RPC style) writes `Code`/`Message`/
/// `RequestId`; FC 3.0 the same names; some gateways lower-case them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ServiceError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

impl ServiceError {
    /// Reads what it can; a body that is not such a document gives an empty one.
    pub fn parse(body: &[u8]) -> ServiceError {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
            return ServiceError::default();
        };
        let get = |names: &[&str]| {
            names.iter().find_map(|n| {
                map.get(*n)
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            })
        };
        ServiceError {
            code: get(&["Code", "code", "ErrorCode"]),
            message: get(&["Message", "message", "ErrorMessage"]),
            request_id: get(&["RequestId", "requestId"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_and_what_may_pass() {
        let d = ServiceError::parse(
            br#"{"RequestId":"R-1","HostId":"cdn.aliyuncs.com","Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#,
        );
        assert_eq!(d.code.as_deref(), Some("Throttling.User"));
        assert_eq!(d.request_id.as_deref(), Some("R-1"));
        assert!(is_retryable(400, "Throttling.User"));
        assert!(is_retryable(503, ""));
        assert!(is_retryable(429, ""));
        assert!(!is_retryable(400, "SignatureDoesNotMatch"));
        assert!(!is_retryable(404, "InvalidDomain.NotFound"));
        assert!(!is_retryable(403, "Forbidden.RAM"));
        assert_eq!(ServiceError::parse(b"<html>"), ServiceError::default());
    }

    #[test]
    fn endpoints() {
        let creds = Credentials {
            access_key_id: "AK".into(),
            access_key_secret: "S".into(),
            security_token: None,
        };
        let c = ApiClient::new("cdn.aliyuncs.com", creds.clone()).unwrap();
        assert_eq!(
            (c.endpoint(), c.host.as_str()),
            ("https://cdn.aliyuncs.com", "cdn.aliyuncs.com")
        );
        let c = ApiClient::new("http://127.0.0.1:8080", creds.clone()).unwrap();
        assert_eq!(c.host, "127.0.0.1:8080");
        let c = ApiClient::new("https://cdn.aliyuncs.com:443/", creds.clone()).unwrap();
        assert_eq!(c.host, "cdn.aliyuncs.com");
        assert!(ApiClient::new("https://x.com/path", creds.clone()).is_err());
        assert!(ApiClient::new("ftp://x.com", creds).is_err());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }
}
