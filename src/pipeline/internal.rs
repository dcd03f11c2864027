//! Stage 2a, the proxy's own endpoints on every host, before any user route: `/ping`
//! and `/healthz`, `/readyz`, and `/.well-known/pomerium` with its JWKS.

use http::{Method, Response, StatusCode};

use super::App;
use crate::body::ResponseBody;
use crate::error::ProxyError;
use crate::respond;
use crate::routes::RequestView;

/// Whether `view` is for one of these endpoints (the well-known documents only for
/// GET and HEAD: other methods there go to the user's routes).
pub(super) fn is_internal(view: &RequestView) -> bool {
    match view.path.as_str() {
        "/ping" | "/healthz" | "/readyz" => true,
        "/.well-known/pomerium/jwks.json" | "/.well-known/pomerium" | "/.well-known/pomerium/" => {
            matches!(view.method, Method::GET | Method::HEAD)
        }
        _ => false,
    }
}

/// Stage 2a: `/.well-known/pomerium` and its JWKS on every host, for upstreams that
/// verify the identity assertion (CORS open, cacheable, ETag).
pub(super) fn well_known(
    app: &App,
    view: &RequestView,
    headers: &http::HeaderMap,
) -> Option<Response<ResponseBody>> {
    use http::header::{self, HeaderValue};
    if !matches!(view.method, Method::GET | Method::HEAD) {
        return None;
    }
    let (body, etag) = match view.path.as_str() {
        "/.well-known/pomerium/jwks.json" => {
            let jwks = app.identity.keys.jwks();
            (jwks.json.clone(), Some(jwks.etag.as_str()))
        }
        "/.well-known/pomerium" | "/.well-known/pomerium/" => {
            let base = format!("{}://{}", app.scheme_for(view), view.authority());
            let doc = serde_json::json!({
                "issuer": view.host,
                "jwks_uri": format!("{base}/.well-known/pomerium/jwks.json"),
                "authentication_callback_endpoint": format!("{base}/oauth2/callback"),
            });
            (bytes::Bytes::from(doc.to_string()), None)
        }
        _ => return None,
    };
    let not_modified = etag.is_some_and(|e| {
        headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == e.as_bytes())
    });
    let mut r = if not_modified {
        let mut r = Response::new(ResponseBody::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(ResponseBody::full(body))
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    if let Some(e) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        h.insert(header::ETAG, e);
    }
    Some(r)
}

/// Stage 2a: `/ping` and `/healthz` on every host, before any user route.
pub(super) fn health_endpoint(
    view: &RequestView,
) -> Result<Option<Response<ResponseBody>>, ProxyError> {
    match view.path.as_str() {
        "/ping" | "/healthz" => match view.method {
            Method::GET | Method::HEAD => Ok(Some(respond::text(StatusCode::OK, "OK"))),
            _ => Err(ProxyError::MethodNotAllowed),
        },
        _ => Ok(None),
    }
}

/// Stage 2a: `/readyz` on every host: 200 when the session store answers (always, for
/// the in-process store), 503 otherwise, so load balancers send users elsewhere.
pub(super) async fn readiness(
    app: &App,
    view: &RequestView,
) -> Result<Response<ResponseBody>, ProxyError> {
    if !matches!(view.method, Method::GET | Method::HEAD) {
        return Err(ProxyError::MethodNotAllowed);
    }
    Ok(match app.sessions.ready().await {
        Ok(()) => respond::text(StatusCode::OK, "OK"),
        Err(e) => {
            tracing::debug!(error = %e, "not ready");
            respond::text(StatusCode::SERVICE_UNAVAILABLE, "session store unavailable")
        }
    })
}
