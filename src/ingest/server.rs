//! The Function Compute contract (docs/design.md §5): an HTTP server that FC's custom runtime calls.
//!
//! - `POST /invoke`: the body is the event JSON (strict). Success: 200, `x-fc-status: 200` and the
//!   JSON report. Failure: 404 **and** `x-fc-status: 404` with a one-line reason (FC treats an
//!   unset header as success, and retries only failures).
//! - `POST /initialize`: 200 (nothing to warm up).
//! - `FC Invoke Start RequestId: <id>` / `FC Invoke End RequestId: <id>` on stdout around each
//!   invocation, FC's log convention.
//!
//! Credentials for `oss://` come from the request headers `x-fc-access-key-id`,
//! `x-fc-access-key-secret`, `x-fc-security-token`: they are used for that request's store and
//! dropped with it, never cached or logged. The log pipeline is synchronous; it runs on the
//! blocking pool with the runtime's handle. On shutdown the server stops accepting and lets
//! in-flight invocations finish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::event::parse_strict_each;
use crate::ingest::handler::{handle_parsed, HandlerOptions};
use crate::lake::store::{Credentials, Lake, OssOptions};

/// Largest accepted invocation body. CDN events are a few KB; FC's own limit is larger.
pub const MAX_BODY: usize = 1024 * 1024;

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Destination URL.
    pub dest: String,
    pub handler: HandlerOptions,
    /// OSS endpoint/region/client settings. Its credentials, if any, are only a fallback for
    /// requests without the FC credential headers (local testing).
    pub oss: OssOptions,
    pub max_body: usize,
    /// A connection that has not sent a whole request head within this time is closed, so
    /// half-open or stalled clients cannot hold connections forever.
    pub header_read_timeout: std::time::Duration,
}

/// Default for [`ServerOptions::header_read_timeout`]: far longer than FC ever takes to send a
/// request head on loopback.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

struct State {
    opts: ServerOptions,
    /// The destination when it needs no per-request credentials (not `oss://`).
    fixed: Option<Lake>,
}

impl State {
    /// The lake for one request: `oss://` is opened with the request's credentials.
    fn lake(&self, headers: &hyper::HeaderMap) -> Result<Lake> {
        if let Some(l) = &self.fixed {
            return Ok(l.clone());
        }
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .filter(|v| !v.is_empty())
        };
        let mut oss = self.opts.oss.clone();
        if let (Some(key_id), Some(secret)) = (h("x-fc-access-key-id"), h("x-fc-access-key-secret"))
        {
            oss.credentials = Some(Credentials {
                key_id,
                secret,
                token: h("x-fc-security-token"),
            });
        }
        if oss.region.is_none() {
            oss.region = h("x-fc-region");
        }
        Lake::open_with(&self.opts.dest, &oss)
    }
}

/// Serves until `shutdown` resolves, then waits for in-flight invocations to finish.
pub async fn serve(
    listener: TcpListener,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let fixed = if opts.dest.starts_with("oss://") {
        None
    } else {
        Some(Lake::open(&opts.dest)?)
    };
    let state = Arc::new(State { opts, fixed });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let header_read_timeout = state.opts.header_read_timeout;
                let state = state.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(respond(state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight invocations");
    graceful.shutdown().await;
    Ok(())
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let fc = if status == StatusCode::OK {
        "200"
    } else {
        "404"
    };
    r.headers_mut()
        .insert("x-fc-status", HeaderValue::from_static(fc));
    r
}

/// A failure as FC wants it: 404, `x-fc-status: 404`, one line of text.
/// A failure reply: one line of reason, and `x-cdnlake-retryable` saying whether the same
/// invocation may succeed later ([`Error::is_retryable`]: the store or the network failed) or
/// will fail again until the input or the settings change.
fn failure(reason: &str, retryable: bool) -> Response<Full<Bytes>> {
    let mut line = reason.replace(['\n', '\r'], " ");
    line.push('\n');
    let mut resp = reply(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        line.into_bytes(),
    );
    resp.headers_mut().insert(
        "x-cdnlake-retryable",
        HeaderValue::from_static(if retryable { "true" } else { "false" }),
    );
    resp
}

async fn respond(state: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/initialize") => reply(StatusCode::OK, "application/json", b"{}".to_vec()),
        (&Method::POST, "/invoke") => {
            let id = req
                .headers()
                .get("x-fc-request-id")
                .and_then(|v| v.to_str().ok())
                .map(|s| {
                    s.chars()
                        .filter(|c| !c.is_control())
                        .take(128)
                        .collect::<String>()
                })
                .unwrap_or_else(|| "-".to_string());
            println!("FC Invoke Start RequestId: {id}");
            let r = invoke(&state, req).await;
            let resp = match r {
                Ok(body) => reply(StatusCode::OK, "application/json", body),
                Err(e) => {
                    tracing::error!(request_id = %id, error = %e, "invocation failed");
                    failure(&e.to_string(), e.is_retryable())
                }
            };
            println!("FC Invoke End RequestId: {id}");
            resp
        }
        (m, p) => failure(
            &format!("no route for {m} {p} (expected POST /invoke or POST /initialize)"),
            false,
        ),
    }
}

/// One invocation: bounded body, strict JSON, the handler on the blocking pool.
async fn invoke(state: &Arc<State>, req: Request<Incoming>) -> Result<Vec<u8>> {
    let max = state.opts.max_body;
    let too_large = || Error::Config {
        setting: "request body",
        value: String::new(),
        reason: format!("larger than the limit of {max} bytes"),
    };
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Error::Request {
                    reason: e.to_string(),
                }
            }
        })?
        .to_bytes();
    // Each element on its own: a malformed one is kept and fails the invocation only after the
    // others were handled (docs/design.md §1.1: every element handled, every event kept as received).
    let parsed = parse_strict_each(&body)?;
    let lake = state.lake(&parts.headers)?;
    let handler = state.opts.handler.clone();
    let rt = Handle::current();
    let (report, result) = tokio::task::spawn_blocking(move || {
        let out = handle_parsed(&lake, &rt, &parsed, &handler);
        // The store (and any credentials in it) goes with the request.
        drop(lake);
        out
    })
    .await
    .map_err(|e| Error::Internal(format!("handler task failed: {e}")))?;
    result?;
    serde_json::to_vec(&report).map_err(|source| Error::Json {
        what: "invocation report".into(),
        source,
    })
}
