//! The request path, top to bottom: **accept → match_route → load_session →
//! authorize → forward**.
//!
//! `server/` accepts the connection and hands each request to [`handle`]. From there
//! every stage either produces the input of the next one or a [`ProxyError`], which
//! [`respond`](crate::respond) alone turns into a response. The canonical
//! [`RequestView`] built at the start is the only interpretation of the request that
//! any stage uses.

use std::net::SocketAddr;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::config::Config;
use crate::identity::inject::{Identity, Injector};
use crate::oidc::endpoints::{self, Context};
use crate::oidc::{Authenticator, SignInError};
use crate::policy::{Input, Outcome};
use crate::proxy::{ForwardContext, Upstreams, forward};
use crate::respond::{self, ProxyError};
use crate::routes::{RequestView, RouteTable, request};
use crate::telemetry::{self, AccessRecord};

/// Everything a request needs, built once from the configuration.
#[derive(Debug)]
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// The route table.
    pub table: RouteTable,
    /// Upstream clients, by route id.
    pub upstreams: Upstreams,
    /// Sign-in and sessions.
    pub auth: Authenticator,
    /// Identity headers and signing keys.
    pub identity: Injector,
    claim_header_names: Vec<http::HeaderName>,
}

/// Why the application could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Upstream TLS settings.
    #[error("upstream TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The signing key.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The session store (Redis URL).
    #[error(transparent)]
    Store(#[from] crate::session::StoreError),
}

impl App {
    /// Builds the route table, upstream clients and the authenticator.
    pub fn new(config: Config) -> Result<Self, AppError> {
        let table = RouteTable::new(config.routes.clone());
        let upstreams = Upstreams::new(&table)?;
        // One shared secret for everything derived from it; random per process if unset.
        let shared = config
            .auth
            .shared_secret
            .as_ref()
            .map_or_else(crate::seal::random_32, |k| k.0);
        let auth = Authenticator::new(&config, &shared)?;
        let identity = Injector::new(&config, &shared)?;
        let claim_header_names = identity.claim_header_names().cloned().collect();
        Ok(Self {
            config,
            table,
            upstreams,
            auth,
            identity,
            claim_header_names,
        })
    }

    /// The scheme users reach `view`'s host with: its routes' `from` scheme, else the
    /// connection's.
    fn scheme_for(&self, view: &RequestView) -> &'static str {
        match self.table.scheme_for(&view.host) {
            Some("https") => "https",
            Some(_) => "http",
            None => view.scheme(),
        }
    }
}

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether it is TLS.
    pub tls: bool,
}

/// Serves one request, always producing a response, and writes its access-log line.
pub async fn handle(
    app: &App,
    upstreams: &Upstreams,
    req: Request<Incoming>,
    conn: Connection,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let request_id = telemetry::request_id();
    let html = respond::wants_html(req.headers());
    // The access log needs these after the request is consumed; copy them only when it is on.
    let logged = tracing::enabled!(target: "portcullis::access", tracing::Level::INFO).then(|| {
        (
            req.method().clone(),
            req.uri().path().to_owned(),
            req.uri().query().map(str::to_owned),
        )
    });

    let mut route_id = None;
    let outcome = run(app, upstreams, req, conn, &request_id, html, &mut route_id).await;
    let response = match outcome {
        Ok(response) => response,
        Err(err) => {
            match &err {
                ProxyError::UpstreamUnavailable(_)
                | ProxyError::UpstreamTimeout
                | ProxyError::Internal(_) => {
                    tracing::warn!(request_id = %request_id, error = %err, "request failed");
                }
                ProxyError::SignIn(_) => {
                    tracing::info!(request_id = %request_id, error = %err, "sign-in failed")
                }
                _ => tracing::debug!(request_id = %request_id, error = %err, "request refused"),
            }
            respond::error_response(&err, &request_id, html, &app.config.server.response_headers)
        }
    };
    if let Some((method, raw_path, raw_query)) = &logged {
        telemetry::access(&AccessRecord {
            request_id: &request_id,
            method,
            path: raw_path,
            query: raw_query.as_deref(),
            route: route_id
                .and_then(|i| app.table.routes().get(i))
                .map(|r| r.spec.name.as_str()),
            status: response.status(),
            duration: started.elapsed(),
        });
    }

    response
}

