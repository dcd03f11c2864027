//! Stage 3, **load_session**: the session cookie, the server-side session record, the
//! store that keeps it, and [`Sessions`], which loads a request's session (refreshing
//! its tokens when due) from all of them.
//!
//! The cookie holds only a sealed, opaque session id ([`seal`]); tokens, claims and
//! groups live in the [`Session`] record inside a [`SessionStore`]. A missing, tampered,
//! truncated, foreign-key, duplicated or expired cookie simply means "no session" —
//! never an error page, never a panic.

pub mod cookies;
pub mod local;
pub mod redis;
mod refresh;
mod sessions;
pub mod store;

use serde::{Deserialize, Serialize};

pub use cookies::CookieJar;
pub use sessions::{Sessions, load_session};
pub use store::{MemoryStore, RefreshLock, SessionStore, StoreError};

use std::sync::Arc;

use crate::config::auth::Storage;
use crate::config::secret::Secret;

/// The configured store (`databroker_storage_type`), plus the Redis handle when
/// replicas share state through it (one-time markers and directory answers live there
/// too).
pub fn open_store(
    storage: &Storage,
    shared_secret: &[u8; 32],
) -> Result<(Arc<dyn SessionStore>, Option<redis::RedisStore>), StoreError> {
    Ok(match storage {
        Storage::Memory => (Arc::new(MemoryStore::new()), None),
        Storage::Redis(url) => {
            let redis = redis::RedisStore::new(url, shared_secret)?;
            (Arc::new(redis.clone()), Some(redis))
        }
    })
}

/// A signed-in user's session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Random id (base64url of 32 bytes); new on every sign-in.
    pub id: String,
    /// The IdP subject.
    pub sub: String,
    /// Email, when the provider gave one.
    pub email: Option<String>,
    /// Display name, when given.
    pub name: Option<String>,
    /// All claims from the ID token and userinfo.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Effective group ids and names (sorted): the token's groups claim plus the
    /// directory's groups.
    pub groups: Vec<String>,
    /// The groups from the ID token / userinfo claim alone (sorted).
    #[serde(default)]
    pub claim_groups: Vec<String>,
    /// Whether the directory could not confirm this user's groups (group-gated routes
    /// fail closed while true).
    #[serde(default)]
    pub groups_unverified: bool,
    /// When the directory last confirmed `groups` (unix seconds; 0 = never). Lets a
    /// replica that has not looked the user up yet trust what another one saw.
    #[serde(default)]
    pub directory_checked_at: u64,
    /// The tokens.
    pub tokens: Tokens,
    /// The issuer and audience of the ID token (a refreshed one must keep them).
    pub issuer: String,
    /// Audiences of the ID token.
    pub audience: Vec<String>,
    /// Unix time of sign-in.
    pub issued_at: u64,
    /// Unix time of the hard end (`cookie_expire` after sign-in).
    pub expires_at: u64,
}

/// OAuth tokens of a session. Never logged (the type redacts itself).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token.
    #[serde(with = "secret_serde")]
    pub access_token: Secret,
    /// Unix time the access token expires; None when the provider did not say.
    pub access_expires_at: Option<u64>,
    /// Unix time the access token was issued (for the refresh window).
    pub access_issued_at: u64,
    /// The refresh token, when the provider issued one.
    #[serde(with = "secret_serde::option")]
    pub refresh_token: Option<Secret>,
    /// The raw ID token (for `id_token_hint` at sign-out).
    #[serde(with = "secret_serde")]
    pub id_token: Secret,
}

impl Session {
    /// A session with no tokens, describing a hypothetical user (`policy explain`).
    pub fn hypothetical(
        sub: String,
        email: Option<String>,
        mut groups: Vec<String>,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        groups.sort();
        groups.dedup();
        Session {
            id: "explain".into(),
            sub,
            email,
            name: None,
            claims,
            claim_groups: groups.clone(),
            groups,
            groups_unverified: false,
            directory_checked_at: 0,
            tokens: Tokens {
                access_token: Secret::new(""),
                access_expires_at: None,
                access_issued_at: 0,
                refresh_token: None,
                id_token: Secret::new(""),
            },
            issuer: String::new(),
            audience: Vec::new(),
            issued_at: 0,
            expires_at: u64::MAX,
        }
    }

