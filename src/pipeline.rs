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

use crate::config::Config;
use crate::oidc::Authenticator;
use crate::oidc::endpoints::{self, Context};
use crate::policy::interim::{self, Decision};
use crate::proxy::body::ResponseBody;
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
}

impl App {
    /// Builds the route table, upstream clients and the authenticator.
    pub fn new(config: Config) -> Result<Self, crate::server::tls::TlsError> {
        let table = RouteTable::new(config.routes.clone());
        let upstreams = Upstreams::new(&table)?;
        let auth = Authenticator::new(&config);
        Ok(Self {
            config,
            table,
            upstreams,
            auth,
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
pub async fn handle(app: &App, req: Request<Incoming>, conn: Connection) -> Response<ResponseBody> {
    let started = Instant::now();
    let request_id = telemetry::request_id();
    let html = respond::wants_html(req.headers());
    let method = req.method().clone();
    let raw_path = req.uri().path().to_owned();
    let raw_query = req.uri().query().map(str::to_owned);

    let mut route_id = None;
    let outcome = run(app, req, conn, &request_id, html, &mut route_id).await;
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
    telemetry::access(&AccessRecord {
        request_id: &request_id,
        method: &method,
        path: &raw_path,
        query: raw_query.as_deref(),
        route: route_id
            .and_then(|i| app.table.routes().get(i))
            .map(|r| r.spec.name.as_str()),
        status: response.status(),
        duration: started.elapsed(),
    });
    response
}

async fn run(
    app: &App,
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
    if endpoints::is_endpoint(&view.path) {
        let scheme = app.scheme_for(&view);
        let known_host = |h: &str| app.table.knows_host(&h.to_ascii_lowercase());
        let ctx = Context {
            known_host: &known_host,
            scheme,
            html,
        };
        return app.auth.endpoint(&view, req, &ctx).await;
    }
    let route = app
        .table
        .find(&view.host, view.port, &view.path)
        .ok_or(ProxyError::NotFound)?;
    *route_id = Some(route.spec.id);

    // 3. load_session: public routes never look at sessions.
    let session = if route.spec.access.public {
        None
    } else {
        app.auth.load_session(req.headers()).await
    };

    // 4. authorize. Group-gated routes fail closed while the directory cannot confirm
    // the user's groups.
    if session.as_ref().is_some_and(|s| s.groups_unverified)
        && !route.spec.access.allowed_groups.is_empty()
    {
        return Err(ProxyError::GroupsUnverified);
    }
    match interim::decide(&route.spec.access, &req, session.as_deref()) {
        Decision::Allow => {}
        Decision::SignIn if !app.auth.enabled() => return Err(ProxyError::SignInNotConfigured),
        Decision::SignIn if html => {
            return app.auth.sign_in_redirect(
                &view,
                req.headers(),
                route.spec.from.scheme.as_str(),
            );
        }
        Decision::SignIn => return Err(ProxyError::Unauthenticated),
        Decision::Deny(reason) => {
            tracing::info!(request_id, route = %route.spec.name, user = session.as_ref().map_or("-", |s| s.sub.as_str()), reason, "denied");
            return Err(ProxyError::Forbidden);
        }
    }

    // 5. forward.
    let client = app
        .upstreams
        .get(route.spec.id)
        .ok_or(ProxyError::Internal("route has no upstream client"))?;
    let timeouts = &app.config.server.timeouts;
    let ctx = ForwardContext {
        request_id,
        cookie_name: &app.config.auth.cookie.name,
        read_timeout: timeouts.read,
        write_timeout: timeouts.write,
    };
    forward(req, &view, route, client, &ctx).await
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
