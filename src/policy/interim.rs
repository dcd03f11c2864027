//! Stage 4, **authorize**, for the legacy allow-list fields.
//!
//! Decides public routes, CORS preflights, `allow_any_authenticated_user`,
//! `allowed_users`, `allowed_domains`, `allowed_groups` and `allowed_idp_claims`.
//! Routes that use the policy language (`policy`, `policy_files`) fail closed — they are
//! denied — until the compiled evaluator decides them. Default deny everywhere.

use http::{Method, Request};

use crate::config::access::Access;
use crate::session::Session;

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward it.
    Allow,
    /// A user is needed and there is none.
    SignIn,
    /// Refused, with the reason for the log.
    Deny(&'static str),
}

/// Decides `req` on a route with `access`, for `session` (None: anonymous).
pub fn decide<B>(access: &Access, req: &Request<B>, session: Option<&Session>) -> Decision {
    if access.public {
        return Decision::Allow;
    }
    if access.cors_allow_preflight && is_cors_preflight(req) {
        return Decision::Allow;
    }
    let Some(s) = session else {
        return Decision::SignIn;
    };
    if access.policy.is_some() || !access.policy_files.is_empty() {
        return Decision::Deny("policy-language rules are not evaluated by this version");
    }
    if access.any_authenticated_user {
        return Decision::Allow;
    }
    let email = s.email.as_deref().filter(|e| well_formed(e));
    let domain = email.and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
    let user_ok = access
        .allowed_users
        .iter()
        .any(|u| u == &s.sub || email.is_some_and(|e| e.eq_ignore_ascii_case(u)));
    let domain_ok = access
        .allowed_domains
        .iter()
        .any(|d| domain.is_some_and(|x| x.eq_ignore_ascii_case(d)));
    let group_ok = access
        .allowed_groups
        .iter()
        .any(|g| s.groups.iter().any(|h| h == g));
    let claim_ok =
        access
            .allowed_idp_claims
            .iter()
            .any(|(claim, values)| match s.claims.get(claim) {
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .any(|v| v.as_str().is_some_and(|v| values.iter().any(|w| w == v))),
                Some(v) => v.as_str().is_some_and(|v| values.iter().any(|w| w == v)),
                None => false,
            });
    if user_ok || domain_ok || group_ok || claim_ok {
        Decision::Allow
    } else {
        Decision::Deny("no allow-list matched")
    }
}

/// One `@`, something on each side.
fn well_formed(email: &str) -> bool {
    email.matches('@').count() == 1 && email.split('@').all(|p| !p.is_empty())
}

/// `OPTIONS` with both `Origin` and `Access-Control-Request-Method`.
pub fn is_cors_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(http::header::ORIGIN)
        && req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}
