//! `cdnlake serve` end to end against real servers on loopback, started here (from
//! `support`):
//!
//! - an S3-compatible server (s3s-fs, in process, over HTTP, [`S3`]) that verifies SigV4; a
//!   wrapper in front of it also checks that every request is virtual-hosted (bucket in the Host
//!   header) and carries the session token among the signed headers;
//! - a hand-written HTTP/1.1 log server ([`LogServer`]) that can drop the connection mid-body,
//!   answer 503 first, serve a truncated gzip, lie in `Content-Length`, or redirect to another host.
//!
//! The OSS destination is configured exactly as in production (`oss://bucket/prefix`, endpoint
//! host, region, credentials from the FC headers); only DNS is replaced, inside the HTTP client,
//! so that `<bucket>.oss.test` reaches 127.0.0.1.

use crate::support::logserver::{LogServer, Seen, SLOW_PAUSE, TRICKLE};
use crate::support::resolver::Loopback;
use crate::support::s3::{Auth, BUCKET, S3};
use crate::support::walk::tree;
use crate::support::{gzip, log_text};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cdnlake::ingest::fetch::{AllowList, HttpOptions};
use cdnlake::ingest::handler::HandlerOptions;
use cdnlake::ingest::server::{serve, ServerOptions, MAX_BODY};
use cdnlake::lake::descriptor::{PartitionBy, Wanted};
use cdnlake::lake::store::OssOptions;
use tokio::net::TcpListener;

const AK: &str = "AKIDTEST";
const SK: &str = "SECRETKEYVALUE-do-not-leak";
const TOKEN: &str = "SESSIONTOKEN-do-not-leak";
const SIG: &str = "SIGNATUREVALUE-do-not-leak";
/// What the FC request headers carry, and what the S3 server checks.
const AUTH: Auth = Auth {
    key_id: AK,
    secret: SK,
    token: Some(TOKEN),
};

// ---------------------------------------------------------------- captured logs

/// Every log line written in this process from the first call on. The subscriber is
/// process-wide: in the one test binary it also captures the in-process runs of other suites
/// (each with keys of its own), which only widens the check that no secret is logged.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        let _ = tracing_subscriber::fmt()
            // Everything but the test's own S3 server (s3s logs request headers at debug).
            .with_env_filter("debug,s3s=off,s3s_fs=off")
            .with_ansi(false)
            .with_writer(move || Capture(w.clone()))
            .try_init();
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------- test log

const NAME: &str = "www.example.com_2015_06_09_0100_0300.gz";

// ---------------------------------------------------------------- cdnlake serve

struct Cdnlake {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Cdnlake {
    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap();
    }
}

/// How long the servers wait for a request head: production's, since a busy machine can hold a
/// prompt client's head back past a short one (1 s cut eight concurrent invocations off); only
/// `a_stalled_request_head_is_cut_off` sets a short one, to see it work.
const HEAD_TIMEOUT: Duration = cdnlake::ingest::server::HEADER_READ_TIMEOUT;

async fn start_cdnlake(s3_port: u16) -> Cdnlake {
    start_cdnlake_with(
        s3_port,
        HttpOptions {
            backoff: Duration::from_millis(20),
            max_attempts: 4,
            read_timeout: Duration::from_secs(10),
            ..HttpOptions::default()
        },
    )
    .await
}

async fn start_cdnlake_with(s3_port: u16, http: HttpOptions) -> Cdnlake {
    start_cdnlake_for(s3_port, http, Wanted::default()).await
}

/// The server, given the lake settings `lake` (`--partition-by`, `--partition-tz`).
async fn start_cdnlake_for(s3_port: u16, http: HttpOptions, lake: Wanted) -> Cdnlake {
    start_cdnlake_into(
        s3_port,
        http,
        lake,
        format!("oss://{BUCKET}/pre"),
        HEAD_TIMEOUT,
    )
    .await
}

