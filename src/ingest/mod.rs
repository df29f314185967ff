//! Ingest: how work arrives and what an invocation does with it. [`server`] is the Function
//! Compute HTTP contract, [`handler`] runs an invocation's events (shared with `cdnlake handle`),
//! and [`fetch`] downloads a log through the allow-list with resumption. The events themselves
//! are read by [`crate::event`], a pure parser like [`crate::access`].

pub mod fetch;
pub mod handler;
pub mod server;
