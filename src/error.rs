//! The library's one error type. Every variant says which file, key or setting it is about, so
//! the binary can print it as one clear line.

use std::path::PathBuf;

/// Errors of the cdnlake library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The input is empty: not even a gzip header.
    #[error("{file}: empty file")]
    EmptyFile { file: String },

    /// A `.gz` input does not start with the gzip magic bytes.
    #[error("{file}: not a gzip file (first bytes {magic})")]
    NotGzip { file: String, magic: String },

    /// The gzip stream is corrupt or ends early; no manifest is written.
    #[error("{file}: corrupt or truncated gzip after {compressed_bytes} compressed bytes ({decompressed_bytes} decompressed): {source}")]
    Gzip {
        file: String,
        compressed_bytes: u64,
        decompressed_bytes: u64,
        #[source]
        source: std::io::Error,
    },

    /// Reading the source failed (not a decoding problem).
    #[error("{file}: read failed after {bytes} bytes: {source}")]
    Read {
        file: String,
        bytes: u64,
        #[source]
        source: std::io::Error,
    },

    /// The decompressed size passed the configured bound.
    #[error("{file}: decompressed size exceeds the limit of {limit} bytes")]
    TooLarge { file: String, limit: u64 },

    /// Neither the file name nor `--domain` gives the domain.
    #[error("{file}: cannot tell the domain from the file name (expected <domain>_<YYYY>_<MM>_<DD>_<start>_<end>.gz); pass --domain")]
    NoDomain { file: String },

    /// The destination URL is not usable.
    #[error("destination {url}: {reason}")]
    Destination { url: String, reason: String },

    /// An object store operation failed.
    #[error("{op} {key}: {}", one_line(&source.to_string()))]
    Store {
        op: StoreOp,
        key: String,
        #[source]
        source: object_store::Error,
    },

    /// Encoding Parquet failed.
    #[error("writing {key}: {source}")]
    Parquet {
        key: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// A Parquet file of the lake could not be read back (by `report`).
    #[error("reading {key}: {reason}")]
    ReadParquet { key: String, reason: String },

    /// A JSON document (manifest, event) could not be read or written.
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A setting has a value that cannot be used.
    #[error("invalid {setting} {value:?}: {reason}")]
    Config {
        setting: &'static str,
        value: String,
        reason: String,
    },

    /// A CDN event is malformed: which element of `events` (when known) and which field.
    #[error("{}: {reason}", event_at(*index, field))]
    Event {
        index: Option<usize>,
        field: String,
        reason: String,
    },

    /// Fetching a log over HTTP failed. `url` never holds the signed query. `retryable`: the
    /// download gave up after retrying failures that may pass (connection errors, 5xx), as
    /// opposed to an answer that will not change (404, a changed object, a size mismatch).
    #[error("GET {url}: {reason}")]
    Http {
        url: String,
        reason: String,
        retryable: bool,
    },

    /// The invocation request itself could not be read (the client went away mid-body).
    #[error("reading the request: {reason}")]
    Request { reason: String },

    /// An Alibaba Cloud API request signature (ACS3-HMAC-SHA256) could not be made or did not
    /// verify: which part of the request, and why. Never holds a secret or a valid signature.
    #[error("ACS3 signature: {reason}")]
    Signature { reason: String },

    /// An Alibaba Cloud API call (the CDN's `DescribeCdnDomainLogs`, FC's `InvokeFunction`)
    /// failed: the operation, the endpoint, and what the service answered (HTTP status, its
    /// error code and message, its request id for a support ticket). `retryable`: the failure
    /// may pass (throttling, 5xx, a connection error) and was already retried as long as made
    /// sense.
    #[error("{action} at {endpoint}: {reason}")]
    Api {
        action: String,
        endpoint: String,
        reason: String,
        retryable: bool,
    },

    /// A sync did not leave the lake complete: files that failed, domains that could not be
    /// listed (the first failure in full).
    #[error("sync incomplete: {reason}")]
    SyncIncomplete { reason: String },

    /// A URL was refused before any connection (scheme, host not on the allow-list, redirect).
    #[error("refused {url}: {reason}")]
    Refused { url: String, reason: String },

    /// Several events of one invocation failed.
    #[error("{failed} of {total} events failed; first: {first}")]
    EventsFailed {
        failed: usize,
        total: usize,
        first: Box<Error>,
    },

    /// An access batch handed to the traffic rollup does not fit it (a programming error between
    /// the access schema and the rollup, reported rather than panicking).
    #[error("traffic rollup: column {column}: {reason}")]
    Rollup {
        column: &'static str,
        reason: &'static str,
    },

    /// Reading stopped because a later stage (parsing, writing) failed; that stage's error is the
    /// one reported.
    #[error("{file}: reading stopped because a later stage failed")]
    Cancelled { file: String },

    /// The run was stopped from outside: the client that asked for it went away, or the server
    /// is shutting down. Its uploads were aborted; nothing of it is visible.
    #[error("{file}: stopped: the invocation was cancelled (client gone or server shutting down)")]
    Interrupted { file: String },

    /// A file of the lake cannot be converted again from its raw dump (`verify --repair`,
    /// `rebuild`): the raw dump is missing or not the one the manifest records, or the manifest
    /// does not say where it is.
    #[error("{file}: cannot convert again from {key}: {reason}")]
    Reconvert {
        file: String,
        key: String,
        reason: String,
    },

    /// A setting given to a writing run contradicts the lake's own (its `_cdnlake.json`, see
    /// [`crate::lake::descriptor`]): a lake keeps one partitioning for all its files.
    #[error("{url}: {setting} {given} contradicts the lake, which has {lake} ({whence}); a lake keeps its partitioning: drop the setting or write to another destination")]
    LakeSettings {
        url: String,
        setting: &'static str,
        lake: String,
        given: String,
        whence: String,
    },

    /// A worker thread stopped unexpectedly (a bug, reported rather than propagated as a panic).
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a store request was doing when it failed: part of the message, and of whether the
/// failure is worth a retry ([`Error::is_retryable`] decides on this, never on message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Read,
    ReadFooter,
    Write,
    Delete,
    List,
    Head,
    /// The rename of a staged object into place (local destinations).
    Publish,
    Upload,
    /// Completing a multipart upload: a lost reply makes the store answer "no such upload" to
    /// the client's retry although the object may be complete, so it is retryable.
    CompleteUpload,
    UploadRawDump,
    UploadRejects,
}

