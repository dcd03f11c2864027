//! Upstream clients: a per-worker HTTP/1.1 pool for plain-HTTP upstreams, and pooled
//! general clients, one per distinct TLS setting, for everything else.
//!
//! Plain `http://` upstreams (the common case behind a proxy) go through
//! [`Http1Pool`]: one pool per [`UpstreamClients`], with one slot per distinct upstream
//! authority, shared by every route that names it. `https://` upstreams (TLS, ALPN
//! `h2`) and `h2c://` upstreams use hyper-util's pooled client. Routes whose upstream
//! TLS settings (and HTTP/2-prior-knowledge choice) are equal share one such client
//! and therefore one connection pool; a route with its own CA or client certificate
//! gets its own. Built once per worker at start-up; the request path only indexes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use tokio::sync::Semaphore;

use super::limit::{UpstreamLimits, UpstreamPermit, admit};
use super::pool::Http1Pool;
use super::timed::TimedBody;
use crate::config::route::Upstream;
use crate::error::ProxyError;
use crate::routes::RouteTable;
use crate::tls::TlsError;
use crate::tls::upstream::{UpstreamTls, build_connector, tcp_connector};

/// The general client type used to talk to TLS and h2c upstreams.
pub(crate) type UpstreamClient = Client<HttpsConnector<HttpConnector>, TimedBody<Incoming>>;

/// How long an idle upstream connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// At most this many idle connections per plain-HTTP upstream and worker.
const MAX_IDLE_PER_UPSTREAM: usize = 256;

/// Every route's upstream clients, indexed by route id.
#[derive(Debug, Clone, Default)]
pub struct UpstreamClients {
    by_route: Vec<RouteClient>,
}

/// One route's way to its upstreams.
#[derive(Debug, Clone)]
pub struct RouteClient {
    general: Arc<UpstreamClient>,
    pool: Arc<Http1Pool>,
    /// Per entry of the route's `to`: its slot in `pool`, for plain-HTTP upstreams.
    slots: Vec<Option<usize>>,
    /// Per entry of the route's `to`: its places (`upstream_max_connections`).
    places: Vec<Arc<Semaphore>>,
}

impl RouteClient {
    /// The general (TLS, HTTP/2-capable) client.
    pub fn general(&self) -> &UpstreamClient {
        &self.general
    }

    /// A place among `upstream`'s connections (which must be one of the route's `to`
    /// entries), or 503 when all are in use.
    pub(crate) fn admit(
        &self,
        to: &[Upstream],
        upstream: &Upstream,
    ) -> Result<Option<UpstreamPermit>, ProxyError> {
        let index = to.iter().position(|u| std::ptr::eq(u, upstream));
        match index.and_then(|i| self.places.get(i)) {
            Some(places) => admit(places).map(Some),
            None => Ok(None),
        }
    }

    /// The HTTP/1.1 pool and slot for `upstream`, which must be one of the route's
    /// `to` entries; `None` when it needs the general client.
    pub fn pooled<'a>(
        &'a self,
        to: &[Upstream],
        upstream: &Upstream,
    ) -> Option<(&'a Arc<Http1Pool>, usize)> {
        let index = to.iter().position(|u| std::ptr::eq(u, upstream))?;
        let slot = (*self.slots.get(index)?)?;
        Some((&self.pool, slot))
    }
}

impl UpstreamClients {
    /// Builds the clients for every route in `table`.
    pub fn new(table: &RouteTable, limits: &UpstreamLimits) -> Result<Self, TlsError> {
        let mut shared: HashMap<(UpstreamTls, bool), Arc<UpstreamClient>> = HashMap::new();
        let mut targets: Vec<http::Uri> = Vec::new();
        let mut slot_of: HashMap<http::uri::Authority, usize> = HashMap::new();
        let mut routes = Vec::with_capacity(table.routes().len());
        for route in table.routes() {
            let h2c = route.spec.to.iter().any(|u| u.url.scheme() == "h2c");
            let key = (route.spec.tls.clone(), h2c);
            let general = match shared.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(build(&route.spec.tls, h2c)?);
                    shared.insert(key, c.clone());
                    c
                }
            };
            let slots = route
                .spec
                .to
                .iter()
                .map(|u| {
                    // A route with an h2c upstream speaks HTTP/2 to all of them.
                    if h2c || u.url.scheme() != "http" {
                        return None;
                    }
                    if let Some(&slot) = slot_of.get(&u.authority) {
                        return Some(slot);
                    }
                    let target = http::Uri::builder()
                        .scheme("http")
                        .authority(u.authority.clone())
                        .path_and_query("/")
                        .build()
                        .ok()?;
                    targets.push(target);
                    slot_of.insert(u.authority.clone(), targets.len() - 1);
                    Some(targets.len() - 1)
                })
                .collect();
            let places = route.spec.to.iter().map(|u| limits.of(u)).collect();
            routes.push((general, slots, places));
        }
        let pool = Arc::new(Http1Pool::new(
            tcp_connector(),
            targets,
            IDLE_TIMEOUT,
            MAX_IDLE_PER_UPSTREAM,
        ));
        let by_route = routes
            .into_iter()
            .map(|(general, slots, places)| RouteClient {
                general,
                pool: pool.clone(),
                slots,
                places,
            })
            .collect();
        Ok(Self { by_route })
    }

    /// The clients of route `id`.
    pub fn get(&self, id: usize) -> Option<&RouteClient> {
        self.by_route.get(id)
    }
}

fn build(tls: &UpstreamTls, h2c: bool) -> Result<UpstreamClient, TlsError> {
    let connector = build_connector(tls)?;
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .http2_only(h2c);
    Ok(builder.build(connector))
}
