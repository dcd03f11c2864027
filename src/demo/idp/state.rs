//! What a mock provider remembers — one-time codes, access and refresh tokens, its own
//! sign-in sessions — and what it records for tests (counters, the last requests), all
//! in memory; expired codes, tokens and sessions are dropped on every write.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};

use super::options::{TestUser, TokenRequestSeen};
use crate::demo::web::Params;

/// Lifetime of an authorization code.
pub(super) const CODE_TTL: u64 = 60;
/// Refresh tokens unused for this long are forgotten.
pub(super) const REFRESH_TTL: u64 = 24 * 3600;
/// How long the provider remembers who signed in (its own session).
pub(super) const SESSION_TTL: u64 = 8 * 3600;

/// Who a grant is for.
#[derive(Clone, Debug)]
pub(super) struct Account {
    /// The claims.
    pub(super) user: TestUser,
    /// A demo user picked on the sign-in page: tokens carry `preferred_username` and
    /// `auth_time` as Okta's do, and userinfo no `groups`.
    pub(super) demo: bool,
}

/// An account and the scope granted.
#[derive(Clone, Debug)]
pub(super) struct Grant {
    pub(super) account: Account,
    pub(super) scope: String,
}

/// A one-time authorization code's grant.
pub(super) struct Code {
    pub(super) grant: Grant,
    pub(super) redirect_uri: String,
    pub(super) challenge: String,
    pub(super) nonce: String,
    pub(super) expires_at: u64,
}

/// What a refresh token stands for.
pub(super) struct Refresh {
    pub(super) grant: Grant,
    pub(super) issued_at: u64,
}

/// The provider's memory.
#[derive(Default)]
pub(super) struct State {
    /// Who signs in with `SignIn::Automatic`.
    pub(super) user: TestUser,
    pub(super) codes: HashMap<String, Code>,
    /// Access token → (account, valid until).
    pub(super) access: HashMap<String, (Account, u64)>,
    pub(super) refresh: HashMap<String, Refresh>,
    /// The provider's own sign-in sessions: cookie value → (login, expiry).
    sessions: HashMap<String, (String, u64)>,
    pub(super) token_requests: usize,
    pub(super) refresh_requests: usize,
    pub(super) jwks_fetches: usize,
    pub(super) revocations: Vec<String>,
    pub(super) last_token: Option<TokenRequestSeen>,
    pub(super) last_authorize: Option<Params>,
    pub(super) last_logout: Option<Params>,
    /// Index of the key that signs now.
    pub(super) current_key: usize,
    /// `expires_in` of the next access tokens, before falling back to the option.
    pub(super) next_ttls: VecDeque<u64>,
    pub(super) last_access_token: Option<String>,
}

impl State {
    /// A fresh one-time code for this grant; None if the RNG fails.
    pub(super) fn issue_code(
        &mut self,
        grant: Grant,
        redirect_uri: &str,
        challenge: &str,
        nonce: &str,
        now: u64,
    ) -> Option<String> {
        self.forget_expired(now);
        let code = random_token()?;
        let entry = Code {
            grant,
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.to_owned(),
            nonce: nonce.to_owned(),
            expires_at: now + CODE_TTL,
        };
        self.codes.insert(code.clone(), entry);
        Some(code)
    }

    /// Starts a provider session for `login`; returns the cookie value.
    pub(super) fn start_session(&mut self, login: &str, now: u64) -> Option<String> {
        let id = random_token()?;
        self.forget_expired(now);
        self.sessions
            .insert(id.clone(), (login.to_owned(), now + SESSION_TTL));
        Some(id)
    }

    /// The login of the provider session `id`, if it is live.
    pub(super) fn session(&self, id: &str, now: u64) -> Option<String> {
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