    /// Whether the hard limit has passed.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Whether the access token should be refreshed now: less than min(60 s, a quarter
    /// of its lifetime) left, and a refresh token to do it with.
    pub fn refresh_due(&self, now: u64) -> bool {
        let Some(exp) = self.tokens.access_expires_at else {
            return false;
        };
        if self.tokens.refresh_token.is_none() {
            return false;
        }
        let lifetime = exp.saturating_sub(self.tokens.access_issued_at);
        let window = (lifetime / 4).min(60);
        now + window >= exp
    }

    /// Sets the effective groups to the claim groups plus `directory` (sorted, unique).
    pub fn set_directory_groups(&mut self, directory: &[String]) {
        let mut all: Vec<String> = self
            .claim_groups
            .iter()
            .chain(directory.iter())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        self.groups = all;
    }

    /// Whether the effective groups already are the claim groups plus `directory`
    /// (both sorted), checked without allocating.
    pub fn has_directory_groups(&self, directory: &[String]) -> bool {
        let (mut a, mut b) = (
            self.claim_groups.iter().peekable(),
            directory.iter().peekable(),
        );
        let mut expected = std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        });
        let mut actual = self.groups.iter();
        loop {
            match (expected.next(), actual.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == y => {}
                _ => return false,
            }
        }
    }

    /// Whether the access token has expired (and so can no longer be used).
    pub fn access_expired(&self, now: u64) -> bool {
        self.tokens.access_expires_at.is_some_and(|exp| now >= exp)
    }
}

mod secret_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::config::secret::Secret;

    pub(super) fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        String::deserialize(de).map(Secret::new)
    }

    pub(super) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            s: &Option<Secret>,
            ser: S,
        ) -> Result<S::Ok, S::Error> {
            match s {
                Some(s) => ser.serialize_some(s.expose()),
                None => ser.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            de: D,
        ) -> Result<Option<Secret>, D::Error> {
            Option::<String>::deserialize(de).map(|o| o.map(Secret::new))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(issued: u64, exp: Option<u64>, refresh: bool) -> Session {
        Session {
            id: "x".into(),
            sub: "u".into(),
            email: None,
            name: None,
            claims: Default::default(),
            groups: vec![],
            claim_groups: vec![],
            groups_unverified: false,
            directory_checked_at: 0,
            tokens: Tokens {
                access_token: Secret::new("a"),
                access_expires_at: exp,
                access_issued_at: issued,
                refresh_token: refresh.then(|| Secret::new("r")),
                id_token: Secret::new("i"),
            },
            issuer: "i".into(),
            audience: vec![],
            issued_at: issued,
            expires_at: issued + 100_000,
        }
    }

    #[test]
    fn directory_groups_merge_with_claim_groups() {
        let mut s = session(0, None, false);
        s.claim_groups = vec!["a".into(), "c".into()];
        let dir: Vec<String> = vec!["b".into(), "c".into(), "d".into()];
        assert!(!s.has_directory_groups(&dir));
        s.set_directory_groups(&dir);
        assert_eq!(s.groups, ["a", "b", "c", "d"]);
        assert!(s.has_directory_groups(&dir));
        assert!(!s.has_directory_groups(&["b".into()]));
    }

    #[test]
    fn refresh_window_is_min_of_60s_and_a_quarter_of_the_lifetime() {
        let long = session(1000, Some(1000 + 3600), true);
        assert!(!long.refresh_due(1000 + 3600 - 61));
        assert!(long.refresh_due(1000 + 3600 - 60));
        let short = session(1000, Some(1000 + 100), true);
        assert!(!short.refresh_due(1000 + 74));
        assert!(short.refresh_due(1000 + 75));
        assert!(
            !session(1000, Some(1100), false).refresh_due(1099),
            "nothing to refresh with"
        );
        assert!(!session(1000, None, true).refresh_due(u64::MAX / 2));
    }
}
