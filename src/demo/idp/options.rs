//! What a mock OpenID Provider is set up with ([`IdpOptions`], [`SignIn`],
//! [`Callbacks`]), how it may misbehave at run time ([`Behaviour`]), who signs in
//! ([`TestUser`]) and what it records ([`TokenRequestSeen`]) — part of the test kit and
//! the demo, never on the proxy's request path.

use std::path::PathBuf;
use std::sync::Arc;

use url::Url;

use crate::config::route::FromUrl;
use crate::demo::okta::OktaOrg;
use crate::demo::users::DemoUser;

/// Start-up options of a [`super::MockIdp`].
#[derive(Clone)]
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
    /// Put before every endpoint path: `""` (`/authorize`, `/token`, `/keys`, …, the
    /// default) or Okta's `/oauth2/v1`.
    pub endpoint_prefix: &'static str,
    /// PKCS#1 PEM files of the signing keys, in rotation order, with `kid`s `idp-key-1`,
    /// `idp-key-2`, …; empty (the default): the published demo key alone.
    pub key_files: Vec<PathBuf>,
    /// Who signs in at the authorization endpoint.
    pub sign_in: SignIn,
    /// The registered `redirect_uri`s.
    pub callbacks: Callbacks,
    /// The only `post_logout_redirect_uri` the end-session endpoint follows.
    pub signout_redirect: Option<Url>,
    /// Where the signed-out page links back to when there is no `signout_redirect`.
    pub home_url: Option<String>,
    /// Serves the Okta Management API (`/api/…`) from this org, on the provider's
    /// origin as at Okta.
    pub okta: Option<Arc<OktaOrg>>,
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
            endpoint_prefix: "",
            key_files: Vec::new(),
            sign_in: SignIn::Automatic,
            callbacks: Callbacks::AnyHost,
            signout_redirect: None,
            home_url: None,
            okta: None,
        }
    }
}

/// Who signs in at the authorization endpoint.
#[derive(Clone, Debug)]
pub enum SignIn {
    /// At once, as the user set with [`super::MockIdp::set_user`] (alice@example.com
    /// until then), whatever `prompt` says.
    Automatic,
    /// A page asks which of these users signs in (no password); the provider then
    /// remembers the choice in its own session cookie until `prompt=login` or logout.
    Picker(Vec<DemoUser>),
}

/// The registered redirect URIs: `/oauth2/callback` (no query, fragment or user info)
/// on any host, on every route host, or only on `authenticate_service_url` (as the
/// README tells operators to register them at their provider).
#[derive(Clone, Debug)]
pub enum Callbacks {
    /// `/oauth2/callback` on any host.
    AnyHost,
    /// Only `<authenticate_service_url origin>/oauth2/callback`.
    AuthenticateService(Url),
    /// `/oauth2/callback` on any of these route hosts.
    RouteHosts(Vec<FromUrl>),
}

/// The callback path the proxy serves.
const CALLBACK_PATH: &str = "/oauth2/callback";

impl Callbacks {
    /// Whether the provider may send a code to `redirect_uri`.
    pub fn allows(&self, redirect_uri: &str) -> bool {
        let Ok(url) = Url::parse(redirect_uri) else {
            return false;
        };
        if url.path() != CALLBACK_PATH
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return false;
        }
        match self {
            Callbacks::AnyHost => url.host().is_some(),
            Callbacks::AuthenticateService(service) => url.origin() == service.origin(),
            Callbacks::RouteHosts(hosts) => hosts.iter().any(|from| from_matches(from, &url)),
        }
    }
}

fn from_matches(from: &FromUrl, url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let host_ok = match from.host.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .and_then(|label| label.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => host == from.host,
    };
    let port_ok = from
        .port
        .is_none_or(|p| url.port_or_known_default() == Some(p));
    host_ok && port_ok && url.scheme() == from.scheme
}

/// The user who signs in with [`SignIn::Automatic`]. The default is alice@example.com.
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

/// Run-time misbehaviour; change it through [`super::MockIdp::behaviour`]. The
/// `id_token_*` flags apply to every ID token issued, from a code exchange or a refresh.
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
    /// HS256 keyed with the signing key's public key as PEM
    /// ([`super::MockIdp::public_key_pem`]).
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
    /// Default true: each refresh returns a new refresh token and the old one stops
    /// working (reuse → `invalid_grant`). When false, no new refresh token is returned.
    pub refresh_rotates: bool,
    /// The refreshed ID token carries this `sub`.
    pub refresh_id_token_sub: Option<String>,
    /// Every `/token` request waits this long (counted on arrival) before answering.
    pub token_delay_ms: u64,
    /// `/authorize` redirects back with `error=<this>` and a `<script>` error_description.
    pub authorize_error: Option<String>,
    /// Discovery answers 503.
    pub discovery_unavailable: bool,
    /// After [`super::MockIdp::rotate_keys`], the JWKS lists only the new key (not both).
    pub jwks_only_current_key: bool,
    /// Serve `/api/…` (the Okta Management API) by forwarding to this address, so the
    /// directory and the provider share one origin as they do at Okta.
    pub api_upstream: Option<std::net::SocketAddr>,
    /// Send `email_verified: false` with the email (ID token and userinfo).
    pub email_unverified: bool,
    /// Refuse every authorization code with `invalid_grant`, as a provider does for a
    /// code it issued to another client or already redeemed.
    pub code_refused: bool,
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
            email_unverified: false,
            code_refused: false,
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
