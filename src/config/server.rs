//! Listener settings: addresses, TLS certificates, timeouts, limits, trusted proxies,
//! response headers, logging and metrics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::headers::{self, HeaderList};
use super::node::Node;
use super::problem::index;
use super::reader::{Fields, decode_base64};
use crate::tls::server::CertificatePair;

/// How the proxy listens and protects its connections.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// `address` (default `:443`).
    pub address: SocketAddr,
    /// `insecure_server`: plain HTTP, no TLS.
    pub insecure: bool,
    /// Certificates for TLS, chosen by SNI; empty when insecure.
    pub certificates: Vec<CertificatePair>,
    /// `http_redirect_addr`: a plain-HTTP listener that redirects to HTTPS.
    pub http_redirect_addr: Option<SocketAddr>,
    /// Connection and request timeouts.
    pub timeouts: Timeouts,
    /// `max_request_header_bytes` (default 64 KiB): larger request heads get 431.
    pub max_request_header_bytes: usize,
    /// `http2_max_concurrent_streams` (default 100) per HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// `max_connections` (ours): downstream connections open at once, on all listeners;
    /// at the cap, accepting pauses. `None`: derived from the file-descriptor limit.
    pub max_connections: Option<usize>,
    /// `upstream_max_connections` (ours, default 1024 as Envoy's circuit breakers):
    /// connections in use per upstream; beyond it a request gets 503.
    pub upstream_max_connections: usize,
    /// `trusted_proxies`: peers whose `X-Forwarded-*`/`Forwarded` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The global `set_response_headers`.
    pub response_headers: HeaderList,
    /// `log_level`.
    pub log_level: tracing::Level,
    /// `log_format`: JSON lines instead of text.
    pub log_json: bool,
    /// `metrics_address`: where Prometheus metrics are served.
    pub metrics_address: Option<SocketAddr>,
}

/// Timeouts of the downstream side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeout_read` (30s): the whole request, head and body, must arrive within it. 0 = off.
    pub read: Duration,
    /// `timeout_write` (0 = off): the whole response must be sent within it.
    pub write: Duration,
    /// `timeout_idle` (5m): an idle keep-alive connection is closed after it.
    pub idle: Duration,
    /// `timeout_read_header` (10s): the TLS handshake and first request head must
    /// arrive within it of accept, every later head within it of the previous response.
    pub read_header: Duration,
    /// `timeout_send` (60s, ours; nginx's `send_timeout`): a client that takes none of a
    /// response's bytes for this long is disconnected, and the upstream side of the
    /// response dropped. 0 = off.
    pub send: Duration,
    /// `timeout_shutdown` (30s): how long in-flight requests may finish after SIGTERM.
    pub shutdown: Duration,
    /// `default_upstream_timeout` (30s): a route's upstream timeout when it sets none.
    pub default_upstream: Duration,
}

/// Reads the listener settings from the top-level mapping.
pub fn read(f: &mut Fields<'_>) -> ServerSettings {
    let address = f.string("address").and_then(|a| {
        let parsed = parse_addr(&a);
        f.ok_or_report("address", parsed)
    });
    let insecure = f.bool_or("insecure_server", false);
    let certificates = read_certificates(f);
    if !insecure && certificates.is_empty() {
        f.problems.push(
            "certificate_file",
            "TLS needs a certificate: set `certificate_file` and `certificate_key_file` \
             (or `certificate`/`certificate_key`, or `certificates`), or `insecure_server: true` \
             behind a TLS-terminating load balancer",
        );
    }
    let http_redirect_addr = f.string("http_redirect_addr").and_then(|a| {
        let parsed = parse_addr(&a);
        f.ok_or_report("http_redirect_addr", parsed)
    });
    let metrics_address = f.string("metrics_address").and_then(|a| {
        let parsed = parse_addr(&a);
        f.ok_or_report("metrics_address", parsed)
    });
    let timeouts = Timeouts {
        read: f.duration_or("timeout_read", Duration::from_secs(30)),
        write: f.duration_or("timeout_write", Duration::ZERO),
        idle: f.duration_or("timeout_idle", Duration::from_secs(300)),
        read_header: f.duration_or("timeout_read_header", Duration::from_secs(10)),
        send: f.duration_or("timeout_send", Duration::from_secs(60)),
        shutdown: f.duration_or("timeout_shutdown", Duration::from_secs(30)),
        default_upstream: f.duration_or("default_upstream_timeout", Duration::from_secs(30)),
    };
    let max_request_header_bytes = f.u64("max_request_header_bytes").unwrap_or(64 * 1024);
    if max_request_header_bytes < 8192 {
        f.problems
            .push("max_request_header_bytes", "must be at least 8192");
    }
    let http2_max_concurrent_streams = f.u64("http2_max_concurrent_streams").unwrap_or(100);
    let max_connections = f.u64("max_connections");
    if max_connections == Some(0) {
        f.problems.push("max_connections", "must be at least 1");
    }
    let upstream_max_connections = f.u64("upstream_max_connections").unwrap_or(1024);
    if upstream_max_connections == 0 {
        f.problems
            .push("upstream_max_connections", "must be at least 1");
    }
    let trusted_proxies = read_cidrs(f);
    let response_headers = match f.string_map("set_response_headers") {
        Some(pairs) => headers::read_global(&pairs, "set_response_headers", f.problems),
        None => headers::secure_defaults(!insecure),
    };
    let log_level = f.string("log_level").and_then(|l| {
        let parsed = parse_level(&l);
        f.ok_or_report("log_level", parsed)
    });
    let log_json = f.string("log_format").and_then(|s| match s.as_str() {
        "json" => Some(true),
        "text" => Some(false),
        _ => f.ok_or_report("log_format", Err(format!("{s:?}: use `text` or `json`"))),
    });
    ServerSettings {
        address: address.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 443)),
        insecure,
        certificates,
        http_redirect_addr,
        timeouts,
        max_request_header_bytes: usize::try_from(max_request_header_bytes).unwrap_or(usize::MAX),
        http2_max_concurrent_streams: u32::try_from(http2_max_concurrent_streams)
            .unwrap_or(u32::MAX),
        max_connections: max_connections.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        upstream_max_connections: usize::try_from(upstream_max_connections).unwrap_or(usize::MAX),
        trusted_proxies,
        response_headers,
        log_level: log_level.unwrap_or(tracing::Level::INFO),
        log_json: log_json.unwrap_or(false),
        metrics_address,
    }
}

