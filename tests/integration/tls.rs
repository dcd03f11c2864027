//! TLS: downstream certificates by SNI, HTTP/2 and HTTP/1.1 over ALPN, the HTTPS
//! redirect listener, and every upstream TLS route field.

use std::sync::Arc;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::support::{Echo, TestProxy, upstream};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

struct Leaf {
    der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn temp_file(name: &str, content: &str) -> String {
    let dir = std::env::temp_dir().join(format!("portcullis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn https_client(ca: &Ca, proxy: std::net::SocketAddr) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .resolve_to_addrs("app.example.com", &[proxy])
        .resolve_to_addrs("other.example.com", &[proxy])
        .tls_info(true)
        .no_proxy()
}

fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .unwrap()
        .peer_certificate()
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn serves_h2_and_http1_with_certificates_chosen_by_sni() {
    portcullis::install_crypto_provider();
    let up = upstream::start("a").await;
    let ca = Ca::new();
    let app = ca.leaf(&["app.example.com"]);
    let other = ca.leaf(&["other.example.com"]);
    let yaml = format!(
        "certificate: {}\ncertificate_key: {}\ncertificates:\n  - cert: {}\n    key: {}\nhttp_redirect_addr: 127.0.0.1:0\nroutes:\n  - {{from: https://app.example.com, to: {u}, allow_public_unauthenticated_access: true}}\n  - {{from: https://other.example.com, to: {u}, allow_public_unauthenticated_access: true}}\n",
        b64(&app.cert_pem),
        b64(&app.key_pem),
        temp_file("other.pem", &other.cert_pem),
        temp_file("other.key", &other.key_pem),
        u = up.url(),
    );
    let proxy = TestProxy::start(&yaml).await;
    let port = proxy.addr.port();

    let h2 = https_client(&ca, proxy.addr).build().unwrap();
    let r = h2
        .get(format!("https://app.example.com:{port}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(peer_cert(&r), app.der);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains; preload"
    );
    let echo = Echo::from(r).await;
    assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("https"));
    // The proxy's own responses carry the security headers too, HSTS included.
    for path in ["/.well-known/pomerium", "/ping"] {
        let r = h2
            .get(format!("https://app.example.com:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers().contains_key("strict-transport-security"),
            "{path}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }

    let h1 = https_client(&ca, proxy.addr).http1_only().build().unwrap();
    let r = h1
        .get(format!("https://other.example.com:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(peer_cert(&r), other.der, "the certificate for the SNI name");

    // The redirect listener sends plain HTTP to HTTPS on the main port.
    let redirect = proxy.redirect_addr.unwrap();
    let raw = crate::support::raw(
        redirect,
        b"GET /a?b=1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(crate::support::status_of(&raw), 301, "{raw}");
    assert!(
        raw.contains(&format!("location: https://app.example.com:{port}/a?b=1")),
        "{raw}"
    );
}

#[tokio::test]
async fn upstream_tls_settings() {
    portcullis::install_crypto_provider();
    let ca = Ca::new();
    let server_leaf = ca.leaf(&["backend.internal"]);
    let client_leaf = ca.leaf(&["proxy.client"]);
    let pair = portcullis::tls::server::CertificatePair {
        cert_pem: server_leaf.cert_pem.clone().into_bytes(),
        key_pem: server_leaf.key_pem.clone().into_bytes(),
        origin: "test".into(),
    };
    // An upstream that requires a client certificate from our CA.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            ca.issuer.der().to_vec(),
        ))
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let base = portcullis::tls::server::build_server_config(std::slice::from_ref(&pair)).unwrap();
    let mut mtls = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(base.cert_resolver.clone());
    mtls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let secure = upstream::start_tls("mtls", Arc::new(mtls)).await;
    let plain_tls = upstream::start_tls("tls", base).await;

    let ca_file = temp_file("ca.pem", &ca.pem());
    let cert_file = temp_file("client.pem", &client_leaf.cert_pem);
    let key_file = temp_file("client.key", &client_leaf.key_pem);
    let route = |host: &str, port: u16, extra: &str| {
        format!(
            "  - from: https://app.example.com\n    prefix: /{host}\n    to: https://127.0.0.1:{port}\n    allow_public_unauthenticated_access: true\n{extra}"
        )
    };
    let routes = [
        route("verified", secure.addr.port(), &format!("    tls_server_name: backend.internal\n    tls_custom_ca_file: {ca_file}\n    tls_client_cert_file: {cert_file}\n    tls_client_key_file: {key_file}\n")),
        route("inline", plain_tls.addr.port(), &format!("    tls_server_name: backend.internal\n    tls_custom_ca: {}\n", b64(&ca.pem()))),
        route("nocert", secure.addr.port(), &format!("    tls_server_name: backend.internal\n    tls_custom_ca_file: {ca_file}\n")),
        route("wrongname", plain_tls.addr.port(), &format!("    tls_custom_ca_file: {ca_file}\n")),
        route("untrusted", plain_tls.addr.port(), "    tls_server_name: backend.internal\n"),
        route("skip", plain_tls.addr.port(), "    tls_skip_verify: true\n"),
    ]
    .concat();
    let proxy = TestProxy::start(&format!("insecure_server: true\nroutes:\n{routes}")).await;
    let c = crate::support::client(proxy.addr);
    let get = |p: &str| {
        c.get(format!("http://app.example.com:{}/{p}", proxy.addr.port()))
            .send()
    };
    assert_eq!(
        Echo::from(get("verified").await.unwrap()).await.upstream(),
        "mtls"
    );
    assert_eq!(
        Echo::from(get("inline").await.unwrap()).await.upstream(),
        "tls"
    );
    assert_eq!(
        Echo::from(get("skip").await.unwrap()).await.upstream(),
        "tls"
    );
    for refused in ["nocert", "wrongname", "untrusted"] {
        assert_eq!(get(refused).await.unwrap().status(), 502, "{refused}");
    }
}

/// A worker whose upstream clients cannot be built is a start-up error, not a worker
/// that silently drops the connections handed to it. (Configuration loading already
/// refuses such settings; this is the server's own guard for a `Config` built
/// otherwise.)
#[tokio::test]
async fn a_worker_without_upstream_clients_fails_the_start() {
    let yaml = "insecure_server: true\naddress: 127.0.0.1:0\nroutes:\n  - from: http://app.example.com\n    to: https://127.0.0.1:1\n    allow_public_unauthenticated_access: true\n";
    let env = portcullis::config::env::MapEnv::default();
    let mut config = portcullis::config::load_str(yaml, None, &env)
        .unwrap()
        .config;
    config.routes[0].tls.client_cert_pem =
        Some(b"-----BEGIN CERTIFICATE-----\nnot base64!\n".to_vec());
    config.routes[0].tls.client_key_pem = Some(b"not a key".to_vec());
    let Err(err) = portcullis::bind(config, 2).await else {
        panic!("no server without upstream clients");
    };
    assert!(
        err.to_string().contains("upstream clients"),
        "a clear start-up error: {err}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_head_deadline_runs_from_accept_through_the_tls_handshake() {
    use tokio::io::AsyncReadExt;
    portcullis::install_crypto_provider();
    let up = upstream::start("a").await;
    let ca = Ca::new();
    let app = ca.leaf(&["app.example.com"]);
    let yaml = format!(
        "certificate: {}\ncertificate_key: {}\ntimeout_read_header: 10s\nroutes:\n  - {{from: https://app.example.com, to: {u}, allow_public_unauthenticated_access: true}}\n",
        b64(&app.cert_pem),
        b64(&app.key_pem),
        u = up.url(),
    );
    let proxy = TestProxy::start(&yaml).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    // A slow handshake, then nothing: the first head was due 10 s after accept.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let name = rustls::pki_types::ServerName::try_from("app.example.com").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the handshake completes within the deadline");
    let started = tokio::time::Instant::now();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        tls.read_to_end(&mut sink),
    )
    .await;
    assert!(closed.is_ok(), "closed at the head deadline");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "closed {:?} after the handshake",
        started.elapsed()
    );
}
