//! Sign-in, a service of the pipeline: the authorization-code flow with the identity
//! provider, the hand-off between hosts, sign-out and the user's own pages.
//!
//! [`SignIn`] starts sign-ins for stage 4 ([`SignIn::redirect`]) and serves the sign-in
//! endpoints (`/oauth2/callback`, `/.pomerium/…`, [`SignIn::endpoint`]). It creates
//! sessions through [`Sessions`] and speaks to the provider through
//! [`crate::oidc::Provider`]; one-time `state` and hand-off markers live in
//! [`markers`].

pub(crate) mod endpoints;
pub(crate) mod flow;
pub(crate) mod handoff;
mod markers;
mod pages;
mod params;
mod signout;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use http::{HeaderMap, Response};
use url::Url;

pub(crate) use markers::Markers;

use crate::body::{BoxError, ResponseBody};
use crate::config::Config;
use crate::error::{ProxyError, SignInFailure};
use crate::oidc::{Provider, VerifyError};
use crate::routes::RequestView;
use crate::seal::Sealer;
use crate::session::{Sessions, StoreError};

/// Settings the flow needs, from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `authenticate_service_url`: the one host that runs the callback.
    pub authenticate_url: Option<Url>,
    /// `signout_redirect_url`.
    pub signout_redirect: Option<Url>,
    /// `idp_scopes`.
    pub scopes: Vec<String>,
    /// `idp_request_params`.
    pub request_params: Vec<(String, String)>,
    /// `cookie_expire`, in seconds.
    pub cookie_expire: u64,
}

/// Why a sign-in (or sign-out) did not complete. Shown to users as a friendly page.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No identity provider is configured.
    #[error("sign-in is not configured")]
    NotConfigured,
    /// Discovery has not succeeded (yet).
    #[error("the identity provider is not reachable")]
    ProviderUnavailable,
    /// The provider answered the authorization request with an error.
    #[error("the identity provider refused the sign-in: {error}")]
    Provider {
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description`.
        description: Option<String>,
    },
    /// No state cookie, or not the one this callback is for.
    #[error("sign-in state missing or mismatched")]
    StateMismatch,
    /// The sign-in took longer than allowed.
    #[error("sign-in state expired")]
    StateExpired,
    /// The callback was used before.
    #[error("sign-in state already used")]
    StateReplayed,
    /// The callback is malformed.
    #[error("bad callback: {0}")]
    BadCallback(&'static str),
    /// The provider refused the code (`invalid_grant`: unknown, used, or failing PKCE).
    #[error("the provider refused the code: {0}")]
    CodeRefused(String),
    /// The token endpoint could not be reached or answered with something unusable.
    #[error("code exchange failed")]
    TokenExchange(#[source] BoxError),
    /// The one-time markers are full: a sign-in cannot be recorded as used, so it is
    /// refused rather than left replayable.
    #[error("too many sign-ins in progress")]
    Busy,
    /// The ID token failed validation.
    #[error(transparent)]
    BadToken(VerifyError),
    /// The provider's answer lacks something every sign-in needs.
    #[error("the provider's answer has no {0}")]
    Incomplete(&'static str),
    /// Userinfo failed or disagreed with the ID token.
    #[error("userinfo failed")]
    Userinfo(#[source] BoxError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A link that should be signed is not, or has expired.
    #[error("invalid or expired sign-in link")]
    BadLink,
    /// A hand-off opened in a browser other than the one that started the sign-in.
    #[error("hand-off opened in another browser")]
    OtherBrowser,
    /// A bug.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<VerifyError> for SignInError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Unavailable => SignInError::ProviderUnavailable,
            e => SignInError::BadToken(e),
        }
    }
}

impl From<SignInError> for ProxyError {
    fn from(e: SignInError) -> Self {
        use SignInError::*;
        let failure = match &e {
            Store(_) => {
                return match e {
                    Store(inner) => ProxyError::from(inner),
                    _ => ProxyError::Internal("sign-in store error"),
                };
            }
            NotConfigured => SignInFailure::NotConfigured,
            ProviderUnavailable => SignInFailure::ProviderUnavailable,
            Provider { error, description } => SignInFailure::Refused {
                error: error.clone(),
                description: description.clone(),
            },
            StateMismatch | StateReplayed | BadCallback(_) | BadLink => SignInFailure::LinkInvalid,
            CodeRefused(_) => SignInFailure::CodeRefused,
            Busy => SignInFailure::Busy,
            OtherBrowser => SignInFailure::OtherBrowser,
            StateExpired => SignInFailure::Expired,
            TokenExchange(_) => SignInFailure::ExchangeFailed,
            BadToken(_) | Incomplete(_) | Userinfo(_) => SignInFailure::Unverified,
            Internal(_) => SignInFailure::Internal,
        };
        ProxyError::sign_in(failure, e)
    }
}

/// Sign-in and sign-out.
#[derive(Debug)]
pub struct SignIn {
    provider: Option<Arc<Provider>>,
    sessions: Arc<Sessions>,
    settings: Settings,
    handoff: Sealer,
    markers: Markers,
}

impl SignIn {
    /// Sign-in for `config`, creating sessions in `sessions`.
    pub fn new(
        config: &Config,
        shared_secret: &[u8; 32],
        provider: Option<Arc<Provider>>,
        sessions: Arc<Sessions>,
        markers: Markers,
    ) -> Self {
        let auth = &config.auth;
        Self {
            provider,
            sessions,
            settings: Settings {
                authenticate_url: auth.authenticate_service_url.clone(),
                signout_redirect: auth.signout_redirect_url.clone(),
                scopes: auth.idp.scopes.clone(),
                request_params: auth.idp.request_params.clone(),
                cookie_expire: auth.cookie.expire.as_secs(),
            },
            handoff: Sealer::new(shared_secret, "handoff"),
            markers,
        }
    }

    /// Whether an identity provider is configured.
    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// The provider, when configured.
    pub fn provider(&self) -> Result<&Arc<Provider>, SignInError> {
        self.provider.as_ref().ok_or(SignInError::NotConfigured)
    }

    /// Stage 4 said "sign in first": a browser is sent to the identity provider (or
    /// to the authenticate host), an API client gets 401. A session store that is down
    /// is told now, before the user goes to the provider.
    pub async fn start(
        &self,
        view: &RequestView,
        headers: &HeaderMap,
        scheme: &str,
        html: bool,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        if !self.enabled() {
            return Err(ProxyError::SignInNotConfigured);
        }
        self.sessions.can_store().await?;
        if html {
            return self.sign_in_redirect(view, headers, scheme);
        }
        Err(ProxyError::Unauthenticated)
    }

    /// Records `key` as used until `until`; false if it was used already.
    async fn use_once(&self, key: &str, until: u64) -> Result<bool, SignInError> {
        self.markers
            .use_once(key, until)
            .await
            .map_err(|e| match e {
                markers::MarkersError::Store(e) => SignInError::Store(e),
                markers::MarkersError::Full => SignInError::Busy,
            })
    }
}