/// Parses a listen address: `:443` (all interfaces), `127.0.0.1:8080`, `[::1]:443`,
/// `localhost:8080`.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let bad = || format!("{t:?} is not an address such as \":443\" or \"127.0.0.1:8443\"");
    if let Some(port) = t.strip_prefix(':') {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Some(port) = t.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    t.parse().map_err(|_| bad())
}

fn parse_level(text: &str) -> Result<tracing::Level, String> {
    match text.to_ascii_lowercase().as_str() {
        "trace" => Ok(tracing::Level::TRACE),
        "debug" => Ok(tracing::Level::DEBUG),
        "info" => Ok(tracing::Level::INFO),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "error" | "fatal" | "panic" => Ok(tracing::Level::ERROR),
        other => Err(format!("{other:?}: use trace, debug, info, warn or error")),
    }
}

fn read_cidrs(f: &mut Fields<'_>) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, text) in f
        .strings("trusted_proxies")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => out.push(net.trunc()),
            Err(_) => f.problems.push(
                index("trusted_proxies", i),
                format!("{text:?} is not an IP address or CIDR"),
            ),
        }
    }
    out
}

fn read_certificates(f: &mut Fields<'_>) -> Vec<CertificatePair> {
    let mut out = Vec::new();
    let cert = f.bytes_inline_or_file("certificate", "certificate_file");
    let key = f.bytes_inline_or_file("certificate_key", "certificate_key_file");
    match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => {
            out.push(CertificatePair {
                cert_pem,
                key_pem,
                origin: "certificate".into(),
            });
        }
        (Some(_), None) => f
            .problems
            .push("certificate_key_file", "a certificate needs its key"),
        (None, Some(_)) => f
            .problems
            .push("certificate_file", "a key needs its certificate"),
        (None, None) => {}
    }
    if let Some(node) = f.node("certificates") {
        let Node::List(items) = node else {
            f.problems
                .push("certificates", "expected a list of {cert, key}");
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let path = index("certificates", i);
            let mut g = Fields::new(item, &path, None, f.problems);
            let cert = read_pem(&mut g, "cert");
            let key = read_pem(&mut g, "key");
            g.finish();
            match (cert, key) {
                (Some(cert_pem), Some(key_pem)) => out.push(CertificatePair {
                    cert_pem,
                    key_pem,
                    origin: path,
                }),
                _ => f.problems.push(path, "needs both `cert` and `key`"),
            }
        }
    }
    out
}

/// A `certificates[]` entry field: a file path, or base64 of the PEM.
fn read_pem(f: &mut Fields<'_>, key: &'static str) -> Option<Vec<u8>> {
    let value = f.string(key)?;
    if let Ok(bytes) = std::fs::read(&value) {
        return Some(bytes);
    }
    match decode_base64(&value) {
        Some(b) if b.starts_with(b"-----BEGIN") => Some(b),
        _ => f.ok_or_report(
            key,
            Err("neither a readable file nor base64 of a PEM".into()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr(":443").unwrap().to_string(), "0.0.0.0:443");
        assert_eq!(
            parse_addr("127.0.0.1:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(parse_addr("[::1]:8443").unwrap().to_string(), "[::1]:8443");
        assert_eq!(
            parse_addr("localhost:80").unwrap().to_string(),
            "127.0.0.1:80"
        );
        assert!(parse_addr("nope").is_err());
        assert!(parse_addr(":99999").is_err());
    }
}
