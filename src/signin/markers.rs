//! One-time markers: a sign-in `state` or a hand-off nonce is accepted once, by any
//! replica when sessions are shared through Redis, else by this process.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock;
use crate::session::StoreError;
use crate::session::redis::RedisStore;

/// Markers used until their expiry.
#[derive(Debug)]
pub struct Markers {
    local: Mutex<HashMap<String, u64>>,
    shared: Option<RedisStore>,
}

impl Markers {
    /// Markers in this process, or in `shared` when replicas share Redis.
    pub fn new(shared: Option<RedisStore>) -> Self {
        Self {
            local: Mutex::new(HashMap::new()),
            shared,
        }
    }

    /// Records `key` as used until `until`; false if it was used already.
    pub async fn use_once(&self, key: &str, until: u64) -> Result<bool, StoreError> {
        let now = clock::now();
        if let Some(redis) = &self.shared {
            return redis.claim_once(key, until.saturating_sub(now)).await;
        }
        let Ok(mut used) = self.local.lock() else {
            return Ok(false);
        };
        if used.len() > 10_000 {
            used.retain(|_, exp| *exp > now);
        }
        Ok(match used.get(key) {
            Some(exp) if *exp > now => false,
            _ => {
                used.insert(key.to_owned(), until);
                true
            }
        })
    }
}
