// Test-only: included from its parent module under #[cfg(test)].
//! Tests for the upstream TLS config: real handshakes over in-memory pipes,
//! plus one loopback request through the connector.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::tls::server::{CertificatePair, build_server_config};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

struct Leaf {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> Vec<u8> {
        self.issuer.pem().into_bytes()
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        make_leaf(names, Some(self))
    }
}

fn self_signed(names: &[&str]) -> Leaf {
    make_leaf(names, None)
}

/// A leaf certificate for `names`, signed by `ca` or else self-signed.
fn make_leaf(names: &[&str], ca: Option<&Ca>) -> Leaf {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let params = CertificateParams::new(names).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = match ca {
        Some(ca) => params.signed_by(&key, &ca.issuer),
        None => params.self_signed(&key),
    }
    .unwrap();
    Leaf {
        der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn server_for(leaf: &Leaf) -> Arc<ServerConfig> {
    build_server_config(&[CertificatePair {
        cert_pem: leaf.cert_pem.clone().into_bytes(),
        key_pem: leaf.key_pem.clone().into_bytes(),
        origin: "test".into(),
    }])
    .unwrap()
}

/// Full handshake over `tokio::io::duplex`; returns the certificate the
/// client saw and the one the server saw from the client (if any).
async fn handshake(
    server: Arc<ServerConfig>,
    client: ClientConfig,
    name: &str,
) -> std::io::Result<(CertificateDer<'static>, Option<CertificateDer<'static>>)> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from(name.to_owned()).unwrap();
    // Both streams stay alive until both sides finish, so neither side sees
    // a closed pipe while the other is still writing (e.g. session tickets).
    let server_side = async move { TlsAcceptor::from(server).accept(server_io).await };
    let client_side = async move {
        TlsConnector::from(Arc::new(client))
            .connect(name, client_io)
            .await
    };
    let both = async { tokio::join!(server_side, client_side) };
    let (server_res, client_res) = tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("handshake timed out");
    let client_stream = client_res?;
    let server_stream = server_res?;
    let seen = client_stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    let presented = server_stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c[0].clone());
    Ok((seen, presented))
}

fn rustls_error(err: &std::io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

#[tokio::test]
async fn custom_ca_accepts_its_certs_and_rejects_others() {
    let ca = Ca::new();
    let other = Ca::new();
    let tls = UpstreamTls {
        custom_ca_pem: Some(ca.pem()),
        ..UpstreamTls::default()
    };

    let good = ca.leaf(&["upstream.test"]);
    let (seen, _) = handshake(
        server_for(&good),
        build_client_config(&tls).unwrap(),
        "upstream.test",
    )
    .await
    .unwrap();
    assert_eq!(seen, good.der);

    let foreign = other.leaf(&["upstream.test"]);
    let err = handshake(
        server_for(&foreign),
        build_client_config(&tls).unwrap(),
        "upstream.test",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(_))
        ),
        "{err:?}"
    );

    // The right CA but the wrong name is still rejected.
    let err = handshake(
        server_for(&good),
        build_client_config(&tls).unwrap(),
        "elsewhere.test",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(_))
        ),
        "{err:?}"
    );
}

#[test]
fn custom_ca_replaces_default_roots() {
    let ca = Ca::new();
    let custom = UpstreamTls {
        custom_ca_pem: Some(ca.pem()),
        ..UpstreamTls::default()
    };
    assert_eq!(root_store(&custom).unwrap().roots.len(), 1);
    let default = root_store(&UpstreamTls::default()).unwrap();
    assert_eq!(default.roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
}

#[tokio::test]
async fn default_roots_reject_private_ca() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["upstream.test"]);
    let client = build_client_config(&UpstreamTls::default()).unwrap();
    let err = handshake(server_for(&leaf), client, "upstream.test")
        .await
        .unwrap_err();
    assert!(matches!(
        rustls_error(&err),
        Some(rustls::Error::InvalidCertificate(_))
    ));
}

#[tokio::test]
async fn skip_verify_accepts_self_signed_cert_for_another_name() {
    let leaf = self_signed(&["somewhere.else"]);
    let tls = UpstreamTls {
        skip_verify: true,
        ..UpstreamTls::default()
    };
    let (seen, _) = handshake(
        server_for(&leaf),
        build_client_config(&tls).unwrap(),
        "upstream.test",
    )
    .await
    .unwrap();
    assert_eq!(seen, leaf.der);
}

#[tokio::test]
async fn client_certificate_is_presented() {
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let server_leaf = server_ca.leaf(&["upstream.test"]);
    let client_leaf = client_ca.leaf(&["proxy.client"]);

    let mut client_roots = RootCertStore::empty();
    client_roots.add(client_ca.issuer.der().clone()).unwrap();
    let provider = ring_provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .build()
            .unwrap();
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_leaf.der.clone()],
            PrivateKeyDer::from_pem_slice(server_leaf.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let server = Arc::new(server);

    let mut tls = UpstreamTls {
        custom_ca_pem: Some(server_ca.pem()),
        client_cert_pem: Some(client_leaf.cert_pem.clone().into_bytes()),
        client_key_pem: Some(client_leaf.key_pem.clone().into_bytes()),
        ..UpstreamTls::default()
    };
    let (_, presented) = handshake(
        server.clone(),
        build_client_config(&tls).unwrap(),
        "upstream.test",
    )
    .await
    .unwrap();
    assert_eq!(presented, Some(client_leaf.der.clone()));

    tls.client_cert_pem = None;
    tls.client_key_pem = None;
    assert!(
        handshake(server, build_client_config(&tls).unwrap(), "upstream.test")
            .await
            .is_err()
    );
}

