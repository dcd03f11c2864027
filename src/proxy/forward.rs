//! Stage 5, **forward**: send the request upstream and stream the answer back.
//!
//! Builds the upstream request from the canonical view (never the raw URI), applies
//! header hygiene ([`super::headers`]) before adding anything of ours, streams both
//! bodies without buffering, enforces the route's timeouts, and tunnels an accepted
//! WebSocket upgrade (and nothing else: [`super::tunnel`]).

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{self, PathAndQuery};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::client::RouteClient;
use super::headers;
use super::pool::UpstreamBody;
use super::timed::TimedBody;
use super::tunnel::{self, Handshake};
use crate::body::ResponseBody;
use crate::config::route::HostHeader;
use crate::config::template::TemplateContext;
use crate::error::ProxyError;
use crate::identity::inject::Identity;
use crate::routes::{RequestView, Route, rewrite};
use crate::session::Session;

/// What forwarding needs besides the request and the route.
#[derive(Debug)]
pub(crate) struct ForwardContext<'a> {
    /// The request id, passed upstream as `X-Request-Id`.
    pub request_id: &'a str,
    /// Our session cookie name: it and `<name>_*` never reach the upstream.
    pub cookie_name: &'a str,
    /// `timeout_read`: the request body must arrive within it.
    pub read_timeout: Duration,
    /// `timeout_write`: the response must be sent within it.
    pub write_timeout: Duration,
    /// The signed-in user, if any (for header templates).
    pub session: Option<&'a Session>,
    /// Identity headers to add, and the assertion for `${pomerium.jwt}`.
    pub identity: &'a Identity,
    /// Configured claim-header names: client-sent copies are removed like `X-Pomerium-*`.
    pub claim_headers: &'a [HeaderName],
}

impl ForwardContext<'_> {
    /// Whether a cookie name is one of ours.
    pub(crate) fn is_our_cookie(&self, name: &str) -> bool {
        name == self.cookie_name
            || name
                .strip_prefix(self.cookie_name)
                .is_some_and(|rest| rest.starts_with('_'))
    }
}

