//! Upstream TLS (stage 5, forward): how a route's **forward** stage talks TLS to its upstream.
//!
//! This module owns the per-route [`UpstreamTls`] settings and turns them
//! into a `rustls::ClientConfig` ([`build_client_config`]) and a pooled-client
//! connector ([`build_connector`]). Everything here runs at configuration
//! load; a bad setting is an error then, never a panic or a silent fallback
//! during a request.
//!
//! Invariants:
//! * only the *ring* crypto provider is used, passed explicitly;
//! * trust is either the Mozilla roots (`webpki-roots`) or, when a custom CA
//!   bundle is configured, **only** that bundle (Pomerium/Envoy semantics);
//! * `skip_verify` disables certificate checks but still verifies handshake
//!   signatures, so the session is a real TLS session (to an unauthenticated
//!   peer);
//! * a client certificate and its key are given together and must match;
//! * key material never appears in errors or `Debug` output.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ALPN_PROTOCOLS, TlsError, load_certified_key, parse_cert_chain, ring_provider};

/// Timeout for establishing the TCP connection to an upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a route talks TLS to its upstream.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct UpstreamTls {
    /// Accept any upstream certificate (handshake signatures are still checked).
    pub skip_verify: bool,
    /// SNI and name to verify, overriding the URL host.
    pub server_name: Option<String>,
    /// Extra trust anchors (PEM bundle); when set, ONLY these are trusted
    /// (Pomerium/Envoy semantics: a custom CA replaces the default roots).
    pub custom_ca_pem: Option<Vec<u8>>,
    /// mTLS client certificate chain (PEM).
    pub client_cert_pem: Option<Vec<u8>>,
    /// Private key for `client_cert_pem` (PEM); redacted from `Debug`.
    pub client_key_pem: Option<Vec<u8>>,
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("skip_verify", &self.skip_verify)
            .field("server_name", &self.server_name)
            .field(
                "custom_ca_pem_len",
                &self.custom_ca_pem.as_ref().map(Vec::len),
            )
            .field(
                "client_cert_pem_len",
                &self.client_cert_pem.as_ref().map(Vec::len),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Checks the settings that can be checked without building a config: the
/// server name override parses, and client certificate and key come together.
///
/// [`build_client_config`] and [`build_connector`] call this themselves.
pub fn validate(tls: &UpstreamTls) -> Result<(), TlsError> {
    parse_server_name(tls)?;
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(_), None) => Err(TlsError::ClientCertWithoutKey),
        (None, Some(_)) => Err(TlsError::ClientKeyWithoutCert),
        _ => Ok(()),
    }
}

/// The server name to use for SNI and verification instead of the URL host,
/// if one is configured.
///
/// Returns `None` when no override is set **or when it is invalid**; call
/// [`validate`] (or build the config) first to turn an invalid value into an
/// error.
pub fn sni_override(tls: &UpstreamTls) -> Option<ServerName<'static>> {
    parse_server_name(tls).ok().flatten()
}

/// Parses `server_name`: a DNS name or an IP address (IPv6 may be bracketed).
fn parse_server_name(tls: &UpstreamTls) -> Result<Option<ServerName<'static>>, TlsError> {
    let Some(raw) = tls.server_name.as_deref() else {
        return Ok(None);
    };
    let trimmed = raw.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    ServerName::try_from(unbracketed.to_owned())
        .map(Some)
        .map_err(|_| TlsError::InvalidServerName {
            name: raw.to_owned(),
        })
}

/// Builds the route's `ClientConfig`: ring provider, safe default protocol
/// versions, the trust policy described on [`UpstreamTls`], optional client
/// certificate, ALPN `h2`/`http/1.1`.
///
/// The custom CA bundle is parsed (and must hold at least one valid
/// certificate) even when `skip_verify` is set, so configuration mistakes
/// surface; `skip_verify` then takes precedence.
pub fn build_client_config(tls: &UpstreamTls) -> Result<ClientConfig, TlsError> {
    validate(tls)?;
    let provider = ring_provider();
    let roots = root_store(tls)?;

    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = if tls.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateVerification::new(&provider)))
    } else {
        builder.with_root_certificates(roots)
    };

    let mut config = match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let certified =
                load_certified_key(cert, key, "upstream TLS client certificate", &provider)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The trust anchors: the custom bundle alone if set, else the Mozilla roots.
fn root_store(tls: &UpstreamTls) -> Result<RootCertStore, TlsError> {
    const ORIGIN: &str = "upstream TLS custom CA";
    let Some(pem) = &tls.custom_ca_pem else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    for (i, der) in parse_cert_chain(pem, ORIGIN, "CA bundle")?
        .into_iter()
        .enumerate()
    {
        store.add(der).map_err(|e| TlsError::InvalidCertificate {
            origin: format!("{ORIGIN} (certificate #{})", i + 1),
            reason: e.to_string(),
        })?;
    }
    Ok(store)
}

/// Builds the HTTPS-or-HTTP connector for a route's upstream client.
///
/// TCP: `enforce_http(false)` (the TLS layer handles `https`), `TCP_NODELAY`,
/// 10 s connect timeout. TLS: [`build_client_config`], HTTP/1.1 and HTTP/2
/// offered via ALPN, and the `server_name` override (if any) used for SNI and
/// verification of every connection instead of the URL host. `http://`
/// upstream URLs are connected in plain text.
pub fn build_connector(tls: &UpstreamTls) -> Result<HttpsConnector<HttpConnector>, TlsError> {
    let mut config = build_client_config(tls)?;
    // hyper-rustls asserts (panics) unless ALPN is empty; it sets
    // `h2`, `http/1.1` itself from enable_http1/enable_http2 below.
    config.alpn_protocols.clear();

    let mut http = tcp_connector();
    http.enforce_http(false);

    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    let builder = match parse_server_name(tls)? {
        Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
        None => builder,
    };
    Ok(builder.enable_http1().enable_http2().wrap_connector(http))
}

/// The TCP connector under every upstream connection: `TCP_NODELAY`, 10 s connect
/// timeout, `http://` URLs only (the TLS layer relaxes that for itself).
pub fn tcp_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http
}

/// **Dangerous.** Accepts any server certificate: expired, self-signed, for
/// another name, or presented by an attacker. The connection is encrypted
/// and the handshake signature is verified against the presented
/// certificate (using the provider's algorithms), but the peer's identity is
/// not authenticated, so anyone able to intercept the route's traffic can
/// impersonate the upstream. Use only for upstreams on a trusted network;
/// prefer a custom CA.
#[derive(Debug)]
struct NoCertificateVerification {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl NoCertificateVerification {
    fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
