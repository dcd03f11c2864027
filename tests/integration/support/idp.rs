//! An in-process mock OpenID Provider on 127.0.0.1 for the proxy's login tests.
//!
//! It speaks just enough OIDC for an authorization-code login with PKCE, and is strict
//! where a real provider is: one-time codes bound to `redirect_uri` and the S256 challenge,
//! client authentication by `client_secret_basic` or `client_secret_post`, rotating
//! refresh tokens. [`Behaviour`] makes it misbehave at run time (bad ID tokens, failing
//! refreshes, slow token endpoint, …) and the counters and `last_*` accessors show what
//! the relying party sent.
//!
//! Endpoints: `GET /.well-known/openid-configuration`, `GET /jwks`, `GET /authorize`,
//! `POST /token`, `GET|POST /userinfo`, `POST /revoke`, `GET /logout`. The token side
//! and ID-token signing live in `idp_tokens.rs`; the RSA keys are
//! `tests/fixtures/idp-rsa.pem` (kid `idp-key-1`) and `idp-rsa-2.pem` (kid `idp-key-2`).
//!
//! ```ignore
//! let idp = MockIdp::start().await;
//! idp.set_user(TestUser::new("bob").email("bob@example.com").groups(["admins"]));
//! idp.behaviour().id_token_wrong_nonce = true;
//! ```

// Each test uses only part of this support API.
#![allow(dead_code)]

#[path = "idp_tokens.rs"]
mod tokens;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::{Url, form_urlencoded};

use tokens::{Keys, random_token};

type Resp = Response<Full<Bytes>>;
type Pairs = Vec<(String, String)>;

/// Start-up options of a [`MockIdp`].
#[derive(Clone, Debug)]
pub struct IdpOptions {
    /// Advertise (and put in ID tokens) this issuer instead of `http://127.0.0.1:PORT`;
    /// `{base}` in it is replaced by `http://127.0.0.1:PORT`, e.g. `"{base}/"` for a
    /// trailing-slash mismatch. Endpoints stay under the real address.
    pub issuer_override: Option<String>,
    /// `token_endpoint_auth_methods_supported`.
    pub auth_methods: Vec<&'static str>,
    /// When set, `/token` and `/revoke` accept only this client authentication method.
    pub require_auth_method: Option<&'static str>,
    /// The only client id the provider knows (default `portcullis`).
    pub client_id: String,
    /// That client's secret (default `s3cret`).
    pub client_secret: String,
    /// Lifetime of access and ID tokens in seconds (default 300).
    pub access_token_ttl: u64,
    /// Advertise `revocation_endpoint` (default true).
    pub advertise_revocation: bool,
    /// Advertise `end_session_endpoint` (default true).
    pub advertise_end_session: bool,
    /// `scopes_supported`.
    pub scopes_supported: Vec<&'static str>,
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            issuer_override: None,
            auth_methods: vec!["client_secret_basic", "client_secret_post"],
            require_auth_method: None,
            client_id: "portcullis".into(),
            client_secret: "s3cret".into(),
            access_token_ttl: 300,
            advertise_revocation: true,
            advertise_end_session: true,
            scopes_supported: vec!["openid", "email", "profile", "groups", "offline_access"],
        }
    }
}

/// The user who "logs in" at `/authorize`. The default is alice@example.com.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestUser {
    /// `sub` claim.
    pub sub: String,
    /// `email` claim (with `email_verified: true`).
    pub email: Option<String>,
    /// `name` claim.
    pub name: Option<String>,
    /// `groups` claim, left out of the ID token when empty.
    pub groups: Vec<String>,
}

impl TestUser {
    /// A user with only a subject.
    pub fn new(sub: &str) -> Self {
        TestUser {
            sub: sub.into(),
            email: None,
            name: None,
            groups: Vec::new(),
        }
    }
    /// With this email address.
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.into());
        self
    }
    /// With this display name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }
    /// With these groups.
    pub fn groups<const N: usize>(mut self, groups: [&str; N]) -> Self {
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }
}

impl Default for TestUser {
    fn default() -> Self {
        TestUser::new("alice")
            .email("alice@example.com")
            .name("Alice Example")
    }
}

