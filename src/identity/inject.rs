//! Stage 5, **forward** (identity half): what a forwarded request says about its user.
//!
//! For a signed-in user on a route with `pass_identity_headers`, the forwarder adds
//! `X-Pomerium-Jwt-Assertion` (signed, reused from [`AssertionCache`] while fresh) and the
//! `jwt_claims_headers`. Groups are limited by `jwt_groups_filter` (route over global).
//! The caller has already removed every client-sent copy of these headers.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::{AssertionCache, Claims, IdentityError, SigningKeys, claim_header_value, claim_of};
use crate::config::Config;
use crate::config::access::GroupsFilter;
use crate::config::route::RouteSpec;
use crate::session::Session;

/// The assertion header.
pub(crate) const ASSERTION: HeaderName = HeaderName::from_static("x-pomerium-jwt-assertion");

/// Identity settings and keys, built once.
#[derive(Debug)]
pub struct Injector {
    /// The signing keys (their JWKS is published on every route host).
    pub keys: SigningKeys,
    cache: AssertionCache,
    claim_headers: Vec<(HeaderName, String)>,
    claim_names: Vec<String>,
    pass_default: bool,
    filter_default: Option<GroupsFilter>,
}

/// What to add to one upstream request.
#[derive(Debug, Default)]
pub struct Identity {
    /// The assertion, when one was signed (also for `${pomerium.jwt}`).
    pub jwt: Option<Arc<str>>,
    /// Headers to set.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Injector {
    /// Loads the keys (from `signing_key`, else derived from `shared_secret`).
    pub fn new(config: &Config, shared_secret: &[u8; 32]) -> Result<Self, IdentityError> {
        let auth = &config.auth;
        let keys = SigningKeys::load(auth.signing_key.as_ref(), shared_secret)?;
        let mut claim_names: Vec<String> = auth
            .jwt_claims_headers
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        claim_names.sort();
        claim_names.dedup();
        Ok(Self {
            keys,
            cache: AssertionCache::new(10_000),
            claim_headers: auth.jwt_claims_headers.clone(),
            claim_names,
            pass_default: auth.pass_identity_headers,
            filter_default: auth.jwt_groups_filter.clone(),
        })
    }

    /// Configured claim-header names, for stripping client-sent copies.
    pub fn claim_header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.claim_headers.iter().map(|(h, _)| h)
    }

    /// Whether `route` passes identity headers.
    pub fn passes(&self, route: &RouteSpec) -> bool {
        route.pass_identity_headers.unwrap_or(self.pass_default)
    }

    /// The identity to add for `session` on `route` at `host`. `mentioned` are the
    /// groups the route's policy names (for `jwt_groups_filter.infer_from_ppl`).
    pub fn identity(
        &self,
        route: &RouteSpec,
        host: &str,
        session: &Session,
        mentioned: &[String],
    ) -> Result<Identity, IdentityError> {
        let pass = self.passes(route);
        let wants_jwt = pass || route.set_request_headers.iter().any(|(_, t)| t.uses_jwt());
        if !wants_jwt {
            return Ok(Identity::default());
        }
        let filter = route
            .access
            .jwt_groups_filter
            .as_ref()
            .or(self.filter_default.as_ref());
        let groups = filter_groups(&session.groups, filter, mentioned);
        let extra: Vec<(String, Value)> = self
            .claim_names
            .iter()
            .filter_map(|c| claim_of(session, &groups, c).map(|v| (c.clone(), v)))
            .collect();
        let claims = Claims {
            issuer_and_audience: host,
            session,
            groups: &groups,
            extra: &extra,
        };
        let jwt = self.cache.get_or_sign(&self.keys, &claims)?;
        let mut headers = Vec::new();
        if pass {
            if let Ok(v) = HeaderValue::from_str(&jwt) {
                headers.push((ASSERTION, v));
            }
            for (header, claim) in &self.claim_headers {
                if let Some(v) = claim_of(session, &groups, claim)
                    .as_ref()
                    .and_then(claim_header_value)
                {
                    headers.push((header.clone(), v));
                }
            }
        }
        Ok(Identity {
            jwt: Some(jwt),
            headers,
        })
    }
}

/// The groups to assert: all of them, or only those the filter lets through.
pub(crate) fn filter_groups<'a>(
    groups: &'a [String],
    filter: Option<&GroupsFilter>,
    mentioned: &[String],
) -> Cow<'a, [String]> {
    let Some(f) = filter else {
        return Cow::Borrowed(groups);
    };
    let keep = |g: &String| f.groups.contains(g) || (f.infer_from_ppl && mentioned.contains(g));
    Cow::Owned(groups.iter().filter(|g| keep(g)).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_filter() {
        let groups: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(filter_groups(&groups, None, &[]).len(), 3);
        let f = GroupsFilter {
            groups: vec!["a".into()],
            infer_from_ppl: false,
        };
        assert_eq!(
            filter_groups(&groups, Some(&f), &["b".into()]).as_ref(),
            ["a"]
        );
        let f = GroupsFilter {
            groups: vec!["a".into()],
            infer_from_ppl: true,
        };
        assert_eq!(
            filter_groups(&groups, Some(&f), &["b".into()]).as_ref(),
            ["a", "b"]
        );
    }
}
