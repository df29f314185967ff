//! Access logs: the line parser, times, file names, the table schema, block parsing.

pub mod block;
pub mod filename;
pub mod parse;
pub mod scan;
pub mod schema;
pub mod time;
