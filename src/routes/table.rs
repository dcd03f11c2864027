//! The route table: host → routes in file order, looked up in O(1) by host.
//!
//! Matching follows Pomerium: an exact host's routes are tried first, in file order; a
//! host with no exact entry falls to `*.parent` wildcard routes. Within the chosen host
//! the first route whose port and path match wins. Nothing here allocates per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::policy::CompiledPolicy;
use crate::config::route::{PathMatch, RouteSpec, Upstream};

/// A route ready to serve: its spec and its upstream picker.
#[derive(Debug)]
pub struct Route {
    /// The validated configuration.
    pub spec: RouteSpec,
    /// The route's access rules, compiled.
    pub policy: CompiledPolicy,
    /// Groups the rules name (for `jwt_groups_filter.infer_from_ppl`).
    pub mentioned_groups: Vec<String>,
    balancer: Balancer,
}

impl Route {
    /// Wraps a spec.
    pub fn new(spec: RouteSpec) -> Self {
        let balancer = Balancer::new(&spec.to);
        let policy = CompiledPolicy::compile(&spec.access);
        let mentioned_groups = policy.mentioned_groups();
        Self {
            spec,
            policy,
            mentioned_groups,
            balancer,
        }
    }

    /// The next upstream, round-robin by weight.
    pub fn pick(&self) -> &Upstream {
        &self.spec.to[self.balancer.next()]
    }

    /// Whether the path (already normalised) and port select this route.
    pub fn matches(&self, port: Option<u16>, path: &str) -> bool {
        if self.spec.from.port.is_some() && self.spec.from.port != port {
            return false;
        }
        match &self.spec.path_match {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
            PathMatch::Regex(re) => re.is_match(path),
        }
    }
}

/// Smooth weighted round-robin, precomputed into a schedule at load.
#[derive(Debug)]
struct Balancer {
    schedule: Vec<usize>,
    cursor: AtomicUsize,
}

impl Balancer {
    fn new(upstreams: &[Upstream]) -> Self {
        let weights: Vec<i64> = upstreams.iter().map(|u| i64::from(u.weight)).collect();
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let Some(best) = (0..current.len()).max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
            else {
                break;
            };
            current[best] -= total;
            schedule.push(best);
        }
        if schedule.is_empty() {
            schedule.push(0);
        }
        Self {
            schedule,
            cursor: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> usize {
        if self.schedule.len() == 1 {
            return self.schedule[0];
        }
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.schedule[n % self.schedule.len()]
    }
}

/// All routes, indexed by host.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact: HashMap<String, Vec<usize>>,
    wildcard: HashMap<String, Vec<usize>>,
}

impl RouteTable {
    /// Builds the table from routes in file order.
    pub fn new(specs: Vec<RouteSpec>) -> Self {
        let mut table = Self::default();
        for spec in specs {
            let i = table.routes.len();
            match spec.from.host.strip_prefix("*.") {
                Some(parent) => table.wildcard.entry(parent.to_owned()).or_default().push(i),
                None => table
                    .exact
                    .entry(spec.from.host.clone())
                    .or_default()
                    .push(i),
            }
            table.routes.push(Route::new(spec));
        }
        table
    }

    /// The first route for `host` whose port and path match.
    pub fn find(&self, host: &str, port: Option<u16>, path: &str) -> Option<&Route> {
        let candidates = match self.exact.get(host) {
            Some(list) => list,
            None => {
                let parent = host.split_once('.')?.1;
                self.wildcard.get(parent)?
            }
        };
        candidates
            .iter()
            .map(|&i| &self.routes[i])
            .find(|r| r.matches(port, path))
    }

    /// Every route, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The scheme (`https`/`http`) users reach `host` with, from its first route's `from`.
    pub fn scheme_for(&self, host: &str) -> Option<&str> {
        let list = match self.exact.get(host) {
            Some(l) => l,
            None => self.wildcard.get(host.split_once('.')?.1)?,
        };
        list.first()
            .map(|&i| self.routes[i].spec.from.scheme.as_str())
    }

    /// Whether `host` has any route (exact or wildcard).
    pub fn knows_host(&self, host: &str) -> bool {
        self.exact.contains_key(host)
            || host
                .split_once('.')
                .is_some_and(|(_, p)| self.wildcard.contains_key(p))
    }

