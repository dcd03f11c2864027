//! Wall-clock seconds that follow tokio's clock (ground floor: used by every stage).
//!
//! Session and token expiry are Unix times, but tests drive them with tokio's paused
//! time. [`now`] is the Unix time at process start plus tokio's monotonic elapsed time:
//! in production that is wall-clock time without jumps; under a paused runtime it moves
//! exactly as far as the test advances it.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Origin {
    /// Unix time at `instant`, to the nanosecond.
    unix: Duration,
    instant: std::time::Instant,
}

static ORIGIN: OnceLock<Origin> = OnceLock::new();

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    let origin = ORIGIN.get_or_init(|| Origin {
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
        instant: std::time::Instant::now(),
    });
    // Inside a runtime, follow tokio's clock (which a test may pause and advance). A
    // paused runtime may have started before the origin was taken, so its clock can
    // lie behind it: count that backwards instead of clamping it to zero, or whole
    // seconds advanced by a test would not all show.
    let at = match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::time::Instant::now().into_std(),
        Err(_) => std::time::Instant::now(),
    };
    let unix = match at.checked_duration_since(origin.instant) {
        Some(ahead) => origin.unix + ahead,
        None => origin
            .unix
            .saturating_sub(origin.instant.duration_since(at)),
    };
    unix.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_second_advanced_shows_even_when_the_runtime_predates_the_origin() {
        let start = now();
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(now(), start + 5);
    }
}
