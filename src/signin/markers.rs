//! One-time markers: a sign-in `state`, a hand-off nonce or a "refresh my groups"
//! throttle is accepted once until it expires, by any replica when sessions are shared
//! through Redis, else by this process.
//!
//! In process, the markers are a set plus a queue in the order they were recorded: each
//! use first releases expired markers from the front of the queue, so recording and
//! expiry cost O(1) amortised and nothing is ever scanned under the lock. The set holds
//! at most [`MAX_MARKERS`]; when it is full of live markers a new one is **refused**
//! ([`MarkersError::Full`]) — the sign-in fails with "try again" rather than being
//! accepted without a record that would stop its replay. Every marker lives at most ten
//! minutes (the longest sign-in), so a full set drains by itself.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::clock;
use crate::error::ProxyError;
use crate::session::StoreError;
use crate::session::redis::RedisStore;

/// The most markers one process keeps.
pub(crate) const MAX_MARKERS: usize = 100_000;

/// Why a marker could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum MarkersError {
    /// The shared store (Redis) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The in-process set is full of live markers.
    #[error("too many one-time markers in use")]
    Full,
}

impl From<MarkersError> for ProxyError {
    fn from(e: MarkersError) -> Self {
        match e {
            MarkersError::Store(e) => ProxyError::from(e),
            MarkersError::Full => super::SignInError::Busy.into(),
        }
    }
}

/// Markers used until their expiry.
#[derive(Debug)]
pub struct Markers {
    local: Mutex<Local>,
    shared: Option<RedisStore>,
}

/// The in-process markers: key → expiry, and the keys in the order they were recorded.
#[derive(Debug)]
struct Local {
    used: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
    limit: usize,
}

impl Local {
    fn use_once(&mut self, key: &str, until: u64, now: u64) -> Result<bool, MarkersError> {
        // Release expired markers at the front (each is queued once and released once).
        while let Some((exp, _)) = self.order.front()
            && *exp <= now
        {
            if let Some((exp, k)) = self.order.pop_front()
                && self.used.get(&k) == Some(&exp)
            {
                self.used.remove(&k);
            }
        }
        if let Some(exp) = self.used.get(key)
            && *exp > now
        {
            return Ok(false);
        }
        if self.order.len() >= self.limit {
            return Err(MarkersError::Full);
        }
        self.used.insert(key.to_owned(), until);
        self.order.push_back((until, key.to_owned()));
        Ok(true)
    }
}

impl Markers {
    /// Markers in this process, or in `shared` when replicas share Redis.
    pub fn new(shared: Option<RedisStore>) -> Self {
        Self::with_limit(shared, MAX_MARKERS)
    }

    fn with_limit(shared: Option<RedisStore>, limit: usize) -> Self {
        Self {
            local: Mutex::new(Local {
                used: HashMap::new(),
                order: VecDeque::new(),
                limit,
            }),
            shared,
        }
    }

    /// Records `key` as used until `until`; false if it was used already.
    pub async fn use_once(&self, key: &str, until: u64) -> Result<bool, MarkersError> {
        let now = clock::now();
        if let Some(redis) = &self.shared {
            return Ok(redis.claim_once(key, until.saturating_sub(now)).await?);
        }
        let Ok(mut local) = self.local.lock() else {
            return Err(MarkersError::Full);
        };
        local.use_once(key, until, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn once_until_expiry_then_reusable() {
        let m = Markers::new(None);
        let now = clock::now();
        assert!(m.use_once("a", now + 10).await.unwrap());
        assert!(!m.use_once("a", now + 10).await.unwrap());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(m.use_once("a", clock::now() + 10).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_set_refuses_then_drains_by_itself() {
        let m = Markers::with_limit(None, 100);
        let now = clock::now();
        for i in 0..100 {
            assert!(m.use_once(&format!("k{i}"), now + 60).await.unwrap());
        }
        assert!(matches!(
            m.use_once("one-more", now + 60).await,
            Err(MarkersError::Full)
        ));
        // A used marker is still recognised as used while full.
        assert!(!m.use_once("k7", now + 60).await.unwrap());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(m.use_once("one-more", clock::now() + 60).await.unwrap());
        let local = m.local.lock().unwrap();
        assert_eq!(local.used.len(), 1, "expired markers were released");
        assert_eq!(local.order.len(), 1);
    }

    #[test]
    fn many_markers_stay_bounded_and_cheap() {
        // 10× the bound, each released once: the queue never grows past the limit.
        let mut local = Local {
            used: HashMap::new(),
            order: VecDeque::new(),
            limit: 1000,
        };
        let mut refused = 0;
        for i in 0..10_000u64 {
            let now = i / 10; // ten markers a second, each living 50 s
            match local.use_once(&format!("k{i}"), now + 50, now) {
                Ok(fresh) => assert!(fresh),
                Err(MarkersError::Full) => refused += 1,
                Err(e) => panic!("{e}"),
            }
            assert!(local.order.len() <= 1000 && local.used.len() <= 1000);
        }
        assert_eq!(refused, 0, "500 live at a time fit");
    }
}