/// Run-time misbehaviour; change it through [`MockIdp::behaviour`]. The `id_token_*`
/// flags apply to every ID token issued, from a code exchange or a refresh.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Add this audience after the client id.
    pub id_token_extra_audience: Option<String>,
    /// Put this `azp` claim in.
    pub id_token_azp: Option<String>,
    /// Answer the code exchange with a nonce other than the one sent to `/authorize`.
    pub id_token_wrong_nonce: bool,
    /// `exp` two minutes in the past.
    pub id_token_expired: bool,
    /// Seconds added to `iat` (positive: issued in the future).
    pub id_token_iat_offset: i64,
    /// Add `nbf` = now + this many seconds.
    pub id_token_nbf_offset: Option<i64>,
    /// `iss` = `http://127.0.0.1:PORT/not-the-issuer`.
    pub id_token_wrong_issuer: bool,
    /// Unsigned token: `{"alg":"none"}` and an empty signature.
    pub id_token_alg_none: bool,
    /// HS256 keyed with the signing key's public key as PEM ([`MockIdp::public_key_pem`]).
    pub id_token_hs256_with_public_key: bool,
    /// RS256 with one bit of the signature flipped.
    pub id_token_bad_signature: bool,
    /// Signed with a key whose `kid` the JWKS never lists.
    pub id_token_unknown_kid: bool,
    /// `/userinfo` answers with this `sub` instead of the user's.
    pub userinfo_sub: Option<String>,
    /// Refresh grants fail with this OAuth error: `server_error` → 500,
    /// `temporarily_unavailable` → 503, anything else (e.g. `invalid_grant`) → 400.
    pub refresh_fails_with: Option<&'static str>,
    /// Default true: each refresh returns a new refresh token and the old one stops working
    /// (reuse → `invalid_grant`). When false, no new refresh token is returned.
    pub refresh_rotates: bool,
    /// The refreshed ID token carries this `sub`.
    pub refresh_id_token_sub: Option<String>,
    /// Every `/token` request waits this long (counted on arrival) before answering.
    pub token_delay_ms: u64,
    /// `/authorize` redirects back with `error=<this>` and a `<script>` error_description.
    pub authorize_error: Option<String>,
    /// Discovery answers 503.
    pub discovery_unavailable: bool,
    /// After [`MockIdp::rotate_keys`], the JWKS lists only the new key (not both).
    pub jwks_only_current_key: bool,
    /// Serve `/api/…` (the Okta Management API) by forwarding to this address, so the
    /// directory and the provider share one origin as they do at Okta.
    pub api_upstream: Option<std::net::SocketAddr>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            id_token_extra_audience: None,
            id_token_azp: None,
            id_token_wrong_nonce: false,
            id_token_expired: false,
            id_token_iat_offset: 0,
            id_token_nbf_offset: None,
            id_token_wrong_issuer: false,
            id_token_alg_none: false,
            id_token_hs256_with_public_key: false,
            id_token_bad_signature: false,
            id_token_unknown_kid: false,
            userinfo_sub: None,
            refresh_fails_with: None,
            refresh_rotates: true,
            refresh_id_token_sub: None,
            token_delay_ms: 0,
            authorize_error: None,
            discovery_unavailable: false,
            jwks_only_current_key: false,
            api_upstream: None,
        }
    }
}

/// What the relying party sent to `/token`, recorded before any check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestSeen {
    /// `client_secret_basic`, `client_secret_post`, `none` or `multiple` (both at once).
    pub auth_method: &'static str,
    /// The client id, from the Basic header or the form.
    pub client_id: Option<String>,
    /// `grant_type` ("" when missing).
    pub grant_type: String,
    /// Whether a `code_verifier` was sent.
    pub code_verifier_present: bool,
    /// `redirect_uri`, if sent.
    pub redirect_uri: Option<String>,
    /// The whole form body.
    pub form: Vec<(String, String)>,
}

/// A running mock OpenID Provider; stops accepting connections when dropped.
pub struct MockIdp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockIdp {
    /// Starts a provider with default [`IdpOptions`] on `127.0.0.1:0`.
    pub async fn start() -> MockIdp {
        Self::start_with(IdpOptions::default()).await
    }

    /// Starts a provider with these options on `127.0.0.1:0`.
    pub async fn start_with(opts: IdpOptions) -> MockIdp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock IdP");
        let addr = listener.local_addr().expect("mock IdP address");
        let base = format!("http://{addr}");
        let issuer = match &opts.issuer_override {
            Some(template) => template.replace("{base}", &base),
            None => base.clone(),
        };
        let shared = Arc::new(Shared {
            base,
            issuer,
            opts,
            keys: Keys::load(),
            behaviour: Mutex::default(),
            state: Mutex::default(),
        });
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sh = sh.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let sh = sh.clone();
                        async move { Ok::<_, Infallible>(sh.handle(req).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        MockIdp { addr, shared, task }
    }

    /// The issuer, exactly as discovery advertises it and ID tokens carry it.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// `http://127.0.0.1:PORT`, where the endpoints are (differs from the issuer only
    /// with `issuer_override`).
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Who "logs in" at the next `/authorize`.
    pub fn set_user(&self, user: TestUser) {
        self.shared.state().user = user;
    }

    /// Run-time behaviour; do not hold the guard across an `.await`.
    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.shared.behaviour()
    }

