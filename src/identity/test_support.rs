// Compiled only under #[cfg(test)] (see mod.rs): test fixtures may unwrap.
//! Shared test helpers: a session to assert, and verification with an independent JWT
//! library (`jsonwebtoken`, RustCrypto backend) against the JWKS JSON we publish.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::SigningKeys;
use crate::config::secret::Secret;
use crate::session::{Session, Tokens};

pub(super) const SECRET_A: [u8; 32] = [7; 32];
pub(super) const SECRET_B: [u8; 32] = [8; 32];
pub(super) const HOST: &str = "app.example.com";

/// A session of user `00u1` that ends at `expires_at`.
pub(super) fn session(expires_at: u64) -> Session {
    Session {
        id: "sess-1".into(),
        sub: "00u1".into(),
        email: Some("ada@example.com".into()),
        name: Some("Ada Lovelace".into()),
        claims: serde_json::from_value(serde_json::json!({
            "email": "ada@example.com",
            "locale": "en",
            "address": { "country": "UK", "city": "London" },
            "https://example.com/roles": ["admin", "dev"],
            "level": 3,
            "verified": true,
        }))
        .unwrap(),
        groups: vec!["00g1".into(), "engineering".into()],
        claim_groups: vec![],
        groups_unverified: false,
        directory_checked_at: 0,
        tokens: Tokens {
            access_token: Secret::new("access"),
            access_expires_at: None,
            access_issued_at: 0,
            refresh_token: None,
            id_token: Secret::new("id"),
        },
        issuer: "https://idp.example.com".into(),
        audience: vec!["client".into()],
        issued_at: 0,
        expires_at,
    }
}

/// Loads keys from a PEM text.
pub(super) fn pem_keys(pem: &str) -> SigningKeys {
    SigningKeys::load(Some(&Secret::new(pem)), &SECRET_A).expect("keys load")
}

/// The published JWKS, parsed by jsonwebtoken.
pub(super) fn jwk_set(keys: &SigningKeys) -> JwkSet {
    serde_json::from_slice(&keys.jwks().json).expect("JWKS parses as a JWK set")
}

/// Verifies `token` as an upstream would: find the key by `kid` in the published JWKS,
/// check the signature with `alg`, `iss` = `aud` = `host`, and a live `exp`.
pub(super) fn verify(keys: &SigningKeys, token: &str, alg: Algorithm, host: &str) -> Value {
    try_verify(keys, token, alg, host).expect("assertion verifies")
}

pub(super) fn try_verify(
    keys: &SigningKeys,
    token: &str,
    alg: Algorithm,
    host: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.alg, alg);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.expect("header has a kid");
    let set = jwk_set(keys);
    let jwk = set.find(&kid).expect("kid is published");
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(alg);
    validation.set_audience(&[host]);
    validation.set_issuer(&[host]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|d| d.claims)
}

/// The decoded JOSE header of a token, as JSON.
pub(super) fn header_json(token: &str) -> Value {
    use base64::Engine as _;
    let first = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
