//! Everything that can end a request early, on the ground floor: [`ProxyError`].
//!
//! Every stage returns its result or a `ProxyError`; each stage's own error type
//! (`RequestError`, `SignInError`, `StoreError`, …) converts into one next to where it
//! is defined, keeping itself as the typed `#[source]`. [`ProxyError::class`] is the
//! one table that says, per error, its HTTP status, whose fault it is and how loudly it
//! is logged; [`respond`](crate::respond) alone turns it into a response.
//!
//! `Display` is this error's own short text; the causes are reached through
//! `source()`, so the log (and only the log) shows the whole chain.

use http::StatusCode;
use tracing::Level;

use crate::body::BoxError;

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something we refuse, or is not allowed.
    Client,
    /// The upstream application failed or timed out.
    Upstream,
    /// The identity provider (or its directory) failed or refused.
    IdentityProvider,
    /// Ours: a bug, or a dependency of ours (the session store) being down.
    Internal,
}

/// How an error is answered and logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    /// The response status.
    pub status: StatusCode,
    /// Whose fault it is.
    pub fault: Fault,
    /// The level of its log line.
    pub level: Level,
}

/// What a person is told when a sign-in (or sign-out) did not complete; the detailed,
/// typed reason is the error's source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignInFailure {
    /// No identity provider is configured.
    #[error("sign-in is not configured")]
    NotConfigured,
    /// The identity provider cannot be reached (or was not discovered yet).
    #[error("the identity provider is not reachable")]
    ProviderUnavailable,
    /// The provider answered the authorization request with an OAuth error.
    #[error("the identity provider refused the sign-in: {error}")]
    Refused {
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description`.
        description: Option<String>,
    },
    /// A sign-in or hand-off link that is missing, foreign, malformed or used before.
    #[error("the sign-in link is no longer valid")]
    LinkInvalid,
    /// The sign-in took longer than allowed.
    #[error("the sign-in expired")]
    Expired,
    /// The provider's token endpoint failed (unreachable, or an unusable answer).
    #[error("the code exchange failed")]
    ExchangeFailed,
    /// The provider refused the code (`invalid_grant`, PKCE mismatch): a client error.
    #[error("the identity provider refused the code")]
    CodeRefused,
    /// A hand-off link opened in a browser other than the one that started the sign-in.
    #[error("the sign-in was started in another browser")]
    OtherBrowser,
    /// Too many sign-ins are in progress to record another one safely.
    #[error("too many sign-ins in progress")]
    Busy,
    /// The provider's answer (ID token, userinfo) did not verify.
    #[error("the identity provider's answer did not verify")]
    Unverified,
    /// A bug.
    #[error("internal error")]
    Internal,
}

/// Everything that can end a request early.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request could not be understood (path, host, form…): 400.
    #[error("bad request")]
    BadRequest(#[source] BoxError),
    /// No route for this host and path: 404.
    #[error("no route")]
    NotFound,
    /// An internal endpoint called with the wrong method: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A transfer coding other than `chunked` in the request: 501, as nginx answers.
    #[error("transfer coding not implemented")]
    NotImplemented,
    /// The route needs a signed-in user and sign-in is not configured: 401.
    #[error("sign-in is not configured")]
    SignInNotConfigured,
    /// The route needs a signed-in user and there is none: 401 (browsers are sent to
    /// sign in before this is rendered).
    #[error("not signed in")]
    Unauthenticated,
    /// Signed in (as the given user, when known), but not allowed: 403.
    #[error("forbidden")]
    Forbidden(Option<String>),
    /// The route depends on groups the directory cannot confirm right now: 503.
    #[error("groups could not be verified")]
    GroupsUnverified,
    /// A form body was too large or unreadable: 400.
    #[error("bad form body")]
    BadForm,
    /// A sign-in step failed; `failure` is what the user is told.
    #[error("sign-in failed: {failure}")]
    SignIn {
        /// What the user is told.
        failure: SignInFailure,
        /// Why, in detail (for the log).
        #[source]
        cause: BoxError,
    },
    /// The session store cannot be reached: 503.
    #[error("session store unavailable")]
    SessionsUnavailable(#[source] BoxError),
    /// The upstream refused or failed the connection: 502.
    #[error("upstream unavailable")]
    UpstreamUnavailable(#[source] BoxError),
    /// The upstream did not answer in time: 504.
    #[error("upstream timeout")]
    UpstreamTimeout,
    /// The upstream already has `upstream_max_connections` connections in use: 503.
    #[error("upstream connection limit reached")]
    UpstreamBusy,
    /// A bug or impossible state on our side: 500.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl ProxyError {
    /// A sign-in failure with its cause.
    pub fn sign_in(failure: SignInFailure, cause: impl Into<BoxError>) -> Self {
        ProxyError::SignIn {
            failure,
            cause: cause.into(),
        }
    }

    /// Status, fault and log level, in one table.
    pub fn class(&self) -> Class {
        use Fault::*;
        use ProxyError as E;
        let (status, fault, level) = match self {
            E::BadRequest(_) | E::BadForm => (StatusCode::BAD_REQUEST, Client, Level::DEBUG),
            E::NotFound => (StatusCode::NOT_FOUND, Client, Level::DEBUG),
            E::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, Client, Level::DEBUG),
            E::NotImplemented => (StatusCode::NOT_IMPLEMENTED, Client, Level::DEBUG),
            E::SignInNotConfigured | E::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, Client, Level::DEBUG)
            }
            E::Forbidden(_) => (StatusCode::FORBIDDEN, Client, Level::DEBUG),
            E::GroupsUnverified => (
                StatusCode::SERVICE_UNAVAILABLE,
                IdentityProvider,
                Level::DEBUG,
            ),
            E::SignIn { failure, .. } => {
                let (status, fault) = sign_in_class(failure);
                (status, fault, Level::INFO)
            }
            E::SessionsUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, Internal, Level::INFO),
            E::UpstreamUnavailable(_) => (StatusCode::BAD_GATEWAY, Upstream, Level::WARN),
            E::UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, Upstream, Level::WARN),
            E::UpstreamBusy => (StatusCode::SERVICE_UNAVAILABLE, Upstream, Level::WARN),
            E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, Internal, Level::WARN),
        };
        Class {
            status,
            fault,
            level,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.class().status
    }

    /// A short, safe title and explanation for the person or program that made the
    /// request.
    pub fn public_message(&self) -> (&'static str, &'static str) {
        match self {
            ProxyError::BadRequest(_) => ("Bad request", "The request could not be understood."),
            ProxyError::NotFound => ("Not found", "There is no application at this address."),
            ProxyError::MethodNotAllowed => (
                "Method not allowed",
                "This address does not accept that method.",
            ),
            ProxyError::NotImplemented => (
                "Not implemented",
                "The request uses a transfer coding this proxy does not implement.",
            ),
            ProxyError::SignInNotConfigured => (
                "Sign-in required",
                "This application needs a signed-in user, but sign-in is not configured on this proxy yet.",
            ),
            ProxyError::Unauthenticated => {
                ("Sign-in required", "This application needs you to sign in.")
            }
            ProxyError::Forbidden(_) => (
                "Access denied",
                "You are signed in, but not allowed to use this application.",
            ),
            ProxyError::BadForm => ("Bad request", "The form could not be read."),
            ProxyError::GroupsUnverified => (
                "Groups could not be verified",
                "This application depends on your group memberships, and the directory cannot confirm them right now. Try again in a few minutes.",
            ),
            ProxyError::SignIn { failure, .. } => sign_in_message(failure),
            ProxyError::SessionsUnavailable(_) => (
                "Sessions unavailable",
                "The proxy cannot reach its session store right now, so it cannot sign you in or out. Try again in a minute.",
            ),
            ProxyError::UpstreamUnavailable(_) => (
                "Application unavailable",
                "The application behind this address could not be reached. Try again in a moment.",
            ),
            ProxyError::UpstreamTimeout => (
                "Application timed out",
                "The application behind this address did not answer in time.",
            ),
            ProxyError::UpstreamBusy => (
                "Application busy",
                "The application behind this address is handling as many requests as it may right now. Try again in a moment.",
            ),
            ProxyError::Internal(_) => (
                "Something went wrong",
                "The proxy could not handle this request.",
            ),
        }
    }
}

fn sign_in_class(failure: &SignInFailure) -> (StatusCode, Fault) {
    use SignInFailure::*;
    match failure {
        NotConfigured => (StatusCode::UNAUTHORIZED, Fault::Client),
        ProviderUnavailable => (StatusCode::SERVICE_UNAVAILABLE, Fault::IdentityProvider),
        Refused { error, .. } if error == "access_denied" || error == "unauthorized_client" => {
            (StatusCode::UNAUTHORIZED, Fault::IdentityProvider)
        }
        Refused { .. } => (StatusCode::BAD_REQUEST, Fault::IdentityProvider),
        LinkInvalid | Expired => (StatusCode::BAD_REQUEST, Fault::Client),
        ExchangeFailed => (StatusCode::BAD_GATEWAY, Fault::IdentityProvider),
        CodeRefused | OtherBrowser => (StatusCode::BAD_REQUEST, Fault::Client),
        Busy => (StatusCode::SERVICE_UNAVAILABLE, Fault::Internal),
        Unverified => (StatusCode::BAD_REQUEST, Fault::IdentityProvider),
        Internal => (StatusCode::INTERNAL_SERVER_ERROR, Fault::Internal),
    }
}

fn sign_in_message(failure: &SignInFailure) -> (&'static str, &'static str) {
    use SignInFailure::*;
    match failure {
        NotConfigured => (
            "Sign-in required",
            "Sign-in is not configured on this proxy yet.",
        ),
        ProviderUnavailable => (
            "Sign-in unavailable",
            "The identity provider cannot be reached right now. Try again in a minute.",
        ),
        Refused { .. } => (
            "Sign-in refused",
            "The identity provider did not sign you in.",
        ),
        LinkInvalid => (
            "Sign-in link no longer valid",
            "This sign-in link was already used or does not belong to this browser. Start again from the application.",
        ),
        Expired => (
            "Sign-in took too long",
            "The sign-in expired before it finished. Start again from the application.",
        ),
        CodeRefused => (
            "Sign-in could not be completed",
            "The identity provider did not accept this sign-in's code (it was used before or belongs to another sign-in). Start again from the application.",
        ),
        OtherBrowser => (
            "Sign-in started in another browser",
            "This sign-in link belongs to a sign-in started in another browser, so it cannot sign this browser in. If you did not click a link someone sent you, start again from the application in this browser.",
        ),
        Busy => (
            "Too many sign-ins",
            "Too many sign-ins are in progress right now. Try again in a few minutes.",
        ),
        ExchangeFailed | Unverified => (
            "Sign-in could not be verified",
            "The identity provider's answer could not be verified, so you were not signed in.",
        ),
        Internal => (
            "Something went wrong",
            "The proxy could not complete the sign-in.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_faults() {
        assert_eq!(ProxyError::NotFound.status(), 404);
        assert_eq!(ProxyError::UpstreamTimeout.status(), 504);
        assert_eq!(ProxyError::UpstreamUnavailable("x".into()).status(), 502);
        assert_eq!(ProxyError::SignInNotConfigured.status(), 401);
        let exchange = ProxyError::sign_in(SignInFailure::ExchangeFailed, "token endpoint 500");
        assert_eq!(exchange.class().status, 502);
        assert_eq!(exchange.class().fault, Fault::IdentityProvider);
        assert_eq!(ProxyError::UpstreamTimeout.class().fault, Fault::Upstream);
        let refused = ProxyError::sign_in(SignInFailure::CodeRefused, "invalid_grant");
        assert_eq!(refused.class().status, 400);
        assert_eq!(refused.class().fault, Fault::Client);
        assert_eq!(ProxyError::UpstreamBusy.status(), 503);
        assert_eq!(ProxyError::UpstreamBusy.class().fault, Fault::Upstream);
        assert_eq!(ProxyError::Internal("x").class().level, Level::WARN);
    }

    #[test]
    fn the_cause_stays_typed() {
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        let err = ProxyError::sign_in(SignInFailure::Unverified, Inner);
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.downcast_ref::<Inner>().is_some());
        assert_eq!(
            err.to_string(),
            "sign-in failed: the identity provider's answer did not verify"
        );
    }
}