    /// `/token` requests with `grant_type=authorization_code` (failed ones too).
    pub fn token_requests(&self) -> usize {
        self.shared.state().token_requests
    }

    /// The next access tokens get these lifetimes (`expires_in`), one each, in order.
    pub fn queue_access_token_ttls(&self, ttls: &[u64]) {
        self.shared.state().next_ttls.extend(ttls.iter().copied());
    }

    /// The access token issued last.
    pub fn last_access_token(&self) -> Option<String> {
        self.shared.state().last_access_token.clone()
    }

    /// `/token` requests with `grant_type=refresh_token` (failed ones too).
    pub fn refresh_requests(&self) -> usize {
        self.shared.state().refresh_requests
    }

    /// Tokens posted to `/revoke` by an authenticated client, in order.
    pub fn revocations(&self) -> Vec<String> {
        self.shared.state().revocations.clone()
    }

    /// The latest `/token` request.
    pub fn last_token_request(&self) -> Option<TokenRequestSeen> {
        self.shared.state().last_token.clone()
    }

    /// The query of the latest `/authorize` request, valid or not.
    pub fn last_authorize_query(&self) -> Option<Vec<(String, String)>> {
        self.shared.state().last_authorize.clone()
    }

    /// The query of the latest `/logout` request.
    pub fn last_logout_query(&self) -> Option<Vec<(String, String)>> {
        self.shared.state().last_logout.clone()
    }

    /// Switches signing to key 2 (`kid` `idp-key-2`). The JWKS then lists both keys, or only
    /// the new one with [`Behaviour::jwks_only_current_key`].
    pub fn rotate_keys(&self) {
        self.shared.state().rotated = true;
    }

    /// `GET /jwks` requests so far.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.state().jwks_fetches
    }

    /// The current signing key's public key as SubjectPublicKeyInfo PEM: the HMAC key of
    /// [`Behaviour::id_token_hs256_with_public_key`] tokens.
    pub fn public_key_pem(&self) -> String {
        let rotated = self.shared.state().rotated;
        self.shared.keys.current_public_pem(rotated)
    }
}

struct Shared {
    base: String,
    issuer: String,
    opts: IdpOptions,
    keys: Keys,
    behaviour: Mutex<Behaviour>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    user: TestUser,
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, (TestUser, u64)>,
    refresh: HashMap<String, Grant>,
    token_requests: usize,
    refresh_requests: usize,
    jwks_fetches: usize,
    revocations: Vec<String>,
    last_token: Option<TokenRequestSeen>,
    last_authorize: Option<Pairs>,
    last_logout: Option<Pairs>,
    rotated: bool,
    /// `expires_in` of the next access tokens, before falling back to the option.
    next_ttls: std::collections::VecDeque<u64>,
    last_access_token: Option<String>,
}

#[derive(Clone)]
struct Grant {
    user: TestUser,
    scope: String,
}

struct CodeGrant {
    grant: Grant,
    redirect_uri: String,
    challenge: String,
    nonce: String,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.behaviour.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes one request.
    async fn handle(&self, req: Request<Incoming>) -> Resp {
        let api = self.behaviour().api_upstream;
        if let Some(api) = api.filter(|_| req.uri().path().starts_with("/api/")) {
            return forward_api(api, &self.base, req).await;
        }
        let method = req.method().clone();
        // Trimming copes with `//.well-known/…` from a trailing-slash issuer.
        let path = req.uri().path().trim_start_matches('/').to_owned();
        let query = pairs(req.uri().query().unwrap_or("").as_bytes());
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let auth = auth.map(str::to_owned);
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let form = pairs(&body);
        let b = self.behaviour().clone();
        match (method, path.as_str()) {
            (Method::GET, ".well-known/openid-configuration") => self.discovery(&b),
            (Method::GET, "jwks") => {
                let mut st = self.state();
                st.jwks_fetches += 1;
                json_resp(200, &self.keys.jwks(st.rotated, b.jwks_only_current_key))
            }
            (Method::GET, "authorize") => self.authorize(query, &b),
            (Method::POST, "token") => self.token(auth.as_deref(), form, &b).await,
            (Method::GET | Method::POST, "userinfo") => self.userinfo(auth.as_deref(), &b),
            (Method::POST, "revoke") => self.revoke(auth.as_deref(), &form),
            (Method::GET, "logout") => {
                self.state().last_logout = Some(query);
                html(200, "<h1>signed out</h1>")
            }
            _ => html(404, "<h1>not found</h1>"),
        }
    }

