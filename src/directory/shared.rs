//! Directory answers shared by every replica through the session store's Redis.
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

/// A future of a [`SharedStore`].
pub(crate) type SharedFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where replicas share directory answers: sealed values under keyed names, each with
/// a time to live. The session store's Redis implements it; failures read as "no
/// shared answer" (best effort: every replica can still ask the directory).
pub(crate) trait SharedStore: Send + Sync + std::fmt::Debug {
    /// The store's name for `id` of `kind` (never the id itself).
    fn key(&self, kind: &str, id: &str) -> String;
    /// The value under `key`, opened, if any.
    fn get_sealed<'a>(&'a self, key: &'a str) -> SharedFuture<'a, Option<Vec<u8>>>;
    /// Seals and stores `value` under `key` for `ttl` seconds.
    fn put_sealed<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: u64) -> SharedFuture<'a, ()>;
}

/// A [`GroupSource`] with a Redis-shared cache in front.
#[derive(Debug)]
pub(crate) struct SharedGroups {
    inner: Arc<dyn GroupSource>,
    store: Arc<dyn SharedStore>,
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
    pub(crate) fn new(
        inner: Arc<dyn GroupSource>,
        store: Arc<dyn SharedStore>,
        interval: u64,
        keep: u64,
    ) -> Self {
        Self {
            inner,
            store,
            interval,
            keep,
        }
    }

    async fn shared(&self, key: &str) -> Option<Vec<Group>> {
        let bytes = self.store.get_sealed(key).await?;
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
            self.store.put_sealed(key, &bytes, self.keep).await;
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
