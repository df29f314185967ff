//! Loopback stand-ins for the cloud services `cdnlake sync` talks to, each a real HTTP server:
//!
//! - [`CdnApi`]: `DescribeCdnDomainLogs`, verifying every request's ACS3-HMAC-SHA256 signature
//!   with the library's verifier (a wrong one gets Alibaba's error document), refusing stale
//!   dates and replayed nonces as the service does, paging, and throttling on demand;
//! - [`FcApi`]: FC 3.0 `InvokeFunction`, verifying the signature, recording asynchronous
//!   invocations, refusing a task id it has seen with 409.
//!
//! The CDN's log bucket is the tests' one log server, over TLS
//! ([`LogServer::start_tls`](super::logserver::LogServer::start_tls)).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const AK: &str = "LTAI5tTestAccessKey";
pub const SECRET: &str = "TestSecretOfTheLoopbackCloud";
pub const TOKEN: &str = "sts-token-of-the-test";

/// One request as the service saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// Whether the signature verified.
    pub verified: bool,
}

fn reply(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        r.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

fn alibaba_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "RequestId": "5D1A5F2C-0000-4000-8000-LOOPBACK",
        "HostId": "cdn.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": "https://api.aliyun.com/troubleshoot",
    });
    reply(
        status,
        &[("content-type", "application/json".into())],
        body.to_string(),
    )
}

/// Reads a request whole, and checks its V3 signature the way the service does: the library's
/// verifier, then the date within 15 minutes and a nonce never seen before.
async fn read_and_verify(
    req: Request<hyper::body::Incoming>,
    nonces: &Mutex<HashSet<String>>,
) -> (Seen, Result<(), Response<Full<Bytes>>>) {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let raw_query = parts.uri.query();
    let query: HashMap<String, String> =
        reqwest::Url::parse(&format!("http://x/?{}", raw_query.unwrap_or("")))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let mut seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers: headers.iter().cloned().collect(),
        body: body.clone(),
        verified: false,
    };
    let auth = seen
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    let claimed_key = auth
        .split("Credential=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("");
    if claimed_key != AK {
        let e = alibaba_error(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        );
        return (seen, Err(e));
    }
    let verified = cdnlake::cloud::acs3::verify(
        parts.method.as_str(),
        parts.uri.path(),
        raw_query,
        &pairs,
        &body,
        |k| (k == AK).then(|| SECRET.to_string()),
    );
    let v = match verified {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("Specified signature is not matched with our calculation. ({e})");
            return (seen, Err(alibaba_error(400, "SignatureDoesNotMatch", &msg)));
        }
    };
    if (Utc::now() - v.date).num_minutes().abs() > 15 {
        return (
            seen,
            Err(alibaba_error(
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            )),
        );
    }
    if !nonces.lock().unwrap().insert(v.nonce.clone()) {
        return (
            seen,
            Err(alibaba_error(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            )),
        );
    }
    if v.security_token.as_deref() != Some(TOKEN) {
        return (
            seen,
            Err(alibaba_error(
                400,
                "InvalidSecurityToken.Mismatch",
                "Specified SecurityToken mismatch.",
            )),
        );
    }
    seen.verified = true;
    (seen, Ok(()))
}

/// Serves `handler` on a loopback port until the process ends.
async fn spawn_http<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A file the CDN API lists.
#[derive(Debug, Clone)]
pub struct Listed {
    pub domain: String,
    pub name: String,
    /// `LogPath` as the API gives it (with or without a scheme).
    pub path: String,
    pub size: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Default)]
pub struct CdnState {
    pub files: Mutex<Vec<Listed>>,
    pub requests: Mutex<Vec<Seen>>,
    /// 1-based numbers of the requests to answer with `Throttling.User`.
    pub throttle: Mutex<HashSet<usize>>,
    pub throttled: AtomicUsize,
    /// Answers at most this many entries a page, whatever `PageSize` asked (and pages by it).
    pub page_cap: Mutex<Option<usize>>,
    /// Leaves `PageInfos` out of every answer, as the API may.
    pub omit_total: AtomicBool,
    /// From the second page of a listing on, the window's oldest file has expired: the list
    /// shifts by one and `Total` drops by one, as when the CDN deletes a log mid-listing.
    pub expire_mid_listing: AtomicBool,
    nonces: Mutex<HashSet<String>>,
}

pub struct CdnApi {
    pub addr: SocketAddr,
    pub state: Arc<CdnState>,
}

