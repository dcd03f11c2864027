//! The canonical request view: the one interpretation of a request that routing,
//! policy and forwarding all share.
//!
//! Built once per request, before anything else looks at the request. The authority of
//! an absolute-form target wins over `Host` (RFC 9112 §3.2.2); the host is lower-cased
//! with no trailing dot and no default port; the path is normalised
//! ([`super::normalize`]). The raw URI is never consulted again after this.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Method, Request, header};
use ipnet::IpNet;

use super::normalize::{self, NormalizeError};
use crate::error::ProxyError;

/// The canonical view of one request.
#[derive(Debug, Clone)]
pub struct RequestView {
    /// Whether the request arrived over TLS.
    pub tls: bool,
    /// Lower-cased host, no trailing dot, no port.
    pub host: String,
    /// The port, when explicit and not the scheme's default.
    pub port: Option<u16>,
    /// The normalised path.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The method.
    pub method: Method,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client's address: the peer, or — when the peer is a trusted proxy — the
    /// right-most untrusted address of `X-Forwarded-For`.
    pub client_ip: IpAddr,
    /// Whether the peer is a trusted proxy (its forwarded headers may be kept).
    pub peer_trusted: bool,
}

impl RequestView {
    /// The `Host` value as the client meant it (host plus explicit port).
    pub fn authority(&self) -> Cow<'_, str> {
        match self.port {
            Some(p) => Cow::Owned(format!("{}:{p}", self.host)),
            None => Cow::Borrowed(&self.host),
        }
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// Path plus `?query`.
    pub fn path_and_query(&self) -> Cow<'_, str> {
        match &self.query {
            Some(q) => Cow::Owned(format!("{}?{q}", self.path)),
            None => Cow::Borrowed(&self.path),
        }
    }
}

/// Why a request cannot be viewed canonically: always a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The path or host was refused.
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    /// No `Host` and no absolute-form authority.
    #[error("missing Host header")]
    MissingHost,
    /// Several `Host` headers.
    #[error("more than one Host header")]
    DuplicateHost,
    /// An absolute-form target whose scheme is neither `http` nor `https`.
    #[error("request target with a scheme other than http or https")]
    BadScheme,
    /// A `Transfer-Encoding` with a coding other than `chunked` (a 501, not a 400).
    #[error("transfer coding other than chunked")]
    UnsupportedCoding,
}

impl From<RequestError> for ProxyError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::UnsupportedCoding => ProxyError::NotImplemented,
            e => ProxyError::BadRequest(Box::new(e)),
        }
    }
}

/// Builds the canonical view of `req`, received on a connection from `peer`.
pub fn view<B>(
    req: &Request<B>,
    tls: bool,
    peer: SocketAddr,
    trusted: &[IpNet],
) -> Result<RequestView, RequestError> {
    let uri = req.uri();
    if uri
        .scheme_str()
        .is_some_and(|s| !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https"))
    {
        return Err(RequestError::BadScheme);
    }
    if !only_chunked(req.headers()) {
        return Err(RequestError::UnsupportedCoding);
    }
    let authority = match uri.authority() {
        Some(a) => a.as_str(),
        None => single_host(req.headers())?,
    };
    let (host, port) = normalize::host(authority, tls)?;
    let path = normalize::path(uri.path())?;
    let peer_trusted = is_trusted(peer.ip(), trusted);
    let client_ip = if peer_trusted {
        forwarded_client(req.headers(), trusted).unwrap_or(peer.ip())
    } else {
        peer.ip()
    };
    Ok(RequestView {
        tls,
        host: host.into_owned(),
        port,
        path: path.into_owned(),
        query: uri.query().map(str::to_owned),
        method: req.method().clone(),
        peer,
        client_ip,
        peer_trusted,
    })
}

/// Whether every `Transfer-Encoding` coding is `chunked` (or there is none). The HTTP/1.1
/// parser already refuses a coding list that does not end in `chunked`; `gzip, chunked`
/// reaches us, and we implement no coding but `chunked`.
fn only_chunked(headers: &HeaderMap) -> bool {
    headers.get_all(header::TRANSFER_ENCODING).iter().all(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .all(|c| c.trim().eq_ignore_ascii_case("chunked"))
        })
    })
}

fn single_host(headers: &HeaderMap) -> Result<&str, RequestError> {
    let mut values = headers.get_all(header::HOST).iter();
    let first = values.next().ok_or(RequestError::MissingHost)?;
    if values.next().is_some() {
        return Err(RequestError::DuplicateHost);
    }
    first
        .to_str()
        .map_err(|_| RequestError::Normalize(NormalizeError::BadHost))
}

/// True when `ip` is inside one of the trusted CIDRs.
pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

/// The right-most address in `X-Forwarded-For` that is not a trusted proxy.
fn forwarded_client(headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let mut last_trusted = None;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let text = value.to_str().ok()?;
        for item in text.rsplit(',') {
            let ip: IpAddr = item.trim().parse().ok()?;
            if !is_trusted(ip, trusted) {
                return Some(ip);
            }
            last_trusted = Some(ip);
        }
    }
    last_trusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5555)
    }

    #[test]
    fn absolute_form_authority_wins_over_host() {
        let req = Request::get("http://Real.Example.com./x/../y")
            .header("host", "other.example.com")
            .body(())
            .unwrap();
        let v = view(&req, false, peer("10.0.0.1"), &[]).unwrap();
        assert_eq!(
            (v.host.as_str(), v.path.as_str()),
            ("real.example.com", "/y")
        );
    }

    #[test]
    fn only_http_schemes_and_the_chunked_coding() {
        let req = Request::get("ftp://app.example.com/x").body(()).unwrap();
        assert_eq!(
            view(&req, false, peer("10.0.0.1"), &[]).unwrap_err(),
            RequestError::BadScheme
        );
        let req = Request::post("/x")
            .header("host", "a")
            .header("transfer-encoding", "gzip, chunked")
            .body(())
            .unwrap();
        let err = view(&req, false, peer("10.0.0.1"), &[]).unwrap_err();
        assert_eq!(err, RequestError::UnsupportedCoding);
        assert_eq!(ProxyError::from(err).status().as_u16(), 501);
        let req = Request::post("HTTPS://a/x")
            .header("transfer-encoding", "Chunked")
            .body(())
            .unwrap();
        assert!(view(&req, true, peer("10.0.0.1"), &[]).is_ok());
    }

    #[test]
    fn host_header_is_required_once() {
        let req = Request::get("/").body(()).unwrap();
        assert_eq!(
            view(&req, true, peer("10.0.0.1"), &[]).unwrap_err(),
            RequestError::MissingHost
        );
        let req = Request::get("/")
            .header("host", "a")
            .header("host", "b")
            .body(())
            .unwrap();
        assert_eq!(
            view(&req, true, peer("10.0.0.1"), &[]).unwrap_err(),
            RequestError::DuplicateHost
        );
    }

    #[test]
    fn client_ip_trusts_only_configured_proxies() {
        let req = Request::get("/")
            .header("host", "a")
            .header("x-forwarded-for", "1.2.3.4, 10.0.0.9")
            .body(())
            .unwrap();
        let untrusted = view(&req, true, peer("10.0.0.1"), &[]).unwrap();
        assert_eq!(untrusted.client_ip.to_string(), "10.0.0.1");
        assert!(!untrusted.peer_trusted);
        let nets = ["10.0.0.0/8".parse().unwrap()];
        let trusted = view(&req, true, peer("10.0.0.1"), &nets).unwrap();
        assert_eq!(trusted.client_ip.to_string(), "1.2.3.4");
    }
}
