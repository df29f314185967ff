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
//! blocking pool with the runtime's handle.
//!
//! Memory is bounded: conversions run at most [`conversion_slots`] at a time for the instance's
//! memory (FC's `x-fc-function-memory` header, else [`ServerOptions::max_memory`]); further
//! invocations wait, their requests held open, rather than run the instance out of memory and
//! lose every invocation in flight. A client that goes away cancels its invocation (its uploads
//! are aborted). On shutdown the server stops accepting, lets in-flight invocations finish, and
//! waits for the work of clients that went away to clean up.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::convert::source::Cancel;
use crate::error::{Error, Result};
use crate::event::parse_strict_each;
use crate::ingest::handler::{handle_parsed, HandlerOptions};
use crate::lake::descriptor::Descriptor;
use crate::lake::dest::Destination;
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
    /// Memory of the instance, in bytes, when FC's `x-fc-function-memory` header does not say
    /// (local runs): it decides how many conversions run at once ([`conversion_slots`]).
    pub max_memory: u64,
    /// What an FC timer event runs (`cdnlake serve` wires `sync` here); `None`: a timer event
    /// fails the invocation with a clear reason.
    pub timer: Option<Arc<dyn TimerHandler>>,
}

/// An FC timer trigger's event: `{"triggerTime": "...", "triggerName": "...", "payload": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerEvent {
    pub trigger_name: String,
    pub trigger_time: String,
    /// The trigger's configured payload, if any (a string).
    pub payload: Option<String>,
}

impl TimerEvent {
    /// Reads a body as a timer event: an object with `triggerName` and `triggerTime` and no
    /// `events`. Anything else is not one (and goes to the event parser, which explains what
    /// is wrong with it).
    pub fn parse(body: &[u8]) -> Option<TimerEvent> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let o = v.as_object()?;
        if o.contains_key("events") {
            return None;
        }
        let s = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Some(TimerEvent {
            trigger_name: s("triggerName")?,
            trigger_time: s("triggerTime")?,
            payload: match o.get("payload") {
                Some(serde_json::Value::String(p)) if !p.trim().is_empty() => Some(p.clone()),
                Some(serde_json::Value::Null) | None => None,
                Some(serde_json::Value::String(_)) => None,
                Some(other) => Some(other.to_string()),
            },
        })
    }
}

/// What FC tells an invocation about the function, from its request headers.
#[derive(Clone, Default)]
pub struct FcContext {
    /// The function's role credentials (`x-fc-access-key-id`, ...).
    pub credentials: Option<Credentials>,
    pub function: Option<String>,
    pub qualifier: Option<String>,
    pub region: Option<String>,
    pub account_id: Option<String>,
}

impl std::fmt::Debug for FcContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcContext")
            .field("credentials", &self.credentials.as_ref().map(|c| &c.key_id))
            .field("function", &self.function)
            .field("qualifier", &self.qualifier)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .finish()
    }
}

impl FcContext {
    fn from_headers(headers: &hyper::HeaderMap) -> FcContext {
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .filter(|v| !v.is_empty())
        };
        let credentials = match (h("x-fc-access-key-id"), h("x-fc-access-key-secret")) {
            (Some(key_id), Some(secret)) => Some(Credentials {
                key_id,
                secret,
                token: h("x-fc-security-token"),
            }),
            _ => None,
        };
        FcContext {
            credentials,
            function: h("x-fc-function-name"),
            qualifier: h("x-fc-qualifier"),
            region: h("x-fc-region"),
            account_id: h("x-fc-account-id"),
        }
    }
}

/// Runs an FC timer event. The server stays below `sync` in the layers: it only recognises the
/// event and hands it over with the lake and what FC said about the function.
pub trait TimerHandler: Send + Sync + std::fmt::Debug {
    fn handle(
        &self,
        lake: Lake,
        fc: FcContext,
        event: TimerEvent,
    ) -> futures::future::BoxFuture<'static, Result<Vec<u8>>>;
}

/// Default of [`ServerOptions::max_memory`]: the memory size of `deploy/s.yaml`.
pub const DEFAULT_MAX_MEMORY: u64 = 1024 << 20;

/// Memory the server needs besides its conversions (the binary, the runtime, request bodies).
pub(crate) const BASE_MEMORY: u64 = 96 << 20;

/// Memory one conversion may use at its peak, whatever the file size: the blocks in flight (one
/// per parse thread plus one, 4 MiB of text each and their Arrow batches), the open row groups of
/// two partition hours, two 8 MiB parts in flight per upload. Measured peak of a whole `convert`
/// of 360 MB to 3 GB logs: 171-227 MiB including the process itself (README, Performance).
pub(crate) const CONVERSION_MEMORY: u64 = 192 << 20;

/// How many conversions fit in `memory` bytes: at least one, so a small instance still works
/// (one at a time), as it did before there was a bound.
pub(crate) fn conversion_slots(memory: u64) -> usize {
    (memory.saturating_sub(BASE_MEMORY) / CONVERSION_MEMORY).max(1) as usize
}

/// Work running on the blocking pool, counted so shutdown can wait for it even when the
/// request that started it is gone.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held by one piece of in-flight work; dropping it counts the work as done.
struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Cancels an invocation's work when the future serving it is dropped before it finished: hyper
/// drops it when the client disconnects.
struct CancelOnDrop {
    cancel: Cancel,
    finished: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel.cancel();
        }
    }
}

