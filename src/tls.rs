//! The TLS crypto provider. reqwest and object_store are built without aws-lc (its C build was
//! the slowest part of a first build), so rustls has no provider of its own choosing: ring is
//! installed as the process default before any HTTP client is built. Without it reqwest panics
//! when building a client.

/// Installs ring as rustls's process-wide provider, once; a provider installed earlier (by an
/// embedding program) is kept.
pub fn ensure_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err only when another thread installed one in between: that one is kept.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}
