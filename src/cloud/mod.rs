//! Calling Alibaba Cloud APIs: the V3 request signature [`acs3`] (pure: the published example is
//! a unit test, and the loopback stand-ins of the tests verify requests with the same code that
//! signs them), the signed HTTP client with its retries [`api`], and the two operations cdnlake
//! calls: the CDN's `DescribeCdnDomainLogs` ([`cdn`], to list a domain's log files) and Function
//! Compute's asynchronous `InvokeFunction` ([`fc`], to fan conversions out).
//!
//! It sits low in the layers: it needs only [`crate::error`], [`crate::tls`] and the file-name
//! and redaction helpers; `sync` builds on it.

pub mod acs3;
pub mod api;
pub mod cdn;
pub mod fc;
