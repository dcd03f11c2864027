//! The request path, top to bottom: **accept → match_route → load_session →
//! authorize → forward**.
//!
//! `server/` accepts the connection and hands each request to [`handle`], which makes
//! the request's [`RequestContext`] and runs the stages as five calls in [`run`]. Every
//! stage returns the input of the next one or a [`ProxyError`], which
//! [`respond`](crate::respond) alone turns into a response; the access-log line is
//! written last. The canonical [`RequestView`] built by match_route is the only
//! interpretation of the request that any later stage uses.

mod explain;
mod internal;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::ResponseBody;
use crate::config::Config;
use crate::context::RequestContext;
use crate::directory::SharedStore;
use crate::error::ProxyError;
use crate::identity::inject::{Identity, Injector};
use crate::oidc::Provider;
use crate::policy::{Verdict, authorize};
use crate::proxy::{ForwardContext, UpstreamClients};
use crate::respond;
use crate::routes::{RequestView, Route, RouteTable, request};
use crate::session::{Sessions, load_session};
use crate::signin::{Markers, SignIn, endpoints};
use crate::telemetry;

pub use explain::{Answer, Question, check_warnings, explain};

/// Everything a request needs, built once from the configuration.
#[derive(Debug)]
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// The route table.
    pub table: RouteTable,
    /// Sessions: cookies, store, refresh (stage 3).
    pub sessions: Arc<Sessions>,
    /// Sign-in, sign-out and the user's pages.
    pub signin: SignIn,
    /// Identity headers and signing keys.
    pub identity: Injector,
    provider: Option<Arc<Provider>>,
    claim_header_names: Vec<http::HeaderName>,
}

/// Why the application could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The signing key.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The session store (Redis URL).
    #[error(transparent)]
    Store(#[from] crate::session::StoreError),
}

impl App {
    /// Builds the route table, the session store, sign-in and identity.
    pub fn new(config: Config) -> Result<Self, AppError> {
        let table = RouteTable::new(config.routes.clone());
        // One shared secret for everything derived from it; random per process if unset.
        let shared = config
            .auth
            .shared_secret
            .as_ref()
            .map_or_else(crate::seal::random_32, |k| k.0);
        let (store, redis) = crate::session::open_store(&config.auth.storage, &shared)?;
        let provider = Provider::from_config(&config.auth.idp);
        let shared_answers = redis.clone().map(|r| Arc::new(r) as Arc<dyn SharedStore>);
        let groups = crate::directory::from_idp(&config.auth.idp, shared_answers);
        let sessions = Arc::new(Sessions::new(&config, store, provider.clone(), groups));
        let signin = SignIn::new(
            &config,
            &shared,
            provider.clone(),
            sessions.clone(),
            Markers::new(redis),
        );
        let identity = Injector::new(&config, &shared)?;
        let claim_header_names = identity.claim_header_names().cloned().collect();
        Ok(Self {
            config,
            table,
            sessions,
            signin,
            identity,
            provider,
            claim_header_names,
        })
    }

    /// Connects the session store and discovers the identity provider (each at most
    /// briefly; both keep trying in the background).
    pub async fn start(&self) {
        self.sessions.start().await;
        if let Some(provider) = &self.provider {
            provider.start_discovery().await;
        }
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
    upstreams: &UpstreamClients,
    req: Request<Incoming>,
    conn: Connection,
) -> Response<ResponseBody> {
    let mut ctx = RequestContext::new(&req);
    let response = match run(app, upstreams, req, conn, &mut ctx).await {
        Ok(response) => response,
        Err(err) => fail(app, &ctx, &err),
    };
    ctx.log_access(response.status());
    response
}

/// The five stages (accept has happened: the request is here).
async fn run<'a>(
    app: &'a App,
    upstreams: &UpstreamClients,
    req: Request<Incoming>,
    conn: Connection,
    ctx: &mut RequestContext<'a>,
) -> Result<Response<ResponseBody>, ProxyError> {
    // 2. match_route: one canonical view; the proxy's own endpoints first.
    let view = request::view(
        &req,
        conn.tls,
        conn.peer,
        &app.config.server.trusted_proxies,
    )?;
    let route = match match_route(app, &view)? {
        Target::Route(route) => route,
        Target::Internal => {
            let mut response = serve_internal(app, &view, req, ctx).await?;
            respond::own_headers(response.headers_mut(), &app.config.server.response_headers);
            return Ok(response);
        }
    };
    ctx.route = Some(&route.spec.name);
    // Methods that would tunnel past the policy: TRACE, CONNECT other than a WebSocket.
    crate::proxy::tunnel::admit(&req, route.spec.allow_websockets)?;
    // 3. load_session: only when the route's rules can depend on a user.
    let session = load_session(&app.sessions, route, req.headers()).await?;
    // 4. authorize: allow, or send the user to sign in, or a refusal.
    if authorize(route, session.as_deref(), &view, &req, ctx)? == Verdict::SignIn {
        let scheme = route.spec.from.scheme.as_str();
        let mut response = app
            .signin
            .start(&view, req.headers(), scheme, ctx.html)
            .await?;
        respond::own_headers(response.headers_mut(), &app.config.server.response_headers);
        return Ok(response);
    }
    // 5. forward, with the user's identity when the route passes it.
    forward(app, upstreams, req, &view, route, session.as_deref(), ctx).await
}

