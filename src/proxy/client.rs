//! Pooled upstream clients, one per distinct TLS setting.
//!
//! Routes whose upstream TLS settings (and HTTP/2-prior-knowledge choice) are equal share
//! one client and therefore one connection pool; a route with its own CA or client
//! certificate gets its own. Built once at start-up; the request path only indexes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::TimedBody;
use super::tls::{UpstreamTls, build_connector};
use crate::routes::RouteTable;
use crate::server::tls::TlsError;

/// The client type used to talk to upstreams.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, TimedBody<Incoming>>;

/// Every route's upstream client, indexed by route id.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    by_route: Vec<Arc<UpstreamClient>>,
}

impl Upstreams {
    /// Builds the clients for every route in `table`.
    pub fn new(table: &RouteTable) -> Result<Self, TlsError> {
        let mut shared: HashMap<(UpstreamTls, bool), Arc<UpstreamClient>> = HashMap::new();
        let mut by_route = Vec::with_capacity(table.routes().len());
        for route in table.routes() {
            let h2c = route.spec.to.iter().any(|u| u.url.scheme() == "h2c");
            let key = (route.spec.tls.clone(), h2c);
            let client = match shared.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(build(&route.spec.tls, h2c)?);
                    shared.insert(key, c.clone());
                    c
                }
            };
            by_route.push(client);
        }
        Ok(Self { by_route })
    }

    /// The client of route `id`.
    pub fn get(&self, id: usize) -> Option<&UpstreamClient> {
        self.by_route.get(id).map(Arc::as_ref)
    }
}

fn build(tls: &UpstreamTls, h2c: bool) -> Result<UpstreamClient, TlsError> {
    let connector = build_connector(tls)?;
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .http2_only(h2c);
    Ok(builder.build(connector))
}