#[test]
fn client_cert_and_key_must_come_together_and_match() {
    let ca = Ca::new();
    let a = ca.leaf(&["a.client"]);
    let b = ca.leaf(&["b.client"]);
    let cert_only = UpstreamTls {
        client_cert_pem: Some(a.cert_pem.clone().into_bytes()),
        ..UpstreamTls::default()
    };
    assert!(matches!(
        build_client_config(&cert_only),
        Err(TlsError::ClientCertWithoutKey)
    ));
    assert!(matches!(
        validate(&cert_only),
        Err(TlsError::ClientCertWithoutKey)
    ));

    let key_only = UpstreamTls {
        client_key_pem: Some(a.key_pem.clone().into_bytes()),
        ..UpstreamTls::default()
    };
    assert!(matches!(
        build_client_config(&key_only),
        Err(TlsError::ClientKeyWithoutCert)
    ));

    let crossed = UpstreamTls {
        client_cert_pem: Some(a.cert_pem.clone().into_bytes()),
        client_key_pem: Some(b.key_pem.clone().into_bytes()),
        ..UpstreamTls::default()
    };
    let err = build_client_config(&crossed).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("client certificate"));
}

#[test]
fn bad_custom_ca_is_an_error() {
    let tls = UpstreamTls {
        custom_ca_pem: Some(b"not a pem bundle".to_vec()),
        ..UpstreamTls::default()
    };
    assert!(matches!(
        build_client_config(&tls),
        Err(TlsError::MissingPem { .. })
    ));
    // Validated even when skip_verify would make it irrelevant.
    let tls = UpstreamTls {
        skip_verify: true,
        ..tls
    };
    assert!(build_client_config(&tls).is_err());
}

#[test]
fn debug_redacts_client_key() {
    let leaf = self_signed(&["a.client"]);
    let tls = UpstreamTls {
        client_cert_pem: Some(leaf.cert_pem.clone().into_bytes()),
        client_key_pem: Some(leaf.key_pem.clone().into_bytes()),
        ..UpstreamTls::default()
    };
    let shown = format!("{tls:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"));
    for line in leaf.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line));
    }
    // Not even as a byte list.
    let key_bytes = format!("{:?}", leaf.key_pem.as_bytes());
    assert!(!shown.contains(&key_bytes[1..20]));
}

#[test]
fn server_name_override_is_validated() {
    let with = |name: &str| UpstreamTls {
        server_name: Some(name.to_owned()),
        ..UpstreamTls::default()
    };
    assert_eq!(sni_override(&UpstreamTls::default()), None);
    assert_eq!(
        sni_override(&with("upstream.internal")),
        Some(ServerName::try_from("upstream.internal").unwrap())
    );
    assert!(matches!(
        sni_override(&with("[::1]")),
        Some(ServerName::IpAddress(_))
    ));
    for bad in ["", "not a name!", "bad..dots"] {
        assert_eq!(sni_override(&with(bad)), None);
        assert!(matches!(
            validate(&with(bad)),
            Err(TlsError::InvalidServerName { .. })
        ));
        assert!(build_client_config(&with(bad)).is_err());
        assert!(build_connector(&with(bad)).is_err());
    }
}

#[test]
fn client_config_offers_h2_then_http11() {
    let cfg = build_client_config(&UpstreamTls::default()).unwrap();
    assert_eq!(
        cfg.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

/// Serves one TLS connection on loopback with a minimal HTTP/1.1 response.
async fn one_shot_https(leaf: &Leaf) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cfg = (*server_for(leaf)).clone();
    cfg.alpn_protocols.clear(); // plain HTTP/1.1 keeps the responder trivial
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
            let _ = tls.shutdown().await;
        }
    });
    addr
}

#[tokio::test]
async fn connector_uses_server_name_override() {
    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let ca = Ca::new();
    let leaf = ca.leaf(&["upstream.internal"]);
    let addr = one_shot_https(&leaf).await;
    let uri: hyper::Uri = format!("https://{addr}/").parse().unwrap();
    let get = |tls: UpstreamTls| {
        let uri = uri.clone();
        async move {
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build(build_connector(&tls).unwrap());
            tokio::time::timeout(Duration::from_secs(10), client.get(uri))
                .await
                .expect("request timed out")
        }
    };

    let with_override = UpstreamTls {
        custom_ca_pem: Some(ca.pem()),
        server_name: Some("upstream.internal".into()),
        ..UpstreamTls::default()
    };
    let res = get(with_override).await.unwrap();
    assert_eq!(res.status(), hyper::StatusCode::NO_CONTENT);

    // Without the override the URL host (127.0.0.1) is verified and fails.
    let without = UpstreamTls {
        custom_ca_pem: Some(ca.pem()),
        ..UpstreamTls::default()
    };
    assert!(get(without).await.is_err());
}
