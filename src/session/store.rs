//! Where session records live. [`SessionStore`] is the seam; [`MemoryStore`] keeps them
//! in this process (one replica).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use super::Session;

/// A boxed future, so the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not be reached or answered nonsense.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

/// Keeps session records by id.
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// The session with `id`, if it exists and has not expired.
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Arc<Session>>>;
    /// Creates or replaces a session.
    fn put(&self, session: Session) -> StoreFuture<'_, ()>;
    /// Deletes a session (sign-out, permanent refresh failure).
    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
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
        let now = super::clock::now();
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
                    Self::sweep(&mut map, super::clock::now());
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