/// Forwards `req` to one of the route's upstreams.
pub(crate) async fn forward(
    mut req: Request<Incoming>,
    view: &RequestView,
    route: &Route,
    client: &RouteClient,
    ctx: &ForwardContext<'_>,
) -> Result<Response<ResponseBody>, ProxyError> {
    let spec = &route.spec;
    let handshake = tunnel::handshake(&req, spec.allow_websockets);
    let websocket = handshake != Handshake::None;
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();

    // 0. Header templates read the client's request as it arrived.
    let rendered: Vec<(HeaderName, HeaderValue)> = if spec.set_request_headers.is_empty() {
        Vec::new()
    } else {
        let tctx = TemplateContext {
            id_token: ctx.session.map(|s| s.tokens.id_token.expose()),
            access_token: ctx.session.map(|s| s.tokens.access_token.expose()),
            jwt: ctx.identity.jwt.as_deref(),
            request_headers: &parts.headers,
        };
        spec.set_request_headers
            .iter()
            .filter_map(|(name, t)| {
                HeaderValue::from_str(&t.render(&tctx))
                    .ok()
                    .map(|v| (name.clone(), v))
            })
            .collect()
    };

    // 1. Remove everything the client may not decide; only then add ours.
    let h = &mut parts.headers;
    let found = headers::survey(h, ctx.claim_headers);
    if found.hop_by_hop {
        headers::strip_hop_by_hop(h, websocket);
    }
    if found.identity {
        headers::strip_identity(h, ctx.claim_headers);
    }
    if found.method_override {
        headers::strip_method_overrides(h);
    }
    if found.cookie {
        headers::strip_cookies(h, |n| ctx.is_our_cookie(n));
    }
    headers::set_forwarded_found(h, view, found.forwarded);
    for name in &spec.remove_request_headers {
        h.remove(name);
    }
    for (name, value) in rendered {
        h.insert(name, value);
    }
    // Our identity last: nothing the client or a template says can replace it.
    for (name, value) in &ctx.identity.headers {
        h.insert(name.clone(), value.clone());
    }
    if let Ok(id) = HeaderValue::from_str(ctx.request_id) {
        h.insert(http::header::HeaderName::from_static("x-request-id"), id);
    }

    // The key the upstream must answer: the client's, or ours for an HTTP/2 WebSocket.
    let key = match handshake {
        Handshake::None => None,
        Handshake::Http1 => parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned(),
        Handshake::Http2 => tunnel::h2_to_h1(&mut parts),
    };

    // 2. Target: the next upstream, the rewritten canonical path, the original query.
    let upstream = route.pick();
    let host_value = match &spec.host_header {
        HostHeader::Preserve => headers::authority_value(&parts.headers, view),
        HostHeader::Rewrite(v) => Some(v.clone()),
        HostHeader::Upstream => None,
    };
    let path = rewrite::upstream_path(spec, &view.path);
    let path_and_query = match parts.uri.path_and_query() {
        // Already canonical and not rewritten: the client's own target, shared.
        Some(original) if original.path() == path && original.query() == view.query.as_deref() => {
            original.clone()
        }
        _ => {
            let joined = match &view.query {
                Some(q) => format!("{path}?{q}"),
                None => path.into_owned(),
            };
            PathAndQuery::from_maybe_shared(Bytes::from(joined))
                .map_err(|_| ProxyError::Internal("cannot build the upstream URI"))?
        }
    };
    // Plain HTTP/1.1 upstreams: this worker's pool, origin-form target. CONNECT and
    // TLS or h2c upstreams: the general client, absolute URI.
    let pooled = client
        .pooled(&spec.to, upstream)
        .filter(|_| parts.method != Method::CONNECT);
    let mut uri = uri::Parts::default();
    if pooled.is_none() {
        uri.scheme = Some(upstream.scheme.clone());
        uri.authority = Some(upstream.authority.clone());
    }
    uri.path_and_query = Some(path_and_query);
    parts.uri =
        Uri::from_parts(uri).map_err(|_| ProxyError::Internal("cannot build the upstream URI"))?;
    parts.headers.insert(
        header::HOST,
        host_value.unwrap_or_else(|| upstream.host_header.clone()),
    );
    parts.version = Version::HTTP_11;

    // 3. Send, bounded by the route timeout (time to the response head), if the
    // upstream has a connection to spare (`upstream_max_connections`).
    let mut place = client.admit(&spec.to, upstream)?;
    let body = TimedBody::new(body, Some(ctx.read_timeout), None);
    let req = Request::from_parts(parts, body);
    let send = async move {
        match pooled {
            Some((pool, slot)) => pool
                .send(slot, req)
                .await
                .map(|(response, lease)| (response, Some(lease)))
                .map_err(crate::body::BoxError::from),
            None => client
                .general()
                .request(req)
                .await
                .map(|response| (response, None))
                .map_err(crate::body::BoxError::from),
        }
    };
    let result = match spec.timeout {
        Some(t) => super::deadline::within(t, send)
            .await
            .map_err(|_| ProxyError::UpstreamTimeout)?,
        None => send.await,
    };
    let (mut response, mut lease) = result.map_err(send_failure)?;

    // 4. An accepted upgrade becomes a byte tunnel between client and upstream; a
    // switch nobody asked for, or that does not complete the handshake, is refused.
    let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if upgraded {
        // The connection now belongs to the tunnel (or is closed): never reuse it.
        lease = None;
        if !tunnel::switch_accepted(response.headers(), key.as_ref()) {
            return Err(ProxyError::UpstreamUnavailable(
                "the upstream switched protocols without completing a WebSocket handshake".into(),
            ));
        }
    }
    if upgraded && let Some(client_side) = client_upgrade {
        let upstream_side = hyper::upgrade::on(&mut response);
        // The tunnel holds the upstream connection, and so its place.
        let place = place.take();
        tokio::spawn(async move {
            let _place = place;
            if let (Ok(c), Ok(u)) = (client_side.await, upstream_side.await) {
                let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
                let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
            }
        });
    }

    let (mut parts, body) = response.into_parts();
    let h1_upgraded = upgraded && handshake == Handshake::Http1;
    headers::clean_response(&mut parts.headers, h1_upgraded, |n| ctx.is_our_cookie(n));
    if upgraded && handshake == Handshake::Http2 {
        // RFC 8441: an HTTP/2 WebSocket is accepted with 200 and no handshake headers.
        parts.status = StatusCode::OK;
        parts.headers.remove(header::SEC_WEBSOCKET_ACCEPT);
    }
    for (name, value) in &spec.set_response_headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    let body = TimedBody::new(
        UpstreamBody::new(body, lease, place),
        Some(ctx.write_timeout),
        spec.idle_timeout,
    );
    Ok(Response::from_parts(parts, ResponseBody::stream(body)))
}

/// Why an exchange with the upstream failed. When the request body we were streaming was
/// malformed — the client's chunked framing did not parse — it is the client's error
/// (400), not the upstream's (502).
fn send_failure(e: crate::body::BoxError) -> ProxyError {
    let mut request_body_failed = false;
    let mut malformed = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(err) = source {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            request_body_failed = true;
        }
        if request_body_failed
            && err.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
                )
            })
        {
            malformed = true;
            break;
        }
        source = err.source();
    }
    if malformed {
        ProxyError::BadRequest(e)
    } else {
        ProxyError::UpstreamUnavailable(e)
    }
}
