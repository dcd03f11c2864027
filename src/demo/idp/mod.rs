//! The demo OpenID Provider — an Okta-like org on loopback, for `portcullis demo` only.
//!
//! Endpoints (Okta's org authorization server paths):
//!
//! * `GET /.well-known/openid-configuration`, `GET /oauth2/v1/keys` (RS256 JWKS);
//! * `GET /oauth2/v1/authorize`: checks the request (known client, registered
//!   `redirect_uri`, `response_type=code`, `openid` scope, `state`, PKCE S256) and shows
//!   a page to pick a demo user — no password; `POST` of that page issues a one-time code;
//! * `POST /oauth2/v1/token`, `GET|POST /oauth2/v1/userinfo`, `POST /oauth2/v1/revoke`
//!   (in `tokens`);
//! * `GET /oauth2/v1/logout`: RP-initiated logout; follows `post_logout_redirect_uri`
//!   only when it is the configured `signout_redirect_url`;
//! * `GET /api/v1/users/{id}/groups`: the Management API ([`super::okta`]).
//!
//! Like a real provider it remembers who signed in (its own session cookie,
//! `portcullis_demo_idp`), so the other route hosts sign in without asking again;
//! `prompt=login` always asks, and the end-session endpoint forgets the session, so
//! the next sign-in asks again. Every page says "Demo identity provider — not for
//! production".

mod authorize;
mod grants;
mod key;
mod signer;
mod tokens;

use std::sync::{Arc, Mutex, MutexGuard};

use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;
use url::Url;

use super::plan::Plan;
use super::users::{self, DemoUser};
use super::web::{self, Handler, Params, Reply, param};
use super::{DemoError, okta};
use crate::respond::escape;
use authorize::AuthRequest;
use grants::Grants;
use signer::Signer;

/// The label on every page of the provider.
pub const LABEL: &str = "Demo identity provider — not for production";

const AUTHORIZE_PATH: &str = "/oauth2/v1/authorize";

/// The provider's session cookie.
const SESSION_COOKIE: &str = "portcullis_demo_idp";

/// The demo provider and the Okta API on one origin.
pub struct Provider {
    plan: Arc<Plan>,
    users: Vec<DemoUser>,
    signer: Signer,
    grants: Mutex<Grants>,
}

impl Provider {
    /// A provider for `plan`, signing with the fixed demo key.
    pub fn new(plan: Arc<Plan>) -> Result<Self, DemoError> {
        Ok(Provider {
            plan,
            users: users::all(),
            signer: Signer::load()?,
            grants: Mutex::default(),
        })
    }

    fn grants(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:9101` without a trailing slash: the base of every endpoint.
    fn base(&self) -> &str {
        self.plan.issuer.trim_end_matches('/')
    }
}

impl Handler for Provider {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        if path.starts_with("/api/") {
            return okta::handle(
                &parts,
                self.plan.api_token.as_ref(),
                &self.users,
                self.base(),
            );
        }
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
        match (&parts.method, path) {
            (&Method::GET, "/") => self.home(),
            (&Method::GET, "/.well-known/openid-configuration") => self.discovery(),
            (&Method::GET, "/oauth2/v1/keys") => self.signer.jwks(),
            (&Method::GET, AUTHORIZE_PATH) => self.authorize(&query, session),
            (&Method::POST, AUTHORIZE_PATH) => self.authorize_choice(form),
            (&Method::POST, "/oauth2/v1/token") => self.token(auth, &form),
            (&Method::GET | &Method::POST, "/oauth2/v1/userinfo") => self.userinfo(auth),
            (&Method::POST, "/oauth2/v1/revoke") => self.revoke(auth, &form),
            (&Method::GET, "/oauth2/v1/logout") => self.logout(&query, session),
            _ => self.page(StatusCode::NOT_FOUND, "Not found", "<p>No such page.</p>"),
        }
    }
}

impl Provider {
    fn page(&self, status: StatusCode, title: &str, body: &str) -> Reply {
        web::html(status, web::page(title, LABEL, body, false))
    }

    fn home(&self) -> Reply {
        let users: String = self
            .users
            .iter()
            .map(|u| {
                format!(
                    "<li><strong>{}</strong> · {} — {}</li>",
                    escape(u.login),
                    escape(u.email),
                    escape(&users::summary(&u.groups))
                )
            })
            .collect();
        let body = format!(
            "<p>A stand-in for an Okta org, run by <code>portcullis demo</code>: OpenID Connect \
sign-in (issuer <code>{issuer}</code>) and the Okta Management API on one origin.</p>\
<p>Demo users (no passwords):</p><ul>{users}</ul>\
<p><a href=\"/.well-known/openid-configuration\">Discovery document</a> · \
<a href=\"/oauth2/v1/keys\">Signing keys</a></p>",
            issuer = escape(&self.plan.issuer),
        );
        self.page(StatusCode::OK, "Demo identity provider", &body)
    }

    fn discovery(&self) -> Reply {
        let base = self.base();
        web::json(
            StatusCode::OK,
            &json!({
                "issuer": self.plan.issuer,
                "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
                "token_endpoint": format!("{base}/oauth2/v1/token"),
                "userinfo_endpoint": format!("{base}/oauth2/v1/userinfo"),
                "jwks_uri": format!("{base}/oauth2/v1/keys"),
                "revocation_endpoint": format!("{base}/oauth2/v1/revoke"),
                "end_session_endpoint": format!("{base}/oauth2/v1/logout"),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "at_hash",
                    "name", "preferred_username", "email", "email_verified"],
                "authorization_response_iss_parameter_supported": true,
            }),
        )
    }

    /// `GET /oauth2/v1/logout` (OpenID Connect RP-Initiated Logout 1.0).
    fn logout(&self, query: &Params, session: Option<&str>) -> Reply {
        if let Some(id) = session {
            self.grants().end_session(id);
        }
        let mut reply = self.logout_reply(query);
        let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
        if let Ok(v) = HeaderValue::from_str(&clear) {
            reply.headers_mut().append(header::SET_COOKIE, v);
        }
        reply
    }

    fn logout_reply(&self, query: &Params) -> Reply {
        let wanted = param(query, "post_logout_redirect_uri").filter(|v| !v.is_empty());
        let registered = self.plan.signout_redirect.as_ref();
        let matches = |uri: &str| {
            Url::parse(uri)
                .ok()
                .is_some_and(|u| registered.is_some_and(|r| *r == u))
        };
        if let Some(uri) = wanted.filter(|u| matches(u))
            && let Ok(mut url) = Url::parse(uri)
        {
            if let Some(state) = param(query, "state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            return web::redirect(url.as_str());
        }
        let note = match wanted {
            Some(uri) => format!(
                "<p class=\"bad\">Not following <code>{}</code>: it is not the client's \
registered <code>signout_redirect_url</code>.</p>",
                escape(uri)
            ),
            None => String::new(),
        };
        let back = registered
            .map(Url::to_string)
            .or_else(|| self.plan.start_url().map(str::to_owned));
        let link = back
            .map(|b| format!("<p><a href=\"{0}\">Back to {0}</a></p>", escape(&b)))
            .unwrap_or_default();
        let body = format!(
            "<p>You are signed out of the demo provider: the next sign-in asks again which \
user you are.</p>{note}{link}"
        );
        self.page(StatusCode::OK, "Signed out of the demo provider", &body)
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
