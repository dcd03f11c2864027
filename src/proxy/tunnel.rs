//! Methods and upgrades that turn a request into a tunnel (stage 5, forward).
//!
//! A tunnel carries bytes the policy never sees, so only one kind is opened: a
//! WebSocket on a route with `allow_websockets`. `TRACE` is refused (405); `CONNECT` is
//! refused (405) unless it is an HTTP/2 extended CONNECT for `websocket` (RFC 8441) on
//! such a route, which is carried upstream as an HTTP/1.1 upgrade. An upstream `101`
//! opens the tunnel only when the request was such a handshake and the answer completes
//! it: `Upgrade: websocket` and the `Sec-WebSocket-Accept` that the key asks for (RFC
//! 6455 §4.2.2); any other `101` is a 502.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Version};

use crate::error::ProxyError;

/// The GUID a WebSocket server appends to the client's key (RFC 6455 §1.3).
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The upgrade a request asks for, when its route lets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// No tunnel: an upstream `101` is an error.
    None,
    /// An HTTP/1.1 `Upgrade: websocket`, passed on as it came.
    Http1,
    /// An HTTP/2 extended CONNECT for `websocket`, carried as an HTTP/1.1 upgrade.
    Http2,
}

/// Refuses `TRACE`, and `CONNECT` unless it is a WebSocket on a route that allows them.
pub(crate) fn admit<B>(req: &Request<B>, allow_websockets: bool) -> Result<(), ProxyError> {
    match *req.method() {
        Method::TRACE => Err(ProxyError::MethodNotAllowed),
        Method::CONNECT if allow_websockets && is_h2_websocket(req) => Ok(()),
        Method::CONNECT => Err(ProxyError::MethodNotAllowed),
        _ => Ok(()),
    }
}

/// The handshake `req` makes, given whether its route allows WebSockets.
pub(crate) fn handshake<B>(req: &Request<B>, allow_websockets: bool) -> Handshake {
    if !allow_websockets {
        Handshake::None
    } else if is_h2_websocket(req) {
        Handshake::Http2
    } else if is_h1_websocket(req) {
        Handshake::Http1
    } else {
        Handshake::None
    }
}

/// Turns the HTTP/2 extended CONNECT in `parts` into an HTTP/1.1 upgrade request with a
/// key of our own; returns that key.
pub(crate) fn h2_to_h1(parts: &mut http::request::Parts) -> Option<HeaderValue> {
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&crate::seal::random_32()[..16]);
    let key = HeaderValue::from_str(&STANDARD.encode(nonce)).ok()?;
    parts.method = Method::GET;
    let h = &mut parts.headers;
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::SEC_WEBSOCKET_KEY, key.clone());
    if !h.contains_key(header::SEC_WEBSOCKET_VERSION) {
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    Some(key)
}

/// `Sec-WebSocket-Accept` for `key`: base64 of SHA-1 of key + GUID.
pub(crate) fn accept_for(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(WEBSOCKET_GUID);
    STANDARD.encode(ctx.finish())
}

/// Whether an upstream `101` completes the WebSocket handshake of `key` (the key sent
/// upstream; `None` when the request was no handshake).
pub(crate) fn switch_accepted(response: &HeaderMap, key: Option<&HeaderValue>) -> bool {
    let Some(key) = key else { return false };
    let upgrade = has_token(response, header::UPGRADE, "websocket");
    let accept = response.get(header::SEC_WEBSOCKET_ACCEPT);
    upgrade && accept.is_some_and(|a| a.as_bytes() == accept_for(key.as_bytes()).as_bytes())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// An HTTP/1.1 WebSocket handshake: `Upgrade: websocket` with `Connection: upgrade`.
fn is_h1_websocket<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.method() == Method::GET
        && has_token(req.headers(), header::UPGRADE, "websocket")
        && has_token(req.headers(), header::CONNECTION, "upgrade")
}

/// An HTTP/2 extended CONNECT with `:protocol websocket` (RFC 8441).
fn is_h2_websocket<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_2
        && req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_is_rfc_6455s_example() {
        assert_eq!(
            accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_switch_needs_the_handshake_and_the_right_accept() {
        let key = HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==");
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        assert!(switch_accepted(&h, Some(&key)));
        assert!(!switch_accepted(&h, None), "no handshake was asked for");
        let other = HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA==");
        assert!(!switch_accepted(&h, Some(&other)));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!switch_accepted(&h, Some(&key)));
    }

    #[test]
    fn trace_and_plain_connect_are_refused() {
        let trace = Request::builder()
            .method("TRACE")
            .uri("/")
            .body(())
            .unwrap();
        assert!(admit(&trace, true).is_err());
        let connect = Request::builder()
            .method("CONNECT")
            .uri("app.example.com:443")
            .body(())
            .unwrap();
        assert!(admit(&connect, true).is_err());
        let mut h2 = Request::builder()
            .method("CONNECT")
            .version(Version::HTTP_2)
            .uri("https://app.example.com/chat")
            .body(())
            .unwrap();
        h2.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        assert!(admit(&h2, true).is_ok());
        assert!(admit(&h2, false).is_err());
        assert_eq!(handshake(&h2, true), Handshake::Http2);
        assert!(admit(&Request::get("/").body(()).unwrap(), false).is_ok());
    }
}
