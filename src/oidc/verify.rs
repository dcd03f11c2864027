//! ID-token verification against the provider's current keys, refetching them once
//! when a token names a key id we do not know (key rotation).

use openidconnect::Nonce;
use openidconnect::core::CoreIdToken;

use super::Provider;
use super::id_token::{self, IdTokenError};
use crate::clock;

/// Why an ID token could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Discovery has not succeeded (yet).
    #[error("the identity provider is not reachable")]
    Unavailable,
    /// The token failed a check.
    #[error(transparent)]
    Token(#[from] IdTokenError),
}

impl Provider {
    /// Verifies an ID token (signature, `iss`, `aud`, `azp`, times, `nonce` when given)
    /// and returns its claims.
    pub async fn verify_id_token(
        &self,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        let mut refetched = false;
        loop {
            let discovered = self.discovered().ok_or(VerifyError::Unavailable)?;
            let client = self.client(&discovered);
            match id_token::verify(&client, token, nonce, &self.client_id, clock::now()) {
                Ok(claims) => return Ok(claims),
                Err(IdTokenError::UnknownKey) if !refetched && self.refresh_keys().await => {
                    refetched = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
