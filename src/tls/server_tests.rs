// Test-only: included from its parent module under #[cfg(test)].
//! Tests for the downstream TLS config: real handshakes over in-memory pipes.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::tls::upstream::{UpstreamTls, build_client_config};

/// A test CA that signs leaf certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }

    /// A leaf for `names`, with a key of algorithm `alg`.
    fn leaf_with(&self, names: &[&str], alg: &'static SignatureAlgorithm) -> Leaf {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, &rcgen::PKCS_ECDSA_P256_SHA256)
    }
}

struct Leaf {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Leaf {
    fn pair(&self, origin: &str) -> CertificatePair {
        CertificatePair {
            cert_pem: self.cert_pem.clone().into_bytes(),
            key_pem: self.key_pem.clone().into_bytes(),
            origin: origin.to_owned(),
        }
    }
}

fn verifying_client(ca: &Ca) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(ca.roots())
            .with_no_client_auth(),
    )
}

fn accept_any_client() -> Arc<ClientConfig> {
    let tls = UpstreamTls {
        skip_verify: true,
        ..UpstreamTls::default()
    };
    Arc::new(build_client_config(&tls).unwrap())
}

/// What the client saw after a successful handshake.
struct Seen {
    peer_leaf: CertificateDer<'static>,
    alpn: Option<Vec<u8>>,
}

/// Runs a full handshake over `tokio::io::duplex`; returns the client's view.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<Seen> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from(name.to_owned()).unwrap();
    // Both streams stay alive until both sides finish (session tickets are
    // written after the client considers the handshake done).
    let server_side = async move { TlsAcceptor::from(server).accept(server_io).await };
    let client_side = async move { TlsConnector::from(client).connect(name, client_io).await };
    let both = async { tokio::join!(server_side, client_side) };
    let (server_res, client_res) = tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("handshake timed out");
    let client_stream = client_res?;
    server_res?;
    let conn = client_stream.get_ref().1;
    Ok(Seen {
        peer_leaf: conn.peer_certificates().unwrap()[0].clone(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
    })
}

#[tokio::test]
async fn sni_selects_matching_certificate() {
    let ca = Ca::new();
    let a = ca.leaf(&["a.example"]);
    let b = ca.leaf(&["b.example"]);
    let wild = ca.leaf(&["*.wild.example"]);
    let server = build_server_config(&[a.pair("a"), b.pair("b"), wild.pair("wild")]).unwrap();
    let client = verifying_client(&ca);

    let seen = handshake(server.clone(), client.clone(), "b.example")
        .await
        .unwrap();
    assert_eq!(seen.peer_leaf, b.der);
    let seen = handshake(server.clone(), client.clone(), "a.example")
        .await
        .unwrap();
    assert_eq!(seen.peer_leaf, a.der);
    let seen = handshake(server, client, "x.wild.example").await.unwrap();
    assert_eq!(seen.peer_leaf, wild.der);
}

#[tokio::test]
async fn first_matching_pair_wins() {
    let ca = Ca::new();
    let first = ca.leaf(&["dup.example"]);
    let second = ca.leaf(&["dup.example", "other.example"]);
    let server = build_server_config(&[first.pair("1"), second.pair("2")]).unwrap();
    let seen = handshake(server, verifying_client(&ca), "dup.example")
        .await
        .unwrap();
    assert_eq!(seen.peer_leaf, first.der);
}

