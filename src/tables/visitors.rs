//! The `visitors` table: per log file and partition hour, a HyperLogLog sketch of the distinct
//! client IPs (docs/design.md §2.4). Sketches merge by union, so `report` counts the unique
//! visitors of any window of hours; the stored `unique_ips` of one row is not additive.

use super::{Column, Kind, Table};

/// The visitors table.
pub const VISITORS: Table = Table {
    name: "visitors",
    folder: "visitors",
    partitions: &["domain", "dt", "hour"],
    doc: "Distinct client IPs per file and hour: a HyperLogLog sketch (exact up to 2048), merged by cdnlake report",
    no_statistics: &["hll"],
    rebuilt: None,
    large_dictionaries: &[],
    columns: &[
        Column::new("hour_start", Kind::Timestamp, false, false, "start of the partition hour (UTC instant)"),
        Column::new("requests", Kind::Int64, false, false, "requests counted"),
        Column::new("unique_ips", Kind::Int64, false, false, "distinct client_ip of this file-hour (exact up to 2048, else estimated, ~0.8% standard error); not additive"),
        Column::new("hll", Kind::Binary, false, false, "the sketch, format version 1 (src/sketch/hll.rs): xxHash64 of client_ip, p = 14"),
    ],
};