impl std::fmt::Display for StoreOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreOp::Read => "read",
            StoreOp::ReadFooter => "read footer of",
            StoreOp::Write => "write",
            StoreOp::Delete => "delete",
            StoreOp::List => "list",
            StoreOp::Head => "head",
            StoreOp::Publish => "publish",
            StoreOp::Upload => "upload",
            StoreOp::CompleteUpload => "complete upload of",
            StoreOp::UploadRawDump => "upload raw dump to",
            StoreOp::UploadRejects => "upload rejects to",
        })
    }
}

impl Error {
    /// Whether the same work, tried again later, may succeed: the store or the network failed
    /// in a way that passes (a 5xx, a reset, a timeout), not the input or the settings. `serve`
    /// reports it with each failure, so a caller can tell one worth retrying from one to fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Request { .. } | Error::Interrupted { .. } => true,
            // A download that failed says whether it may pass; a local read error may.
            Error::Read { source, .. } => source
                .get_ref()
                .and_then(|e| e.downcast_ref::<ReadFailure>())
                .is_none_or(|f| f.retryable),
            Error::Http { retryable, .. } => *retryable,
            Error::Api { retryable, .. } => *retryable,
            Error::SyncIncomplete { .. } => true,
            // A completion whose reply was lost is retried by the client, and the store then
            // answers that the upload is gone (404, or 403 on some stores): the object may well
            // be complete. Running the file again is what fixes it.
            Error::Store {
                op: StoreOp::CompleteUpload,
                source,
                ..
            } => !matches!(source, object_store::Error::Unauthenticated { .. }),
            Error::Store { source, .. } => !matches!(
                source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. }
                    | object_store::Error::NotModified { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            Error::EventsFailed { first, .. } => first.is_retryable(),
            _ => false,
        }
    }
}

/// `events[1].eventParameter.fileSize`, `events[0]`, `events`, or `event` for the whole body.
fn event_at(index: Option<usize>, field: &str) -> String {
    match (index, field.is_empty()) {
        (Some(i), true) => format!("events[{i}]"),
        (Some(i), false) => format!("events[{i}].{field}"),
        (None, true) => "event".to_string(),
        (None, false) => field.to_string(),
    }
}

/// A download failure carried through `Read` (whose errors are `std::io::Error`), keeping
/// whether it may pass: [`Error::is_retryable`] looks for it under an [`Error::Read`].
#[derive(Debug)]
pub struct ReadFailure {
    pub reason: String,
    /// The failure may pass (the same word as [`Error::is_retryable`]).
    pub retryable: bool,
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ReadFailure {}

/// A message on one line. object_store puts the server's error document in its message, and S3
/// and OSS send that document over several lines (S3 breaks the line after the XML declaration,
/// OSS indents each element on a line of its own); a failed upload then printed as several lines
/// on `cdnlake: error:` and in logs (found by tests/it/store_faults.rs). Text already on one line
/// is returned as it is.
pub fn one_line(text: &str) -> String {
    if text.contains(['\n', '\r']) {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        text.to_string()
    }
}

/// A reqwest error as one line with its causes (each said once), without the URL: a log URL
/// carries its signature in the query, and an API URL needs no repeating.
pub(crate) fn http_error_line(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    msg
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_is_told_from_permanent() {
        let store = |source| Error::Store {
            op: StoreOp::Write,
            key: "k".into(),
            source,
        };
        let generic = object_store::Error::Generic {
            store: "S3",
            source: "503 Slow Down".into(),
        };
        assert!(store(generic).is_retryable());
        let missing = object_store::Error::NotFound {
            path: "k".into(),
            source: "404".into(),
        };
        assert!(!store(missing).is_retryable());
        // A completion whose lost reply was retried finds the upload gone: running again fixes it.
        let gone = Error::Store {
            op: StoreOp::CompleteUpload,
            key: "k".into(),
            source: object_store::Error::NotFound {
                path: "k".into(),
                source: "NoSuchUpload".into(),
            },
        };
        assert!(gone.is_retryable());
        let http = |retryable| Error::Http {
            url: "u".into(),
            reason: "r".into(),
            retryable,
        };
        assert!(http(true).is_retryable());
        assert!(!http(false).is_retryable());
        let event = Error::Event {
            index: Some(0),
            field: "eventTime".into(),
            reason: "missing".into(),
        };
        assert!(!event.is_retryable());
        let all = Error::EventsFailed {
            failed: 2,
            total: 3,
            first: Box::new(http(true)),
        };
        assert!(all.is_retryable());
    }
}
