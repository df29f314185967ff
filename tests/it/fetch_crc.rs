//! Download integrity end to end: a loopback log server sends OSS's `x-oss-hash-crc64ecma` with a
//! small gzip log, and `handle_events` converts it into a lake in a temporary folder only when
//! the CRC-64 of the bytes received (across a resume, too) is the one announced. A wrong one
//! fails the event without a manifest, like a size mismatch.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::support::logserver::{crc64_xz, LogServer};
use crate::support::{gzip, log_text};
use cdnlake::event::parse_strict;
use cdnlake::ingest::fetch::{AllowList, HttpOptions};
use cdnlake::ingest::handler::{handle_events, HandlerOptions, InvocationReport};
use cdnlake::lake::store::Lake;

const NAME: &str = "www.example.com_2015_06_09_0100_0300.gz";
const LINES: usize = 500;

/// Runs one `LogFileCreated` event for `http://<addr>/<behaviour>/NAME` into a new lake in `dir`.
fn run(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    behaviour: &str,
    size: usize,
    dir: &Path,
) -> InvocationReport {
    let body = format!(
        r#"{{"events":[{{"eventName":"LogFileCreated","eventSource":"cdn","region":"cn-hangzhou","eventVersion":"1.0.0","eventTime":"2015-06-09T03:05:00+08:00","traceId":"crc-{behaviour}","resource":{{"domain":"www.example.com"}},"eventParameter":{{"domain":"www.example.com","filePath":"http://{addr}/{behaviour}/{NAME}?OSSAccessKeyId=AK&Expires=1&Signature=SIG","fileSize":{size},"startTime":1433782800,"endTime":1433790000}}}}]}}"#
    );
    let events = parse_strict(body.as_bytes()).expect("event parses");
    let lake = Lake::open(dir.to_str().expect("utf-8 temp path")).expect("open lake");
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
    let file = gzip(&log_text(LINES));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(LogServer::start(HashMap::from([(
        NAME.to_string(),
        file.clone(),
    )])));
    let addr = server.addr;
    let size = file.len();

    // The right checksum, in one response and across a resume: the file is converted.
    for behaviour in ["crc", "crcdrop"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run(&rt, addr, behaviour, size, dir.path());
        let ev = &report.reports[0];
        assert_eq!(ev.error, None, "{behaviour}: {report:?}");
        let log = ev.log.as_ref().expect("a log run");
        assert_eq!(log.lines, LINES as u64, "{behaviour}");
        assert_eq!(log.rows + log.rejected, LINES as u64, "{behaviour}");
        assert_eq!(log.bytes_in, size as u64, "{behaviour}");
        assert!(manifest(dir.path()).is_file(), "{behaviour}: no manifest");
        let raw = std::fs::read(dir.path().join("raw/www.example.com/2015_06_09").join(NAME))
            .expect("raw dump");
        assert_eq!(raw, file, "{behaviour}: raw dump differs");
        let retries = ev.http_retries.unwrap_or_default();
        assert_eq!(
            retries > 0,
            behaviour == "crcdrop",
            "{behaviour}: {retries} retries"
        );
    }

    // A wrong checksum, or one that changes on the resume: the event fails, nothing of the log
    // becomes visible, and the message says why without the signed query.
    for (behaviour, expect) in [
        ("badcrc", "the download is corrupt"),
        (
            "crcchanged",
            "object changed while downloading (x-oss-hash-crc64ecma",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run(&rt, addr, behaviour, size, dir.path());
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
    // CRC-64/XZ check value, so the log server announces what OSS would.
    assert_eq!(crc64_xz(b"123456789"), 0x995D_C9BB_DF19_39FA);
}
