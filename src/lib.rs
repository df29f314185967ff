//! # cdnlake
//!
//! Turns Alibaba Cloud CDN offline access logs into a hive-partitioned Parquet data lake that
//! DuckDB and MaxCompute query directly.
//!
//! ## The flow of one log file
//!
//! ```text
//!  ingest (FC server, event file) ─> fetch (allow-list, resumable GET)
//!    ─> convert: tee ──┬──> raw dump (byte for byte)
//!                      └──> gunzip (all members) ──> line-aligned blocks
//!                            ──> access: parse in parallel (rayon), pure; block sketches
//!                            ──> writers: access by partition hour, traffic rollups, heavy
//!                                hitters and distinct-IP sketches, rejects
//!    ─> lake: stage every object, publish them, manifest last
//! ```
//!
//! Modules follow that path: [`ingest`], [`convert`], [`access`], [`writers`], [`lake`]; the
//! tables' columns are defined once in [`tables`]; [`sketch`] holds the mergeable summaries
//! the rollups store; [`query`] is the read side (`report`, DDL; per day, a compacted day or
//! the files' rollups); [`compact`] merges each finished day's rollups into one object per
//! table; [`dev`] holds the generator and the benchmark. Lower layers never import higher ones. The
//! design (formats, keys, the FC contract) is in `docs/design.md`.
//!
//! ## Guarantees
//!
//! - **Nothing lost**: every line becomes a row or a reject record;
//!   `lines = rows + rejected + empty`, and the manifest says so.
//! - **Idempotent**: every key derives from the source's identity, so a re-run rewrites the same
//!   objects, and removes the ones it no longer writes.
//! - **Nothing half-done marked done**: uploads are committed only once the whole input is read
//!   and verified; a truncated or corrupt gzip leaves the lake as it was and writes no manifest.
//!   The commit itself (a handful of objects, then the manifest) is not atomic across objects: a
//!   store failure in that short step can leave new objects without a manifest, which a retry
//!   replaces.
//! - **Bounded memory**: the file is streamed once in blocks; nothing holds it whole.
//!
//! ## Example
//!
//! ```no_run
//! use cdnlake::{convert::{convert_path, ConvertOptions}, lake::store::Lake};
//! let rt = tokio::runtime::Runtime::new()?;
//! let lake = Lake::open("./lake")?;
//! let report = convert_path(&lake, rt.handle(), "sample_logs/x.gz".as_ref(), &ConvertOptions::default())?;
//! println!("{} rows, {} rejected", report.rows, report.rejected);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod access;
pub mod cloud;
pub mod compact;
pub mod convert;
pub mod dev;
pub mod error;
pub mod event;
pub mod ingest;
pub mod lake;
pub mod query;
pub mod repair;
pub mod sketch;
pub mod sync;
pub mod tables;
pub mod tls;
pub mod writers;

pub use error::{Error, Result};
