//! The log server of the tests: serves CDN log files over HTTP/1.1 on loopback, plain (as the
//! signed OSS URLs of events are fetched by `cdnlake handle`/`serve`) or over TLS with a test CA
//! (as `cdnlake sync` fetches the CDN API's `LogPath`), with the faults a download must survive
//! or refuse chosen by the URL path ([`LogServer`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Pieces `/slow/F` sends its body in, [`SLOW_PAUSE`] apart.
pub const SLOW_PIECES: usize = 12;
/// Bytes `/trickle/F` sends per connection.
pub const TRICKLE: usize = 3;
pub const SLOW_PAUSE: Duration = Duration::from_millis(150);

/// (path, Range header) of a request.
pub type Seen = (String, Option<String>);

/// A minimal HTTP/1.1 log server (one request per connection, every request recorded) with
/// fault injection by path `/<mode>/F`, F a name in its files (a path whose first component is
/// no mode is served whole, as `ok`):
/// `/ok/F`, `/drop/F` (first response cut after half the body), `/flaky/F` (503 twice),
/// `/lie/F` (Content-Length 100 bytes too large, then close), `/redirect/F` (302 to
/// `localhost`, another host name for the same server), `/slow/F` (the body trickled in
/// [`SLOW_PIECES`] pieces, [`SLOW_PAUSE`] apart), `/chunkdrop/F` (chunked, closed before the
/// terminating chunk), `/noetag206/F` (cut like `drop`, the resumed 206 without ETag),
/// `/changed/F` (cut like `drop`, then a new ETag), `/self/F` (302 to the same origin),
/// `/toport-P/F` (302 to port P of the same host), `/trickle/F` (every response cut after
/// [`TRICKLE`] bytes). OSS's `x-oss-hash-crc64ecma` (CRC-64 of the whole object, on 206s too) is
/// announced by `/crc/F` (the true one), `/badcrc/F` (the true one + 1), `/crcdrop/F` (true;
/// cut like `drop`) and `/crcchanged/F` (cut like `drop`, and the resumed 206 announces another
/// one). A range starting at or past the end gets 416 with `bytes */<size>`; an If-Range that
/// is not the current ETag gets the whole object (200).
pub struct LogServer {
    pub addr: SocketAddr,
    pub state: Arc<LogState>,
}

/// What a [`LogServer`] serves and what it saw; a test may change the files as it goes.
#[derive(Default)]
pub struct LogState {
    /// Name (the URL path without its mode and leading `/`) -> bytes.
    pub files: Mutex<HashMap<String, Vec<u8>>>,
    /// Names answered 404 for now.
    pub broken: Mutex<HashSet<String>>,
    /// Wait before each answer (to catch a run in the middle).
    pub delay: Mutex<Duration>,
    /// (path, Range header) of every request.
    pub seen: Mutex<Vec<Seen>>,
    /// (path, If-Range header) of every request.
    pub if_ranges: Mutex<Vec<Seen>>,
}

/// The fault modes, the first component of a URL path; a path starting with anything else is
/// served as `ok`, whole (so `/<domain>/<date>/<file>` is the name `<domain>/<date>/<file>`).
const MODES: [&str; 15] = [
    "ok",
    "drop",
    "flaky",
    "lie",
    "redirect",
    "slow",
    "chunkdrop",
    "noetag206",
    "changed",
    "self",
    "trickle",
    "crc",
    "badcrc",
    "crcdrop",
    "crcchanged",
];

impl LogServer {
    /// Serves `files` (name -> bytes) over HTTP on 127.0.0.1, from tasks of the current runtime.
    pub async fn start(files: HashMap<String, Vec<u8>>) -> LogServer {
        LogServer::listen(files, None).await
    }

    /// Serves no file yet (see [`LogState::files`]) over **TLS** on 127.0.0.1, with `ca`'s
    /// certificate for 127.0.0.1, as the CDN's log bucket serves `https` (the CDN API's
    /// `LogPath` has no scheme, which means https).
    pub async fn start_tls(ca: &TestCa) -> LogServer {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        cdnlake::tls::ensure_provider();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.cert_pem)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(&ca.key_pem).unwrap();
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        LogServer::listen(HashMap::new(), Some(acceptor)).await
    }

    async fn listen(
        files: HashMap<String, Vec<u8>>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> LogServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(LogState {
            files: Mutex::new(files),
            ..LogState::default()
        });
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (st, tls) = (st.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve_log(tcp, addr, &st).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve_log(stream, addr, &st).await;
                            }
                        }
                    }
                });
            }
        });
        LogServer { addr, state }
    }

    /// The `LogPath` of `path` as the CDN API gives it: no scheme, a signed query.
    pub fn log_path(&self, path: &str) -> String {
        format!(
            "{}{path}?OSSAccessKeyId=LTAIlog&Expires=1900000000&Signature=SIGNED%2Bsecret",
            self.addr
        )
    }
}