    /// Pairs `(later, earlier)` where the earlier route on the same host matches every
    /// path the later one could, so the later one is never used.
    pub fn shadowed(&self) -> Vec<(&Route, &Route)> {
        let mut out = Vec::new();
        for list in self.exact.values().chain(self.wildcard.values()) {
            for (n, &later) in list.iter().enumerate() {
                let b = &self.routes[later];
                if let Some(a) = list[..n]
                    .iter()
                    .map(|&i| &self.routes[i])
                    .find(|a| covers(a, b))
                {
                    out.push((b, a));
                }
            }
        }
        out.sort_by_key(|(b, _)| b.spec.id);
        out
    }
}

/// Whether every request `b` matches is matched by `a` first.
fn covers(a: &Route, b: &Route) -> bool {
    if a.spec.from.port.is_some() && a.spec.from.port != b.spec.from.port {
        return false;
    }
    match (&a.spec.path_match, &b.spec.path_match) {
        (PathMatch::Prefix(p), PathMatch::Prefix(q) | PathMatch::Exact(q)) => {
            q.starts_with(p.as_str())
        }
        (PathMatch::Exact(p), PathMatch::Exact(q)) => p == q,
        (PathMatch::Regex(re), PathMatch::Exact(q)) => re.is_match(q),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MapEnv;

    fn table(yaml: &str) -> RouteTable {
        let text = format!("insecure_server: true\nroutes:\n{yaml}");
        let loaded = crate::config::load_str(&text, None, &MapEnv::default()).unwrap();
        RouteTable::new(loaded.config.routes)
    }

    fn found(t: &RouteTable, host: &str, port: Option<u16>, path: &str) -> Option<usize> {
        t.find(host, port, path).map(|r| r.spec.id)
    }

    #[test]
    fn first_match_in_file_order_within_a_host() {
        let t = table(
            "  - {from: https://a.example.com, prefix: /api, to: http://127.0.0.1:1}\n\
             \x20 - {from: https://a.example.com, path: /api/x, to: http://127.0.0.1:2}\n\
             \x20 - {from: https://a.example.com, regex: '/v[0-9]+/.*', to: http://127.0.0.1:3}\n\
             \x20 - {from: https://a.example.com, to: http://127.0.0.1:4}\n\
             \x20 - {from: 'https://a.example.com:8443', prefix: /only-8443, to: http://127.0.0.1:5}\n\
             \x20 - {from: 'https://*.example.com', to: http://127.0.0.1:6}\n",
        );
        assert_eq!(found(&t, "a.example.com", None, "/api/x"), Some(0));
        assert_eq!(
            found(&t, "a.example.com", None, "/apiv2"),
            Some(0),
            "prefix is not segment-aware"
        );
        assert_eq!(found(&t, "a.example.com", None, "/v2/z"), Some(2));
        assert_eq!(
            found(&t, "a.example.com", None, "/x/v2/z"),
            Some(3),
            "regex is anchored"
        );
        assert_eq!(
            found(&t, "a.example.com", Some(8443), "/only-8443"),
            Some(3),
            "earlier any-port route wins"
        );
        assert_eq!(found(&t, "b.example.com", None, "/"), Some(5));
        assert_eq!(found(&t, "x.b.example.com", None, "/"), None);
        assert_eq!(found(&t, "other.org", None, "/"), None);
    }

    #[test]
    fn explicit_port_matches_only_that_port() {
        let t = table("  - {from: 'https://a.example.com:8443', to: http://127.0.0.1:1}\n");
        assert_eq!(found(&t, "a.example.com", Some(8443), "/"), Some(0));
        assert_eq!(found(&t, "a.example.com", None, "/"), None);
    }

    #[test]
    fn weighted_round_robin_is_smooth() {
        let t = table(
            "  - {from: https://a.example.com, to: ['http://127.0.0.1:1,3', 'http://127.0.0.1:2,1']}\n",
        );
        let r = &t.routes()[0];
        let ports: Vec<u16> = (0..8).map(|_| r.pick().url.port().unwrap()).collect();
        assert_eq!(ports, [1, 1, 2, 1, 1, 1, 2, 1]);
    }

    #[test]
    fn reports_shadowed_routes() {
        let t = table(
            "  - {from: https://a.example.com, to: http://127.0.0.1:1}\n\
             \x20 - {from: https://a.example.com, prefix: /api, to: http://127.0.0.1:2}\n\
             \x20 - {from: https://b.example.com, prefix: /api, to: http://127.0.0.1:2}\n",
        );
        let s = t.shadowed();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].0.spec.id, s[0].1.spec.id), (1, 0));
    }
}