#[tokio::test]
async fn no_sni_falls_back_to_first_pair() {
    let ca = Ca::new();
    let a = ca.leaf(&["a.example"]);
    let b = ca.leaf(&["b.example"]);
    // An IP address as server name means the client sends no SNI.
    let server = build_server_config(&[a.pair("a"), b.pair("b")]).unwrap();
    let seen = handshake(server, accept_any_client(), "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(seen.peer_leaf, a.der);

    let server = build_server_config(&[b.pair("b"), a.pair("a")]).unwrap();
    let seen = handshake(server, accept_any_client(), "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(seen.peer_leaf, b.der);
}

#[tokio::test]
async fn unknown_sni_falls_back_to_first_pair() {
    let ca = Ca::new();
    let a = ca.leaf(&["a.example"]);
    let b = ca.leaf(&["b.example"]);
    let server = build_server_config(&[b.pair("b"), a.pair("a")]).unwrap();
    let seen = handshake(server, accept_any_client(), "c.example")
        .await
        .unwrap();
    assert_eq!(seen.peer_leaf, b.der);
}

#[tokio::test]
async fn prefers_a_matching_key_the_client_can_verify() {
    use rustls::SignatureScheme;
    use rustls::crypto::WebPkiSupportedAlgorithms;
    static P256_ONLY: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
        all: &[webpki::ring::ECDSA_P256_SHA256],
        mapping: &[(
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[webpki::ring::ECDSA_P256_SHA256],
        )],
    };
    let ca = Ca::new();
    let ed = ca.leaf_with(&["same.example"], &rcgen::PKCS_ED25519);
    let p256 = ca.leaf(&["same.example"]);
    let server = build_server_config(&[ed.pair("ed25519"), p256.pair("p256")]).unwrap();

    let mut provider = rustls::crypto::ring::default_provider();
    provider.signature_verification_algorithms = P256_ONLY;
    let client = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    let seen = handshake(server, Arc::new(client), "same.example")
        .await
        .unwrap();
    assert_eq!(seen.peer_leaf, p256.der);
}

#[tokio::test]
async fn alpn_offers_h2_then_http11() {
    let ca = Ca::new();
    let server = build_server_config(&[ca.leaf(&["a.example"]).pair("a")]).unwrap();
    assert_eq!(
        server.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let seen = handshake(server, accept_any_client(), "a.example")
        .await
        .unwrap();
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
}

#[test]
fn zero_pairs_is_an_error() {
    assert!(matches!(
        build_server_config(&[]),
        Err(TlsError::NoCertificates)
    ));
}

#[test]
fn mismatched_key_names_origin_and_hides_key() {
    let ca = Ca::new();
    let a = ca.leaf(&["a.example"]);
    let b = ca.leaf(&["b.example"]);
    let crossed = CertificatePair {
        cert_pem: a.cert_pem.clone().into_bytes(),
        key_pem: b.key_pem.clone().into_bytes(),
        origin: "certificates[1]".into(),
    };
    let err = build_server_config(&[b.pair("certificates[0]"), crossed]).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("certificates[1]"), "{msg}");
    for line in b.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!msg.contains(line) && !format!("{err:?}").contains(line));
    }
}

#[test]
fn garbage_pem_is_rejected_with_origin() {
    let ca = Ca::new();
    let good = ca.leaf(&["a.example"]);

    let no_pem = CertificatePair {
        cert_pem: b"this is not pem".to_vec(),
        ..good.pair("certificate_file /etc/x.pem")
    };
    let err = build_server_config(&[no_pem]).unwrap_err();
    assert!(matches!(err, TlsError::MissingPem { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate_file /etc/x.pem"));

    let bad_base64 = CertificatePair {
        key_pem: b"-----BEGIN PRIVATE KEY-----\nsecret!!!\n-----END PRIVATE KEY-----\n".to_vec(),
        ..good.pair("key_file /etc/k.pem")
    };
    let err = build_server_config(&[bad_base64]).unwrap_err();
    assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("key_file /etc/k.pem") && !msg.contains("secret"),
        "{msg}"
    );

    let key_is_a_cert = CertificatePair {
        key_pem: good.cert_pem.clone().into_bytes(),
        ..good.pair("certificates[0]")
    };
    let err = build_server_config(&[key_is_a_cert]).unwrap_err();
    assert!(matches!(err, TlsError::MissingPem { what, .. } if what.contains("private key")));

    let garbage_der = CertificatePair {
        cert_pem: b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n".to_vec(),
        ..good.pair("certificates[2]")
    };
    let err = build_server_config(&[garbage_der]).unwrap_err();
    assert!(
        matches!(err, TlsError::InvalidCertificate { .. }),
        "{err:?}"
    );
}

#[test]
fn certificate_pair_debug_redacts_key() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["a.example"]);
    let shown = format!("{:?}", leaf.pair("certificates[0]"));
    assert!(shown.contains("certificates[0]") && shown.contains("<redacted>"));
    assert!(!shown.contains("PRIVATE KEY"));
}
