//! Conversions into an S3 store that fails: a seeded fault-injecting HTTP proxy (in process, on
//! 127.0.0.1) in front of an in-process s3s-fs server, and `convert_path` into an `oss://` lake
//! configured as in production (virtual-hosted requests to `<bucket>.oss.test:<port>`, SigV4),
//! whose DNS resolves to the proxy.
//!
//! The proxy forwards every request unchanged (method, target, headers with Host, body: s3s
//! checks the signature), except that on PutObject, UploadPart (PUT with `partNumber`) and
//! CompleteMultipartUpload (POST with `uploadId`) it may, by a seeded choice (or once, forced,
//! in the test that tries each fault on each kind of request):
//! - answer 500 or 503 (an S3 error document) without forwarding;
//! - reset: close the connection without answering, the request not forwarded;
//! - lose the reply: forward the request (it takes effect), then close without answering;
//! - stall: hold the request past the client's timeout, then close, not forwarded.
//!
//! The choice for a request depends on the seed, the request (method, key, part number) and how
//! many times this run sent it, never on the order of concurrent requests, so a run is
//! reproducible from its seed. The retry settings and the client timeout under faults are small
//! (the store is built as `Lake::open_with` builds it for OSS, plus a `RetryConfig`, which
//! `OssOptions` does not carry), so a run takes a few seconds.
//!
//! Each run converts a fresh generated log into a fresh prefix. The log is a gzip of many
//! members whose headers carry 64 KB of padding each (an FEXTRA field), so its raw dump, the
//! file byte for byte, passes one part (5 MiB, the smallest part S3 and s3s-fs accept) while the
//! log itself stays small: the dump is a multipart upload, completed concurrently with the
//! single PUTs of the Parquet files and the rejects at the commit; the manifest is a PUT after
//! them. A run must end either Ok with the lake exact, or Err with one line; then a run without
//! faults (and with patient client settings) must succeed, with exact rows, no duplicate
//! (source_file, line_number), no object outside what the manifest lists, and no multipart
//! upload left in s3s-fs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::files_under;
use crate::support::resolver::Loopback;
use crate::support::s3::{Auth, BUCKET, S3};
use cdnlake::convert::{convert_path, ConvertOptions};
use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions, Rng};
use cdnlake::lake::manifest::Manifest;
use cdnlake::lake::store::{Credentials, Lake, OssOptions};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use object_store::MultipartUpload;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::Write;
use tokio::net::{TcpListener, TcpStream};

const AK: &str = "AKIDFAULTS";
const SK: &str = "fault-secret";

/// The client's request timeout under faults; a stall holds a request longer than this. Long
/// enough for a 5 MiB part through a debug s3s while other suites of the test binary (and other
/// builds) load the machine: 1.5 s timed a part out three times over on a busy machine.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
const STALL: Duration = Duration::from_secs(6);
/// The client's request timeout of the run without faults: a debug build of s3s takes most of a
/// second over a 5 MiB part (SHA-256 and MD5 of the body), longer on a busy machine.
const PATIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The smallest part size S3 (and s3s-fs) accepts for all but the last part.
const PART: usize = 5 * 1024 * 1024;
const GEN_LINES: u64 = 3000;
/// Gzip members of the log, and the FEXTRA padding in each one's header.
const MEMBERS: usize = 90;
const PADDING: usize = 65_000;

// ---------------------------------------------------------------- s3s-fs and the proxy

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    PutObject,
    UploadPart,
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Status500,
    Status503,
    Reset,
    LostReply,
    Stall,
}

const FAULTS: [Fault; 5] = [
    Fault::Status500,
    Fault::Status503,
    Fault::Reset,
    Fault::LostReply,
    Fault::Stall,
];

/// What the proxy does this run: the seed and the fault rate (0: forward everything).
#[derive(Default)]
struct Plan {
    seed: u64,
    rate: f64,
    /// A fault for the first request of a kind, whatever the rate.
    forced: Option<(Op, Fault)>,
    /// Times each request (method, key, part) was seen this run.
    seen: HashMap<String, u64>,
}