/// The server, writing to `dest` (the OSS bucket, or a local folder).
async fn start_cdnlake_into(
    s3_port: u16,
    http: HttpOptions,
    lake: Wanted,
    dest: String,
    header_read_timeout: Duration,
) -> Cdnlake {
    logs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = object_store::ClientOptions::new().with_dns_resolver(Arc::new(Loopback));
    let opts = ServerOptions {
        dest,
        handler: HandlerOptions {
            allow: AllowList::from_patterns(["127.0.0.1", "localhost"]).unwrap(),
            http,
            lake,
            ..HandlerOptions::default()
        },
        oss: OssOptions {
            endpoint: Some(format!("http://oss.test:{s3_port}")),
            region: None,
            credentials: None,
            client: Some(client),
        },
        max_body: MAX_BODY,
        header_read_timeout,
        max_memory: cdnlake::ingest::server::DEFAULT_MAX_MEMORY,
        timer: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, opts, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Cdnlake {
        addr,
        stop: Some(tx),
        task,
    }
}

struct Reply {
    status: u16,
    fc_status: Option<String>,
    /// `x-cdnlake-retryable` of a failure.
    retryable: Option<String>,
    body: String,
}

async fn invoke(addr: SocketAddr, body: &str) -> Reply {
    cdnlake::tls::ensure_provider();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/invoke"))
        .header("content-type", "application/octet-stream")
        .header("x-fc-request-id", "req-test")
        .header("x-fc-access-key-id", AK)
        .header("x-fc-access-key-secret", SK)
        .header("x-fc-security-token", TOKEN)
        .header("x-fc-region", "cn-hangzhou")
        .header("x-fc-function-name", "cdnlake")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let fc_status = header("x-fc-status");
    let retryable = header("x-cdnlake-retryable");
    Reply {
        status,
        fc_status,
        retryable,
        body: r.text().await.unwrap(),
    }
}

fn log_event(url: &str, size: Option<usize>, trace: &str) -> String {
    let size = size
        .map(|s| format!(",\"fileSize\":\"{s}\""))
        .unwrap_or_default();
    format!(
        r#"{{"eventName":"LogFileCreated","eventSource":"cdn","region":"cn-hangzhou","eventVersion":"1.0.0","eventTime":"2018-06-14T15:31:49+08:00","traceId":"{trace}","userIdentity":{{"aliUid":"1234"}},"resource":{{"domain":"www.example.com"}},"eventParameter":{{"domain":"www.example.com","filePath":"{url}?OSSAccessKeyId={AK}&Expires=1528963509&Signature={SIG}","startTime":1528959600,"endTime":1528963200{size}}}}}"#
    )
}

fn other_events() -> Vec<String> {
    let mut v = Vec::new();
    for (i, name) in [
        "CachedObjectsRefreshed",
        "CachedObjectsPushed",
        "CachedObjectsBlocked",
    ]
    .iter()
    .enumerate()
    {
        v.push(format!(
            r#"{{"eventName":"{name}","eventVersion":"1.0.0","eventSource":"cdn","region":"cn-hangzhou","eventTime":"2018-03-16T14:19:55+08:00","traceId":"cache-{i}","resource":{{"domain":"example.com"}},"eventParameter":{{"objectPath":["/2018/03/16/13/33b430c57e7.mp4","/2018/03/16/14/4ff6b9bd54d.mp4"],"createTime":1521180769,"domain":"example.com","completeTime":"1521180777","objectType":"File","taskId":2089687230}},"userIdentity":{{"aliUid":"1xxxxxxxxxx"}}}}"#
        ));
    }
    for (i, name) in ["CdnDomainStarted", "CdnDomainStopped"].iter().enumerate() {
        v.push(format!(
            r#"{{"eventName":"{name}","eventVersion":"1.0.0","eventSource":"cdn","region":"cn-hangzhou","eventTime":"2018-03-16T14:19:55+08:00","traceId":"dom-{i}","resource":{{"domain":"chongshi.alicdn.com"}},"eventParameter":{{"domain":"chongshi.alicdn.com","status":"online"}},"userIdentity":{{"aliUid":"12345678"}}}}"#
        ));
    }
    for (i, name) in ["CdnDomainAdded", "CdnDomainDeleted"].iter().enumerate() {
        v.push(format!(
            r#"{{"eventName":"{name}","eventVersion":"1.0.0","eventSource":"cdn","region":"cn-hangzhou","eventTime":"2018-03-16T14:19:55+08:00","traceId":"dom-add-{i}","resource":{{"domain":"chongshi.alicdn.com"}},"eventParameter":{{"domain":"chongshi.alicdn.com"}},"userIdentity":{{"aliUid":"12345678"}}}}"#
        ));
    }
    v.push(r#"{"eventName":"CdnSomethingNew","eventVersion":"2.0.0","eventTime":"2018-03-16T14:19:55+08:00","eventParameter":{"url":"https://x.aliyuncs.com/a?Signature=SIGNATUREVALUE-do-not-leak"}}"#.to_string());
    v
}

fn envelope(events: &[String]) -> String {
    format!("{{\"events\":[{}]}}", events.join(","))
}

fn assert_no_secrets(what: &str, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    for secret in [SK, TOKEN, SIG, "OSSAccessKeyId"] {
        let line = s.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "{what} contains {secret}: {line:?}");
    }
}

fn fixture() -> (Vec<u8>, usize) {
    let text = log_text(5000);
    let mut data = gzip(&text[..text.len() / 2]);
    data.extend(gzip(&text[text.len() / 2..])); // two gzip members
    (data, 5000)
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_through_serve_into_oss_and_retries_are_idempotent() {
    let (data, lines) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;

    let mut events = vec![log_event(
        &format!("http://{}/ok/{NAME}", logsrv.addr),
        Some(size),
        "log-1",
    )];
    events.extend(other_events());
    let body = envelope(&events);
    let r = invoke(app.addr, &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.fc_status.as_deref(), Some("200"));
    let report: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(report["events"], 9);
    assert_eq!(report["unknown"], 1);
    let log = &report["reports"][0]["log"];
    assert_eq!(log["lines"], lines as u64);
    let rejected = (0..lines).filter(|i| i % 7 == 3).count() as u64;
    assert_eq!(log["rejected"], rejected);
    assert_eq!(log["rows"], lines as u64 - rejected);
    assert_eq!(log["bytes_in"], size as u64);

    let first = s3.objects("pre/");
    let keys: Vec<&String> = first.keys().collect();
    for want in [
        format!(
            "pre/_manifests/www.example.com/2015_06_09/{}.json",
            NAME.trim_end_matches(".gz")
        ),
        format!("pre/raw/www.example.com/2015_06_09/{NAME}"),
        "pre/audit/cache/event=CachedObjectsRefreshed/dt=2018-03-16/cache-0.parquet".into(),
        "pre/audit/cache/event=CachedObjectsPushed/dt=2018-03-16/cache-1.parquet".into(),
        "pre/audit/cache/event=CachedObjectsBlocked/dt=2018-03-16/cache-2.parquet".into(),
        "pre/audit/domain/event=CdnDomainStarted/dt=2018-03-16/dom-0.parquet".into(),
        "pre/audit/domain/event=CdnDomainStopped/dt=2018-03-16/dom-1.parquet".into(),
        "pre/audit/domain/event=CdnDomainAdded/dt=2018-03-16/dom-add-0.parquet".into(),
        "pre/audit/domain/event=CdnDomainDeleted/dt=2018-03-16/dom-add-1.parquet".into(),
        "pre/audit/events/dt=2018-06-14/log-1.json".into(),
        "pre/audit/events/dt=2018-03-16/cache-0.json".into(),
    ] {
        assert!(first.contains_key(&want), "missing {want} in {keys:#?}");
    }
    assert!(keys
        .iter()
        .any(|k| k.starts_with("pre/access/domain=www.example.com/dt=2015-06-09/hour=01/")));
    assert!(keys
        .iter()
        .any(|k| k.starts_with("pre/access/domain=www.example.com/dt=2015-06-09/hour=02/")));
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("pre/audit/events/"))
            .count(),
        9,
        "{keys:#?}"
    );
    assert_eq!(
        first[&format!("pre/raw/www.example.com/2015_06_09/{NAME}")].len(),
        size
    );
    assert!(*s3.requests.lock().unwrap() > 0);
    assert_eq!(*s3.violations.lock().unwrap(), Vec::<String>::new());

    // The same invocation again (FC retries): identical objects, identical counts.
    let r2 = invoke(app.addr, &body).await;
    assert_eq!(r2.status, 200, "{}", r2.body);
    let report2: serde_json::Value = serde_json::from_str(&r2.body).unwrap();
    for k in ["lines", "rows", "rejected", "bytes_in", "keys"] {
        assert_eq!(report2["reports"][0]["log"][k], log[k], "{k}");
    }
    assert_eq!(s3.objects("pre/"), first);

    for (k, v) in &first {
        assert_no_secrets(k, v);
    }
    assert_no_secrets("report", r.body.as_bytes());
    app.shutdown().await;
    assert_no_secrets("logs", &logs().lock().unwrap_or_else(|e| e.into_inner()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_and_503_are_retried_with_exact_counts() {
    let (data, lines) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    let rejected = (0..lines).filter(|i| i % 7 == 3).count() as u64;
    for mode in ["drop", "flaky"] {
        let body = envelope(&[log_event(
            &format!("http://{}/{mode}/{NAME}", logsrv.addr),
            Some(size),
            mode,
        )]);
        let r = invoke(app.addr, &body).await;
        assert_eq!(
            (r.status, r.fc_status.as_deref()),
            (200, Some("200")),
            "{mode}: {}",
            r.body
        );
        let report: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let log = &report["reports"][0]["log"];
        assert_eq!(log["lines"], lines as u64, "{mode}");
        assert_eq!(log["rejected"], rejected, "{mode}");
        assert_eq!(log["bytes_in"], size as u64, "{mode}");
        assert_eq!(
            report["reports"][0]["http_retries"],
            1 + u64::from(mode == "flaky")
        );
    }
    let seen = logsrv.state.seen.lock().unwrap().clone();
    let drop_requests: Vec<_> = seen
        .iter()
        .filter(|(p, _)| p.starts_with("/drop/"))
        .collect();
    assert_eq!(drop_requests.len(), 2, "{seen:?}");
    assert_eq!(
        drop_requests[1].1.as_deref(),
        Some(format!("bytes={}-", size / 2).as_str())
    );
    assert_eq!(
        seen.iter()
            .filter(|(p, _)| p.starts_with("/flaky/"))
            .count(),
        3
    );
    let raw = s3.objects("pre/")[&format!("pre/raw/www.example.com/2015_06_09/{NAME}")].clone();
    assert_eq!(raw, fixture().0, "raw dump is byte for byte");
    app.shutdown().await;
}

/// Redirects are followed only within one origin: the same host on another port is refused and
/// never contacted; the same scheme, host and port is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_only_within_the_same_origin() {
    let (data, _) = fixture();
    let size = data.len();
    let files = HashMap::from([(NAME.to_string(), data)]);
    let logsrv = LogServer::start(files.clone()).await;
    let other = LogServer::start(files).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    let port = other.addr.port();
    let url = format!("http://{}/toport-{port}/{NAME}", logsrv.addr);
    let r = invoke(app.addr, &envelope(&[log_event(&url, None, "toport")])).await;
    assert_eq!((r.status, r.fc_status.as_deref()), (404, Some("404")));
    assert!(
        r.body.contains("refused") && r.body.contains("another origin"),
        "{}",
        r.body
    );
    assert_no_secrets("reply", r.body.as_bytes());
    assert_eq!(*other.state.seen.lock().unwrap(), Vec::<Seen>::new());

    let url = format!("http://{}/self/{NAME}", logsrv.addr);
    let r = invoke(app.addr, &envelope(&[log_event(&url, Some(size), "self")])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = logsrv.state.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|(p, _)| *p == format!("/ok/{NAME}")),
        "{seen:?}"
    );
    app.shutdown().await;
}

/// A resumed request names the version it continues (`If-Range`); a server whose object changed
/// sends the whole new one, which fails the run. A 206 without the ETag the first response had
/// fails it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_send_if_range_and_refuse_another_version() {
    let (data, _) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    for (mode, want) in [
        ("changed", "HTTP 200"),
        ("noetag206", "ETag/Last-Modified differ"),
    ] {
        let url = format!("http://{}/{mode}/{NAME}", logsrv.addr);
        let r = invoke(app.addr, &envelope(&[log_event(&url, Some(size), mode)])).await;
        assert_eq!(
            (r.status, r.fc_status.as_deref()),
            (404, Some("404")),
            "{mode}: {}",
            r.body
        );
        assert!(r.body.contains(want), "{mode}: {}", r.body);
        let sent: Vec<Option<String>> = logsrv
            .state
            .if_ranges
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("/{mode}/")))
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(sent, [None, Some("\"v1\"".to_string())], "{mode}");
    }
    let objs = s3.objects("pre/");
    assert!(
        !objs.keys().any(|k| k.contains("_manifests")),
        "{:#?}",
        objs.keys()
    );
    app.shutdown().await;
}