    /// `GET /.well-known/openid-configuration`.
    fn discovery(&self, b: &Behaviour) -> Resp {
        if b.discovery_unavailable {
            return html(503, "<h1>discovery unavailable</h1>");
        }
        let base = &self.base;
        let mut doc = json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": self.opts.auth_methods,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": self.opts.scopes_supported,
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email",
                "email_verified", "name", "groups"],
        });
        if self.opts.advertise_revocation {
            doc["revocation_endpoint"] = json!(format!("{base}/revoke"));
        }
        if self.opts.advertise_end_session {
            doc["end_session_endpoint"] = json!(format!("{base}/logout"));
        }
        json_resp(200, &doc)
    }

    /// `GET /authorize`: validates, records, and redirects back with a one-time code.
    fn authorize(&self, query: Pairs, b: &Behaviour) -> Resp {
        let mut st = self.state();
        st.last_authorize = Some(query.clone());
        let q = |name: &str| get(&query, name).unwrap_or("");
        let redirect = Url::parse(q("redirect_uri")).ok();
        let problem = if q("client_id") != self.opts.client_id {
            "unknown client_id"
        } else if q("response_type") != "code" {
            "response_type must be code"
        } else if redirect.is_none() {
            "redirect_uri missing or not absolute"
        } else if q("code_challenge").is_empty() || q("code_challenge_method") != "S256" {
            "PKCE with code_challenge_method=S256 is required"
        } else if q("state").is_empty() {
            "state is required"
        } else if q("nonce").is_empty() {
            "nonce is required"
        } else if !q("scope").split(' ').any(|s| s == "openid") {
            "scope must include openid"
        } else {
            ""
        };
        let Some(mut location) = redirect.filter(|_| problem.is_empty()) else {
            return html(
                400,
                &format!("<h1>Bad authorization request</h1><p>{problem}</p>"),
            );
        };
        let mut out = location.query_pairs_mut();
        if let Some(error) = &b.authorize_error {
            out.append_pair("error", error);
            out.append_pair("error_description", "<script>alert('idp')</script>");
        } else {
            let code = random_token();
            let grant = Grant {
                user: st.user.clone(),
                scope: q("scope").into(),
            };
            let challenge = q("code_challenge").into();
            let (redirect_uri, nonce) = (q("redirect_uri").into(), q("nonce").into());
            st.codes.insert(
                code.clone(),
                CodeGrant {
                    grant,
                    redirect_uri,
                    challenge,
                    nonce,
                },
            );
            out.append_pair("code", &code);
        }
        out.append_pair("state", q("state"));
        out.append_pair("iss", &self.issuer);
        drop(out);
        let resp = Response::builder()
            .status(302)
            .header(header::LOCATION, location.as_str());
        resp.body(Full::default()).expect("valid redirect")
    }
}

fn pairs(bytes: &[u8]) -> Pairs {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn get<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The proxy's clock, so tests that advance tokio's paused time move both sides.
fn now() -> u64 {
    portcullis::clock::now()
}

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(body.into()))
        .expect("valid response")
}

/// Forwards a Management API request to the mock Okta API.
async fn forward_api(api: std::net::SocketAddr, base: &str, req: Request<Incoming>) -> Resp {
    let url = format!(
        "http://{api}{}",
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let mut out = reqwest::Client::new().get(url);
    for name in [header::AUTHORIZATION, header::ACCEPT] {
        if let Some(v) = req.headers().get(&name) {
            out = out.header(name, v.clone());
        }
    }
    let Ok(r) = out.send().await else {
        return html(502, "<h1>api unreachable</h1>");
    };
    let mut resp = Response::builder().status(r.status().as_u16());
    for (name, value) in r.headers() {
        if name == header::LINK {
            // Pagination links point at the org, which is this origin.
            let text =
                String::from_utf8_lossy(value.as_bytes()).replace(&format!("http://{api}"), base);
            resp = resp.header(name.as_str(), text);
        } else if name.as_str().starts_with("x-rate-limit") || name == header::CONTENT_TYPE {
            resp = resp.header(name.as_str(), value.as_bytes());
        }
    }
    let body = r.bytes().await.unwrap_or_default();
    resp.body(Full::new(body)).expect("response")
}

fn json_resp(status: u16, body: &Value) -> Resp {
    respond(status, "application/json", body.to_string())
}

fn html(status: u16, body: &str) -> Resp {
    respond(
        status,
        "text/html; charset=utf-8",
        format!("<!doctype html><title>Mock IdP</title>{body}"),
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    json_resp(
        status,
        &json!({"error": error, "error_description": description}),
    )
}
