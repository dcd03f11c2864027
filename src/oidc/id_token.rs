//! ID token validation, OIDC Core §3.1.3.7 in full.
//!
//! openidconnect checks the signature (with an algorithm allow-list: asymmetric only —
//! never `none`, never HMAC with a public key), the exact issuer, that `aud` contains the
//! client id with no untrusted extra audience, `exp` and the nonce. This module adds what
//! it leaves out: 60 s of clock skew on `exp`, `iat` and `nbf`, and the `azp` rules.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use openidconnect::core::{CoreIdToken, CoreJwsSigningAlgorithm};
use openidconnect::{ClaimsVerificationError, Nonce, SignatureVerificationError};
use serde_json::{Map, Value};

use super::provider::Client;

/// Allowed clock skew between us and the provider.
pub(crate) const SKEW_SECS: u64 = 60;

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The token names a key we do not have (the caller may refetch the keys once).
    #[error("the ID token is signed with an unknown key")]
    UnknownKey,
    /// Any other failed check.
    #[error("invalid ID token: {0}")]
    Invalid(String),
}

/// The algorithms we accept: asymmetric signatures only.
fn allowed_algs() -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm::*;
    vec![
        RsaSsaPkcs1V15Sha256,
        RsaSsaPkcs1V15Sha384,
        RsaSsaPkcs1V15Sha512,
        RsaSsaPssSha256,
        RsaSsaPssSha384,
        RsaSsaPssSha512,
        EcdsaP256Sha256,
        EcdsaP384Sha384,
        EdDsa,
    ]
}

fn at(secs: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0).unwrap_or_default()
}

/// Verifies `token` and returns all of its claims. `nonce`: the one sent in the
/// authorization request (None for a refreshed token, which carries none).
pub(crate) fn verify(
    client: &Client,
    token: &CoreIdToken,
    nonce: Option<&Nonce>,
    client_id: &str,
    now: u64,
) -> Result<Map<String, Value>, IdTokenError> {
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(allowed_algs())
        // `exp` may be up to SKEW_SECS in the past.
        .set_time_fn(move || at(now.saturating_sub(SKEW_SECS)))
        .set_issue_time_verifier_fn(move |iat| {
            if iat > at(now + SKEW_SECS) {
                Err(format!("issued in the future ({iat})"))
            } else {
                Ok(())
            }
        });
    let result = match nonce {
        Some(n) => token.claims(&verifier, n).map(|_| ()),
        None => token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .map(|_| ()),
    };
    match result {
        Ok(()) => {}
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => {
            return Err(IdTokenError::UnknownKey);
        }
        Err(e) => return Err(IdTokenError::Invalid(e.to_string())),
    }
    let claims = payload(token)?;
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64)
        && nbf > now + SKEW_SECS
    {
        return Err(IdTokenError::Invalid("not valid yet (nbf)".into()));
    }
    check_azp(&claims, client_id)?;
    Ok(claims)
}

/// A claim that is a string or a list of strings, as a list (`aud`, `groups`).
pub(crate) fn string_list(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The token's payload as JSON (after verification, for claims openidconnect does not model).
fn payload(token: &CoreIdToken) -> Result<Map<String, Value>, IdTokenError> {
    let compact = token.to_string();
    let part = compact
        .split('.')
        .nth(1)
        .ok_or_else(|| IdTokenError::Invalid("not a JWS".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdTokenError::Invalid("payload is not base64url".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| IdTokenError::Invalid("payload is not a JSON object".into()))
}

/// OIDC Core §3.1.3.7 items 4–5: with several audiences `azp` must be present; when
/// present it must be our client id.
fn check_azp(claims: &Map<String, Value>, client_id: &str) -> Result<(), IdTokenError> {
    let audiences = match claims.get("aud") {
        Some(Value::Array(a)) => a.len(),
        Some(_) => 1,
        None => 0,
    };
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != client_id => Err(IdTokenError::Invalid(format!(
            "azp {azp:?} is not this client"
        ))),
        None if audiences > 1 => Err(IdTokenError::Invalid("several audiences but no azp".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn azp_rules() {
        assert!(check_azp(&claims(json!({"aud": "me"})), "me").is_ok());
        assert!(check_azp(&claims(json!({"aud": ["me", "other"], "azp": "me"})), "me").is_ok());
        assert!(check_azp(&claims(json!({"aud": ["me", "other"]})), "me").is_err());
        assert!(check_azp(&claims(json!({"aud": "me", "azp": "other"})), "me").is_err());
    }
}