/// A server that drops every connection after a few bytes makes progress each time; the retries
/// are capped in all (10 by default), so the run fails quickly with a clear reason instead of
/// being retried once per few bytes of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_capped_in_all_even_with_progress() {
    let (data, _) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    let cap = HttpOptions::default().max_retries as usize;
    let url = format!("http://{}/trickle/{NAME}", logsrv.addr);
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        invoke(
            app.addr,
            &envelope(&[log_event(&url, Some(size), "trickle")]),
        ),
    )
    .await
    .expect("the retries are not bounded");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        (r.status, r.fc_status.as_deref()),
        (404, Some("404")),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!(
            "gave up after {cap} retries in all, the limit, at byte {}",
            (cap + 1) * TRICKLE
        )),
        "{}",
        r.body
    );
    // A source that kept failing may work later: the reply says so.
    assert_eq!(r.retryable.as_deref(), Some("true"), "{}", r.body);
    assert_eq!(
        r.body.matches("/trickle/").count(),
        1,
        "the URL is named once: {}",
        r.body
    );
    assert_eq!(logsrv.state.seen.lock().unwrap().len(), cap + 1);
    app.shutdown().await;
}

/// One malformed element does not stop the others: the good `LogFileCreated` is converted, the
/// bad element is kept as received (redacted) under `audit/events/dt=undated/`, and the
/// invocation fails naming the element and its field, so FC retries; the retry rewrites the
/// same objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_element_is_kept_and_fails_only_after_the_others() {
    let (data, _) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    let bad = format!(
        r#"{{"eventName":"CdnDomainAdded","eventParameter":{{"domain":"d.com","note":"http://x.aliyuncs.com/a?OSSAccessKeyId={AK}&Signature={SIG}"}}}}"#
    );
    let body = envelope(&[
        log_event(
            &format!("http://{}/ok/{NAME}", logsrv.addr),
            Some(size),
            "good-1",
        ),
        bad,
    ]);
    let r = invoke(app.addr, &body).await;
    assert_eq!(
        (r.status, r.fc_status.as_deref()),
        (404, Some("404")),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("events[1].eventTime: missing"),
        "{}",
        r.body
    );
    assert_no_secrets("reply", r.body.as_bytes());
    let first = s3.objects("pre/");
    let keys: Vec<&String> = first.keys().collect();
    for want in [
        format!(
            "pre/_manifests/www.example.com/2015_06_09/{}.json",
            NAME.trim_end_matches(".gz")
        ),
        "pre/audit/events/dt=2018-06-14/good-1.json".to_string(),
    ] {
        assert!(first.contains_key(&want), "missing {want} in {keys:#?}");
    }
    let undated: Vec<_> = first
        .iter()
        .filter(|(k, _)| k.starts_with("pre/audit/events/dt=undated/"))
        .collect();
    assert_eq!(undated.len(), 1, "{keys:#?}");
    let kept = String::from_utf8_lossy(undated[0].1);
    assert!(
        kept.contains("CdnDomainAdded") && kept.contains("http://x.aliyuncs.com/a?<redacted>"),
        "{kept}"
    );
    for (k, v) in &first {
        assert_no_secrets(k, v);
    }
    // FC's retry: the same failure, the same objects.
    let r2 = invoke(app.addr, &body).await;
    assert_eq!(r2.status, 404);
    assert_eq!(s3.objects("pre/"), first);
    app.shutdown().await;
}

