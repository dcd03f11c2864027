//! The mock OpenID Provider — the demo's identity provider and the tests' provider in
//! one; a test-kit and demo companion, never on the proxy's request path.
//!
//! It speaks enough OpenID Connect for an authorization-code sign-in and is strict
//! where a real provider is: the authorization endpoint checks the client, the
//! registered `redirect_uri` ([`Callbacks`]), `response_type=code`, the `openid` scope,
//! `state`, `nonce` and PKCE S256; one-time codes (60 s) are bound to that
//! `redirect_uri` and challenge; the client authenticates by `client_secret_basic` or
//! `client_secret_post` (one, not both); refresh tokens (with `offline_access`) rotate.
//!
//! Endpoints, under [`IdpOptions::endpoint_prefix`] (Okta's `/oauth2/v1` in the demo):
//! `GET /.well-known/openid-configuration`, `GET keys` (RS256 JWKS), `GET|POST
//! authorize`, `POST token`, `GET|POST userinfo`, `POST revoke`, `GET logout`; and the
//! Okta Management API under `/api/` ([`IdpOptions::okta`] in-process, or forwarded to
//! [`Behaviour::api_upstream`]), so provider and directory share one origin as at Okta.
//!
//! Who signs in is [`SignIn`]: at once as a [`TestUser`] (tests), or picked on a page
//! from the demo users with the provider's own session cookie (`portcullis_demo_idp`) so
//! other hosts sign in without asking again (the demo). [`Behaviour`] makes it
//! misbehave at run time (bad ID tokens, failing refreshes, a slow token endpoint, …),
//! and the counters and `last_*` accessors show what the relying party sent.
//!
//! ```ignore
//! let idp = MockIdp::start().await;
//! idp.set_user(TestUser::new("bob").email("bob@example.com").groups(["admins"]));
//! idp.behaviour().id_token_wrong_nonce = true;
//! ```

mod api;
mod authorize;
mod demo_key;
mod keys;
mod options;
mod pages;
mod state;
mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http::{Method, Request, header};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::DemoError;
use super::users::DemoUser;
use super::web::{self, Handler, Params, Reply, Running};
use keys::Keys;
pub use options::{Behaviour, Callbacks, IdpOptions, SignIn, TestUser, TokenRequestSeen};
use state::State;

/// The label on every page of the provider.
pub const LABEL: &str = "Demo identity provider — not for production";

/// The provider's session cookie.
const SESSION_COOKIE: &str = "portcullis_demo_idp";

/// A running mock OpenID Provider; stops accepting connections when dropped.
pub struct MockIdp {
    idp: Arc<Idp>,
    running: Running,
}

impl MockIdp {
    /// Starts a provider with default [`IdpOptions`] on `127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// As [`MockIdp::start_with`].
    pub async fn start() -> MockIdp {
        Self::start_with(IdpOptions::default()).await
    }

