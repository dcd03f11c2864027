//! Where session records live. [`SessionStore`] is the seam; [`MemoryStore`] keeps them
//! in this process (one replica), [`super::redis::RedisStore`] in Redis (several
//! replicas).
//!
//! Besides records, a store coordinates token refresh: [`SessionStore::lock_refresh`]
//! makes sure one refresh runs per session across everything that shares the store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use super::Session;
use crate::error::ProxyError;

/// A boxed future, so the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not be reached or answered nonsense. Never carries a token or a
/// session id.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

impl From<StoreError> for ProxyError {
    fn from(e: StoreError) -> Self {
        ProxyError::SessionsUnavailable(Box::new(e))
    }
}

/// A held refresh lock; give it back with [`SessionStore::unlock_refresh`].
#[derive(Debug)]
pub struct RefreshLock {
    /// The store's key for the lock (empty for an in-process store).
    pub key: String,
    /// The random value that proves this holder owns the lock.
    pub token: String,
}

/// Keeps session records by id.
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Connects and subscribes to whatever the store needs (at start). Failing is not
    /// fatal: the store keeps trying on its own.
    fn start(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// The session with `id`, if it exists and has not expired. May answer from a
    /// local cache (see the store's documentation for how stale that can be).
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Arc<Session>>>;

    /// The session with `id` read from the store itself, bypassing any local cache.
    fn get_fresh<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Arc<Session>>> {
        self.get(id)
    }

    /// Creates or replaces a session.
    fn put(&self, session: Session) -> StoreFuture<'_, ()>;

    /// Deletes a session (sign-out, permanent refresh failure) everywhere.
    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;

    /// Takes the refresh lock of session `id`: `None` when someone else (another
    /// replica) holds it. An in-process store needs no lock of its own (the caller's
    /// per-process single-flight is enough).
    fn lock_refresh<'a>(&'a self, _id: &'a str) -> StoreFuture<'a, Option<RefreshLock>> {
        Box::pin(async {
            Ok(Some(RefreshLock {
                key: String::new(),
                token: String::new(),
            }))
        })
    }

    /// Releases a refresh lock (only if it is still ours).
    fn unlock_refresh(&self, _lock: RefreshLock) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Whether the store was reachable at its last use (no I/O).
    fn available(&self) -> bool {
        true
    }

    /// Checks now that the store answers (`/readyz`).
    fn check(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// An in-process store. Expired records are dropped when read and swept on writes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: RwLock<HashMap<String, Arc<Session>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn sweep(map: &mut HashMap<String, Arc<Session>>, now: u64) {
        map.retain(|_, s| !s.is_expired(now));
    }
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Arc<Session>>> {
        let now = crate::clock::now();
        let found = match self.sessions.read() {
            Ok(map) => map.get(id).filter(|s| !s.is_expired(now)).cloned(),
            Err(_) => return Box::pin(async { Err(StoreError("lock poisoned".into())) }),
        };
        Box::pin(async move { Ok(found) })
    }

    fn put(&self, session: Session) -> StoreFuture<'_, ()> {
        let result = match self.sessions.write() {
            Ok(mut map) => {
                if map.len() % 1024 == 1023 {
                    Self::sweep(&mut map, crate::clock::now());
                }
                map.insert(session.id.clone(), Arc::new(session));
                Ok(())
            }
            Err(_) => Err(StoreError("lock poisoned".into())),
        };
        Box::pin(async move { result })
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        let result = match self.sessions.write() {
            Ok(mut map) => {
                map.remove(id);
                Ok(())
            }
            Err(_) => Err(StoreError("lock poisoned".into())),
        };
        Box::pin(async move { result })
    }
}
