//! The integration tests: one binary (one link of the crate), one module per suite, all sharing
//! [`support`] (the fixtures: loopback servers, log makers, folder walkers). The tests of every
//! suite run as threads of this one process, so none may set environment variables, change the
//! working directory or otherwise change process-wide state that another suite reads: variables
//! go to a child `Command`; the one process-wide thing, `fc_serve`'s log capture, only reads.
//!
//! No suite needs a binary of its own. The two that time things serialise their own tests and
//! allow for a busy machine: `crash_safety` times an uninterrupted run just before each kill
//! schedule, and `store_faults`' client timeout leaves room for a loaded machine.

mod support;

mod bad_input;
mod compact;
mod crash_safety;
mod ddl;
mod ddl_duckdb;
mod event_samples;
mod fc_serve;
mod fetch_crc;
mod interop_duckdb;
mod lake_layout;
mod parse_props;
mod report_html;
mod rollups;
mod schema_v1;
mod seaweedfs;
mod store_faults;
mod sync;
mod traffic;
mod verify;
