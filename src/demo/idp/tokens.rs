//! The token side of the mock provider — part of the test kit and the demo, never on
//! the proxy's request path: `POST /token` (authorization_code with PKCE, refresh_token
//! with rotation), `/userinfo` and `/revoke`. ID tokens come from [`super::keys`], codes
//! and tokens live in [`super::state`].
//!
//! Invariant: a code works once, within 60 s, for the `redirect_uri` and PKCE challenge
//! it was issued with; a refresh token (issued only with `offline_access`) works once
//! (each use returns a new one) unless [`super::Behaviour::refresh_rotates`] is off;
//! both need the client to authenticate by `client_secret_basic` or
//! `client_secret_post` — one, not both.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::keys::Signing;
use super::state::{Account, Grant, Refresh, random_token};
use super::{Behaviour, Idp, TokenRequestSeen};
use crate::clock;
use crate::demo::web::{self, Params, Reply, param, repeated, same_secret};

impl Idp {
    /// `POST /token`: records the request, then checks and answers it.
    pub(super) async fn token(&self, auth: Option<&str>, form: Params, b: &Behaviour) -> Reply {
        let grant_type = param(&form, "grant_type").unwrap_or("").to_owned();
        let (auth_method, creds) = client_credentials(auth, &form);
        {
            let mut st = self.state();
            match grant_type.as_str() {
                "authorization_code" => st.token_requests += 1,
                "refresh_token" => st.refresh_requests += 1,
                _ => {}
            }
            st.last_token = Some(TokenRequestSeen {
                auth_method,
                client_id: creds
                    .as_ref()
                    .map(|c| c.0.clone())
                    .or(param(&form, "client_id").map(Into::into)),
                grant_type: grant_type.clone(),
                code_verifier_present: param(&form, "code_verifier").is_some(),
                redirect_uri: param(&form, "redirect_uri").map(Into::into),
                form: form.clone(),
            });
        }
        if b.token_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(b.token_delay_ms)).await;
        }
        if repeated(&form).is_some() {
            let why = "a parameter was given more than once";
            return oauth_error(400, "invalid_request", why);
        }
        if let Some(reply) = self.reject_client(auth_method, creds) {
            return reply;
        }
        match grant_type.as_str() {
            "authorization_code" => self.code_grant(&form, b),
            "refresh_token" => self.refresh_grant(&form, b),
            _ => oauth_error(
                400,
                "unsupported_grant_type",
                "only authorization_code and refresh_token",
            ),
        }
    }

    /// The error response for a client that failed to authenticate, if it did.
    fn reject_client(&self, method: &str, creds: Option<(String, String)>) -> Option<Reply> {
        if method == "multiple" {
            let why = "use one client authentication method, not two";
            return Some(oauth_error(400, "invalid_request", why));
        }
        if self.opts.require_auth_method.is_some_and(|m| m != method) {
            let why = "client authentication method not allowed";
            return Some(oauth_error(401, "invalid_client", why));
        }
        match creds {
            Some((id, secret))
                if id == self.opts.client_id && same_secret(&secret, &self.opts.client_secret) =>
            {
                None
            }
            _ => Some(oauth_error(
                401,
                "invalid_client",
                "client authentication failed",
            )),
        }
    }

    /// `grant_type=authorization_code`: one-time code, redirect_uri and PKCE checks.
    fn code_grant(&self, form: &Params, b: &Behaviour) -> Reply {
        let code = param(form, "code").unwrap_or("");
        let now = clock::now();
        let found = self.state().codes.remove(code);
        let Some(code) = found.filter(|c| c.expires_at > now && !b.code_refused) else {
            let why = "unknown, expired or already used code";
            return oauth_error(400, "invalid_grant", why);
        };
        if param(form, "redirect_uri") != Some(code.redirect_uri.as_str()) {
            return oauth_error(400, "invalid_grant", "redirect_uri does not match");
        }
        let verified = param(form, "code_verifier")
            .filter(|v| is_pkce_value(v))
            .is_some_and(|v| same_secret(&s256(v), &code.challenge));
        if !verified {
            return oauth_error(400, "invalid_grant", "PKCE verification failed");
        }
        let sub = code.grant.account.user.sub.clone();
        let offline = code.grant.scope.split(' ').any(|s| s == "offline_access");
        let Some(refresh) = random_token() else {
            return oauth_error(500, "server_error", "no randomness");
        };
        let refresh = offline.then_some(refresh);
        self.issue(&code.grant, &sub, Some(&code.nonce), refresh, b)
    }

    /// `grant_type=refresh_token`, honouring the `refresh_*` behaviour.
    fn refresh_grant(&self, form: &Params, b: &Behaviour) -> Reply {
        let token = param(form, "refresh_token").unwrap_or("");
        let consume = b.refresh_rotates && b.refresh_fails_with.is_none();
        let now = clock::now();
        let grant = {
            let mut st = self.state();
            st.forget_expired(now);
            match consume {
                // Rotation: the token is spent whether or not the answer reaches the client.
                true => st.refresh.remove(token).map(|r| r.grant),
                false => st.refresh.get(token).map(|r| r.grant.clone()),
            }
        };
        let Some(grant) = grant else {
            let why = "unknown, revoked or already used refresh token";
            return oauth_error(400, "invalid_grant", why);
        };
        if let Some(error) = b.refresh_fails_with {
            let status = match error {
                "server_error" => 500,
                "temporarily_unavailable" => 503,
                _ => 400,
            };
            let why = "refresh refused by Behaviour::refresh_fails_with";
            return oauth_error(status, error, why);
        }
        let sub = b
            .refresh_id_token_sub
            .clone()
            .unwrap_or_else(|| grant.account.user.sub.clone());
        let refresh = match consume {
            true => match random_token() {
                Some(t) => Some(t),
                None => return oauth_error(500, "server_error", "no randomness"),
            },
            false => None,
        };
        self.issue(&grant, &sub, None, refresh, b)
    }

    /// The token response: a fresh access token, an ID token for `sub`, and `refresh`.
    fn issue(
        &self,
        grant: &Grant,
        sub: &str,
        nonce: Option<&str>,
        refresh: Option<String>,
        b: &Behaviour,
    ) -> Reply {
        let Some(access) = random_token() else {
            return oauth_error(500, "server_error", "no randomness");
        };
        let now = clock::now();
        let (ttl, current_key) = {
            let mut st = self.state();
            let ttl = st.next_ttls.pop_front();
            (ttl.unwrap_or(self.opts.access_token_ttl), st.current_key)
        };
        let claims = self.claims(&grant.account, sub, nonce, now, b);
        let Some(id_token) = self.keys.mint(current_key, claims, &access, signing(b)) else {
            return oauth_error(500, "server_error", "cannot sign the ID token");
        };
        let mut st = self.state();
        st.forget_expired(now);
        // A queued lifetime is only what the relying party is told; the provider itself
        // honours the token for the configured lifetime (so userinfo still works).
        let valid = now + ttl.max(self.opts.access_token_ttl);
        st.access
            .insert(access.clone(), (grant.account.clone(), valid));
        st.last_access_token = Some(access.clone());
        let mut body = json!({
            "access_token": access, "token_type": "Bearer", "expires_in": ttl,
            "id_token": id_token, "scope": grant.scope,
        });
        if let Some(refresh) = refresh {
            let entry = Refresh {
                grant: grant.clone(),
                issued_at: now,
            };
            st.refresh.insert(refresh.clone(), entry);
            body["refresh_token"] = json!(refresh);
        }
        web::json(StatusCode::OK, &body)
    }

    /// The ID token's claims, as the behaviour says.
    fn claims(
        &self,
        account: &Account,
        sub: &str,
        nonce: Option<&str>,
        now: u64,
        b: &Behaviour,
    ) -> serde_json::Value {
        let (now, user) = (now as i64, &account.user);
        let ttl = self.opts.access_token_ttl as i64;
        let (iat, exp) = match b.id_token_expired {
            true => (now - ttl - 120, now - 120),
            false => (now, now + ttl),
        };
        let mut aud = vec![self.opts.client_id.clone()];
        aud.extend(b.id_token_extra_audience.clone());
        let iss = match b.id_token_wrong_issuer {
            true => format!("{}/not-the-issuer", self.base),
            false => self.issuer.clone(),
        };
        let iat = iat + b.id_token_iat_offset;
        let mut claims = json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp, "iat": iat});
        if let Some(nonce) = nonce {
            claims["nonce"] = match b.id_token_wrong_nonce {
                true => json!(format!("wrong-{}", random_token().unwrap_or_default())),
                false => json!(nonce),
            };
        }
        if account.demo {
            claims["auth_time"] = json!(now);
        }
        if let Some(email) = &user.email {
            claims["email"] = json!(email);
            claims["email_verified"] = json!(!b.email_unverified);
            if account.demo {
                claims["preferred_username"] = json!(email);
            }
        }
        if let Some(name) = &user.name {
            claims["name"] = json!(name);
        }
        if !user.groups.is_empty() {
            claims["groups"] = json!(user.groups);
        }
        if let Some(azp) = &b.id_token_azp {
            claims["azp"] = json!(azp);
        }
        if let Some(offset) = b.id_token_nbf_offset {
            claims["nbf"] = json!(now + offset);
        }
        claims
    }

    /// `GET|POST /userinfo` with a Bearer access token.
    pub(super) fn userinfo(&self, auth: Option<&str>, b: &Behaviour) -> Reply {
        let token = auth.and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        let now = clock::now();
        let found = self.state().access.get(token).cloned();
        let Some((account, _)) = found.filter(|(_, expires)| *expires > now) else {
            let mut reply = oauth_error(401, "invalid_token", "unknown or expired access token");
            reply.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return reply;
        };
        let user = account.user;
        let mut info = json!({"sub": b.userinfo_sub.clone().unwrap_or(user.sub)});
        if !account.demo {
            info["groups"] = json!(user.groups);
        }
        if let Some(email) = user.email {
            if account.demo {
                info["preferred_username"] = json!(email);
            }
            info["email"] = json!(email);
            info["email_verified"] = json!(!b.email_unverified);
        }
        if let Some(name) = user.name {
            info["name"] = json!(name);
        }
        web::json(StatusCode::OK, &info)
    }

    /// `POST /revoke` (RFC 7009): records and forgets the token; 200 even when unknown.
    pub(super) fn revoke(&self, auth: Option<&str>, form: &Params) -> Reply {
        let (method, creds) = client_credentials(auth, form);
        if let Some(reply) = self.reject_client(method, creds) {
            return reply;
        }
        let Some(token) = param(form, "token") else {
            return oauth_error(400, "invalid_request", "token is required");
        };
        let mut st = self.state();
        st.revocations.push(token.to_owned());
        st.access.remove(token);
        st.refresh.remove(token);
        web::json(StatusCode::OK, &json!({}))
    }
}

