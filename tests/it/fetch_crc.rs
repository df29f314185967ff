//! Download integrity end to end: a loopback log server sends OSS's `x-oss-hash-crc64ecma` with a
//! small gzip log, and `handle_events` converts it into a lake in a temporary folder only when
//! the CRC-64 of the bytes received (across a resume, too) is the one announced. A wrong one
//! fails the event without a manifest, like a size mismatch.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{gzip, log_text};
use cdnlake::event::parse_strict;
use cdnlake::ingest::fetch::{AllowList, HttpOptions};
use cdnlake::ingest::handler::{handle_events, HandlerOptions, InvocationReport};
use cdnlake::lake::store::Lake;

const NAME: &str = "www.example.com_2015_06_09_0100_0300.gz";
const LINES: usize = 500;

/// CRC-64/XZ, bit by bit, as OSS documents `x-oss-hash-crc64ecma` (ECMA-182 polynomial,
/// reflected, init and xorout all ones): an implementation independent of the one under test.
fn crc64_xz(data: &[u8]) -> u64 {
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

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1 serving one gzip file under
/// several behaviours, by path prefix:
/// `/right/F` (the true CRC), `/wrong/F` (the true CRC + 1), `/drop/F` (true CRC; the first
/// response is cut after half the body, the `Range` resume answered with a 206),
/// `/changed/F` (cut like `drop`, and the 206 announces another CRC).
fn start_server(file: Arc<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let file = file.clone();
            std::thread::spawn(move || {
                let _ = serve(sock, &file);
            });
        }
    });
    addr
}

fn serve(mut sock: TcpStream, file: &[u8]) -> std::io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(sock.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("");
    let behaviour = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let crc = crc64_xz(file);
    let announced = match behaviour {
        "wrong" => crc.wrapping_add(1),
        _ => crc,
    };
    let total = file.len();
    let start = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match (behaviour, start) {
        ("drop" | "changed", Some(start)) if start < total => {
            let announced = if behaviour == "changed" {
                crc ^ 0xFF
            } else {
                crc
            };
            write!(
                sock,
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{total}\r\nETag: \"e1\"\r\nx-oss-hash-crc64ecma: {announced}\r\nConnection: close\r\n\r\n",
                total - start,
                total - 1
            )?;
            sock.write_all(&file[start..])?;
        }
        ("drop" | "changed", None) => {
            write!(
                sock,
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nETag: \"e1\"\r\nx-oss-hash-crc64ecma: {announced}\r\nConnection: close\r\n\r\n"
            )?;
            sock.write_all(&file[..total / 2])?;
            // Closed here: the body is cut short, and the client resumes.
        }
        ("right" | "wrong", None) => {
            write!(
                sock,
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nETag: \"e1\"\r\nx-oss-hash-crc64ecma: {announced}\r\nConnection: close\r\n\r\n"
            )?;
            sock.write_all(file)?;
        }
        _ => write!(
            sock,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    sock.flush()
}

/// Runs one `LogFileCreated` event for `http://<addr>/<behaviour>/NAME` into a new lake in `dir`.
fn run(addr: SocketAddr, behaviour: &str, size: usize, dir: &Path) -> InvocationReport {
    let body = format!(
        r#"{{"events":[{{"eventName":"LogFileCreated","eventSource":"cdn","region":"cn-hangzhou","eventVersion":"1.0.0","eventTime":"2015-06-09T03:05:00+08:00","traceId":"crc-{behaviour}","resource":{{"domain":"www.example.com"}},"eventParameter":{{"domain":"www.example.com","filePath":"http://{addr}/{behaviour}/{NAME}?OSSAccessKeyId=AK&Expires=1&Signature=SIG","fileSize":{size},"startTime":1433782800,"endTime":1433790000}}}}]}}"#
    );
    let events = parse_strict(body.as_bytes()).expect("event parses");
    let lake = Lake::open(dir.to_str().expect("utf-8 temp path")).expect("open lake");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let opts = HandlerOptions {
        allow: AllowList::from_patterns(["127.0.0.1"]).expect("allow-list"),
        http: HttpOptions {
            backoff: Duration::from_millis(20),
            read_timeout: Duration::from_secs(10),
            ..HttpOptions::default()
        },
        ..HandlerOptions::default()
    };
    let (report, result) = handle_events(&lake, rt.handle(), &events, &opts);
    assert_eq!(report.failed == 0, result.is_ok(), "{report:?} {result:?}");
    if let Err(e) = &result {
        // A corrupt download will not pass by retrying: FC is told not to bother.
        assert!(!e.is_retryable(), "{e}");
    }
    report
}

fn manifest(dir: &Path) -> std::path::PathBuf {
    dir.join("_manifests/www.example.com/2015_06_09/www.example.com_2015_06_09_0100_0300.json")
}

#[test]
fn the_announced_crc64_is_checked() {
    let file = Arc::new(gzip(&log_text(LINES)));
    let addr = start_server(file.clone());
    let size = file.len();

    // The right checksum, in one response and across a resume: the file is converted.
    for behaviour in ["right", "drop"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run(addr, behaviour, size, dir.path());
        let ev = &report.reports[0];
        assert_eq!(ev.error, None, "{behaviour}: {report:?}");
        let log = ev.log.as_ref().expect("a log run");
        assert_eq!(log.lines, LINES as u64, "{behaviour}");
        assert_eq!(log.rows + log.rejected, LINES as u64, "{behaviour}");
        assert_eq!(log.bytes_in, size as u64, "{behaviour}");
        assert!(manifest(dir.path()).is_file(), "{behaviour}: no manifest");
        let raw = std::fs::read(dir.path().join("raw/www.example.com/2015_06_09").join(NAME))
            .expect("raw dump");
        assert_eq!(raw, *file, "{behaviour}: raw dump differs");
        let retries = ev.http_retries.unwrap_or_default();
        assert_eq!(
            retries > 0,
            behaviour == "drop",
            "{behaviour}: {retries} retries"
        );
    }

    // A wrong checksum, or one that changes on the resume: the event fails, nothing of the log
    // becomes visible, and the message says why without the signed query.
    for (behaviour, expect) in [
        ("wrong", "the download is corrupt"),
        (
            "changed",
            "object changed while downloading (x-oss-hash-crc64ecma",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run(addr, behaviour, size, dir.path());
        assert_eq!(report.failed, 1, "{behaviour}: {report:?}");
        let error = report.reports[0].error.clone().unwrap_or_default();
        assert!(error.contains(expect), "{behaviour}: {error}");
        assert!(error.contains(&format!("/{behaviour}/{NAME}")), "{error}");
        assert!(
            !error.contains("SIG") && !error.contains("OSSAccessKeyId"),
            "{error}"
        );
        assert!(
            !manifest(dir.path()).exists(),
            "{behaviour}: manifest written"
        );
        for folder in ["_manifests", "access", "raw", "traffic", "rejects"] {
            assert!(
                !dir.path().join(folder).exists(),
                "{behaviour}: {folder}/ written"
            );
        }
        // The event itself is kept, as for any failed run.
        assert!(dir.path().join("audit/events").is_dir(), "{behaviour}");
    }
}

#[test]
fn reference_crc64_matches_the_published_check_value() {
    // CRC-64/XZ check value, so the server above announces what OSS would.
    assert_eq!(crc64_xz(b"123456789"), 0x995D_C9BB_DF19_39FA);
}
