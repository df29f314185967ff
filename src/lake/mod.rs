//! The lake: destinations, object keys, and the writers of each kind of object.

pub mod layout;
pub mod manifest;
pub mod parquet;
pub mod rejects;
pub mod store;
