//! Sessions in Redis, shared by every replica (`databroker_storage_type: redis`).
//!
//! * **Sealed values.** Every value is AES-256-GCM sealed with a key derived from
//!   `shared_secret`, the Redis key bound as associated data: Redis never sees a token,
//!   an email or a group name, and a value copied to another key does not open.
//! * **No personal data in keys.** Keys are `portcullis:<kind>:<HMAC(id)>`, with the
//!   HMAC keyed from `shared_secret` too; they expire with the session.
//! * **Local cache.** Live sessions are served from a per-replica [`LocalCache`]; every
//!   write and delete is announced on the `portcullis:announce` channel (RESP3 push on
//!   the same connection) and drops the other replicas' copies at once. While the
//!   channel is down nothing is served from the cache without asking Redis.
//! * **Outages.** Commands time out after 500 ms; the connection manager reconnects by
//!   itself and resubscribes. While Redis is unreachable, sessions read in the last
//!   [`OUTAGE_SECS`] keep working; an update this replica could not write (a refresh
//!   rotating tokens) is kept and written back when Redis answers again, unless the
//!   session was signed out or refreshed elsewhere in between. Sign-out leaves a
//!   tombstone until the session's own expiry so nothing can bring it back.
//! * **Refresh lock.** `SET NX PX` with a random token, released only by its holder.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::OnceCell;

mod query;
mod recovery;

use query::Query;

use crate::clock;
use crate::config::secret::Secret;
use crate::seal::{Sealer, derive, random_token};
use crate::session::Session;
use crate::session::local::LocalCache;
use crate::session::store::{RefreshLock, SessionStore, StoreError, StoreFuture};

/// The channel every replica announces writes and deletes on.
const CHANNEL: &str = "portcullis:announce";
/// A deleted session's value until its key expires.
const TOMBSTONE: &str = "-";
/// How long a cached session is served without asking Redis (announcements drop it
/// sooner).
pub const FRESH_SECS: u64 = 60;
/// How long a cached session keeps working while Redis cannot be reached.
pub const OUTAGE_SECS: u64 = 300;
/// At most this many sessions in the local cache.
pub const CACHE_CAPACITY: usize = 100_000;
/// At most this many unwritten updates kept during an outage.
const PENDING_CAPACITY: usize = 10_000;
/// How long one refresh may hold the cross-replica lock.
const LOCK_MILLIS: u64 = 30_000;
/// Deletes the lock only if it still holds our token.
const RELEASE_LOCK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// The Redis session store.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    sealer: Sealer,
    keys: ring::hmac::Key,
    /// Our own announcements carry this, so we skip them.
    replica: String,
    cache: LocalCache,
    up: AtomicBool,
    probing: AtomicBool,
    last_probe: AtomicU64,
    pending: Mutex<HashMap<String, Arc<Session>>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("up", &self.inner.up.load(Ordering::Relaxed))
            .field("cached", &self.inner.cache.len())
            .finish_non_exhaustive()
    }
}