/// Default for [`ServerOptions::header_read_timeout`]: far longer than FC ever takes to send a
/// request head on loopback.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

struct State {
    opts: ServerOptions,
    /// The destination when it needs no per-request credentials (not `oss://`).
    fixed: Option<Lake>,
    /// Conversion slots, sized on the first invocation (from its memory header).
    slots: OnceLock<Arc<Semaphore>>,
    /// The lake's descriptor, read (or written, for a new lake) by the first invocation that
    /// converts a log, and kept: a lake never changes it, so one read per instance is enough.
    descriptor: tokio::sync::OnceCell<Descriptor>,
    in_flight: Arc<InFlight>,
}

impl State {
    /// The lake for one request: `oss://` is opened with the request's credentials.
    fn lake(&self, headers: &hyper::HeaderMap) -> Result<Lake> {
        if let Some(l) = &self.fixed {
            return Ok(l.clone());
        }
        let fc = FcContext::from_headers(headers);
        let mut oss = self.opts.oss.clone();
        if fc.credentials.is_some() {
            oss.credentials = fc.credentials;
        }
        if oss.region.is_none() {
            oss.region = fc.region;
        }
        Lake::open_with(&self.opts.dest, &oss)
    }

    /// The conversion slots: as many as the instance's memory holds. FC tells the memory in
    /// every request (`x-fc-function-memory`, MB); it does not change during an instance's life.
    fn slots(&self, headers: &hyper::HeaderMap) -> Arc<Semaphore> {
        self.slots
            .get_or_init(|| {
                let memory = headers
                    .get("x-fc-function-memory")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|mb| *mb > 0)
                    .map_or(self.opts.max_memory, |mb| mb << 20);
                let slots = conversion_slots(memory);
                tracing::info!(memory, slots, "conversions at once");
                Arc::new(Semaphore::new(slots))
            })
            .clone()
    }
}

/// Serves until `shutdown` resolves, then waits for in-flight invocations to finish.
pub async fn serve(
    listener: TcpListener,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let fixed = if Destination::parse(&opts.dest)?.credentials_per_request() {
        None
    } else {
        Some(Lake::open(&opts.dest)?)
    };
    let state = Arc::new(State {
        opts,
        fixed,
        slots: OnceLock::new(),
        descriptor: tokio::sync::OnceCell::new(),
        in_flight: Arc::default(),
    });
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
    // Work whose client went away was cancelled; wait for it to abort its uploads.
    state.in_flight.wait_idle().await;
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
    if let Some(timer) = TimerEvent::parse(&body) {
        let Some(handler) = state.opts.timer.clone() else {
            return Err(Error::Config {
                setting: "timer event",
                value: timer.trigger_name,
                reason: "this server runs no timer work (set CDNLAKE_SYNC_DOMAINS to reconcile on a timer)".into(),
            });
        };
        let lake = state.lake(&parts.headers)?;
        let fc = FcContext::from_headers(&parts.headers);
        tracing::info!(trigger = %timer.trigger_name, time = %timer.trigger_time, "timer event");
        return handler.handle(lake, fc, timer).await;
    }
    // Each element on its own: a malformed one is kept and fails the invocation only after the
    // others were handled (docs/design.md §1.1: every element handled, every event kept as received).
    let parsed = parse_strict_each(&body)?;
    let lake = state.lake(&parts.headers)?;
    let mut handler = state.opts.handler.clone();
    // A conversion waits for a slot (its request held open); other events need none.
    let converts = parsed
        .events
        .iter()
        .any(|e| matches!(e.payload, crate::event::Payload::LogFile(_)));
    if converts {
        // Logs are written in the lake's layout, on its clock; a setting that contradicts it
        // fails the invocation (not retryable) before anything is written.
        let d = state
            .descriptor
            .get_or_try_init(|| Descriptor::ensure(&lake, &state.opts.handler.lake))
            .await?;
        handler.convert = handler.convert.for_lake(d);
    }
    let permit: Option<OwnedSemaphorePermit> = if converts {
        let slots = state.slots(&parts.headers);
        Some(
            slots
                .acquire_owned()
                .await
                .map_err(|_| Error::Internal("conversion slots closed".into()))?,
        )
    } else {
        None
    };
    let cancel = Cancel::default();
    handler.convert.decode.cancel = Some(cancel.clone());
    let mut on_drop = CancelOnDrop {
        cancel,
        finished: false,
    };
    let rt = Handle::current();
    let guard = state.in_flight.enter();
    let (report, result) = tokio::task::spawn_blocking(move || {
        let out = handle_parsed(&lake, &rt, &parsed, &handler);
        // The store (and any credentials in it) goes with the request; the slot and the
        // in-flight count are released when the work is done, even if the client went away.
        drop(lake);
        drop(permit);
        drop(guard);
        out
    })
    .await
    .map_err(|e| Error::Internal(format!("handler task failed: {e}")))?;
    on_drop.finished = true;
    result?;
    serde_json::to_vec(&report).map_err(|source| Error::Json {
        what: "invocation report".into(),
        source,
    })
}
