//! # cdnlake
//!
//! Turns Alibaba Cloud CDN offline access logs into a hive-partitioned Parquet data lake that
//! DuckDB and MaxCompute query directly.
//!
//! ## The flow of one log file
//!
//! ```text
//!  source ──┬──> raw dump (byte for byte)
//!           └──> gunzip (all members) ──> line-aligned blocks ──> parse in parallel (rayon)
//!                 ──> per-partition Parquet writers ──> rejects ──> manifest (last)
//! ```
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
//! use cdnlake::{lake::store::Lake, pipeline::{convert_path, ConvertOptions}};
//! let rt = tokio::runtime::Runtime::new()?;
//! let lake = Lake::open("./lake")?;
//! let report = convert_path(&lake, rt.handle(), "sample_logs/x.gz".as_ref(), &ConvertOptions::default())?;
//! println!("{} rows, {} rejected", report.rows, report.rejected);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod access;
pub mod audit;
pub mod bench;
pub mod ddl;
pub mod error;
pub mod event;
pub mod gen;
pub mod handler;
pub mod html;
pub mod http;
pub mod lake;
pub mod pipeline;
pub mod report;
pub mod server;
pub mod source;
pub mod table;
pub mod top;
pub mod traffic;

pub use error::{Error, Result};
