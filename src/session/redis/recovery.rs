//! Staying correct through a Redis outage: whether Redis answered, the background
//! probe that reconnects and resubscribes, and the write-back of updates that could
//! not be written while it was away.

use std::sync::Arc;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::{CHANNEL, OUTAGE_SECS, PENDING_CAPACITY, RedisStore, TOMBSTONE, store_error};
use crate::clock;
use crate::session::Session;
use crate::session::store::StoreError;

impl RedisStore {
    /// Records whether Redis answered; after an outage, resubscribes and writes back
    /// what could not be written.
    pub(super) fn track<T>(&self, result: redis::RedisResult<T>) -> Result<T, StoreError> {
        match result {
            Ok(v) => {
                if !self.inner.up.swap(true, Ordering::AcqRel) {
                    tracing::info!("session store (Redis) reachable");
                }
                if !self.inner.cache.live() || self.has_pending() {
                    self.spawn_probe();
                }
                Ok(v)
            }
            Err(e) => {
                if self.inner.up.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "session store (Redis) unreachable; cached sessions keep working for {OUTAGE_SECS} s");
                }
                Err(store_error(&e))
            }
        }
    }

    pub(super) fn has_pending(&self) -> bool {
        !self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// In the background (at most one at a time, at most once a second): checks the
    /// connection, subscribes, writes back pending updates.
    pub(super) fn spawn_probe(&self) {
        let now = clock::now();
        if self.inner.last_probe.load(Ordering::Acquire) == now
            || self.inner.probing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.inner.last_probe.store(now, Ordering::Release);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.probing.store(false, Ordering::Release);
            return;
        };
        let store = self.clone();
        runtime.spawn(async move {
            let _ = store.recover().await;
            store.inner.probing.store(false, Ordering::Release);
        });
    }

    pub(super) async fn recover(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        if !self.inner.cache.live() {
            // The confirmation arrives as a push and marks the channel up.
            let mut conn = self.connection().await?;
            self.track(conn.subscribe(CHANNEL).await)?;
        }
        self.write_back().await
    }

    /// Writes the updates kept during an outage, unless Redis now has a newer record
    /// or a sign-out tombstone.
    pub(super) async fn write_back(&self) -> Result<(), StoreError> {
        let pending: Vec<(String, Arc<Session>)> = {
            let mut p = self
                .inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            p.drain().collect()
        };
        for (key, session) in pending {
            let current: Option<String> = match self.query(redis::cmd("GET").arg(&key)).await {
                Ok(v) => v,
                Err(e) => {
                    self.keep_pending(key, session);
                    return Err(e);
                }
            };
            let newer = current.as_deref().is_some_and(|v| {
                v == TOMBSTONE
                    || self.decode(&key, v).is_some_and(|s| {
                        s.tokens.access_issued_at >= session.tokens.access_issued_at
                    })
            });
            if !newer && let Err(e) = self.write(&key, &session).await {
                self.keep_pending(key, session);
                return Err(e);
            }
        }
        Ok(())
    }

    pub(super) fn keep_pending(&self, key: String, session: Arc<Session>) {
        let mut p = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if p.len() < PENDING_CAPACITY || p.contains_key(&key) {
            p.insert(key, session);
        }
    }
}
