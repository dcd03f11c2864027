//! Directory answers shared by every replica through Redis.
//!
//! [`SharedGroups`] wraps the real [`GroupSource`] (Okta): a lookup first reads the
//! sealed answer another replica stored less than `interval` ago, and only asks the
//! directory when there is none; every directory answer is stored for the others
//! (sealed, under an HMAC of the user id, expiring after `max_staleness`). A forced
//! lookup ("refresh my groups") always asks the directory. Redis being down only
//! means asking the directory directly.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{DirectoryError, Group, GroupSource, GroupsFuture};
use crate::clock;
use crate::session::redis::RedisStore;

/// A [`GroupSource`] with a Redis-shared cache in front.
#[derive(Debug)]
pub struct SharedGroups {
    inner: Arc<dyn GroupSource>,
    store: RedisStore,
    /// Seconds a shared answer counts as current.
    interval: u64,
    /// Seconds a shared answer is kept.
    keep: u64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    fetched_at: u64,
    groups: Vec<Group>,
}

impl SharedGroups {
    /// Shares `inner`'s answers through `store`; answers younger than `interval`
    /// seconds are reused, kept for `keep` seconds.
    pub fn new(inner: Arc<dyn GroupSource>, store: RedisStore, interval: u64, keep: u64) -> Self {
        Self {
            inner,
            store,
            interval,
            keep,
        }
    }

    async fn shared(&self, key: &str) -> Option<Vec<Group>> {
        let bytes = self.store.get_sealed(key).await.ok()??;
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        (clock::now().saturating_sub(stored.fetched_at) < self.interval).then_some(stored.groups)
    }

    async fn ask(&self, key: &str, user_id: &str) -> Result<Vec<Group>, DirectoryError> {
        let groups = self.inner.user_groups(user_id).await?;
        let stored = Stored {
            fetched_at: clock::now(),
            groups,
        };
        if let Ok(bytes) = serde_json::to_vec(&stored) {
            // Best effort: the others will ask the directory themselves.
            let _ = self.store.put_sealed(key, &bytes, self.keep).await;
        }
        Ok(stored.groups)
    }
}

impl GroupSource for SharedGroups {
    fn user_groups<'a>(&'a self, user_id: &'a str) -> GroupsFuture<'a> {
        Box::pin(async move {
            let key = self.store.key("groups", user_id);
            match self.shared(&key).await {
                Some(groups) => Ok(groups),
                None => self.ask(&key, user_id).await,
            }
        })
    }

    fn user_groups_now<'a>(&'a self, user_id: &'a str) -> GroupsFuture<'a> {
        Box::pin(async move {
            let key = self.store.key("groups", user_id);
            self.ask(&key, user_id).await
        })
    }
}
