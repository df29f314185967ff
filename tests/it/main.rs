//! The integration tests: one binary (one link of the crate), one module per suite, all sharing
//! [`support`] (the fixtures: loopback servers, log makers, folder walkers). The tests of every
//! suite run as threads of this one process, so none may set environment variables, change the
//! working directory or otherwise change process-wide state that another suite reads.

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
mod seaweedfs;
mod store_faults;
mod sync;
mod traffic;
mod verify;
