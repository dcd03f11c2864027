//! Per-user group cache with background refresh and bounded staleness.
//!
//! Rules, with `age` = time since the last successful lookup of the user:
//!
//! | state                                              | [`GroupCache::current`]  |
//! |----------------------------------------------------|--------------------------|
//! | `age < interval`                                   | `Known`                  |
//! | `interval ≤ age < max_staleness`, no failure since | `Known`, refresh started |
//! | `interval ≤ age < max_staleness`, a refresh failed | `Stale`, refresh retried |
//! | `age ≥ max_staleness`, or never looked up          | `Unavailable`            |
//!
//! Background refreshes run one per user at a time (and at most
//! [`MAX_BACKGROUND_REFRESHES`] at once), each bounded by `timeout`. After a failure the
//! next attempt waits an exponential backoff (5 s, 10 s, … capped at `interval`), so an
//! outage is not met with a request per proxied request. A failure never replaces known
//! groups. All times come from [`clock::now`], which follows tokio's (pausable) clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{DirectoryError, GroupSource, group_keys};
use crate::clock;

/// Background refreshes running at the same time, over all users.
pub(super) const MAX_BACKGROUND_REFRESHES: usize = 4;
/// First wait after a failed lookup before a background retry, in seconds.
const FIRST_RETRY_SECS: u64 = 5;

/// What is known about a user's groups right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Current groups (ids and names, sorted).
    Known(Arc<[String]>),
    /// The last known groups: refreshing has failed since, but they are younger than
    /// `max_staleness`. Usable; worth a note in logs.
    Stale(Arc<[String]>),
    /// Nothing trustworthy: group-gated routes must deny (fail closed).
    Unavailable,
}

impl Membership {
    /// The groups to authorize with, `None` when unavailable.
    pub fn groups(&self) -> Option<&Arc<[String]>> {
        match self {
            Self::Known(g) | Self::Stale(g) => Some(g),
            Self::Unavailable => None,
        }
    }
}

/// The groups of every active user, looked up through a [`GroupSource`].
#[derive(Debug)]
pub struct GroupCache {
    source: Arc<dyn GroupSource>,
    /// Seconds after which an entry is refreshed.
    interval: u64,
    /// Bound of one lookup (all pages and waits).
    timeout: Duration,
    /// Seconds after the last success at which an entry stops being usable.
    max_staleness: u64,
    entries: Mutex<HashMap<String, Entry>>,
    /// Orders lookups so an older answer never replaces a newer one.
    sequence: AtomicU64,
    background: Semaphore,
    /// When idle entries were last dropped (unix seconds).
    last_sweep: AtomicU64,
}

#[derive(Debug, Default)]
struct Entry {
    /// The last successfully looked-up groups.
    groups: Option<Arc<[String]>>,
    /// When they were stored (unix seconds).
    fetched_at: u64,
    /// Sequence number of the lookup that produced them.
    sequence: u64,
    /// Failed lookups since the last success.
    failures: u32,
    /// No background refresh before this time (unix seconds).
    retry_at: u64,
    /// A background refresh is running.
    refreshing: bool,
    /// Last time anything asked about this user (unix seconds).
    last_used: u64,
}