/// A chunked body whose connection breaks after the last data chunk, before the terminating one:
/// every byte is here. Without `fileSize` the resume gets 416 `bytes */<size>`, which means
/// complete; with `fileSize` the size says so and nothing is resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_cut_before_its_terminating_chunk_is_complete() {
    let (data, lines) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data.clone())])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    let url = format!("http://{}/chunkdrop/{NAME}", logsrv.addr);
    for (announced, requests) in [(None, 2), (Some(size), 1)] {
        logsrv.state.seen.lock().unwrap().clear();
        let r = invoke(
            app.addr,
            &envelope(&[log_event(&url, announced, "chunkdrop")]),
        )
        .await;
        assert_eq!(
            (r.status, r.fc_status.as_deref()),
            (200, Some("200")),
            "{announced:?}: {}",
            r.body
        );
        let report: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let log = &report["reports"][0]["log"];
        assert_eq!(log["lines"], lines as u64, "{announced:?}");
        assert_eq!(log["bytes_in"], size as u64, "{announced:?}");
        let seen = logsrv.state.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), requests, "{announced:?}: {seen:?}");
        if requests == 2 {
            assert_eq!(seen[1].1, Some(format!("bytes={size}-")));
        }
        let raw = s3.objects("pre/")[&format!("pre/raw/www.example.com/2015_06_09/{NAME}")].clone();
        assert_eq!(raw, data, "raw dump is byte for byte");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_within_the_read_timeout_converts_exactly() {
    let (data, lines) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data.clone())])).await;
    let s3 = S3::start(AUTH).await;
    // Every pause is shorter than the read timeout; the whole body takes several times longer.
    let read_timeout = SLOW_PAUSE * 4;
    let app = start_cdnlake_with(
        s3.port(),
        HttpOptions {
            backoff: Duration::from_millis(20),
            max_attempts: 2,
            read_timeout,
            ..HttpOptions::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let body = envelope(&[log_event(
        &format!("http://{}/slow/{NAME}", logsrv.addr),
        Some(size),
        "slow",
    )]);
    let r = invoke(app.addr, &body).await;
    let took = started.elapsed();
    assert_eq!(
        (r.status, r.fc_status.as_deref()),
        (200, Some("200")),
        "{}",
        r.body
    );
    assert!(took > read_timeout * 2, "the body was not slow: {took:?}");
    let report: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let log = &report["reports"][0]["log"];
    let rejected = (0..lines).filter(|i| i % 7 == 3).count() as u64;
    assert_eq!(log["lines"], lines as u64);
    assert_eq!(log["rejected"], rejected);
    assert_eq!(log["rows"], lines as u64 - rejected);
    assert_eq!(log["bytes_in"], size as u64);
    // One request: no timeout fired, nothing was resumed.
    let seen = logsrv.state.seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(format!("/slow/{NAME}"), None)]);
    let raw = s3.objects("pre/")[&format!("pre/raw/www.example.com/2015_06_09/{NAME}")].clone();
    assert_eq!(raw, data, "raw dump is byte for byte");
    app.shutdown().await;
}

