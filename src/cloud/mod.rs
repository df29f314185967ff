//! Building blocks for calling Alibaba Cloud APIs, pure (no I/O): today the V3 request
//! signature, [`acs3`], which both the CDN OpenAPI (`DescribeCdnDomainLogs`, to list a domain's
//! log files) and Function Compute accept.
//!
//! It sits at the bottom of the layers (it needs only [`crate::error`]): the HTTP calls that use
//! it belong to `ingest`, and the loopback stand-in servers of the tests verify requests with
//! the same code that signs them.

pub mod acs3;