impl GroupCache {
    /// A cache over `source`: entries are refreshed after `interval`, each lookup is
    /// bounded by `timeout`, and last-known groups are trusted up to `max_staleness`
    /// after the last success (never less than `interval`). Intervals count in whole
    /// seconds (at least one).
    pub fn new(
        source: Arc<dyn GroupSource>,
        interval: Duration,
        timeout: Duration,
        max_staleness: Duration,
    ) -> Self {
        let interval = interval.as_secs().max(1);
        Self {
            source,
            interval,
            timeout,
            max_staleness: max_staleness.as_secs().max(interval),
            entries: Mutex::new(HashMap::new()),
            sequence: AtomicU64::new(0),
            background: Semaphore::new(MAX_BACKGROUND_REFRESHES),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// At sign-in: looks the user's groups up now (bounded by `timeout`), caches them
    /// and returns their ids ∪ names (sorted, deduplicated).
    ///
    /// On an error the cache keeps what it had (it is never wiped): when that is still
    /// usable (younger than `max_staleness`) it is returned, otherwise the error.
    pub async fn load(&self, user_id: &str) -> Result<Arc<[String]>, DirectoryError> {
        match self.lookup(user_id).await {
            Ok(groups) => Ok(groups),
            Err(e) => match self.current_groups(user_id) {
                Some(previous) => {
                    tracing::warn!(error = %e, "group lookup at sign-in failed; using the last known groups");
                    Ok(previous)
                }
                None => Err(e),
            },
        }
    }

    /// On a request: what is known, without any network I/O. When the entry is due a
    /// background refresh is spawned (one per user at a time); see the module docs for
    /// when the answer is `Known`, `Stale` or `Unavailable`. A user never looked up
    /// (e.g. after a restart, with sessions still valid) is `Unavailable` while a
    /// background lookup runs.
    ///
    /// Needs a tokio runtime to refresh; without one it only answers.
    pub fn current(self: &Arc<Self>, user_id: &str) -> Membership {
        let now = clock::now();
        let (membership, spawn) = {
            let mut entries = self.lock();
            if !entries.contains_key(user_id) {
                entries.insert(user_id.to_owned(), Entry::default());
            }
            let Some(entry) = entries.get_mut(user_id) else {
                return Membership::Unavailable;
            };
            entry.last_used = now;
            let membership = self.classify(entry, now);
            let due =
                entry.groups.is_none() || now.saturating_sub(entry.fetched_at) >= self.interval;
            let spawn = due && !entry.refreshing && now >= entry.retry_at;
            if spawn {
                entry.refreshing = true;
            }
            (membership, spawn)
        };
        if spawn {
            self.spawn_refresh(user_id);
        }
        membership
    }

    /// Looks the user's groups up now (the "refresh my groups" button). On an error
    /// the cached groups are kept and the error returned.
    pub async fn refresh_now(&self, user_id: &str) -> Result<Arc<[String]>, DirectoryError> {
        self.lookup_from(user_id, true).await
    }

    /// When the user's cached groups were looked up (unix seconds), if they were.
    pub fn fetched_at(&self, user_id: &str) -> Option<u64> {
        let entries = self.lock();
        entries
            .get(user_id)
            .filter(|e| e.groups.is_some())
            .map(|e| e.fetched_at)
    }

    /// Seconds after the last successful lookup at which groups stop being usable.
    pub fn max_staleness(&self) -> u64 {
        self.max_staleness
    }

    /// Number of users in the cache.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn classify(&self, entry: &Entry, now: u64) -> Membership {
        let Some(groups) = &entry.groups else {
            return Membership::Unavailable;
        };
        let age = now.saturating_sub(entry.fetched_at);
        if age < self.interval {
            Membership::Known(groups.clone())
        } else if age >= self.max_staleness {
            Membership::Unavailable
        } else if entry.failures == 0 {
            Membership::Known(groups.clone())
        } else {
            Membership::Stale(groups.clone())
        }
    }

    /// The cached groups when still usable (`Known` or `Stale`).
    fn current_groups(&self, user_id: &str) -> Option<Arc<[String]>> {
        let entries = self.lock();
        let entry = entries.get(user_id)?;
        self.classify(entry, clock::now()).groups().cloned()
    }

    fn spawn_refresh(self: &Arc<Self>, user_id: &str) {
        let guard = RefreshingFlag {
            cache: self.clone(),
            user_id: user_id.to_owned(),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _permit = guard.cache.background.acquire().await;
                    // Errors are recorded (and logged by the source); nothing to return to.
                    let _ = guard.cache.lookup(&guard.user_id).await;
                    // `guard` drops with the task, clearing the flag.
                });
            }
            Err(_) => drop(guard),
        }
    }

    /// One bounded lookup, recorded in the cache.
    async fn lookup(&self, user_id: &str) -> Result<Arc<[String]>, DirectoryError> {
        self.lookup_from(user_id, false).await
    }

    /// One bounded lookup (`now`: never from a shared cache), recorded in the cache.
    async fn lookup_from(&self, user_id: &str, now: bool) -> Result<Arc<[String]>, DirectoryError> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let ask = if now {
            self.source.user_groups_now(user_id)
        } else {
            self.source.user_groups(user_id)
        };
        let result = match tokio::time::timeout(self.timeout, ask).await {
            Ok(result) => result.map(|groups| group_keys(&groups)),
            Err(_) => Err(DirectoryError::Unavailable(format!(
                "group lookup took longer than {:?}",
                self.timeout
            ))),
        };
        let now = clock::now();
        let mut entries = self.lock();
        self.sweep(&mut entries, now);
        let entry = entries.entry(user_id.to_owned()).or_default();
        entry.last_used = now;
        match result {
            Ok(groups) => {
                if sequence > entry.sequence {
                    *entry = Entry {
                        groups: Some(groups.clone()),
                        fetched_at: now,
                        sequence,
                        failures: 0,
                        retry_at: 0,
                        refreshing: entry.refreshing,
                        last_used: now,
                    };
                    Ok(groups)
                } else {
                    // A newer lookup finished first; its answer stands.
                    Ok(entry.groups.clone().unwrap_or(groups))
                }
            }
            Err(e) => {
                // A failure of a lookup older than the stored groups says nothing new.
                if sequence > entry.sequence {
                    entry.failures = entry.failures.saturating_add(1);
                    entry.retry_at = now + self.backoff(entry.failures);
                }
                Err(e)
            }
        }
    }

    /// Seconds to wait before the next background attempt after `failures` failures.
    fn backoff(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(20);
        (FIRST_RETRY_SECS << doublings).min(self.interval)
    }

    /// Drops users nobody asked about for `max_staleness + interval`, at most once per
    /// interval.
    fn sweep(&self, entries: &mut HashMap<String, Entry>, now: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.interval {
            return;
        }
        self.last_sweep.store(now, Ordering::Relaxed);
        let keep = self.max_staleness + self.interval;
        entries.retain(|_, e| e.refreshing || now.saturating_sub(e.last_used) < keep);
    }
}

/// Clears an entry's `refreshing` flag when the refresh ends, however it ends.
struct RefreshingFlag {
    cache: Arc<GroupCache>,
    user_id: String,
}

impl Drop for RefreshingFlag {
    fn drop(&mut self) {
        if let Some(entry) = self.cache.lock().get_mut(&self.user_id) {
            entry.refreshing = false;
        }
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
