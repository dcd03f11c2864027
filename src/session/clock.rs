//! Wall-clock seconds that follow tokio's clock.
//!
//! Session and token expiry are Unix times, but tests drive them with tokio's paused
//! time. [`now`] is the Unix time at process start plus tokio's monotonic elapsed time:
//! in production that is wall-clock time without jumps; under a paused runtime it moves
//! exactly as far as the test advances it.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

struct Origin {
    unix: u64,
    instant: std::time::Instant,
}

static ORIGIN: OnceLock<Origin> = OnceLock::new();

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    let origin = ORIGIN.get_or_init(|| Origin {
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        instant: std::time::Instant::now(),
    });
    // Inside a runtime, follow tokio's clock (which a test may pause and advance).
    let elapsed = match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::time::Instant::now()
            .into_std()
            .saturating_duration_since(origin.instant),
        Err(_) => origin.instant.elapsed(),
    };
    origin.unix + elapsed.as_secs()
}
