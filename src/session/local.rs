//! The per-replica cache in front of a shared session store.
//!
//! A live session is read from the shared store at most once per [`LocalCache`] `fresh`
//! window while the invalidation channel is up; every write or delete on any replica
//! is announced on that channel and drops the copy here at once. Invariants:
//!
//! * an entry is served without asking the store only while the channel is up and has
//!   been up without a gap since the entry was read (a lost channel may have lost
//!   announcements, so every entry read before the gap must be read again);
//! * a read that raced with an announcement is not cached (the answer may predate it);
//! * while the store is unreachable an entry keeps working for at most `outage` after
//!   it was last read from the store, then the user has to sign in again;
//! * the cache never holds more than `capacity` sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::Session;

/// Sessions cached by their store key.
#[derive(Debug)]
pub struct LocalCache {
    map: RwLock<HashMap<String, Cached>>,
    capacity: usize,
    fresh: u64,
    outage: u64,
    /// Bumped whenever the invalidation channel is lost or comes back.
    epoch: AtomicU64,
    /// Bumped on every announcement received.
    announcements: AtomicU64,
    live: AtomicBool,
}

#[derive(Debug)]
struct Cached {
    session: Arc<Session>,
    read_at: u64,
    epoch: u64,
}

/// Taken before reading from the store; an insert with an outdated ticket is refused.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    epoch: u64,
    announcements: u64,
}

impl LocalCache {
    /// A cache of at most `capacity` sessions, trusted for `fresh` seconds while the
    /// channel is up and usable for `outage` seconds while the store is down.
    pub fn new(capacity: usize, fresh: u64, outage: u64) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity,
            fresh,
            outage,
            epoch: AtomicU64::new(0),
            announcements: AtomicU64::new(0),
            live: AtomicBool::new(false),
        }
    }

    /// The cached session when it may be served without asking the store.
    pub fn fresh(&self, key: &str, now: u64) -> Option<Arc<Session>> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let c = map.get(key)?;
        (c.epoch == epoch
            && now.saturating_sub(c.read_at) < self.fresh
            && !c.session.is_expired(now))
        .then(|| c.session.clone())
    }

    /// The cached session when the store cannot be asked (within the outage bound).
    pub fn fallback(&self, key: &str, now: u64) -> Option<Arc<Session>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let c = map.get(key)?;
        (now.saturating_sub(c.read_at) < self.outage && !c.session.is_expired(now))
            .then(|| c.session.clone())
    }

    /// Whether anything is cached under `key` (however old).
    pub fn contains(&self, key: &str) -> bool {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.contains_key(key)
    }

    /// Call before reading from the store.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            epoch: self.epoch.load(Ordering::Acquire),
            announcements: self.announcements.load(Ordering::Acquire),
        }
    }

    /// Caches what the store answered, unless an announcement or a channel change
    /// arrived since `ticket` was taken (then the answer may be outdated).
    pub fn insert(&self, key: &str, session: Arc<Session>, ticket: Ticket, now: u64) {
        let current = self.ticket();
        if current.announcements != ticket.announcements || current.epoch != ticket.epoch {
            self.forget(key);
            return;
        }
        self.put(key, session, ticket.epoch, now);
    }

    /// Caches a session this replica has just written to the store.
    pub fn insert_written(&self, key: &str, session: Arc<Session>, now: u64) {
        self.put(key, session, self.epoch.load(Ordering::Acquire), now);
    }

    fn put(&self, key: &str, session: Arc<Session>, epoch: u64, now: u64) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(key) {
            let outage = self.outage;
            map.retain(|_, c| now.saturating_sub(c.read_at) < outage && !c.session.is_expired(now));
            if map.len() >= self.capacity {
                return;
            }
        }
        map.insert(
            key.to_owned(),
            Cached {
                session,
                read_at: now,
                epoch,
            },
        );
    }

    /// Drops `key` (an announcement from another replica, or our own delete).
    pub fn remove(&self, key: &str) {
        self.announcements.fetch_add(1, Ordering::AcqRel);
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(key);
    }

    /// Drops `key` because the store no longer has it, or because what was read may be
    /// outdated. Unlike [`LocalCache::remove`] this announces nothing, so reads running
    /// at the same time may still be cached.
    pub fn forget(&self, key: &str) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(key);
    }

    /// The invalidation channel is subscribed (again): nothing read before counts as
    /// fresh any more, since announcements may have been missed in between.
    pub fn channel_up(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.live.store(true, Ordering::Release);
    }

    /// The invalidation channel is gone: nothing is fresh until it is back.
    pub fn channel_lost(&self) {
        self.live.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the invalidation channel is up.
    pub fn live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Number of cached sessions.
    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> Arc<Session> {
        let mut s = Session::hypothetical("u".into(), None, vec![], Default::default());
        s.id = id.into();
        s.expires_at = 10_000;
        Arc::new(s)
    }

    #[test]
    fn fresh_only_while_the_channel_is_up_and_within_the_window() {
        let c = LocalCache::new(10, 30, 300);
        let t = c.ticket();
        c.insert("k", session("a"), t, 100);
        assert!(c.fresh("k", 100).is_none(), "channel not up yet");
        c.channel_up();
        assert!(
            c.fresh("k", 100).is_none(),
            "read before the channel came up"
        );
        let t = c.ticket();
        c.insert("k", session("a"), t, 100);
        assert!(c.fresh("k", 129).is_some());
        assert!(c.fresh("k", 130).is_none(), "fresh window over");
        c.channel_lost();
        assert!(c.fresh("k", 100).is_none());
        assert!(c.fallback("k", 399).is_some(), "usable during an outage");
        assert!(c.fallback("k", 400).is_none(), "outage bound");
        assert!(c.fallback("k", 10_000).is_none(), "expired session");
    }

    #[test]
    fn a_read_racing_with_an_announcement_is_not_cached() {
        let c = LocalCache::new(10, 30, 300);
        c.channel_up();
        let t = c.ticket();
        c.remove("other");
        c.insert("k", session("a"), t, 100);
        assert!(!c.contains("k"));
        let t = c.ticket();
        c.insert("k", session("a"), t, 100);
        assert!(c.fresh("k", 100).is_some());
        c.remove("k");
        assert!(c.fresh("k", 100).is_none());
        assert!(
            c.fallback("k", 100).is_none(),
            "announced deletes are gone for good"
        );
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let c = LocalCache::new(2, 30, 300);
        c.channel_up();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            c.insert_written(k, session(k), 100 + i as u64);
        }
        assert_eq!(c.len(), 2);
        assert!(!c.contains("c"));
        // Once older entries pass the outage bound they make room.
        c.insert_written("c", session("c"), 500);
        assert!(c.contains("c"));
        assert_eq!(c.len(), 1);
    }
}
