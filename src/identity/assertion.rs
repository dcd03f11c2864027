//! The `X-Pomerium-Jwt-Assertion` JWT: who the user is, signed for one route host.
//!
//! Claims as Pomerium sends them, so apps that verify Pomerium's assertion work
//! unchanged: `iss` = `aud` = the route host, `jti` (a random UUID), `iat`, `exp`
//! (5 minutes, never past the session's hard end), `sub` and `user` (the IdP subject),
//! `email`, `name`, `groups` (always present, `[]` when none), `sid` (the session id),
//! plus the claims named in `jwt_claims_headers`. Unlike Pomerium, a missing `email` or
//! `name` is omitted rather than sent empty. An extra claim never replaces one of the
//! standard claims above.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde_json::{Map, Value};

use super::{IdentityError, SigningKeys};
use crate::clock;
use crate::session::Session;

/// How long an assertion is valid (Pomerium: 5 minutes).
pub(crate) const LIFETIME_SECS: u64 = 300;

/// What one assertion says.
#[derive(Clone, Copy, Debug)]
pub struct Claims<'a> {
    /// The route host: both `iss` and `aud`.
    pub issuer_and_audience: &'a str,
    /// The user's session.
    pub session: &'a Session,
    /// The groups to assert (already filtered by `jwt_groups_filter`).
    pub groups: &'a [String],
    /// Extra claims named in `jwt_claims_headers`.
    pub extra: &'a [(String, Value)],
}

/// Claims the extras may not replace.
const RESERVED: &[&str] = &[
    "iss", "aud", "jti", "iat", "exp", "nbf", "sub", "user", "email", "name", "groups", "sid",
];

/// A signed assertion and its times.
pub(crate) struct Signed {
    pub token: String,
    pub iat: u64,
    pub exp: u64,
}

impl SigningKeys {
    /// Signs an assertion for `claims`, valid from now until
    /// min(now + 5 min, the session's hard end).
    pub fn sign(&self, claims: &Claims<'_>) -> Result<String, IdentityError> {
        self.sign_at(claims, clock::now()).map(|s| s.token)
    }

    pub(crate) fn sign_at(&self, claims: &Claims<'_>, now: u64) -> Result<Signed, IdentityError> {
        let session = claims.session;
        let exp = (now + LIFETIME_SECS).min(session.expires_at);
        if exp <= now {
            return Err(IdentityError::SessionEnded);
        }
        let host = claims.issuer_and_audience;
        let mut body = Map::new();
        body.insert("iss".into(), host.into());
        body.insert("aud".into(), host.into());
        body.insert("jti".into(), uuid_v4().into());
        body.insert("iat".into(), now.into());
        body.insert("exp".into(), exp.into());
        body.insert("sub".into(), session.sub.as_str().into());
        body.insert("user".into(), session.sub.as_str().into());
        if let Some(email) = &session.email {
            body.insert("email".into(), email.as_str().into());
        }
        if let Some(name) = &session.name {
            body.insert("name".into(), name.as_str().into());
        }
        body.insert("groups".into(), claims.groups.into());
        body.insert("sid".into(), session.id.as_str().into());
        for (name, value) in claims.extra {
            if !RESERVED.contains(&name.as_str()) {
                body.insert(name.clone(), value.clone());
            }
        }
        let payload = serde_json::to_vec(&Value::Object(body)).map_err(|_| IdentityError::Sign)?;

        let header = self.encoded_header();
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(Signed {
            token,
            iat: now,
            exp,
        })
    }
}

/// A random (version 4) UUID, as Pomerium's `jti`.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    // The OS RNG failing is not recoverable; a fixed jti would be wrong, so retry.
    while SystemRandom::new().fill(&mut b).is_err() {}
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h =
        |r: std::ops::Range<usize>| -> String { b[r].iter().map(|x| format!("{x:02x}")).collect() };
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

#[cfg(test)]
#[path = "assertion_tests.rs"]
mod tests;
