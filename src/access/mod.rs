//! Access logs, pure: the line parser, times, file names, block parsing into Arrow batches.
//! No I/O here: bytes in, batches and rejections out, so it is tested, fuzzed and benchmarked
//! alone.

pub mod block;
pub(crate) mod builder;
pub mod filename;
pub mod parse;
/// The crate's one module of `unsafe` code: SSE2 intrinsics for the byte searches of the
/// per-line hot path, each block with a `SAFETY` comment (checked by
/// `clippy::undocumented_unsafe_blocks`) and an exhaustive test against a plain search. The one
/// other `unsafe` block is `builder`'s string column finish (arrays without re-validating the
/// `&str`s they were built from; debug builds, so the tests, do validate).
#[allow(unsafe_code)]
pub(crate) mod scan;
pub mod time;
