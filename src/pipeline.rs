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
use crate::proxy::body::ResponseBody;
use crate::proxy::{ForwardContext, Upstreams, forward};
use crate::respond::{self, ProxyError};
use crate::routes::{RequestView, Route, RouteTable, request};
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
}

impl App {
    /// Builds the route table and upstream clients.
    pub fn new(config: Config) -> Result<Self, crate::server::tls::TlsError> {
        let table = RouteTable::new(config.routes.clone());
        let upstreams = Upstreams::new(&table)?;
        Ok(Self {
            config,
            table,
            upstreams,
        })
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

    let mut route_name = None;
    let outcome = run(app, req, conn, &request_id, &mut route_name).await;
    let response = match outcome {
        Ok(response) => response,
        Err(err) => {
            match &err {
                ProxyError::UpstreamUnavailable(_)
                | ProxyError::UpstreamTimeout
                | ProxyError::Internal(_) => {
                    tracing::warn!(request_id = %request_id, error = %err, "request failed");
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
        route: route_name.as_deref(),
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
    route_name: &mut Option<String>,
) -> Result<Response<ResponseBody>, ProxyError> {
    // 2. match_route: one canonical view, internal endpoints first, then user routes.
    let view = request::view(
        &req,
        conn.tls,
        conn.peer,
        &app.config.server.trusted_proxies,
    )?;
    if let Some(response) = internal_endpoint(&view)? {
        return Ok(response);
    }
    let route = app
        .table
        .find(&view.host, view.port, &view.path)
        .ok_or(ProxyError::NotFound)?;
    *route_name = Some(route.spec.name.clone());

    // 3. load_session and 4. authorize: only public routes pass until sign-in exists.
    authorize(route, &req)?;

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
fn internal_endpoint(view: &RequestView) -> Result<Option<Response<ResponseBody>>, ProxyError> {
    match view.path.as_str() {
        "/ping" | "/healthz" => match view.method {
            Method::GET | Method::HEAD => Ok(Some(respond::text(StatusCode::OK, "OK"))),
            _ => Err(ProxyError::MethodNotAllowed),
        },
        _ => Ok(None),
    }
}

/// Stage 4: the decision. Public routes are forwarded; every other route needs a user,
/// and with no sign-in configured there can be none.
fn authorize<B>(route: &Route, req: &Request<B>) -> Result<(), ProxyError> {
    let access = &route.spec.access;
    if access.public || (access.cors_allow_preflight && is_cors_preflight(req)) {
        Ok(())
    } else {
        Err(ProxyError::SignInNotConfigured)
    }
}

/// `OPTIONS` with both `Origin` and `Access-Control-Request-Method`.
fn is_cors_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(http::header::ORIGIN)
        && req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}
