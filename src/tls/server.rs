//! Downstream TLS (stage 1, accept): turns the operator's certificate/key pairs
//! into the `rustls::ServerConfig` used when a client connection is **accepted**.
//!
//! This module owns the SNI-based certificate choice. It runs once, at
//! configuration load, except [`ResolvesServerCert::resolve`], which runs in
//! every handshake and never fails: with no SNI, or no certificate valid for
//! the requested name, the first configured pair is served.
//!
//! Invariants:
//! * every configured key is proven to match its certificate before the
//!   config is returned;
//! * key material never appears in errors or `Debug` output.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SignatureScheme};

use super::{ALPN_PROTOCOLS, TlsError, load_certified_key, ring_provider};

/// One certificate chain and its private key, both PEM, plus where they came
/// from (for errors, e.g. `certificate_file /etc/x.pem` or `certificates[1]`).
///
/// `Debug` shows the origin and sizes only, never the key.
#[derive(Clone)]
pub struct CertificatePair {
    /// PEM certificate chain, end-entity certificate first.
    pub cert_pem: Vec<u8>,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key_pem: Vec<u8>,
    /// Human-readable source of this pair, used in error messages.
    pub origin: String,
}

impl fmt::Debug for CertificatePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificatePair")
            .field("origin", &self.origin)
            .field("cert_pem_len", &self.cert_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Builds the downstream `ServerConfig`: ring provider, safe default protocol
/// versions, no client auth, ALPN `h2`/`http/1.1`, certificate chosen by SNI.
///
/// Every pair is validated (chain parses, key parses, key matches the
/// end-entity certificate); the first failure is returned. Zero pairs is an
/// error.
pub fn build_server_config(pairs: &[CertificatePair]) -> Result<Arc<ServerConfig>, TlsError> {
    if pairs.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    let provider = ring_provider();
    let entries = pairs
        .iter()
        .map(|p| {
            let key = load_certified_key(&p.cert_pem, &p.key_pem, &p.origin, &provider)?;
            Ok(SniEntry {
                key: Arc::new(key),
                origin: p.origin.clone(),
            })
        })
        .collect::<Result<Vec<_>, TlsError>>()?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { entries }));
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// One configured pair, ready to serve.
struct SniEntry {
    key: Arc<CertifiedKey>,
    origin: String,
}

/// Chooses a certificate by SNI.
///
/// Order matters: the first pair valid for the requested name wins, and the
/// first pair overall is the fallback. No per-name cache is kept: matching
/// re-parses each end-entity certificate (microseconds, far below the cost of
/// the handshake's own signature), which keeps the resolver lock-free and
/// immune to cache-filling with random SNI values.
struct SniResolver {
    entries: Vec<SniEntry>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field(
                "origins",
                &self.entries.iter().map(|e| &e.origin).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SniResolver {
    /// The entry to serve for `name`.
    ///
    /// Among the entries whose certificate is valid for `name`, the first
    /// whose key can sign with a scheme the client offered wins; if none can,
    /// the first valid one (the handshake then fails cleanly). With no
    /// valid entry, the first entry overall.
    fn select(&self, name: &str, schemes: &[SignatureScheme]) -> Option<&SniEntry> {
        let first = self.entries.first()?;
        if self.entries.len() == 1 {
            return Some(first);
        }
        let Ok(server_name) = ServerName::try_from(name) else {
            return Some(first);
        };
        let mut matching = self
            .entries
            .iter()
            .filter(|e| cert_valid_for(&e.key, &server_name));
        let Some(first_match) = matching.next() else {
            return Some(first);
        };
        if first_match.key.key.choose_scheme(schemes).is_some() {
            return Some(first_match);
        }
        Some(
            matching
                .find(|e| e.key.key.choose_scheme(schemes).is_some())
                .unwrap_or(first_match),
        )
    }
}

/// Whether the end-entity certificate of `key` covers `name`.
fn cert_valid_for(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    let Ok(ee_der) = key.end_entity_cert() else {
        return false;
    };
    match webpki::EndEntityCert::try_from(ee_der) {
        Ok(ee) => ee.verify_is_valid_for_subject_name(name).is_ok(),
        Err(_) => false,
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let entry = match client_hello.server_name() {
            Some(name) => self.select(name, client_hello.signature_schemes()),
            None => self.entries.first(),
        };
        entry.map(|e| Arc::clone(&e.key))
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
