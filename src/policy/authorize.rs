//! Stage 4, **authorize**: the route's compiled policy decides for this user and this
//! request — allow, send the user to sign in, or refuse — and the decision is logged
//! with its reason.
//!
//! Group-gated routes fail closed while the directory cannot confirm the user's groups.

use http::{Method, Request};

use super::{Decision, Input, Outcome};
use crate::clock;
use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::routes::{RequestView, Route};
use crate::session::Session;

/// What stage 4 decided, when it is not a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the request.
    Allow,
    /// The route needs a signed-in user and there is none: sign in first.
    SignIn,
}

/// Decides `req` on `route` for `session` (none: anonymous). A refusal is
/// [`ProxyError::Forbidden`] (or [`ProxyError::GroupsUnverified`]).
pub fn authorize<B>(
    route: &Route,
    session: Option<&Session>,
    view: &RequestView,
    req: &Request<B>,
    ctx: &RequestContext<'_>,
) -> Result<Verdict, ProxyError> {
    let decision = decide(route, session, view, req)?;
    let (request_id, name) = (ctx.id.as_str(), route.spec.name.as_str());
    let user = session.map_or("-", |s| s.sub.as_str());
    match decision.outcome {
        Outcome::Allow => {
            tracing::debug!(request_id, route = %name, user, decision = "allow", reason = %route.policy.explain_decision(&decision), "authorize");
            Ok(Verdict::Allow)
        }
        Outcome::SignIn => {
            tracing::debug!(request_id, route = %name, decision = "sign-in", reason = %route.policy.explain_decision(&decision), "authorize");
            Ok(Verdict::SignIn)
        }
        Outcome::Deny => {
            tracing::info!(request_id, route = %name, user, decision = "deny", reason = %route.policy.explain_decision(&decision), "authorize");
            let who = session.map(|s| s.email.clone().unwrap_or_else(|| s.sub.clone()));
            Err(ProxyError::Forbidden(who))
        }
    }
}

/// The route's decision for this user and request, before it is logged or acted on
/// (`policy explain` shows it). Group-gated routes refuse at once while the user's
/// groups are unverified.
pub fn decide<B>(
    route: &Route,
    session: Option<&Session>,
    view: &RequestView,
    req: &Request<B>,
) -> Result<Decision, ProxyError> {
    if route.policy.uses_groups() && session.is_some_and(|s| s.groups_unverified) {
        return Err(ProxyError::GroupsUnverified);
    }
    let input = Input {
        user: session,
        method: &view.method,
        path: &view.path,
        client_ip: view.client_ip,
        cors_preflight: is_cors_preflight(req),
        now: clock::now(),
    };
    Ok(route.policy.evaluate(&input))
}

/// `OPTIONS` with both `Origin` and `Access-Control-Request-Method`.
pub fn is_cors_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(http::header::ORIGIN)
        && req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}