#[derive(Default)]
struct ProxyState {
    plan: Mutex<Plan>,
    injected: Mutex<BTreeMap<(Op, Fault), u64>>,
    /// Requests the proxy is handling (a stall, a forward the client stopped waiting for): a
    /// run's checks wait until none is left.
    busy: AtomicUsize,
    /// Requests sent on to s3s.
    forwarded: AtomicUsize,
}

impl ProxyState {
    fn set_plan(&self, seed: u64, rate: f64, forced: Option<(Op, Fault)>) {
        *self.plan.lock().unwrap() = Plan {
            seed,
            rate,
            forced,
            seen: HashMap::new(),
        };
    }

    /// The fault for this request, if any: a function of the seed, the request and how many
    /// times this run sent it.
    fn decide(&self, op: Op, identity: &str) -> Option<Fault> {
        let mut plan = self.plan.lock().unwrap();
        let n = {
            let n = plan.seen.entry(identity.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let mut h = plan.seed ^ 0xcbf2_9ce4_8422_2325;
        for b in identity.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = Rng::new(h ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let fault = match plan.forced {
            Some((o, f)) if o == op => {
                plan.forced = None;
                f
            }
            _ if rng.chance(plan.rate) => FAULTS[rng.below(FAULTS.len() as u64) as usize],
            _ => return None,
        };
        *self
            .injected
            .lock()
            .unwrap()
            .entry((op, fault))
            .or_insert(0) += 1;
        Some(fault)
    }
}

/// The kind of S3 request, from its method and query: only these get faults.
fn op_of(method: &hyper::Method, query: &str) -> Option<Op> {
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    match *method {
        hyper::Method::PUT if has("partNumber") => Some(Op::UploadPart),
        hyper::Method::PUT if !has("uploadId") => Some(Op::PutObject),
        hyper::Method::POST if has("uploadId") => Some(Op::Complete),
        _ => None,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An S3 error document, as S3 sends it (a line break after the XML declaration).
fn s3_error(status: StatusCode, code: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected</Message><RequestId>FAULT</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Sends the request, unchanged, to s3s on a connection of its own.
async fn forward(
    s3: SocketAddr,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(s3).await?;
    // hyper's client half: enabled in this build through reqwest.
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

async fn proxy(
    state: Arc<ProxyState>,
    s3: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    // Counted down on drop too: hyper drops a handler whose client went away.
    struct Busy<'a>(&'a AtomicUsize);
    impl Drop for Busy<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    state.busy.fetch_add(1, Ordering::SeqCst);
    let _busy = Busy(&state.busy);
    handle(&state, s3, req).await
}

async fn handle(
    state: &ProxyState,
    s3: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let query = parts.uri.query().unwrap_or("").to_string();
    let fault = op_of(&parts.method, &query).and_then(|op| {
        let part = query
            .split('&')
            .find(|p| p.starts_with("partNumber="))
            .unwrap_or("");
        let identity = format!("{} {} {part}", parts.method, parts.uri.path());
        state.decide(op, &identity)
    });
    match fault {
        None => {
            state.forwarded.fetch_add(1, Ordering::SeqCst);
            forward(s3, parts, body).await
        }
        Some(Fault::Status500) => Ok(s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError")),
        Some(Fault::Status503) => Ok(s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown")),
        // An error from the service: hyper closes the connection without a response.
        Some(Fault::Reset) => Err("injected reset".into()),
        Some(Fault::LostReply) => {
            state.forwarded.fetch_add(1, Ordering::SeqCst);
            let _ = forward(s3, parts, body).await?;
            Err("injected lost reply".into())
        }
        Some(Fault::Stall) => {
            tokio::time::sleep(STALL).await;
            Err("injected stall".into())
        }
    }
}

struct Servers {
    /// The proxy's port: the one in the endpoint (and the Host header s3s checks).
    port: u16,
    s3: S3,
    state: Arc<ProxyState>,
}

/// s3s-fs (SigV4 checked, virtual-hosted `<bucket>.oss.test:<proxy port>`) behind the proxy.
async fn start_servers() -> Servers {
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = proxy_listener.local_addr().unwrap().port();
    let auth = Auth {
        key_id: AK,
        secret: SK,
        token: None,
    };
    let s3 = S3::start_behind(auth, port).await;
    let s3_addr = s3.addr;

    let state = Arc::new(ProxyState::default());
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = proxy_listener.accept().await else {
                continue;
            };
            let st = st.clone();
            let svc = hyper::service::service_fn(move |req| proxy(st.clone(), s3_addr, req));
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    Servers { port, s3, state }
}

/// The lake at `oss://lake/<prefix>` through the proxy, configured as `Lake::open_with` does
/// for OSS, with the given retries and timeout, quick backoff, and 5 MiB parts.
fn open_lake(port: u16, prefix: &str, max_retries: usize, timeout: Duration) -> Lake {
    let client = object_store::ClientOptions::new()
        .with_dns_resolver(Arc::new(Loopback))
        .with_timeout(timeout)
        .with_connect_timeout(timeout);
    let oss = OssOptions {
        endpoint: Some(format!("http://oss.test:{port}")),
        region: Some("cn-hangzhou".into()),
        credentials: Some(Credentials {
            key_id: AK.into(),
            secret: SK.into(),
            token: None,
        }),
        client: Some(client.clone()),
    };
    let lake = Lake::open_with(&format!("oss://{BUCKET}/{prefix}"), &oss).unwrap();
    // The same store with retry settings of its own (OssOptions has none: production keeps
    // object_store's defaults, 10 retries over up to 3 minutes).
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_region("cn-hangzhou")
        .with_endpoint(format!("http://{BUCKET}.oss.test:{port}"))
        .with_virtual_hosted_style_request(true)
        .with_access_key_id(AK)
        .with_secret_access_key(SK)
        .with_conditional_put(object_store::aws::S3ConditionalPut::Disabled)
        .with_disable_tagging(true)
        .with_disable_bulk_delete(true)
        .with_client_options(client)
        .with_allow_http(true)
        .with_retry(object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
                base: 2.0,
            },
            max_retries,
            // Room for the attempts `max_retries` allows, even when each one times out.
            retry_timeout: Duration::from_secs(30),
        })
        .build()
        .unwrap();
    lake.map_store(|_| Arc::new(store)).with_part_size(PART)
}

// ---------------------------------------------------------------- the log

struct Log {
    path: PathBuf,
    bytes: Vec<u8>,
    lines: u64,
    rows: u64,
    rejected: u64,
    empty: u64,
}

/// A generated log (seeded), gzipped in [`MEMBERS`] members, each header padded with an FEXTRA
/// subfield of [`PADDING`] seeded bytes: a valid gzip past one part, of a small log.
fn make_log(dir: &Path, seed: u64) -> Log {
    let opts = GenOptions {
        lines: GEN_LINES,
        seed,
        bad_fraction: 0.02,
        ..GenOptions::default()
    };
    let mut text = Vec::new();
    let s = generate(&opts, &mut text).unwrap();
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::new();
    for piece in text.chunks(text.len().div_ceil(MEMBERS)) {
        // One subfield: id "CL", length, data (RFC 1952 2.3.1.1).
        let mut extra = b"CL".to_vec();
        extra.extend_from_slice(&((PADDING - 4) as u16).to_le_bytes());
        extra.extend((0..PADDING - 4).map(|_| rng.next_u64() as u8));
        let mut gz = flate2::GzBuilder::new()
            .extra(extra)
            .write(Vec::new(), flate2::Compression::fast());
        gz.write_all(piece).unwrap();
        bytes.extend(gz.finish().unwrap());
    }
    assert!(
        bytes.len() > PART,
        "{} bytes: not past one part",
        bytes.len()
    );
    let path = dir.join(cdn_file_name(&opts));
    std::fs::write(&path, &bytes).unwrap();
    Log {
        path,
        bytes,
        lines: s.lines,
        rows: s.rows,
        rejected: s.rejected_lines.len() as u64,
        empty: s.empty,
    }
}

// ---------------------------------------------------------------- checks

/// What is wrong with the lake at `prefix` as a complete conversion of `log` (empty: exact).
fn inexact(servers: &Servers, prefix: &str, log: &Log) -> Vec<String> {
    let base = servers.s3.bucket_dir().join(prefix);
    let mut wrong = Vec::new();
    let manifests: Vec<String> = files_under(&base)
        .into_iter()
        .filter(|f| f.starts_with("_manifests/"))
        .collect();
    let [manifest_key] = manifests.as_slice() else {
        return vec![format!("manifests: {manifests:?}")];
    };
    let m: Manifest = match serde_json::from_slice(&std::fs::read(base.join(manifest_key)).unwrap())
    {
        Ok(m) => m,
        Err(e) => return vec![format!("manifest: {e}")],
    };
    if (m.lines, m.rows, m.rejected, m.empty) != (log.lines, log.rows, log.rejected, log.empty) {
        wrong.push(format!(
            "counts {:?} != {:?}",
            (m.lines, m.rows, m.rejected, m.empty),
            (log.lines, log.rows, log.rejected, log.empty)
        ));
    }
    for o in &m.objects {
        match std::fs::metadata(base.join(&o.key)) {
            Ok(md) if md.len() == o.bytes => {}
            Ok(md) => wrong.push(format!("{}: {} bytes, listed {}", o.key, md.len(), o.bytes)),
            Err(_) => wrong.push(format!("{}: missing", o.key)),
        }
    }
    let raw = &m.objects[0].key;
    if std::fs::read(base.join(raw)).ok().as_deref() != Some(&log.bytes[..]) {
        wrong.push(format!("{raw}: not the input byte for byte"));
    }
    let mut rows = 0u64;
    let mut keys = HashSet::new();
    let mut rejects = 0u64;
    for o in &m.objects {
        let path = base.join(&o.key);
        if o.key.starts_with("access/") {
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            let reader =
                match ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()) {
                    Ok(r) => r,
                    Err(e) => {
                        wrong.push(format!("{}: {e}", o.key));
                        continue;
                    }
                };
            for batch in reader {
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        wrong.push(format!("{}: {e}", o.key));
                        break;
                    }
                };
                let src = batch
                    .column_by_name("source_file")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<arrow_array::StringArray>()
                    .unwrap()
                    .clone();
                let line = batch
                    .column_by_name("line_number")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .unwrap()
                    .clone();
                for i in 0..batch.num_rows() {
                    if !keys.insert((src.value(i).to_string(), line.value(i))) {
                        wrong.push(format!("duplicate line {} in {}", line.value(i), o.key));
                    }
                }
                rows += batch.num_rows() as u64;
            }
        } else if o.key.starts_with("rejects/") {
            rejects += std::fs::read(&path)
                .map(|b| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count() as u64)
                .unwrap_or(0);
        }
    }
    if rows != log.rows {
        wrong.push(format!("{rows} rows read back, {} generated", log.rows));
    }
    if rejects != log.rejected {
        wrong.push(format!(
            "{rejects} rejects read back, {} expected",
            log.rejected
        ));
    }
    wrong
}

/// Objects under `prefix` that its manifest does not list (and that are not the manifest).
fn orphans(servers: &Servers, prefix: &str) -> Vec<String> {
    let base = servers.s3.bucket_dir().join(prefix);
    let all = files_under(&base);
    let listed: HashSet<String> = all
        .iter()
        .filter(|f| f.starts_with("_manifests/"))
        .filter_map(|f| serde_json::from_slice::<Manifest>(&std::fs::read(base.join(f)).ok()?).ok())
        .flat_map(|m| m.objects.into_iter().map(|o| o.key))
        .collect();
    all.into_iter()
        .filter(|f| !f.starts_with("_manifests/") && !listed.contains(f))
        .collect()
}

/// Multipart uploads s3s-fs still holds: its bookkeeping in the root folder (`.upload-<id>.json`
/// per upload, `.upload_id-<id>.part-<n>` per part, `….upload-<id>.metadata.json`).
fn open_uploads(servers: &Servers) -> Vec<String> {
    std::fs::read_dir(servers.s3.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload") || n.contains(".upload-"))
        .collect()
}

/// Waits (bounded) until the proxy handles no request: a stall ends within [`STALL`], a
/// forward when s3s answers.
fn settle(state: &ProxyState) {
    let started = Instant::now();
    while state.busy.load(Ordering::SeqCst) > 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------- the runs

#[derive(Default)]
struct Tally {
    runs: usize,
    failed: usize,
    inexact: usize,
    orphans: usize,
    open_uploads: usize,
    not_one_line: usize,
    retry_failed: usize,
    errors: BTreeMap<String, usize>,
    by_kind: BTreeMap<Fault, u64>,
    by_op: BTreeMap<Op, u64>,
}

/// One run: the log's seed, the fault rate, and a fault forced on the first request of a kind.
struct RunPlan {
    seed: u64,
    rate: f64,
    forced: Option<(Op, Fault)>,
}

/// The planned runs with `max_retries`, each followed by a run without faults; prints the
/// one-line summary and returns the tally.
fn campaign(name: &str, plans: &[RunPlan], max_retries: usize) -> Tally {
    // One campaign at a time: two would share the two cores and slow every request.
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let servers = rt.block_on(start_servers());
    // The checks can see an upload left open: start one, look, abort it, look again.
    {
        let lake = open_lake(servers.port, "probe", 0, PATIENT_TIMEOUT);
        let key = lake.key_of("probe.bin");
        let mut upload = rt.block_on(lake.put_multipart(&key)).unwrap();
        rt.block_on(upload.put_part(vec![0u8; 1024].into()))
            .unwrap();
        assert!(
            !open_uploads(&servers).is_empty(),
            "an open upload not seen"
        );
        rt.block_on(upload.abort()).unwrap();
        assert_eq!(open_uploads(&servers), Vec::<String>::new());
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = ConvertOptions::default();
    let mut t = Tally::default();
    let started = Instant::now();
    for (run, plan) in plans.iter().enumerate() {
        let seed = plan.seed;
        let prefix = format!("run{run}");
        let log = make_log(dir.path(), seed);
        servers.state.set_plan(seed, plan.rate, plan.forced);
        let lake = open_lake(servers.port, &prefix, max_retries, CLIENT_TIMEOUT);
        t.runs += 1;
        let result = convert_path(&lake, rt.handle(), &log.path, &opts);
        settle(&servers.state);
        match &result {
            Ok(_) => {
                let wrong = inexact(&servers, &prefix, &log);
                if !wrong.is_empty() {
                    println!("{name} run {run} (seed {seed}): Ok but inexact: {wrong:?}");
                    t.inexact += 1;
                }
                let o = orphans(&servers, &prefix);
                if !o.is_empty() {
                    println!("{name} run {run}: Ok but orphans {o:?}");
                    t.orphans += o.len();
                }
            }
            Err(e) => {
                t.failed += 1;
                let line = e.to_string();
                println!(
                    "{name} run {run} (seed {seed}): failed (retryable: {}): {line}",
                    e.is_retryable()
                );
                if line.contains('\n') || line.trim().is_empty() {
                    println!("{name} run {run} (seed {seed}): error not one line: {line:?}");
                    t.not_one_line += 1;
                }
                // The error's kind, without the run's key and numbers.
                let kind: String = line
                    .split(": ")
                    .next()
                    .unwrap_or("")
                    .split(' ')
                    .next()
                    .unwrap_or("")
                    .to_string();
                *t.errors.entry(kind).or_insert(0) += 1;
            }
        }
        // The same file again, without faults: Ok, exact, nothing left over.
        servers.state.set_plan(seed, 0.0, None);
        let patient = open_lake(servers.port, &prefix, 3, PATIENT_TIMEOUT);
        let retried = convert_path(&patient, rt.handle(), &log.path, &opts);
        settle(&servers.state);
        match retried {
            Ok(_) => {
                let wrong = inexact(&servers, &prefix, &log);
                if !wrong.is_empty() {
                    println!("{name} run {run} (seed {seed}): retry inexact: {wrong:?}");
                    t.inexact += 1;
                }
            }
            Err(e) => {
                println!("{name} run {run} (seed {seed}): retry failed: {e}");
                t.retry_failed += 1;
            }
        }
        let o = orphans(&servers, &prefix);
        if !o.is_empty() {
            println!("{name} run {run} (seed {seed}): orphans after the retry: {o:?}");
            t.orphans += o.len();
        }
        let u = open_uploads(&servers);
        if !u.is_empty() {
            println!("{name} run {run} (seed {seed}): uploads left: {u:?}");
            t.open_uploads += u.len();
            // Count each once: remove them, as the bucket's lifecycle rule would.
            for f in u {
                let _ = std::fs::remove_file(servers.s3.root.path().join(f));
            }
        }
        std::fs::remove_file(&log.path).unwrap();
    }
    let injected = servers.state.injected.lock().unwrap().clone();
    let mut by_kind: BTreeMap<Fault, u64> = BTreeMap::new();
    let mut by_op: BTreeMap<Op, u64> = BTreeMap::new();
    for ((op, f), n) in &injected {
        *by_kind.entry(*f).or_insert(0) += n;
        *by_op.entry(*op).or_insert(0) += n;
    }
    println!(
        "{name}: {} runs with {max_retries} retries in {:.1?}: faults injected {} ({}; on {}), forwarded {}, runs failed {} ({}), runs inexact {}, orphans {}, uploads left {}, errors not one line {}, retries failed {}",
        t.runs,
        started.elapsed(),
        by_kind.values().sum::<u64>(),
        by_kind
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        by_op
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        servers.state.forwarded.load(Ordering::SeqCst),
        t.failed,
        t.errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        t.inexact,
        t.orphans,
        t.open_uploads,
        t.not_one_line,
        t.retry_failed
    );
    t.by_kind = by_kind;
    t.by_op = by_op;
    t
}

fn assert_clean(t: &Tally) {
    assert_eq!(t.inexact, 0, "runs inexact");
    assert_eq!(t.orphans, 0, "orphan objects");
    assert_eq!(t.open_uploads, 0, "multipart uploads left");
    assert_eq!(t.not_one_line, 0, "errors that are not one line");
    assert_eq!(t.retry_failed, 0, "retries without faults that failed");
}

/// Seeded faults at a rate of 0.3 per request, with two retries: most faults are absorbed by
/// object_store's retries; a request that fails all three attempts fails the run.
#[test]
fn seeded_faults_end_exact_or_fail_cleanly() {
    let plans: Vec<RunPlan> = (0..16)
        .map(|run| RunPlan {
            seed: 3000 + run,
            rate: 0.3,
            forced: None,
        })
        .collect();
    let t = campaign("seeded faults", &plans, 2);
    assert_clean(&t);
    // Every kind of fault, on every kind of request, was tried; some runs failed, some not.
    for op in [Op::PutObject, Op::UploadPart, Op::Complete] {
        assert!(
            t.by_op.get(&op).copied().unwrap_or(0) > 0,
            "no fault on {op:?}"
        );
    }
    for f in FAULTS {
        assert!(
            t.by_kind.get(&f).copied().unwrap_or(0) > 0,
            "no {f:?} injected"
        );
    }
    assert!(
        t.failed > 0 && t.failed < t.runs,
        "{} of {} failed",
        t.failed,
        t.runs
    );
}

/// Every kind of fault on every kind of request, once each, with retries off: each run fails
/// (every fault is fatal without a retry), with one line, and the retry repairs the lake.
#[test]
fn each_fault_on_each_request_without_retries() {
    let mut plans = Vec::new();
    for (i, op) in [Op::PutObject, Op::UploadPart, Op::Complete]
        .into_iter()
        .enumerate()
    {
        for (j, f) in FAULTS.into_iter().enumerate() {
            plans.push(RunPlan {
                seed: 5000 + (i * 10 + j) as u64,
                rate: 0.0,
                forced: Some((op, f)),
            });
        }
    }
    let t = campaign("each fault once", &plans, 0);
    assert_clean(&t);
    assert_eq!(t.by_op.values().sum::<u64>(), plans.len() as u64);
    assert_eq!(t.failed, t.runs, "a fault without retries fails its run");
}

/// The reply to CompleteMultipartUpload lost, with retries on: the upload was completed, so the
/// retried request finds no such upload (s3s-fs answers 403, OSS 404 NoSuchUpload), and the run
/// fails although its object is in place; the retry of the run repairs the lake.
#[test]
fn a_lost_complete_reply_then_a_retried_complete() {
    let plans = [RunPlan {
        seed: 6000,
        rate: 0.0,
        forced: Some((Op::Complete, Fault::LostReply)),
    }];
    let t = campaign("lost complete reply", &plans, 2);
    assert_clean(&t);
    assert_eq!(t.by_op.get(&Op::Complete), Some(&1));
}