/// The same slow body, each pause within the read timeout, but past the download's overall
/// deadline: the invocation fails with a line that says so (retryable), and nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_past_its_overall_deadline_fails() {
    let (data, _) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data.clone())])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake_with(
        s3.port(),
        HttpOptions {
            backoff: Duration::from_millis(20),
            max_attempts: 2,
            read_timeout: SLOW_PAUSE * 4,
            // Far less than the slow body takes.
            deadline_base: SLOW_PAUSE,
            min_rate: u64::MAX,
            ..HttpOptions::default()
        },
    )
    .await;
    let body = envelope(&[log_event(
        &format!("http://{}/slow/{NAME}", logsrv.addr),
        Some(size),
        "deadline",
    )]);
    let r = invoke(app.addr, &body).await;
    assert_eq!(
        (r.status, r.fc_status.as_deref()),
        (404, Some("404")),
        "{}",
        r.body
    );
    assert!(r.body.contains("not done after"), "{}", r.body);
    assert_eq!(r.retryable.as_deref(), Some("true"), "{}", r.body);
    assert!(
        !s3.objects("pre/").keys().any(|k| k.contains("_manifests/")),
        "no manifest after a failed download"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_logs_and_refused_urls_get_404_and_no_manifest() {
    let (data, _) = fixture();
    let truncated = data[..data.len() - 10].to_vec();
    let logsrv = LogServer::start(HashMap::from([
        (NAME.to_string(), data.clone()),
        (
            "www.example.com_2015_06_09_0100_0300_trunc.gz".to_string(),
            truncated,
        ),
    ]))
    .await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    let a = logsrv.addr;
    let cases = [
        (
            format!("http://{a}/ok/www.example.com_2015_06_09_0100_0300_trunc.gz"),
            "gzip",
        ),
        (format!("http://{a}/lie/{NAME}"), ""),
        (format!("http://{a}/redirect/{NAME}"), "refused"),
        (
            "http://169.254.169.254/latest/meta-data/x.gz".to_string(),
            "refused",
        ),
        ("file:///etc/passwd".to_string(), "refused"),
        ("http://evil.example.net/x.gz".to_string(), "refused"),
    ];
    for (i, (url, want)) in cases.iter().enumerate() {
        let r = invoke(
            app.addr,
            &envelope(&[log_event(url, None, &format!("bad-{i}"))]),
        )
        .await;
        assert_eq!(
            (r.status, r.fc_status.as_deref()),
            (404, Some("404")),
            "{url}: {}",
            r.body
        );
        assert_eq!(r.body.trim_end().lines().count(), 1, "{}", r.body);
        assert!(r.body.contains(want), "{url}: {}", r.body);
        // A refused URL, a corrupt gzip, a size that lies: trying again will not help.
        assert_eq!(r.retryable.as_deref(), Some("false"), "{url}: {}", r.body);
        assert_no_secrets(url, r.body.as_bytes());
    }
    // Malformed events: 404 with a reason naming the place.
    let r = invoke(app.addr, r#"{"events":[{"eventName":"LogFileCreated","eventTime":"2018-06-14T15:31:49+08:00","eventParameter":{"domain":"d","filePath":"http://x/y.gz","fileSize":"12a"}}]}"#).await;
    assert_eq!((r.status, r.fc_status.as_deref()), (404, Some("404")));
    assert!(
        r.body.contains("events[0].eventParameter.fileSize"),
        "{}",
        r.body
    );
    let r = invoke(app.addr, "{\"events\": [ // comment\n]}").await;
    assert_eq!(r.status, 404, "serve is strict");

    let objs = s3.objects("pre/");
    assert!(
        !objs.keys().any(|k| k.contains("_manifests")),
        "{:#?}",
        objs.keys()
    );
    assert!(
        !objs.keys().any(|k| k.starts_with("pre/access/")),
        "{:#?}",
        objs.keys()
    );
    // The refused hosts were never contacted; the redirect target was not followed.
    let seen = logsrv.state.seen.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|(p, _)| p.starts_with("/ok/www.example.com_2015_06_09_0100_0300.gz")),
        "{seen:?}"
    );
    app.shutdown().await;
    assert_no_secrets("logs", &logs().lock().unwrap_or_else(|e| e.into_inner()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_and_serve_write_identical_lakes() {
    let (data, _) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let app = start_cdnlake(s3.port()).await;
    let mut events = vec![log_event(
        &format!("http://{}/ok/{NAME}", logsrv.addr),
        Some(size),
        "same-1",
    )];
    events.extend(other_events());
    let strict = envelope(&events);
    let r = invoke(app.addr, &strict).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.shutdown().await;

    // What `cdnlake handle` does: the lenient parser (here fed comments and trailing commas).
    let lenient = format!(
        "// pasted from the docs\n{}",
        strict.replace("]}", ", ] /* end */ , }")
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = cdnlake::lake::store::Lake::open(dir.path().to_str().unwrap()).unwrap();
    let rt = tokio::runtime::Handle::current();
    let opts = HandlerOptions {
        allow: AllowList::from_patterns(["127.0.0.1"]).unwrap(),
        ..HandlerOptions::default()
    };
    let (report, result) = tokio::task::spawn_blocking(move || {
        let events = cdnlake::event::parse_lenient(lenient.as_bytes()).unwrap();
        // As `cdnlake handle` and `serve` do before converting: the lake's descriptor.
        let d = rt
            .block_on(cdnlake::lake::descriptor::Descriptor::ensure(
                &lake, &opts.lake,
            ))
            .unwrap();
        let opts = HandlerOptions {
            convert: opts.convert.clone().for_lake(&d),
            ..opts
        };
        cdnlake::ingest::handler::handle_events(&lake, &rt, &events, &opts)
    })
    .await
    .unwrap();
    result.unwrap();
    assert_eq!(report.events, 9);
    let local = tree(dir.path());
    let remote: BTreeMap<String, Vec<u8>> = s3
        .objects("pre/")
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches("pre/").to_string(), v))
        .collect();
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        remote.keys().collect::<Vec<_>>()
    );
    for (k, v) in &local {
        assert!(remote[k] == *v, "{k} differs");
    }
}

/// Objects past one part go up as multipart uploads, through the exact OSS configuration
/// (virtual-hosted, session token, no checksum/tagging/conditional headers); small ones as one
/// PUT; a dropped sink leaves nothing visible. The log fixtures above are all small, so this
/// is where the multipart path meets a real S3 server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_use_multipart_uploads_through_the_oss_configuration() {
    use cdnlake::lake::sink::{ObjectSink, PART_SIZE};
    use cdnlake::lake::store::{Credentials, Lake};
    let s3 = S3::start(AUTH).await;
    let oss = OssOptions {
        endpoint: Some(format!("http://oss.test:{}", s3.port())),
        region: Some("cn-hangzhou".into()),
        credentials: Some(Credentials {
            key_id: AK.into(),
            secret: SK.into(),
            token: Some(TOKEN.into()),
        }),
        client: Some(object_store::ClientOptions::new().with_dns_resolver(Arc::new(Loopback))),
    };
    let lake = Lake::open_with(&format!("oss://{BUCKET}/pre"), &oss).unwrap();
    // Not compressible and not periodic, so a wrong part order would show.
    let big: Vec<u8> = (0..PART_SIZE * 2 + 12_345)
        .map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[7])
        .collect();
    let before = *s3.requests.lock().unwrap();
    let rt = tokio::runtime::Handle::current();
    let (big2, lake2) = (big.clone(), lake.clone());
    tokio::task::spawn_blocking(move || {
        let mut s = ObjectSink::create(&lake2, lake2.key_of("big.bin"), &rt).unwrap();
        for chunk in big2.chunks(1 << 20) {
            s.write_all(chunk).unwrap();
        }
        let mut small = ObjectSink::create(&lake2, lake2.key_of("small.bin"), &rt).unwrap();
        small.write_all(b"tiny").unwrap();
        assert_eq!(
            ObjectSink::complete_all(vec![s, small]).unwrap(),
            vec![big2.len() as u64, 4]
        );
        // Past one part, then dropped: the upload is aborted, nothing appears.
        let mut gone = ObjectSink::create(&lake2, lake2.key_of("gone.bin"), &rt).unwrap();
        gone.write_all(&big2[..PART_SIZE + 10]).unwrap();
        drop(gone);
    })
    .await
    .unwrap();
    let objs = s3.objects("pre/");
    assert_eq!(objs.get("pre/big.bin").map(Vec::len), Some(big.len()));
    assert!(
        objs.get("pre/big.bin") == Some(&big),
        "multipart object differs"
    );
    assert_eq!(
        objs.get("pre/small.bin").map(Vec::as_slice),
        Some(&b"tiny"[..])
    );
    assert!(!objs.contains_key("pre/gone.bin"), "{:?}", objs.keys());
    // create + 3 parts + complete for the big one, one PUT for the small one, and more for the
    // aborted one: clearly more than two single PUTs.
    assert!(*s3.requests.lock().unwrap() - before >= 6);
    assert_eq!(*s3.violations.lock().unwrap(), Vec::<String>::new());
}