/// How the behaviour wants ID tokens signed.
fn signing(b: &Behaviour) -> Signing {
    match b {
        b if b.id_token_alg_none => Signing::AlgNone,
        b if b.id_token_hs256_with_public_key => Signing::Hs256WithPublicKey,
        b if b.id_token_bad_signature => Signing::BadSignature,
        b if b.id_token_unknown_kid => Signing::UnknownKid,
        _ => Signing::Good,
    }
}

/// The client authentication method used and the (id, secret) it presented.
fn client_credentials(
    auth: Option<&str>,
    form: &Params,
) -> (&'static str, Option<(String, String)>) {
    let basic = auth.and_then(|h| h.strip_prefix("Basic ")).map(|b64| {
        let text = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
        let (id, secret) = text.split_once(':')?;
        // RFC 6749 §2.3.1: both halves are form-urlencoded before base64.
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Some((decode(id)?, decode(secret)?))
    });
    let post = param(form, "client_secret").map(|secret| {
        let id = param(form, "client_id").unwrap_or("");
        (id.to_owned(), secret.to_owned())
    });
    match (basic, post) {
        (Some(c), None) => ("client_secret_basic", c),
        (None, Some(c)) => ("client_secret_post", Some(c)),
        (Some(_), Some(_)) => ("multiple", None),
        (None, None) => ("none", None),
    }
}

/// An OAuth error response (RFC 6749 §5.2).
pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    web::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// Whether `value` is a well-formed PKCE verifier or S256 challenge (RFC 7636 §4.1):
/// 43 to 128 unreserved characters.
pub(super) fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The S256 challenge of `verifier`: base64url (no padding) of its SHA-256.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(!is_pkce_value(&verifier[..42]));
        assert!(is_pkce_value(verifier));
        assert_eq!(
            s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(!is_pkce_value(&format!("{}+", &verifier[..43])));
    }
}
