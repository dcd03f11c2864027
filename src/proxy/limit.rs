//! Stage 5 (forward): how many connections may be in use per upstream, as Envoy's
//! circuit breakers bound them (`upstream_max_connections`, default 1024).
//!
//! One counter per upstream (scheme and authority), shared by every route that names it
//! and by every worker. A request takes a place before it is sent and holds it until its
//! response body is dropped (or, after an upgrade, until the tunnel closes): while it
//! does, it holds one upstream connection. Beyond the cap the request fails at once with
//! [`ProxyError::UpstreamBusy`] (503) instead of opening yet another connection. A place
//! is an atomic counter and a reference count: no allocation, no timer.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::route::Upstream;
use crate::error::ProxyError;
use crate::routes::RouteTable;

/// A request's place among its upstream's connections.
pub(crate) type UpstreamPermit = OwnedSemaphorePermit;

/// The counters of every upstream in a route table.
#[derive(Debug, Default)]
pub struct UpstreamLimits {
    by_origin: HashMap<(String, http::uri::Authority), Arc<Semaphore>>,
}

impl UpstreamLimits {
    /// One counter of `max` places per distinct upstream in `table`.
    pub fn new(table: &RouteTable, max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        let mut by_origin = HashMap::new();
        for route in table.routes() {
            for u in &route.spec.to {
                by_origin
                    .entry(key(u))
                    .or_insert_with(|| Arc::new(Semaphore::new(max)));
            }
        }
        Self { by_origin }
    }

    /// The counter of `upstream` (a fresh, unshared one for an upstream not in the table).
    pub(crate) fn of(&self, upstream: &Upstream) -> Arc<Semaphore> {
        self.by_origin
            .get(&key(upstream))
            .cloned()
            .unwrap_or_else(|| Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)))
    }
}

fn key(u: &Upstream) -> (String, http::uri::Authority) {
    (u.url.scheme().to_owned(), u.authority.clone())
}

/// Takes a place, or fails with 503 when every place is taken.
pub(crate) fn admit(places: &Arc<Semaphore>) -> Result<UpstreamPermit, ProxyError> {
    places
        .clone()
        .try_acquire_owned()
        .map_err(|_| ProxyError::UpstreamBusy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_cap_a_request_is_refused_until_a_place_frees() {
        let places = Arc::new(Semaphore::new(2));
        let a = admit(&places).unwrap();
        let _b = admit(&places).unwrap();
        assert!(matches!(admit(&places), Err(ProxyError::UpstreamBusy)));
        drop(a);
        assert!(admit(&places).is_ok());
    }
}