/// A client that sends half a request head and stalls is cut off after the header read timeout
/// (1 s here), instead of holding its connection for ever; a prompt request still gets served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s3 = S3::start(AUTH).await;
    let cdn = start_cdnlake_into(
        s3.port(),
        HttpOptions::default(),
        Wanted::default(),
        format!("oss://{BUCKET}/pre"),
        Duration::from_secs(1),
    )
    .await;
    let mut sock = tokio::net::TcpStream::connect(cdn.addr).await.unwrap();
    sock.write_all(b"POST /invoke HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server kept a stalled connection open for 20 s"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}, before the timeout"
    );
    let r = invoke(cdn.addr, "[]").await;
    assert_eq!(
        r.status, 404,
        "a prompt request after that is still answered: {}",
        r.body
    );
    cdn.shutdown().await;
}

/// `serve` writes logs in the layout the lake's descriptor says (here a day lake), and a server
/// told otherwise fails the invocation, not retryable, naming both values, writing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_the_lake_descriptor() {
    let (data, _) = fixture();
    let size = data.len();
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let pre = s3.bucket_dir().join("pre");
    std::fs::create_dir_all(&pre).unwrap();
    std::fs::write(
        pre.join("_cdnlake.json"),
        r#"{"format_version":1,"partition_by":"day","partition_tz":"+08:00"}"#,
    )
    .unwrap();
    let event = envelope(&[log_event(
        &format!("http://{}/ok/{NAME}", logsrv.addr),
        Some(size),
        "day-1",
    )]);

    let hour = Wanted {
        partition_by: Some(PartitionBy::Hour),
        partition_tz: None,
    };
    let told_hour = start_cdnlake_for(s3.port(), HttpOptions::default(), hour).await;
    let r = invoke(told_hour.addr, &event).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.body
            .contains("--partition-by hour contradicts the lake, which has day"),
        "{}",
        r.body
    );
    told_hour.shutdown().await;
    assert_eq!(s3.objects("pre/").len(), 1, "only the descriptor");

    let app = start_cdnlake(s3.port()).await;
    let r = invoke(app.addr, &event).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.shutdown().await;
    let keys: Vec<String> = s3.objects("pre/").into_keys().collect();
    let tables: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("pre/access/") || k.starts_with("pre/traffic/"))
        .collect();
    assert_eq!(tables.len(), 2, "{keys:?}");
    assert!(
        tables
            .iter()
            .all(|k| k.contains("/dt=2015-06-09/") && !k.contains("hour=")),
        "{keys:?}"
    );
}