fn store_error(e: &redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

impl RedisStore {
    /// A store on `url` (`redis://` or `rediss://`); connects on [`SessionStore::start`]
    /// or at first use. Keys and seals derive from `shared_secret`.
    pub fn new(url: &Secret, shared_secret: &[u8; 32]) -> Result<Self, StoreError> {
        let info = url
            .expose()
            .into_connection_info()
            .map_err(|_| StoreError("not a usable redis:// or rediss:// URL".into()))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(|e| store_error(&e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn: OnceCell::new(),
                sealer: Sealer::new(shared_secret, "redis-values"),
                keys: ring::hmac::Key::new(
                    ring::hmac::HMAC_SHA256,
                    &derive(shared_secret, "redis-keys"),
                ),
                replica: random_token(12),
                cache: LocalCache::new(CACHE_CAPACITY, FRESH_SECS, OUTAGE_SECS),
                up: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                last_probe: AtomicU64::new(0),
                pending: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The Redis key of `id` under `kind`: no personal data, same on every replica.
    pub fn key(&self, kind: &str, id: &str) -> String {
        let tag = ring::hmac::sign(&self.inner.keys, format!("{kind}\0{id}").as_bytes());
        format!("portcullis:{kind}:{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Reads and opens the value at `key` (None when missing, a tombstone, or sealed
    /// with another secret).
    pub async fn get_sealed(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let raw: Option<String> = self.query(redis::cmd("GET").arg(key)).await?;
        Ok(raw.and_then(|v| self.open(key, &v)))
    }

    /// Seals `value` and stores it at `key` for `ttl` seconds.
    pub async fn put_sealed(&self, key: &str, value: &[u8], ttl: u64) -> Result<(), StoreError> {
        let sealed = self.inner.sealer.seal(key, value);
        self.query(
            redis::cmd("SET")
                .arg(key)
                .arg(sealed)
                .arg("EX")
                .arg(ttl.max(1)),
        )
        .await
    }

    /// Marks `marker` (a sign-in state, a hand-off nonce) used for `ttl` seconds: true
    /// the first time on any replica, false afterwards.
    pub async fn claim_once(&self, marker: &str, ttl: u64) -> Result<bool, StoreError> {
        let key = self.key("once", marker);
        let set: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg("1")
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.max(1)),
            )
            .await?;
        Ok(set.is_some())
    }

    fn open(&self, key: &str, value: &str) -> Option<Vec<u8>> {
        if value == TOMBSTONE {
            return None;
        }
        let opened = self.inner.sealer.open(key, value);
        if opened.is_none() {
            tracing::warn!(
                "a value in Redis could not be opened: do all replicas share the same shared_secret?"
            );
        }
        opened
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let weak = Arc::downgrade(&self.inner);
        let conn = self
            .inner
            .conn
            .get_or_try_init(|| async move {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1))
                    .set_push_sender(move |info: PushInfo| {
                        if let Some(inner) = weak.upgrade() {
                            inner.on_push(info);
                        }
                        Ok::<(), ()>(())
                    })
                    .set_automatic_resubscription();
                let client = self.inner.client.clone();
                ConnectionManager::new_with_config(client, config).await
            })
            .await
            .map_err(|e| store_error(&e))?;
        Ok(conn.clone())
    }

    /// Runs one command (or a MULTI pipeline). A command that meets a connection that
    /// dropped is sent once more: the connection manager reconnects on that error, so
    /// the first command after a Redis restart would otherwise fail for nothing.
    async fn query<T: redis::FromRedisValue + Send>(
        &self,
        command: &impl Query,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection().await?;
        let mut result = command.send(&mut conn).await;
        if result
            .as_ref()
            .is_err_and(redis::RedisError::is_connection_dropped)
        {
            result = command.send(&mut conn).await;
        }
        self.track(result)
    }

    fn decode(&self, key: &str, value: &str) -> Option<Session> {
        let plain = self.open(key, value)?;
        serde_json::from_slice(&plain).ok()
    }

    async fn read(&self, key: &str, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        let plain = self.get_sealed(key).await?;
        let now = clock::now();
        Ok(plain
            .and_then(|p| serde_json::from_slice::<Session>(&p).ok())
            .filter(|s| s.id == id && !s.is_expired(now))
            .map(Arc::new))
    }

    /// SET with the session's remaining lifetime, and the announcement, atomically.
    async fn write(&self, key: &str, session: &Session) -> Result<(), StoreError> {
        let json = serde_json::to_vec(session)
            .map_err(|_| StoreError("cannot encode the session".into()))?;
        let sealed = self.inner.sealer.seal(key, &json);
        let ttl = session.expires_at.saturating_sub(clock::now()).max(1);
        self.query(
            redis::pipe()
                .atomic()
                .set_ex(key, sealed, ttl)
                .ignore()
                .publish(CHANNEL, self.announcement(key))
                .ignore(),
        )
        .await
    }

    fn announcement(&self, key: &str) -> String {
        format!("{} {key}", self.inner.replica)
    }
}

impl Inner {
    /// Announcements from other replicas drop our copy; the channel's state decides
    /// whether the cache may be trusted.
    fn on_push(&self, info: PushInfo) {
        match info.kind {
            PushKind::Message => {
                let text = info.data.get(1).and_then(|v| match v {
                    Value::BulkString(b) => std::str::from_utf8(b).ok(),
                    Value::SimpleString(s) => Some(s.as_str()),
                    _ => None,
                });
                if let Some((replica, key)) = text.and_then(|t| t.split_once(' '))
                    && replica != self.replica
                {
                    self.cache.remove(key);
                }
            }
            PushKind::Subscribe => {
                self.cache.channel_up();
                tracing::info!("subscribed to session announcements");
            }
            PushKind::Disconnection => {
                self.cache.channel_lost();
                self.up.store(false, Ordering::Release);
            }
            _ => {}
        }
    }
}

impl SessionStore for RedisStore {
    fn start(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let result = self.recover().await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, "session store (Redis) not reachable at start; retrying on use");
            }
            result
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Arc<Session>>> {
        Box::pin(async move {
            let key = self.key("session", id);
            let now = clock::now();
            let cache = &self.inner.cache;
            if let Some(s) = cache.fresh(&key, now) {
                return Ok(Some(s));
            }
            if !self.inner.up.load(Ordering::Acquire)
                && let Some(s) = cache.fallback(&key, now)
            {
                self.spawn_probe();
                return Ok(Some(s));
            }
            let ticket = cache.ticket();
            match self.read(&key, id).await {
                Ok(Some(s)) => {
                    cache.insert(&key, s.clone(), ticket, now);
                    Ok(Some(s))
                }
                Ok(None) => {
                    cache.forget(&key);
                    Ok(None)
                }
                Err(e) => cache.fallback(&key, now).map(Some).ok_or(e),
            }
        })
    }

    fn get_fresh<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Arc<Session>>> {
        Box::pin(async move {
            let key = self.key("session", id);
            let ticket = self.inner.cache.ticket();
            let found = self.read(&key, id).await?;
            if let Some(s) = &found {
                self.inner
                    .cache
                    .insert(&key, s.clone(), ticket, clock::now());
            }
            Ok(found)
        })
    }

    fn put(&self, session: Session) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let key = self.key("session", &session.id);
            let known = self.inner.cache.contains(&key);
            let session = Arc::new(session);
            let result = self.write(&key, &session).await;
            // What this replica wrote (or tried to) is what it serves from now on.
            self.inner
                .cache
                .insert_written(&key, session.clone(), clock::now());
            if result.is_err() && known {
                // An update of a live session (rotated tokens) must not be lost.
                self.keep_pending(key, session);
            }
            result
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.key("session", id);
            let () = self
                .query(
                    redis::pipe()
                        .atomic()
                        .cmd("SET")
                        .arg(&key)
                        .arg(TOMBSTONE)
                        .arg("XX")
                        .arg("KEEPTTL")
                        .ignore()
                        .publish(CHANNEL, self.announcement(&key))
                        .ignore(),
                )
                .await?;
            self.inner.cache.remove(&key);
            self.inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            Ok(())
        })
    }

    fn lock_refresh<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<RefreshLock>> {
        Box::pin(async move {
            let key = self.key("lock", id);
            let token = random_token(16);
            let set: Option<String> = self
                .query(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(LOCK_MILLIS),
                )
                .await?;
            Ok(set.map(|_| RefreshLock { key, token }))
        })
    }

    fn unlock_refresh(&self, lock: RefreshLock) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let _: i64 = self
                .query(
                    redis::cmd("EVAL")
                        .arg(RELEASE_LOCK)
                        .arg(1)
                        .arg(&lock.key)
                        .arg(&lock.token),
                )
                .await?;
            Ok(())
        })
    }

    fn available(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    fn check(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let _: String = self.query(&redis::cmd("PING")).await?;
            if !self.inner.cache.live() {
                return Err(StoreError("not subscribed to announcements yet".into()));
            }
            Ok(())
        })
    }
}

impl RedisStore {
    /// Number of sessions in this replica's local cache.
    pub fn cached(&self) -> usize {
        self.inner.cache.len()
    }

    /// Number of updates waiting to be written back after an outage.
    pub fn pending(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Directory answers are shared through the same Redis, sealed like sessions.
impl crate::directory::SharedStore for RedisStore {
    fn key(&self, kind: &str, id: &str) -> String {
        RedisStore::key(self, kind, id)
    }

    fn get_sealed<'a>(
        &'a self,
        key: &'a str,
    ) -> crate::directory::SharedFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { RedisStore::get_sealed(self, key).await.ok().flatten() })
    }

    fn put_sealed<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: u64,
    ) -> crate::directory::SharedFuture<'a, ()> {
        Box::pin(async move {
            // Best effort: the others will ask the directory themselves.
            let _ = RedisStore::put_sealed(self, key, value, ttl).await;
        })
    }
}
