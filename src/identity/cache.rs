//! Reuse of fresh assertions, so signing stays off the hot path.
//!
//! An assertion is keyed by a SHA-256 fingerprint of everything it says apart from its
//! times and `jti` (signing key, session id, route host, subject, email, name, groups,
//! extra claims, session end), so a changed group list or a new key gives a new one at
//! once. It is reused until `min(60 s, half its lifetime)` before its `exp`, so an
//! upstream always receives an assertion with at least that much life left.
//!
//! The map is bounded: at capacity the oldest entry goes (entries whose reuse window
//! has passed go first, as they are also the oldest). The lock is a plain mutex held
//! only for a map lookup or insert; signing happens outside it, and nothing awaits.
//! Two requests missing at once both sign; the later insert wins, and both assertions
//! are valid.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use ring::digest::{Context, SHA256};

use super::{Claims, IdentityError, SigningKeys};
use crate::clock;

/// Renew this long before `exp` at most (seconds).
const RENEW_BEFORE_SECS: u64 = 60;

type Fingerprint = [u8; 32];

/// A bounded cache of signed assertions.
pub(crate) struct AssertionCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Fingerprint, Entry>,
    /// Insertion order, with the generation that was inserted; a key replaced later
    /// leaves a stale pair here, skipped on eviction and compacted now and then.
    order: VecDeque<(Fingerprint, u64)>,
    generation: u64,
}

struct Entry {
    token: Arc<str>,
    renew_at: u64,
    generation: u64,
}

/// Assertions are credentials: `Debug` shows only the sizes.
impl std::fmt::Debug for AssertionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl AssertionCache {
    /// A cache of at most `capacity` assertions (0 turns caching off).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A fresh assertion for `claims`: the cached one while it has enough life left,
    /// else a newly signed one.
    pub(crate) fn get_or_sign(
        &self,
        keys: &SigningKeys,
        claims: &Claims<'_>,
    ) -> Result<Arc<str>, IdentityError> {
        let now = clock::now();
        let key = fingerprint(keys, claims);
        if let Some(token) = self.lookup(&key, now) {
            return Ok(token);
        }
        let signed = keys.sign_at(claims, now)?;
        let token: Arc<str> = Arc::from(signed.token);
        let margin = RENEW_BEFORE_SECS.min((signed.exp - signed.iat) / 2);
        self.insert(key, Arc::clone(&token), signed.exp - margin, now);
        Ok(token)
    }

    /// How many assertions are cached.
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the cache is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a consistent map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, key: &Fingerprint, now: u64) -> Option<Arc<str>> {
        let inner = self.lock();
        let entry = inner.map.get(key)?;
        (now < entry.renew_at).then(|| Arc::clone(&entry.token))
    }

    fn insert(&self, key: Fingerprint, token: Arc<str>, renew_at: u64, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        // Drop stale order pairs and entries past their reuse window from the front.
        while let Some(&(front, generation)) = inner.order.front() {
            match inner.map.get(&front) {
                Some(e) if e.generation == generation && e.renew_at > now => break,
                Some(e) if e.generation == generation => {
                    inner.map.remove(&front);
                }
                _ => {}
            }
            inner.order.pop_front();
        }
        // At capacity: evict the oldest.
        while inner.map.len() >= self.capacity && !inner.map.contains_key(&key) {
            let Some((oldest, generation)) = inner.order.pop_front() else {
                break;
            };
            if inner
                .map
                .get(&oldest)
                .is_some_and(|e| e.generation == generation)
            {
                inner.map.remove(&oldest);
            }
        }
        inner.generation += 1;
        let generation = inner.generation;
        inner.map.insert(
            key,
            Entry {
                token,
                renew_at,
                generation,
            },
        );
        inner.order.push_back((key, generation));
        if inner.order.len() > 2 * self.capacity + 16 {
            let map = &inner.map;
            inner
                .order
                .retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }
}

/// What the assertion says, apart from its times and `jti`, hashed.
fn fingerprint(keys: &SigningKeys, claims: &Claims<'_>) -> Fingerprint {
    let mut ctx = Context::new(&SHA256);
    let mut field = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    let session = claims.session;
    field(keys.kid().as_bytes());
    field(claims.issuer_and_audience.as_bytes());
    field(session.id.as_bytes());
    field(session.sub.as_bytes());
    field(&session.expires_at.to_be_bytes());
    for optional in [&session.email, &session.name] {
        match optional {
            Some(v) => {
                field(b"+");
                field(v.as_bytes());
            }
            None => field(b"-"),
        }
    }
    field(&(claims.groups.len() as u64).to_be_bytes());
    for group in claims.groups {
        field(group.as_bytes());
    }
    field(&(claims.extra.len() as u64).to_be_bytes());
    let mut json = Vec::new();
    for (name, value) in claims.extra {
        field(name.as_bytes());
        // serde_json writes a value deterministically (maps are sorted); writing to a
        // Vec cannot fail.
        json.clear();
        let _ = serde_json::to_writer(&mut json, value);
        field(&json);
    }
    let digest = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