/// FC delivers an event more than once, and the timer's sync may race the CDN's own event: 8
/// identical invocations in flight at once, into a local folder and into the OSS bucket, all
/// succeed (200), and the lake holds every line once with nothing left under `_staging/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_identical_invocations_at_once_all_succeed_exactly() {
    let text = log_text(20_000);
    let data = gzip(&text);
    let size = data.len();
    let lines = 20_000u64;
    let rejected = (0..lines).filter(|i| i % 7 == 3).count() as u64;
    let logsrv = LogServer::start(HashMap::from([(NAME.to_string(), data)])).await;
    let s3 = S3::start(AUTH).await;
    let local = tempfile::tempdir().unwrap();
    let stem = NAME.trim_end_matches(".gz");
    for (dest, dir, lake) in [
        (
            local.path().join("lake").to_string_lossy().to_string(),
            local.path().to_path_buf(),
            "lake",
        ),
        (format!("oss://{BUCKET}/pre"), s3.bucket_dir(), "pre"),
    ] {
        let app = start_cdnlake_into(
            s3.port(),
            HttpOptions::default(),
            Wanted::default(),
            dest.clone(),
            HEAD_TIMEOUT,
        )
        .await;
        let body = envelope(&[log_event(
            &format!("http://{}/ok/{NAME}", logsrv.addr),
            Some(size),
            "log-dup",
        )]);
        let replies = futures::future::join_all((0..8).map(|_| invoke(app.addr, &body))).await;
        for r in &replies {
            assert_eq!(r.status, 200, "{dest}: {}", r.body);
            let report: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(report["reports"][0]["log"]["lines"], lines, "{dest}");
        }
        app.shutdown().await;

        let v = crate::support::duckdb_script(&dir, lake, "duckdb_check.py", &[]);
        assert_eq!(v["rows"].as_u64(), Some(lines - rejected), "{dest}: {v}");
        assert_eq!(v["distinct_lines"], v["rows"], "{dest}: duplicates {v}");
        let root = dir.join(lake);
        let manifest = root.join(format!("_manifests/www.example.com/2015_06_09/{stem}.json"));
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        assert_eq!(m["rows"].as_u64(), Some(lines - rejected), "{dest}");
        for o in m["objects"].as_array().unwrap() {
            let f = root.join(o["key"].as_str().unwrap());
            assert_eq!(
                std::fs::metadata(&f).map(|m| m.len()).ok(),
                o["bytes"].as_u64(),
                "{dest}: {f:?}"
            );
        }
        let left = crate::support::files_under(&root.join("_staging"));
        assert!(left.is_empty(), "{dest}: left in _staging/: {left:?}");
        let partial: Vec<String> = crate::support::files_under(&root)
            .into_iter()
            .filter(|f| f.contains('#'))
            .collect();
        assert!(partial.is_empty(), "{dest}: {partial:?}");
    }
}
