//! Downstream TLS: turns the operator's certificate/key pairs into the
//! `rustls::ServerConfig` used when a client connection is **accepted**.
//!
//! This module owns PEM loading and validation for server certificates, the
//! SNI-based certificate choice, and the [`TlsError`] type shared with the
//! upstream side (`crate::proxy::tls`). Everything here runs once, at
//! configuration load, except [`ResolvesServerCert::resolve`], which runs in
//! every handshake and never fails: with no SNI, or no certificate valid for
//! the requested name, the first configured pair is served.
//!
//! Invariants:
//! * only the *ring* crypto provider is used, passed explicitly (no reliance
//!   on a process-default provider);
//! * ALPN offers `h2` then `http/1.1`;
//! * every configured key is proven to match its certificate before the
//!   config is returned;
//! * key material never appears in errors or `Debug` output: PEM parse errors
//!   are reduced to fixed descriptions, and errors name only the pair's
//!   `origin`.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SignatureScheme};

/// ALPN protocols offered on both sides of the proxy, in preference order.
pub(crate) const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Errors raised while building a TLS configuration (downstream or upstream).
///
/// Messages name where the material came from (`origin`) and never include
/// certificate or key contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The listener was given no certificate at all.
    #[error("no TLS certificate configured")]
    NoCertificates,
    /// A PEM input could not be read at all.
    #[error("{origin}: {what} is not valid PEM: {reason}")]
    Pem {
        /// Where the PEM came from.
        origin: String,
        /// What the PEM was expected to hold.
        what: &'static str,
        /// A fixed description of the defect (never the input itself).
        reason: &'static str,
    },
    /// The PEM parsed but held no block of the expected kind.
    #[error("{origin}: no {what} found in PEM")]
    MissingPem {
        /// Where the PEM came from.
        origin: String,
        /// What was looked for.
        what: &'static str,
    },
    /// A certificate could not be used.
    #[error("{origin}: invalid certificate: {reason}")]
    InvalidCertificate {
        /// Where the certificate came from.
        origin: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A private key could not be loaded by the crypto provider.
    #[error("{origin}: unsupported or invalid private key: {reason}")]
    InvalidKey {
        /// Where the key came from.
        origin: String,
        /// Why it was rejected (from the provider; holds no key bytes).
        reason: String,
    },
    /// The private key is not the one the certificate was issued for.
    #[error("{origin}: private key does not match the certificate")]
    KeyMismatch {
        /// Where the pair came from.
        origin: String,
    },
    /// An upstream TLS server name override is not a valid DNS name or IP address.
    #[error("invalid upstream TLS server name {name:?}")]
    InvalidServerName {
        /// The rejected value.
        name: String,
    },
    /// An upstream client certificate was configured without its key.
    #[error("upstream TLS client certificate is set but its private key is not")]
    ClientCertWithoutKey,
    /// An upstream client key was configured without its certificate.
    #[error("upstream TLS client private key is set but its certificate is not")]
    ClientKeyWithoutCert,
    /// rustls refused the assembled configuration.
    #[error("TLS configuration rejected: {0}")]
    Config(#[source] rustls::Error),
}

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

/// The *ring* crypto provider, the only one this crate uses.
pub(crate) fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain; at least one `CERTIFICATE` block is required.
pub(crate) fn parse_cert_chain(
    pem_bytes: &[u8],
    origin: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&e, origin, what))?;
    if chain.is_empty() {
        return Err(TlsError::MissingPem {
            origin: origin.to_owned(),
            what,
        });
    }
    Ok(chain)
}

/// Parses a chain and key and checks that they belong together.
///
/// Used for downstream server pairs and for upstream client certificates.
pub(crate) fn load_certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    origin: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    const KEY: &str = "private key (PKCS#8, PKCS#1 RSA or SEC1 EC)";
    let chain = parse_cert_chain(cert_pem, origin, "certificate chain")?;
    let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem_error(&e, origin, KEY))?;

    // The end-entity certificate must be parseable X.509, or SNI matching
    // (and every client) would reject it later.
    if let Some(ee) = chain.first() {
        webpki::EndEntityCert::try_from(ee).map_err(|e| TlsError::InvalidCertificate {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
    }

    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::InvalidKey {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    // Strict: with ring every key type reports its public key, so an
    // "unknown" consistency result is treated as a failure too.
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            origin: origin.to_owned(),
        }),
        Err(e) => Err(TlsError::InvalidCertificate {
            origin: origin.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Maps a PEM error to a fixed description, so input bytes never leak into
/// messages (pki-types' own `Display` may echo offending lines).
pub(crate) fn pem_error(e: &pem::Error, origin: &str, what: &'static str) -> TlsError {
    let reason = match e {
        pem::Error::NoItemsFound => {
            return TlsError::MissingPem {
                origin: origin.to_owned(),
                what,
            };
        }
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "malformed PEM BEGIN line",
        pem::Error::Base64Decode(_) => "invalid base64 inside a PEM section",
        pem::Error::SectionTooLarge => "PEM section too large",
        _ => "unreadable PEM",
    };
    TlsError::Pem {
        origin: origin.to_owned(),
        what,
        reason,
    }
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
#[path = "tls_tests.rs"]
mod tests;
