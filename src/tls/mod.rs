//! TLS material, on the ground floor: what both sides of the proxy share when they
//! speak TLS — the *ring* crypto provider, ALPN, PEM parsing of certificate chains and
//! keys, and [`TlsError`].
//!
//! [`server`] builds the `rustls::ServerConfig` for accepted connections (stage 1);
//! [`upstream`] builds the client side for routes whose upstream speaks TLS (stage 5).
//! Everything here runs once, at configuration load.
//!
//! Invariants:
//! * only the *ring* crypto provider is used, passed explicitly (no reliance
//!   on a process-default provider);
//! * ALPN offers `h2` then `http/1.1`;
//! * key material never appears in errors or `Debug` output: PEM parse errors
//!   are reduced to fixed descriptions, and errors name only the material's
//!   `origin`.

pub mod server;
pub mod upstream;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

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
