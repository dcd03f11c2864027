//! What the demo provider remembers: one-time codes, access and refresh tokens, and its
//! own sign-in sessions — in memory, expired entries dropped on every write.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};

use super::AuthRequest;
use crate::clock;

/// Lifetime of access and ID tokens: short, so the proxy's refresh shows in the logs.
pub(super) const ACCESS_TOKEN_TTL: u64 = 300;
/// Lifetime of an authorization code.
pub(super) const CODE_TTL: u64 = 60;
/// Refresh tokens unused for this long are forgotten.
pub(super) const REFRESH_TTL: u64 = 24 * 3600;
/// How long the provider remembers who signed in (its own session).
pub(super) const SESSION_TTL: u64 = 8 * 3600;

/// A one-time authorization code's grant.
pub(super) struct Code {
    pub(super) login: String,
    pub(super) redirect_uri: String,
    pub(super) challenge: String,
    pub(super) nonce: Option<String>,
    pub(super) scope: String,
    pub(super) expires_at: u64,
}

/// What a refresh token stands for.
pub(super) struct Refresh {
    pub(super) login: String,
    pub(super) scope: String,
    pub(super) issued_at: u64,
}

/// Codes and tokens the provider has issued.
#[derive(Default)]
pub struct Grants {
    pub(super) codes: HashMap<String, Code>,
    pub(super) access: HashMap<String, (String, u64)>,
    pub(super) refresh: HashMap<String, Refresh>,
    /// The provider's own sign-in sessions: cookie value → (login, expiry).
    sessions: HashMap<String, (String, u64)>,
}

impl Grants {
    /// A fresh one-time code for `login` and this request; None if the RNG fails.
    pub(super) fn issue_code(&mut self, login: &str, request: &AuthRequest) -> Option<String> {
        let now = clock::now();
        self.forget_expired(now);
        let code = random_token()?;
        self.codes.insert(
            code.clone(),
            Code {
                login: login.to_owned(),
                redirect_uri: request.redirect_uri.clone(),
                challenge: request.challenge.clone(),
                nonce: request.nonce.clone(),
                scope: request.scope.clone(),
                expires_at: now + CODE_TTL,
            },
        );
        Some(code)
    }

    /// Starts a provider session for `login`; returns the cookie value.
    pub(super) fn start_session(&mut self, login: &str) -> Option<String> {
        let id = random_token()?;
        let now = clock::now();
        self.forget_expired(now);
        self.sessions
            .insert(id.clone(), (login.to_owned(), now + SESSION_TTL));
        Some(id)
    }

    /// The login of the provider session `id`, if it is live.
    pub(super) fn session(&self, id: &str) -> Option<String> {
        let now = clock::now();
        self.sessions
            .get(id)
            .filter(|(_, exp)| *exp > now)
            .map(|(login, _)| login.clone())
    }

    /// Ends the provider session `id`.
    pub(super) fn end_session(&mut self, id: &str) {
        self.sessions.remove(id);
    }

    /// Drops expired codes, tokens and sessions.
    pub(super) fn forget_expired(&mut self, now: u64) {
        self.sessions.retain(|_, (_, exp)| *exp > now);
        self.codes.retain(|_, c| c.expires_at > now);
        self.access.retain(|_, (_, exp)| *exp > now);
        self.refresh.retain(|_, r| r.issued_at + REFRESH_TTL > now);
    }
}

/// 32 random bytes, base64url; None if the system RNG fails.
pub(super) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}
