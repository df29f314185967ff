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
    #[error("{op} {key}: {source}")]
    Store {
        op: &'static str,
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

    /// Fetching a log over HTTP failed. `url` never holds the signed query.
    #[error("GET {url}: {reason}")]
    Http { url: String, reason: String },

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

    /// A worker thread stopped unexpectedly (a bug, reported rather than propagated as a panic).
    #[error("internal error: {0}")]
    Internal(String),
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

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
