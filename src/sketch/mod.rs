//! Mergeable summaries stored in the rollups, pure computation: [`hll`] counts distinct client
//! IPs, [`heavy`] finds the heavy hitters of a column. Both merge across blocks, hours and
//! files with a stated error, so `report` answers over any window from rollups alone.

pub mod heavy;
pub mod hll;
