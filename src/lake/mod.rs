//! The lake: where a destination URL points, the uploads that stay invisible until committed,
//! the keys every object goes to, the commit step, and the manifest that marks a file done.

pub mod access_day;
pub(crate) mod commit;
pub mod compacted;
pub mod descriptor;
pub mod dest;
pub mod layout;
pub mod manifest;
pub mod read;
pub mod sink;
pub(crate) mod staging;
pub mod store;
