//! The demo provider's ID-token signer: RS256 with the fixed demo key ([`super::key`]),
//! through openidconnect's provider-side types, and the JWKS that publishes it.

use http::StatusCode;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{AccessToken, JsonWebKeyId, PrivateSigningKey as _};

use super::key::{DEMO_KEY_ID, DEMO_KEY_PEM};
use super::tokens::oauth_error;
use crate::demo::DemoError;
use crate::demo::web::{self, Reply};

/// The RS256 key that signs ID tokens.
pub struct Signer {
    key: CoreRsaPrivateSigningKey,
}

impl Signer {
    /// Loads the fixed demo key.
    pub fn load() -> Result<Self, DemoError> {
        let kid = JsonWebKeyId::new(DEMO_KEY_ID.to_owned());
        CoreRsaPrivateSigningKey::from_pem(DEMO_KEY_PEM, Some(kid))
            .map(|key| Signer { key })
            .map_err(DemoError::Key)
    }

    /// `GET /oauth2/v1/keys`.
    pub fn jwks(&self) -> Reply {
        match serde_json::to_value(CoreJsonWebKeySet::new(vec![self.key.as_verification_key()])) {
            Ok(doc) => web::json(StatusCode::OK, &doc),
            Err(_) => oauth_error(500, "server_error", "cannot encode the keys"),
        }
    }

    /// Signs `claims` (a JSON object of ID-token claims), adding `at_hash` for `access`.
    pub fn id_token(&self, claims: serde_json::Value, access: &str) -> Option<String> {
        let claims: CoreIdTokenClaims = serde_json::from_value(claims).ok()?;
        let access = AccessToken::new(access.to_owned());
        let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        let token = CoreIdToken::new(claims, &self.key, alg, Some(&access), None).ok()?;
        Some(token.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_key_loads_and_signs() {
        let signer = Signer::load().unwrap();
        let claims = serde_json::json!({"iss": "http://127.0.0.1:1", "sub": "s", "aud": ["c"], "iat": 1, "exp": 2});
        let token = signer.id_token(claims, "at").unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(signer.jwks().status(), 200);
    }
}
