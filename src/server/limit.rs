//! Stage 1 (accept): how many downstream connections may be open at once.
//!
//! At start the soft limit on open files is raised to the hard one ([`raise_nofile`]).
//! Every downstream connection, on every listener, holds a [`Slot`] of the one
//! [`ConnectionLimit`] from accept to close. At the cap the accept loops wait for a
//! slot instead of accepting — the kernel's backlog holds the rest, nothing spins and no
//! descriptor is spent — so the proxy cannot run itself out of descriptors, and
//! `/healthz` on an open connection keeps answering. Accept errors and the cap are
//! logged at most once a second ([`Throttle`]), with the count of lines left out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A downstream connection's place under the cap; dropping it frees the place.
pub type Slot = OwnedSemaphorePermit;

/// Descriptors kept for everything that is not a downstream connection: listeners,
/// the session store, DNS, logs, the identity provider.
const RESERVE: u64 = 256;

/// The cap when the descriptor limit cannot be read.
const FALLBACK: usize = 4096;

/// Raises the soft limit on open files to the hard one; returns the soft limit now in
/// force, if it can be read.
pub fn raise_nofile() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The default cap for a descriptor limit: each proxied connection may hold an upstream
/// connection too, so half of what is left after the reserve.
pub fn derived(nofile: Option<u64>) -> usize {
    match nofile {
        Some(n) => usize::try_from(n.saturating_sub(RESERVE) / 2)
            .unwrap_or(usize::MAX)
            .max(1),
        None => FALLBACK,
    }
}

/// The cap on downstream connections, shared by every listener.
#[derive(Debug)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: usize,
    at_cap: Throttle,
}

impl ConnectionLimit {
    /// At most `max` connections (clamped to what a semaphore can count).
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            at_cap: Throttle::new(Duration::from_secs(1)),
        }
    }

    /// Waits for a free place (at the cap: until a connection closes).
    pub async fn acquire(&self) -> Option<Slot> {
        if let Ok(slot) = self.permits.clone().try_acquire_owned() {
            return Some(slot);
        }
        if let Some(left_out) = self.at_cap.allow() {
            tracing::warn!(
                max_connections = self.max,
                left_out,
                "connection limit reached: accepting paused until a connection closes"
            );
        }
        self.permits.clone().acquire_owned().await.ok()
    }
}

/// Lets a repeated log line through at most once per period, counting the rest.
#[derive(Debug)]
pub struct Throttle {
    origin: Instant,
    period_ms: u64,
    /// When the next line may go out (ms since `origin`).
    next_ms: AtomicU64,
    left_out: AtomicU64,
}

impl Throttle {
    /// At most one line per `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            origin: Instant::now(),
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
            left_out: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be logged now.
    pub fn allow(&self) -> Option<u64> {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.period_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.left_out.swap(0, Ordering::Relaxed));
        }
        self.left_out.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
        let now = raise_nofile().expect("readable");
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(now, soft);
        if hard != rlimit::INFINITY && cfg!(target_os = "linux") {
            assert_eq!(soft, hard);
        }
    }

    #[test]
    fn the_default_cap_leaves_room_for_upstreams() {
        assert_eq!(derived(Some(1024)), (1024 - 256) / 2);
        assert_eq!(derived(Some(10)), 1);
        assert_eq!(derived(None), FALLBACK);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_acquiring_waits_for_a_close() {
        let limit = ConnectionLimit::new(2);
        let a = limit.acquire().await.unwrap();
        let _b = limit.acquire().await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_secs(60), limit.acquire()).await;
        assert!(waiting.is_err(), "no third place");
        drop(a);
        assert!(limit.acquire().await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_errors_logs_one_line_per_second() {
        let t = Throttle::new(Duration::from_secs(1));
        let allowed = (0..10_000).filter(|_| t.allow().is_some()).count();
        assert_eq!(allowed, 1);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(t.allow(), Some(9_999));
    }
}