async fn run(
    app: &App,
    upstreams: &Upstreams,
    req: Request<Incoming>,
    conn: Connection,
    request_id: &str,
    html: bool,
    route_id: &mut Option<usize>,
) -> Result<Response<ResponseBody>, ProxyError> {
    // 2. match_route: one canonical view, internal endpoints first, then user routes.
    let view = request::view(
        &req,
        conn.tls,
        conn.peer,
        &app.config.server.trusted_proxies,
    )?;
    if let Some(response) = health_endpoint(&view)? {
        return Ok(response);
    }
    if view.path == "/readyz" {
        return readiness(app, &view).await;
    }
    if let Some(response) = well_known(app, &view, req.headers()) {
        return Ok(response);
    }
    if endpoints::is_endpoint(&view.path) {
        let scheme = app.scheme_for(&view);
        let known_host = |h: &str| app.table.knows_host(&h.to_ascii_lowercase());
        let ctx = Context {
            known_host: &known_host,
            scheme,
            html,
        };
        // Boxed, like the session load below: they are large, and every request's future
        // would otherwise be as large as they are.
        return Box::pin(app.auth.endpoint(&view, req, &ctx)).await;
    }
    let route = app
        .table
        .find(&view.host, view.port, &view.path)
        .ok_or(ProxyError::NotFound)?;
    *route_id = Some(route.spec.id);

    // 3. load_session: only when the route's rules can depend on a user.
    let session = if route.policy.needs_user() {
        Box::pin(app.auth.load_session(req.headers())).await?
    } else {
        None
    };

    // 4. authorize. Group-gated routes fail closed while the directory cannot confirm
    // the user's groups.
    if route.policy.uses_groups() && session.as_ref().is_some_and(|s| s.groups_unverified) {
        return Err(ProxyError::GroupsUnverified);
    }
    let input = Input {
        user: session.as_deref(),
        method: &view.method,
        path: &view.path,
        client_ip: view.client_ip,
        cors_preflight: is_cors_preflight(&req),
        now: crate::clock::now(),
    };
    let decision = route.policy.evaluate(&input);
    let user = session.as_ref().map_or("-", |s| s.sub.as_str());
    match decision.outcome {
        Outcome::Allow => {
            tracing::debug!(request_id, route = %route.spec.name, user, decision = "allow", reason = %route.policy.explain_decision(&decision), "authorize");
        }
        Outcome::SignIn => {
            tracing::debug!(request_id, route = %route.spec.name, decision = "sign-in", reason = %route.policy.explain_decision(&decision), "authorize");
            if !app.auth.enabled() {
                return Err(ProxyError::SignInNotConfigured);
            }
            // A sign-in could not be stored: say so now, not after the provider.
            if !app.auth.store.available() && app.auth.store.check().await.is_err() {
                return Err(ProxyError::SignIn(SignInError::Store(
                    "the session store is unreachable".into(),
                )));
            }
            if html {
                return app.auth.sign_in_redirect(
                    &view,
                    req.headers(),
                    route.spec.from.scheme.as_str(),
                );
            }
            return Err(ProxyError::Unauthenticated);
        }
        Outcome::Deny => {
            tracing::info!(request_id, route = %route.spec.name, user, decision = "deny", reason = %route.policy.explain_decision(&decision), "authorize");
            let who = session
                .as_ref()
                .map(|s| s.email.clone().unwrap_or_else(|| s.sub.clone()));
            return Err(ProxyError::Forbidden(who));
        }
    }

    // 5. forward, with the user's identity when the route passes it.
    let identity = match session.as_deref() {
        Some(s) => app
            .identity
            .identity(&route.spec, &view.host, s, &route.mentioned_groups)
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot sign the identity assertion");
                ProxyError::Internal("identity assertion")
            })?,
        None => Identity::default(),
    };
    let client = upstreams
        .get(route.spec.id)
        .ok_or(ProxyError::Internal("route has no upstream client"))?;
    let timeouts = &app.config.server.timeouts;
    let ctx = ForwardContext {
        request_id,
        cookie_name: &app.config.auth.cookie.name,
        read_timeout: timeouts.read,
        write_timeout: timeouts.write,
        session: session.as_deref(),
        identity: &identity,
        claim_headers: &app.claim_header_names,
    };
    forward(req, &view, route, client, &ctx).await
}

/// Stage 2a: `/.well-known/pomerium` and its JWKS on every host, for upstreams that
/// verify the identity assertion (CORS open, cacheable, ETag).
fn well_known(
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
fn health_endpoint(view: &RequestView) -> Result<Option<Response<ResponseBody>>, ProxyError> {
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
async fn readiness(app: &App, view: &RequestView) -> Result<Response<ResponseBody>, ProxyError> {
    if !matches!(view.method, Method::GET | Method::HEAD) {
        return Err(ProxyError::MethodNotAllowed);
    }
    Ok(match app.auth.store.check().await {
        Ok(()) => respond::text(StatusCode::OK, "OK"),
        Err(e) => {
            tracing::debug!(error = %e, "not ready");
            respond::text(StatusCode::SERVICE_UNAVAILABLE, "session store unavailable")
        }
    })
}

/// `OPTIONS` with both `Origin` and `Access-Control-Request-Method`.
fn is_cors_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(http::header::ORIGIN)
        && req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}