impl CdnApi {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn start_cdn_api() -> CdnApi {
    let state = Arc::new(CdnState::default());
    let st = state.clone();
    let addr = spawn_http(move |req| {
        let st = st.clone();
        async move { cdn_answer(&st, req).await }
    })
    .await;
    CdnApi { addr, state }
}

async fn cdn_answer(st: &CdnState, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (seen, verdict) = read_and_verify(req, &st.nonces).await;
    let number = {
        let mut r = st.requests.lock().unwrap();
        r.push(seen.clone());
        r.len()
    };
    if let Err(e) = verdict {
        return e;
    }
    if seen.headers.get("x-acs-action").map(String::as_str) != Some("DescribeCdnDomainLogs")
        || seen.headers.get("x-acs-version").map(String::as_str) != Some("2018-05-10")
        || seen.method != "GET"
        || seen.path != "/"
    {
        return alibaba_error(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        );
    }
    if st.throttle.lock().unwrap().contains(&number) {
        st.throttled.fetch_add(1, Ordering::SeqCst);
        return alibaba_error(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        );
    }
    let q = &seen.query;
    let Some(domain) = q.get("DomainName") else {
        return alibaba_error(
            400,
            "MissingDomainName",
            "DomainName is mandatory for this action.",
        );
    };
    let time = |k: &str| {
        q.get(k)
            .filter(|v| v.ends_with('Z'))
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(start), Some(end)) = (time("StartTime"), time("EndTime")) else {
        return alibaba_error(
            400,
            "InvalidStartTime.Malformed",
            "Specified StartTime or EndTime is malformed (yyyy-MM-ddTHH:mm:ssZ, UTC).",
        );
    };
    let size: usize = q
        .get("PageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let page: usize = q
        .get("PageNumber")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if !(1..=1000).contains(&size) || page == 0 {
        return alibaba_error(
            400,
            "InvalidPageSize",
            "PageSize is 1 to 1000; PageNumber from 1.",
        );
    }
    let files = st.files.lock().unwrap().clone();
    if !files.iter().any(|f| &f.domain == domain) {
        return alibaba_error(
            404,
            "InvalidDomain.NotFound",
            "The domain provided does not belong to you.",
        );
    }
    let mut matching: Vec<&Listed> = files
        .iter()
        .filter(|f| &f.domain == domain && f.start >= start && f.start < end)
        .collect();
    matching.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.name.cmp(&b.name)));
    if page > 1 && st.expire_mid_listing.load(Ordering::SeqCst) && !matching.is_empty() {
        matching.remove(0);
    }
    let total = matching.len();
    let size = st
        .page_cap
        .lock()
        .unwrap()
        .map_or(size, |cap| size.min(cap));
    let infos: Vec<serde_json::Value> = matching
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|f| {
            serde_json::json!({
                "LogName": f.name,
                "LogPath": f.path,
                "LogSize": f.size,
                "StartTime": f.start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "EndTime": f.end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            })
        })
        .collect();
    let mut detail = serde_json::json!({
        "DomainName": domain,
        "LogCount": infos.len(),
        "PageInfos": {"PageIndex": page, "PageSize": size, "Total": total},
        "LogInfos": {"LogInfoDetail": infos},
    });
    if st.omit_total.load(Ordering::SeqCst) {
        detail.as_object_mut().unwrap().remove("PageInfos");
    }
    let body = serde_json::json!({
        "RequestId": format!("REQ-{number}"),
        "DomainLogDetails": {"DomainLogDetail": [detail]}
    });
    reply(
        200,
        &[("content-type", "application/json".into())],
        body.to_string(),
    )
}

/// One invocation FC accepted.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub qualifier: Option<String>,
    pub task_id: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
pub struct FcState {
    pub invocations: Mutex<Vec<Invocation>>,
    pub requests: Mutex<Vec<Seen>>,
    pub task_ids: Mutex<HashSet<String>>,
    nonces: Mutex<HashSet<String>>,
}

pub struct FcApi {
    pub addr: SocketAddr,
    pub state: Arc<FcState>,
}

impl FcApi {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn start_fc_api() -> FcApi {
    let state = Arc::new(FcState::default());
    let st = state.clone();
    let addr = spawn_http(move |req| {
        let st = st.clone();
        async move { fc_answer(&st, req).await }
    })
    .await;
    FcApi { addr, state }
}

async fn fc_answer(st: &FcState, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (seen, verdict) = read_and_verify(req, &st.nonces).await;
    st.requests.lock().unwrap().push(seen.clone());
    if let Err(e) = verdict {
        return e;
    }
    let parts: Vec<&str> = seen.path.trim_start_matches('/').split('/').collect();
    let function = match parts.as_slice() {
        ["2023-03-30", "functions", name, "invocations"] if seen.method == "POST" => {
            name.to_string()
        }
        _ => {
            return alibaba_error(
                404,
                "PathNotSupported",
                "The requested path is not supported.",
            )
        }
    };
    if seen.headers.get("x-acs-action").map(String::as_str) != Some("InvokeFunction")
        || seen.headers.get("x-acs-version").map(String::as_str) != Some("2023-03-30")
    {
        return alibaba_error(
            400,
            "InvalidAction",
            "x-acs-action/x-acs-version do not name InvokeFunction 2023-03-30.",
        );
    }
    if seen.headers.get("x-fc-invocation-type").map(String::as_str) != Some("Async") {
        return alibaba_error(
            400,
            "InvalidArgument",
            "this stand-in only takes asynchronous invocations",
        );
    }
    let Some(task_id) = seen.headers.get("x-fc-async-task-id").cloned() else {
        return alibaba_error(
            400,
            "InvalidArgument",
            "x-fc-async-task-id is required here",
        );
    };
    if !st.task_ids.lock().unwrap().insert(task_id.clone()) {
        return alibaba_error(
            409,
            "AsyncTaskAlreadyExists",
            "The async task id already exists.",
        );
    }
    st.invocations.lock().unwrap().push(Invocation {
        function,
        qualifier: seen.query.get("qualifier").cloned(),
        task_id: task_id.clone(),
        body: seen.body.clone(),
    });
    reply(
        202,
        &[
            ("x-fc-request-id", format!("fc-{task_id}")),
            ("x-fc-async-task-id", task_id),
        ],
        Bytes::new(),
    )
}
