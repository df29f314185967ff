//! The read side: `report` (rollups in, figures out; top lists from the access rows; rendered as
//! text, JSON or an HTML page) and the DDL that lets DuckDB and MaxCompute read the lake.
//!
//! Dependencies run one way: `filter` ← `rollups`, `top` ← `report` ← `text`, `html`.

pub mod ddl;
pub mod filter;
pub mod html;
pub mod plan;
pub mod report;
pub mod rollups;
pub mod text;
pub mod top;

pub use filter::ReportFilter;
