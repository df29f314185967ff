//! The fake DNS of the tests: the OSS configuration is used exactly as in production
//! (`<bucket>.oss.test:<port>`, virtual-hosted), and only name resolution, inside the HTTP
//! client (`object_store::ClientOptions::with_dns_resolver`), sends every name to 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr};

use object_store::client::{DnsFuture, DnsResolver};

/// Resolves every host name to 127.0.0.1.
#[derive(Debug)]
pub struct Loopback;

impl DnsResolver for Loopback {
    fn resolve(&self, _host: &str) -> DnsFuture {
        Box::pin(async { Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) })
    }
}
