//! Sign-in with OpenID Connect: discovery, the authorization-code flow, refresh,
//! sign-out and the user's own pages.
//!
//! [`Authenticator`] is the one object the pipeline talks to: it loads the session of a
//! request (stage 3, refreshing tokens when due), starts sign-ins for stage 4, and
//! serves the sign-in endpoints (`/oauth2/callback`, `/.pomerium/…`).

pub mod endpoints;
pub mod flow;
pub mod handoff;
pub mod id_token;
pub mod provider;
pub mod refresh;
mod signout;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use url::Url;

use crate::config::Config;
use crate::config::auth::Storage;
use crate::directory::GroupCache;
use crate::seal::{Sealer, random_32};
use crate::session::cookies::Cookies;
use crate::session::redis::RedisStore;
use crate::session::{MemoryStore, SessionStore, StoreError};

pub use provider::Provider;

/// Settings the flow needs, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `authenticate_service_url`: the one host that runs the callback.
    pub authenticate_url: Option<Url>,
    /// `signout_redirect_url`.
    pub signout_redirect: Option<Url>,
    /// `idp_scopes`.
    pub scopes: Vec<String>,
    /// `idp_request_params`.
    pub request_params: Vec<(String, String)>,
    /// `idp_groups_claim`.
    pub groups_claim: String,
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
    /// The code exchange failed.
    #[error("code exchange failed: {0}")]
    TokenExchange(String),
    /// The ID token failed validation.
    #[error("{0}")]
    BadToken(String),
    /// Userinfo failed or disagreed with the ID token.
    #[error("userinfo: {0}")]
    Userinfo(String),
    /// The session store failed.
    #[error("session store: {0}")]
    Store(String),
    /// A link that should be signed is not, or has expired.
    #[error("invalid or expired sign-in link")]
    BadLink,
    /// A bug.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Sign-in, sessions and sign-out.
#[derive(Debug)]
pub struct Authenticator {
    provider: Option<Arc<Provider>>,
    /// Cookie sealing and attributes.
    pub cookies: Cookies,
    /// Where sessions live.
    pub store: Arc<dyn SessionStore>,
    /// Flow settings.
    pub settings: Settings,
    handoff: Sealer,
    /// The directory's group memberships (Okta with `idp_service_account`).
    pub groups: Option<Arc<GroupCache>>,
    used: Mutex<HashMap<String, u64>>,
    /// The Redis store when replicas share state (one-time markers live there too).
    shared: Option<RedisStore>,
    refresh: refresh::Coordinator,
}

impl Authenticator {
    /// Builds the authenticator from the configuration. Secrets that are not configured
    /// are generated for this process (with a warning at start). Fails only on a Redis
    /// URL that cannot be used.
    pub fn new(config: &Config, shared_secret: &[u8; 32]) -> Result<Self, StoreError> {
        let auth = &config.auth;
        let (store, shared): (Arc<dyn SessionStore>, _) = match &auth.storage {
            Storage::Memory => (Arc::new(MemoryStore::new()), None),
            Storage::Redis(url) => {
                let redis = RedisStore::new(url, shared_secret)?;
                (Arc::new(redis.clone()), Some(redis))
            }
        };
        let provider = match (&auth.idp.issuer, &auth.idp.client_id) {
            (Some(issuer), Some(client_id)) if auth.idp.provider.is_some() => {
                Some(Arc::new(Provider::new(
                    issuer.clone(),
                    client_id.clone(),
                    auth.idp
                        .client_secret
                        .as_ref()
                        .map(|s| s.expose().to_owned()),
                    auth.idp.token_endpoint_auth_method,
                )))
            }
            _ => None,
        };
        let cookie_secret = auth.cookie_secret.as_ref().map_or_else(random_32, |k| k.0);
        let mut cookie = auth.cookie.clone();
        cookie.secure = cookie.secure && !config.server.insecure;
        Ok(Self {
            provider,
            cookies: Cookies::new(cookie, &cookie_secret),
            store,
            settings: Settings {
                authenticate_url: auth.authenticate_service_url.clone(),
                signout_redirect: auth.signout_redirect_url.clone(),
                scopes: auth.idp.scopes.clone(),
                request_params: auth.idp.request_params.clone(),
                groups_claim: auth.idp.groups_claim.clone(),
                cookie_expire: auth.cookie.expire.as_secs(),
            },
            handoff: Sealer::new(shared_secret, "handoff"),
            groups: crate::directory::from_idp(&auth.idp, shared.as_ref()),
            used: Mutex::new(HashMap::new()),
            shared,
            refresh: refresh::Coordinator::default(),
        })
    }

    /// Whether an identity provider is configured.
    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// The provider, when configured.
    pub fn provider(&self) -> Result<&Arc<Provider>, SignInError> {
        self.provider.as_ref().ok_or(SignInError::NotConfigured)
    }

    /// Discovers the provider: one attempt now (at most 10 s), so a reachable provider
    /// is ready before the first request; if it fails, retries continue in the
    /// background while public routes are served.
    pub async fn start_discovery(&self) {
        let Some(p) = &self.provider else { return };
        match tokio::time::timeout(std::time::Duration::from_secs(10), p.discover()).await {
            Ok(Ok(_)) => tracing::info!(issuer = %p.issuer, "identity provider discovered"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "identity provider discovery failed; retrying in the background");
                tokio::spawn(p.clone().discover_until_ready());
            }
            Err(_) => {
                tracing::warn!("identity provider discovery timed out; retrying in the background");
                tokio::spawn(p.clone().discover_until_ready());
            }
        }
    }

    /// Connects the session store (Redis: connection and announcements). A store that
    /// is down is logged and retried on use; the proxy starts anyway.
    pub async fn start_store(&self) {
        let _ = self.store.start().await;
    }

    /// Records `key` as used until `until`; false if it was used already — by any
    /// replica when sessions are shared through Redis.
    async fn use_once(&self, key: &str, until: u64) -> Result<bool, SignInError> {
        let now = crate::clock::now();
        if let Some(redis) = &self.shared {
            return redis
                .claim_once(key, until.saturating_sub(now))
                .await
                .map_err(|e| SignInError::Store(e.to_string()));
        }
        let Ok(mut used) = self.used.lock() else {
            return Ok(false);
        };
        if used.len() > 10_000 {
            used.retain(|_, exp| *exp > now);
        }
        Ok(match used.get(key) {
            Some(exp) if *exp > now => false,
            _ => {
                used.insert(key.to_owned(), until);
                true
            }
        })
    }
}