/// Answers one request on `sock`, then closes it (for TLS, with a close_notify).
async fn serve_log<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    addr: SocketAddr,
    state: &LogState,
) {
    let _ = answer(&mut sock, addr, state).await;
    let _ = sock.shutdown().await;
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    addr: SocketAddr,
    state: &LogState,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if sock.read(&mut b).await? == 0 {
            return Ok(());
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let header = |name: &str| {
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|l| l[name.len() + 1..].trim().to_string())
    };
    let range = header("range");
    let if_range = header("if-range");
    state
        .if_ranges
        .lock()
        .unwrap()
        .push((path.clone(), if_range.clone()));
    let count = {
        let mut s = state.seen.lock().unwrap();
        s.push((path.clone(), range.clone()));
        s.iter().filter(|(p, _)| *p == path).count()
    };
    let rel = path.trim_start_matches('/');
    let (mode, file) = match rel.split_once('/') {
        Some((m, f)) if MODES.contains(&m) || m.starts_with("toport-") => (m, f),
        _ => ("ok", rel),
    };
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let data = match state.files.lock().unwrap().get(file) {
        Some(data) if !state.broken.lock().unwrap().contains(file) => Some(data.clone()),
        _ => None,
    };
    let Some(data) = data else {
        sock.write_all(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nNoSuchKey",
        )
        .await?;
        return Ok(());
    };
    // `/changed/F` is replaced after the first request: a new ETag.
    let etag = if mode == "changed" && count > 1 {
        "\"v2\""
    } else {
        "\"v1\""
    };
    // If-Range naming another version: the whole (current) object, as RFC 9110 says.
    let start: usize = range
        .as_deref()
        .filter(|_| if_range.as_deref().is_none_or(|v| v == etag))
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    if mode == "flaky" && count <= 2 {
        sock.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await?;
        return Ok(());
    }
    let redirect_to = match mode {
        "redirect" => Some(format!("http://localhost:{}/ok/{file}", addr.port())),
        "self" => Some(format!("http://127.0.0.1:{}/ok/{file}", addr.port())),
        m => m
            .strip_prefix("toport-")
            .map(|port| format!("http://127.0.0.1:{port}/ok/{file}")),
    };
    if let Some(to) = redirect_to {
        sock.write_all(format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes()).await?;
        return Ok(());
    }
    if start >= data.len() && start > 0 {
        sock.write_all(
            format!("HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", data.len()).as_bytes(),
        )
        .await?;
        return Ok(());
    }
    let crc = match mode {
        "crc" | "crcdrop" => Some(crc64_xz(&data)),
        "badcrc" => Some(crc64_xz(&data).wrapping_add(1)),
        "crcchanged" if start > 0 => Some(crc64_xz(&data) ^ 0xFF),
        "crcchanged" => Some(crc64_xz(&data)),
        _ => None,
    };
    let crc_line = crc
        .map(|c| format!("x-oss-hash-crc64ecma: {c}\r\n"))
        .unwrap_or_default();
    let body = &data[start..];
    let (status, extra) = if start > 0 {
        (
            "206 Partial Content",
            format!(
                "content-range: bytes {start}-{}/{}\r\n",
                data.len() - 1,
                data.len()
            ),
        )
    } else {
        ("200 OK", String::new())
    };
    if mode == "chunkdrop" {
        // Chunked, every data chunk sent, then the connection closed before the terminating
        // `0` chunk: the client has all bytes but never saw the end of the body.
        sock.write_all(format!("HTTP/1.1 {status}\r\ntransfer-encoding: chunked\r\netag: {etag}\r\naccept-ranges: bytes\r\n{extra}connection: close\r\n\r\n").as_bytes()).await?;
        for piece in body.chunks(4096) {
            sock.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await?;
            sock.write_all(piece).await?;
            sock.write_all(b"\r\n").await?;
        }
        sock.flush().await?;
        return Ok(());
    }
    let declared = if mode == "lie" {
        body.len() + 100
    } else {
        body.len()
    };
    // `/noetag206/F`: the resumed 206 does not say which version it is.
    let etag_line = if mode == "noetag206" && start > 0 {
        String::new()
    } else {
        format!("etag: {etag}\r\n")
    };
    sock.write_all(
        format!("HTTP/1.1 {status}\r\ncontent-length: {declared}\r\n{etag_line}{crc_line}accept-ranges: bytes\r\n{extra}connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    if mode == "slow" {
        // Trickled: SLOW_PIECES pieces, each after a pause shorter than the read timeout.
        for piece in body.chunks(body.len().div_ceil(SLOW_PIECES)) {
            tokio::time::sleep(SLOW_PAUSE).await;
            sock.write_all(piece).await?;
            sock.flush().await?;
        }
        return Ok(());
    }
    if mode == "trickle" {
        sock.write_all(&body[..TRICKLE.min(body.len())]).await?;
        sock.flush().await?;
        return Ok(()); // every connection closed after a few bytes
    }
    if matches!(
        mode,
        "drop" | "noetag206" | "changed" | "crcdrop" | "crcchanged"
    ) && count == 1
    {
        sock.write_all(&body[..body.len() / 2]).await?;
        sock.flush().await?;
        return Ok(()); // connection closed mid-body
    }
    sock.write_all(body).await?;
    sock.flush().await?;
    Ok(())
}

/// CRC-64/XZ, bit by bit, as OSS documents `x-oss-hash-crc64ecma` (ECMA-182 polynomial,
/// reflected, init and xorout all ones): an implementation independent of the one under test.
pub fn crc64_xz(data: &[u8]) -> u64 {
    const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;
    let mut crc = u64::MAX;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A test CA and a certificate for 127.0.0.1 it signs, made with the `openssl` command.
pub struct TestCa {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

pub fn make_ca(dir: &Path) -> TestCa {
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cdnlake test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    TestCa {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("leaf.pem"),
        key_pem: dir.join("leaf.key"),
    }
}