/// What a request is for.
enum Target<'a> {
    /// One of the proxy's own endpoints.
    Internal,
    /// A user route.
    Route(&'a Route),
}

/// Stage 2: the proxy's own endpoints, else the first user route for this host and
/// path (404 when none).
fn match_route<'a>(app: &'a App, view: &RequestView) -> Result<Target<'a>, ProxyError> {
    match_route_in(&app.table, view)
}

/// Stage 2 against `table`.
fn match_route_in<'a>(table: &'a RouteTable, view: &RequestView) -> Result<Target<'a>, ProxyError> {
    if internal::is_internal(view) || endpoints::is_endpoint(&view.path) {
        return Ok(Target::Internal);
    }
    table
        .find(&view.host, view.port, &view.path)
        .map(Target::Route)
        .ok_or(ProxyError::NotFound)
}

/// Stage 2a: health, readiness, the identity keys and the sign-in endpoints.
async fn serve_internal(
    app: &App,
    view: &RequestView,
    req: Request<Incoming>,
    ctx: &RequestContext<'_>,
) -> Result<Response<ResponseBody>, ProxyError> {
    if let Some(response) = internal::health_endpoint(view)? {
        return Ok(response);
    }
    if view.path == "/readyz" {
        return internal::readiness(app, view).await;
    }
    // The rest answers only on a route host or the authenticate host: elsewhere it
    // would start sign-ins with a Host-derived redirect_uri and publish a discovery
    // document that reflects any Host.
    if !app.table.knows_host(&view.host) && !app.signin.is_authenticate_host(view) {
        return Err(ProxyError::NotFound);
    }
    if let Some(response) = internal::well_known(app, view, req.headers()) {
        return Ok(response);
    }
    let known_host = |h: &str| app.table.knows_host(&h.to_ascii_lowercase());
    let ectx = endpoints::Context {
        known_host: &known_host,
        scheme: app.scheme_for(view),
        html: ctx.html,
    };
    // Boxed: the endpoints' future is large, and every request's future would
    // otherwise be as large as it is.
    Box::pin(app.signin.endpoint(view, req, &ectx)).await
}

/// Stage 5: the identity to pass, the route's upstream client, then the proxy.
async fn forward(
    app: &App,
    upstreams: &UpstreamClients,
    req: Request<Incoming>,
    view: &RequestView,
    route: &Route,
    session: Option<&crate::session::Session>,
    ctx: &RequestContext<'_>,
) -> Result<Response<ResponseBody>, ProxyError> {
    let identity = match session {
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
    let fctx = ForwardContext {
        request_id: &ctx.id,
        cookie_name: &app.config.auth.cookie.name,
        read_timeout: timeouts.read,
        write_timeout: timeouts.write,
        session,
        identity: &identity,
        claim_headers: &app.claim_header_names,
    };
    crate::proxy::forward(req, view, route, client, &fctx).await
}

/// The error edge: logs `err` with its causes at its class's level, then renders it.
fn fail(app: &App, ctx: &RequestContext<'_>, err: &ProxyError) -> Response<ResponseBody> {
    let class = err.class();
    let error = telemetry::error_chain(err);
    let (id, fault) = (&ctx.id, class.fault);
    match class.level {
        tracing::Level::WARN | tracing::Level::ERROR => {
            tracing::warn!(request_id = %id, ?fault, %error, "request failed");
        }
        tracing::Level::INFO => {
            tracing::info!(request_id = %id, ?fault, %error, "request not completed");
        }
        _ => tracing::debug!(request_id = %id, ?fault, %error, "request refused"),
    }
    respond::error_response(err, &ctx.id, ctx.html, &app.config.server.response_headers)
}
