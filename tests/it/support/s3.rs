//! The in-process S3 server of the tests: s3s-fs (s3s's file-system backend) over HTTP/1.1 on
//! 127.0.0.1, checking SigV4, and answering the virtual-hosted requests the OSS configuration
//! sends (`<bucket>.oss.test:<port>`; [`Loopback`](super::resolver::Loopback) resolves the name).
//! A wrapper in front of s3s counts the requests and records what OSS would not take
//! ([`S3::violations`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The one bucket the server holds.
pub const BUCKET: &str = "lake";

/// The key pair s3s checks signatures with, and the session token every request must carry
/// (signed) when there is one.
#[derive(Clone, Copy)]
pub struct Auth {
    pub key_id: &'static str,
    pub secret: &'static str,
    pub token: Option<&'static str>,
}

/// A running server (its tasks live on the runtime that started it) and its files.
pub struct S3 {
    /// Where it listens.
    pub addr: SocketAddr,
    /// s3s-fs's root: the bucket folder, and its bookkeeping of multipart uploads.
    pub root: tempfile::TempDir,
    /// Requests that were not virtual-hosted, lacked the signed session token, or carried a
    /// header OSS refuses or ignores (tagging, conditional writes, checksums).
    pub violations: Arc<Mutex<Vec<String>>>,
    pub requests: Arc<Mutex<usize>>,
}

impl S3 {
    /// Starts a server whose clients connect to it directly.
    pub async fn start(auth: Auth) -> S3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        S3::serve(listener, auth, port)
    }

    /// Starts a server behind a proxy listening on `host_port`: requests keep the Host header
    /// they were sent with, so s3s must take that port as its own.
    pub async fn start_behind(auth: Auth, host_port: u16) -> S3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        S3::serve(listener, auth, host_port)
    }

    fn serve(listener: TcpListener, auth: Auth, host_port: u16) -> S3 {
        let addr = listener.local_addr().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(auth.key_id, auth.secret));
        // The Host header carries the port; s3s matches the base domain with it.
        b.set_host(s3s::host::SingleDomain::new(&format!("oss.test:{host_port}")).unwrap());
        let service = b.build();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0usize));
        let (v2, r2) = (violations.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let (service, v, r) = (service.clone(), v2.clone(), r2.clone());
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    *r.lock().unwrap() += 1;
                    let found = violations_of(&req, auth.token);
                    v.lock().unwrap().extend(found);
                    let (service, req) = (service.clone(), req.map(s3s::Body::from));
                    async move { service.call(req).await }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
        S3 {
            addr,
            root,
            violations,
            requests,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }

    /// The objects under `prefix` (key -> bytes), read from s3s-fs's folder; its own
    /// bookkeeping files, next to the objects, are not under a lake's prefix.
    pub fn objects(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        super::walk::tree(&self.bucket_dir())
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect()
    }
}

/// What OSS would not take in `req` (empty: nothing).
fn violations_of(req: &Request<Incoming>, token: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let header = |name: &str| req.headers().get(name).and_then(|h| h.to_str().ok());
    let host = header("host").unwrap_or("");
    if !host.starts_with(&format!("{BUCKET}.oss.test")) {
        out.push(format!("not virtual-hosted: host {host}"));
    }
    if let Some(token) = token {
        let signed = header("authorization").unwrap_or("");
        if header("x-amz-security-token") != Some(token) || !signed.contains("x-amz-security-token")
        {
            out.push(format!(
                "{} {}: session token missing or unsigned",
                req.method(),
                req.uri().path()
            ));
        }
    }
    for bad in [
        "x-amz-tagging",
        "if-match",
        "if-none-match",
        "x-amz-checksum-sha256",
        "x-amz-checksum-crc32",
    ] {
        if req.headers().contains_key(bad) {
            out.push(format!("header {bad} sent"));
        }
    }
    out
}
