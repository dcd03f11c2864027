//! The mock provider's documents and pages — part of the test kit and the demo, never
//! on the proxy's request path: discovery, the JWKS, the home page, and RP-initiated
//! logout (OpenID Connect RP-Initiated Logout 1.0), which ends the provider's session
//! and follows `post_logout_redirect_uri` only when it is the registered
//! [`super::IdpOptions::signout_redirect`].

use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use url::Url;

use super::{Behaviour, Idp, LABEL, SESSION_COOKIE, tokens};
use crate::demo::users;
use crate::demo::web::{self, Params, Reply, param};
use crate::respond::escape;

impl Idp {
    /// A page with the provider's label.
    pub(super) fn page(&self, status: StatusCode, title: &str, body: &str) -> Reply {
        web::html(status, web::page(title, LABEL, body, false))
    }

    pub(super) fn not_found(&self) -> Reply {
        self.page(StatusCode::NOT_FOUND, "Not found", "<p>No such page.</p>")
    }

    /// `GET /`: what this is, and the demo users when there are any.
    pub(super) fn home(&self) -> Reply {
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
        let users = match users.is_empty() {
            true => String::new(),
            false => format!("<p>Demo users (no passwords):</p><ul>{users}</ul>"),
        };
        let body = format!(
            "<p>A stand-in for an Okta org, run by <code>portcullis demo</code>: OpenID Connect \
sign-in (issuer <code>{issuer}</code>) and the Okta Management API on one origin.</p>{users}\
<p><a href=\"/.well-known/openid-configuration\">Discovery document</a> · \
<a href=\"{keys}\">Signing keys</a></p>",
            issuer = escape(&self.issuer),
            keys = escape(&self.endpoint("keys")),
        );
        self.page(StatusCode::OK, "Demo identity provider", &body)
    }

    /// `GET /.well-known/openid-configuration`.
    pub(super) fn discovery(&self, b: &Behaviour) -> Reply {
        if b.discovery_unavailable {
            let body = "<p>Discovery is unavailable.</p>";
            return self.page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", body);
        }
        let mut doc = json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("keys"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": self.opts.scopes_supported,
            "token_endpoint_auth_methods_supported": self.opts.auth_methods,
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "at_hash",
                "auth_time", "name", "preferred_username", "email", "email_verified", "groups"],
            "authorization_response_iss_parameter_supported": true,
        });
        if self.opts.advertise_revocation {
            doc["revocation_endpoint"] = json!(self.endpoint("revoke"));
        }
        if self.opts.advertise_end_session {
            doc["end_session_endpoint"] = json!(self.endpoint("logout"));
        }
        web::json(StatusCode::OK, &doc)
    }

    /// `GET /keys`.
    pub(super) fn jwks(&self, b: &Behaviour) -> Reply {
        let mut st = self.state();
        st.jwks_fetches += 1;
        match self.keys.jwks(st.current_key, b.jwks_only_current_key) {
            Some(doc) => web::json(StatusCode::OK, &doc),
            None => tokens::oauth_error(500, "server_error", "cannot encode the keys"),
        }
    }

    /// `GET /logout`: records the query, forgets the provider session, and goes back.
    pub(super) fn logout(&self, query: Params, session: Option<&str>) -> Reply {
        {
            let mut st = self.state();
            if let Some(id) = session {
                st.end_session(id);
            }
            st.last_logout = Some(query.clone());
        }
        let mut reply = self.logout_reply(&query);
        let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
        if let Ok(v) = HeaderValue::from_str(&clear) {
            reply.headers_mut().append(header::SET_COOKIE, v);
        }
        reply
    }

    fn logout_reply(&self, query: &Params) -> Reply {
        let wanted = param(query, "post_logout_redirect_uri").filter(|v| !v.is_empty());
        let registered = self.opts.signout_redirect.as_ref();
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
            .or_else(|| self.opts.home_url.clone());
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
