//! The integration tests: one binary, one module per suite, sharing [`support`].

// Temporary: the suites still in their own binaries use tests/common until they move here.
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/weed.rs"]
mod common_weed;
mod support {
    pub use crate::common::*;
    pub mod weed {
        pub use crate::common_weed::*;
    }
}

mod compact;