    /// Starts a provider with these options on `127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound or a key is unusable (a test-kit convenience;
    /// see [`MockIdp::listen`]).
    pub async fn start_with(opts: IdpOptions) -> MockIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await;
        let listener = listener.unwrap_or_else(|e| panic!("mock IdP cannot bind: {e}"));
        Self::listen(listener, opts).unwrap_or_else(|e| panic!("mock IdP cannot start: {e}"))
    }

    /// Serves a provider with these options on `listener`.
    pub fn listen(listener: TcpListener, opts: IdpOptions) -> Result<MockIdp, DemoError> {
        let addr = listener.local_addr().map_err(|source| DemoError::Bind {
            what: "mock identity provider",
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
        let base = format!("http://{addr}");
        let issuer = match &opts.issuer_override {
            Some(template) => template.replace("{base}", &base),
            None => base.clone(),
        };
        let users = match &opts.sign_in {
            SignIn::Picker(users) => users.clone(),
            SignIn::Automatic => Vec::new(),
        };
        let idp = Arc::new(Idp {
            keys: Keys::load(&opts.key_files)?,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(DemoError::Forward)?,
            base,
            issuer,
            users,
            opts,
            behaviour: Mutex::default(),
            state: Mutex::default(),
        });
        let running = Running::spawn(listener, addr, idp.clone());
        Ok(MockIdp { idp, running })
    }

    /// Stops accepting, lets open connections finish (at most 5 s), then returns.
    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// The issuer, exactly as discovery advertises it and ID tokens carry it.
    pub fn issuer(&self) -> String {
        self.idp.issuer.clone()
    }

    /// `http://127.0.0.1:PORT`, where the endpoints are (differs from the issuer only
    /// with `issuer_override`).
    pub fn base_url(&self) -> String {
        self.idp.base.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// Who signs in at the next authorization request ([`SignIn::Automatic`]).
    pub fn set_user(&self, user: TestUser) {
        self.idp.state().user = user;
    }

    /// Run-time behaviour; do not hold the guard across an `.await`.
    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.idp.behaviour()
    }

    /// `/token` requests with `grant_type=authorization_code` (failed ones too).
    pub fn token_requests(&self) -> usize {
        self.idp.state().token_requests
    }

    /// The next access tokens get these lifetimes (`expires_in`), one each, in order.
    pub fn queue_access_token_ttls(&self, ttls: &[u64]) {
        self.idp.state().next_ttls.extend(ttls.iter().copied());
    }

    /// The access token issued last.
    pub fn last_access_token(&self) -> Option<String> {
        self.idp.state().last_access_token.clone()
    }

    /// `/token` requests with `grant_type=refresh_token` (failed ones too).
    pub fn refresh_requests(&self) -> usize {
        self.idp.state().refresh_requests
    }

    /// Tokens posted to `/revoke` by an authenticated client, in order.
    pub fn revocations(&self) -> Vec<String> {
        self.idp.state().revocations.clone()
    }

    /// The latest `/token` request.
    pub fn last_token_request(&self) -> Option<TokenRequestSeen> {
        self.idp.state().last_token.clone()
    }

    /// The query of the latest `GET /authorize` request, valid or not.
    pub fn last_authorize_query(&self) -> Option<Vec<(String, String)>> {
        self.idp.state().last_authorize.clone()
    }

    /// The query of the latest `/logout` request.
    pub fn last_logout_query(&self) -> Option<Vec<(String, String)>> {
        self.idp.state().last_logout.clone()
    }

    /// Switches signing to the next key (`kid` `idp-key-2` after `idp-key-1`); with
    /// one key, nothing changes. The JWKS then lists the new key and the earlier ones,
    /// or only the new one with [`Behaviour::jwks_only_current_key`].
    pub fn rotate_keys(&self) {
        let mut st = self.idp.state();
        st.current_key = self.idp.keys.next(st.current_key);
    }

    /// `GET /keys` requests so far.
    pub fn jwks_fetches(&self) -> usize {
        self.idp.state().jwks_fetches
    }

    /// The current signing key's public key as SubjectPublicKeyInfo PEM: the HMAC key of
    /// [`Behaviour::id_token_hs256_with_public_key`] tokens.
    pub fn public_key_pem(&self) -> String {
        let current = self.idp.state().current_key;
        self.idp.keys.public_pem(current)
    }
}

/// The provider itself, shared by its connections.
struct Idp {
    /// `http://127.0.0.1:PORT`: the base of every endpoint.
    base: String,
    issuer: String,
    opts: IdpOptions,
    /// The users of [`SignIn::Picker`].
    users: Vec<DemoUser>,
    keys: Keys,
    /// Forwards `/api/` to [`Behaviour::api_upstream`].
    http: reqwest::Client,
    behaviour: Mutex<Behaviour>,
    state: Mutex<State>,
}

impl Handler for Idp {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        if req.uri().path().starts_with("/api/") {
            return self.api(req).await;
        }
        let (parts, body) = req.into_parts();
        // Trimming copes with `//.well-known/…` from a trailing-slash issuer.
        let path = format!("/{}", parts.uri.path().trim_start_matches('/'));
        let query = web::parse_params(parts.uri.query().unwrap_or("").as_bytes());
        let form = if parts.method == Method::POST {
            match web::read_body(body).await {
                Some(bytes) => web::parse_params(&bytes),
                None => return tokens::oauth_error(400, "invalid_request", "body too large"),
            }
        } else {
            Params::new()
        };
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let session = session_cookie(&parts.headers);
        let session = session.as_deref();
        let b = self.behaviour().clone();
        let endpoint = path.strip_prefix(self.opts.endpoint_prefix);
        match (&parts.method, path.as_str(), endpoint) {
            (&Method::GET, "/", _) => self.home(),
            (&Method::GET, "/.well-known/openid-configuration", _) => self.discovery(&b),
            (&Method::GET, _, Some("/keys")) => self.jwks(&b),
            (&Method::GET, _, Some("/authorize")) => self.authorize(query, session, &b),
            (&Method::POST, _, Some("/authorize")) => self.authorize_choice(form, &b),
            (&Method::POST, _, Some("/token")) => self.token(auth, form, &b).await,
            (&Method::GET | &Method::POST, _, Some("/userinfo")) => self.userinfo(auth, &b),
            (&Method::POST, _, Some("/revoke")) => self.revoke(auth, &form),
            (&Method::GET, _, Some("/logout")) => self.logout(query, session),
            _ => self.not_found(),
        }
    }
}

impl Idp {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.behaviour.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The URL of the endpoint `name` (`authorize`, `token`, …).
    fn endpoint(&self, name: &str) -> String {
        format!("{}{}/{name}", self.base, self.opts.endpoint_prefix)
    }
}

/// The provider session id from the `Cookie` header(s).
fn session_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}
