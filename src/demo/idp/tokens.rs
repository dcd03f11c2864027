//! The token side of the demo provider: `POST /oauth2/v1/token` (authorization_code
//! with PKCE, refresh_token with rotation), `/userinfo` and `/revoke`; ID tokens come
//! from [`super::signer`], codes and tokens live in [`super::grants`].
//!
//! Invariant: a code works once, within 60 s, for the `redirect_uri` and PKCE challenge
//! it was issued with; a refresh token works once (each use returns a new one); both
//! need the client to authenticate (`client_secret_basic` or `client_secret_post`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::Provider;
use super::grants::{ACCESS_TOKEN_TTL, Refresh, random_token};
use crate::clock;
use crate::demo::users::{self, DemoUser};
use crate::demo::web::{self, Params, Reply, param, repeated, same_secret};

impl Provider {
    /// `POST /oauth2/v1/token`.
    pub(super) fn token(&self, auth: Option<&str>, form: &Params) -> Reply {
        if repeated(form).is_some() {
            return oauth_error(
                400,
                "invalid_request",
                "a parameter was given more than once",
            );
        }
        if let Some(reply) = self.reject_client(auth, form) {
            return reply;
        }
        match param(form, "grant_type") {
            Some("authorization_code") => self.code_grant(form),
            Some("refresh_token") => self.refresh_grant(form),
            _ => oauth_error(
                400,
                "unsupported_grant_type",
                "only authorization_code and refresh_token",
            ),
        }
    }

    /// Client authentication — exactly one of `client_secret_basic` and `_post` — and
    /// the error response when it fails.
    fn reject_client(&self, auth: Option<&str>, form: &Params) -> Option<Reply> {
        let basic = auth.and_then(|h| h.strip_prefix("Basic ")).map(|b64| {
            let text = STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())?;
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
            Some((
                param(form, "client_id").unwrap_or("").to_owned(),
                secret.to_owned(),
            ))
        });
        let creds = match (basic, post) {
            (Some(c), None) | (None, Some(c)) => c,
            (Some(_), Some(_)) => {
                return Some(oauth_error(
                    400,
                    "invalid_request",
                    "use one client authentication method, not two",
                ));
            }
            (None, None) => None,
        };
        match creds {
            Some((id, secret))
                if id == self.plan.client_id
                    && same_secret(&secret, self.plan.client_secret.expose()) =>
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

    fn code_grant(&self, form: &Params) -> Reply {
        let code = param(form, "code").unwrap_or("");
        let now = clock::now();
        let Some(grant) = self
            .grants()
            .codes
            .remove(code)
            .filter(|c| c.expires_at > now)
        else {
            return oauth_error(
                400,
                "invalid_grant",
                "unknown, expired or already used code",
            );
        };
        if param(form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return oauth_error(400, "invalid_grant", "redirect_uri does not match");
        }
        let verified = param(form, "code_verifier")
            .filter(|v| is_pkce_value(v))
            .is_some_and(|v| same_secret(&s256(v), &grant.challenge));
        if !verified {
            return oauth_error(400, "invalid_grant", "PKCE verification failed");
        }
        self.issue(&grant.login, &grant.scope, grant.nonce.as_deref())
    }

    fn refresh_grant(&self, form: &Params) -> Reply {
        let token = param(form, "refresh_token").unwrap_or("");
        // Rotation: the token is spent whether or not the answer reaches the client.
        let Some(grant) = self.grants().refresh.remove(token) else {
            return oauth_error(
                400,
                "invalid_grant",
                "unknown, revoked or already used refresh token",
            );
        };
        self.issue(&grant.login, &grant.scope, None)
    }

    /// The token response: access token, ID token, and (with `offline_access`) a new
    /// refresh token.
    fn issue(&self, login: &str, scope: &str, nonce: Option<&str>) -> Reply {
        let Some(user) = users::find(&self.users, login) else {
            return oauth_error(400, "invalid_grant", "the user no longer exists");
        };
        let now = clock::now();
        let (Some(access), Some(refresh)) = (random_token(), random_token()) else {
            return oauth_error(500, "server_error", "no randomness");
        };
        let Some(id_token) = self.signer.id_token(self.claims(user, now, nonce), &access) else {
            return oauth_error(500, "server_error", "cannot sign the ID token");
        };
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "id_token": id_token,
            "scope": scope,
        });
        let mut grants = self.grants();
        grants.forget_expired(now);
        grants
            .access
            .insert(access, (login.to_owned(), now + ACCESS_TOKEN_TTL));
        if scope.split(' ').any(|s| s == "offline_access") {
            grants.refresh.insert(
                refresh.clone(),
                Refresh {
                    login: login.to_owned(),
                    scope: scope.to_owned(),
                    issued_at: now,
                },
            );
            body["refresh_token"] = json!(refresh);
        }
        web::json(StatusCode::OK, &body)
    }

    fn claims(&self, user: &DemoUser, now: u64, nonce: Option<&str>) -> serde_json::Value {
        let mut claims = json!({
            "iss": self.plan.issuer,
            "sub": user.sub,
            "aud": [self.plan.client_id],
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL,
            "auth_time": now,
            "name": user.name,
            "preferred_username": user.email,
            "email": user.email,
            "email_verified": true,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        claims
    }

    /// `GET|POST /oauth2/v1/userinfo` with a Bearer access token.
    pub(super) fn userinfo(&self, auth: Option<&str>) -> Reply {
        let token = auth.and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        let now = clock::now();
        let login = self
            .grants()
            .access
            .get(token)
            .filter(|(_, exp)| *exp > now)
            .map(|(login, _)| login.clone());
        let Some(user) = login.and_then(|l| users::find(&self.users, &l).cloned()) else {
            let mut reply = oauth_error(401, "invalid_token", "unknown or expired access token");
            reply.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return reply;
        };
        web::json(
            StatusCode::OK,
            &json!({
                "sub": user.sub,
                "name": user.name,
                "preferred_username": user.email,
                "email": user.email,
                "email_verified": true,
            }),
        )
    }

    /// `POST /oauth2/v1/revoke` (RFC 7009): forgets the token; 200 even when unknown.
    pub(super) fn revoke(&self, auth: Option<&str>, form: &Params) -> Reply {
        if let Some(reply) = self.reject_client(auth, form) {
            return reply;
        }
        let Some(token) = param(form, "token") else {
            return oauth_error(400, "invalid_request", "token is required");
        };
        let mut grants = self.grants();
        grants.access.remove(token);
        grants.refresh.remove(token);
        web::json(StatusCode::OK, &json!({}))
    }
}

/// An OAuth error response (RFC 6749 §5.2).
pub fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    web::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// Whether `value` is a well-formed PKCE verifier or S256 challenge (RFC 7636 §4.1):
/// 43 to 128 unreserved characters.
pub fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The S256 challenge of `verifier`: base64url (no padding) of its SHA-256.
pub fn s256(verifier: &str) -> String {
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
