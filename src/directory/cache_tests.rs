// Test-only: included from its parent module under #[cfg(test)].
//! Tests of the group cache: against the mock Okta org through [`OktaDirectory`], and
//! against an in-memory source for the concurrency rules.

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::time::{Instant, advance};

use super::*;
use crate::demo::okta::{Failure, MockOkta};
use crate::directory::okta::tests::{TOKEN, directory};
use crate::directory::{Group, GroupsFuture, OktaDirectory};

const INTERVAL: Duration = Duration::from_secs(600);
const TIMEOUT: Duration = Duration::from_secs(60);
const STALENESS: Duration = Duration::from_secs(1200);
/// `clock::now()` counts whole seconds from an origin that is not aligned with the
/// paused clock, so an advance of N seconds reads as N or N-1: margins of one second.
const SLACK: Duration = Duration::from_secs(1);

fn keys(k: &[&str]) -> Arc<[String]> {
    k.iter().map(|s| (*s).to_owned()).collect()
}

async fn okta_cache() -> (MockOkta, Arc<OktaDirectory>, Arc<GroupCache>) {
    let mock = MockOkta::start(TOKEN).await;
    let dir = Arc::new(directory(&mock, TOKEN, Duration::from_secs(10)));
    let cache = Arc::new(GroupCache::new(dir.clone(), INTERVAL, TIMEOUT, STALENESS));
    (mock, dir, cache)
}

/// Lets spawned tasks (and the loopback mock) run without moving the paused clock,
/// until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not reached");
}

#[tokio::test(start_paused = true)]
async fn sign_in_costs_one_request_per_page() {
    let (mock, dir, cache) = okta_cache().await;
    mock.set_groups("00u1", &[("00gB", "Engineering"), ("00gA", "Admins")]);
    assert_eq!(
        cache.load("00u1").await.unwrap(),
        keys(&["00gA", "00gB", "Admins", "Engineering"])
    );
    assert_eq!(mock.requests(), 1);
    assert_eq!(dir.stats().api_calls, 1);
    assert_eq!(
        cache.current("00u1"),
        Membership::Known(keys(&["00gA", "00gB", "Admins", "Engineering"]))
    );

    mock.set_page_size(1);
    mock.set_groups("00u2", &[("00g1", "a"), ("00g2", "b"), ("00g3", "c")]);
    assert_eq!(cache.load("00u2").await.unwrap().len(), 6);
    assert_eq!(mock.requests(), 1 + 3);
    // Reading the cache costs nothing.
    for _ in 0..10 {
        assert!(matches!(cache.current("00u2"), Membership::Known(_)));
    }
    tokio::task::yield_now().await;
    assert_eq!(mock.requests(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_group_change_is_applied_by_the_background_refresh() {
    let (mock, _dir, cache) = okta_cache().await;
    mock.set_groups("00u1", &[("00gA", "Admins")]);
    cache.load("00u1").await.unwrap();
    mock.set_groups("00u1", &[("00gB", "Engineering")]);

    advance(INTERVAL - Duration::from_secs(5)).await;
    assert_eq!(
        cache.current("00u1"),
        Membership::Known(keys(&["00gA", "Admins"]))
    );
    tokio::task::yield_now().await;
    assert_eq!(mock.requests(), 1, "no refresh within the interval");

    advance(Duration::from_secs(6)).await;
    // Due: the old groups still answer while one refresh runs in the background.
    for _ in 0..20 {
        assert_eq!(
            cache.current("00u1"),
            Membership::Known(keys(&["00gA", "Admins"]))
        );
    }
    until(|| cache.current("00u1") == Membership::Known(keys(&["00gB", "Engineering"]))).await;
    assert_eq!(mock.requests(), 2, "one refresh for many requests");
}

#[tokio::test(start_paused = true)]
async fn an_outage_makes_groups_stale_then_unavailable_and_never_wipes_them() {
    let (mock, _dir, cache) = okta_cache().await;
    let admins = keys(&["00gA", "Admins"]);
    mock.set_groups("00u1", &[("00gA", "Admins")]);
    cache.load("00u1").await.unwrap();
    mock.fail_next(10_000, 500);

    advance(INTERVAL + SLACK).await;
    assert_eq!(cache.current("00u1"), Membership::Known(admins.clone()));
    until(|| cache.current("00u1") == Membership::Stale(admins.clone())).await;
    assert_eq!(mock.requests(), 2);

    // A sign-in during the outage keeps (and gets) the last known groups.
    assert_eq!(cache.load("00u1").await.unwrap(), admins);
    // A user never seen cannot sign in with groups.
    assert!(matches!(
        cache.load("00u2").await,
        Err(DirectoryError::Unavailable(_))
    ));
    assert_eq!(cache.current("00u2"), Membership::Unavailable);

    // Retries back off rather than following every request.
    let before = mock.requests();
    for _ in 0..50 {
        assert_eq!(cache.current("00u1"), Membership::Stale(admins.clone()));
        tokio::task::yield_now().await;
    }
    assert_eq!(mock.requests(), before);

    // Still usable just before max_staleness after the last success...
    advance(STALENESS - INTERVAL - 3 * SLACK).await;
    assert_eq!(cache.current("00u1"), Membership::Stale(admins.clone()));
    // ...then fail closed.
    advance(3 * SLACK).await;
    assert_eq!(cache.current("00u1"), Membership::Unavailable);
    assert!(matches!(
        cache.load("00u1").await,
        Err(DirectoryError::Unavailable(_))
    ));
    // Retries stayed bounded: a handful over twenty minutes, not one per request.
    assert!(mock.requests() < 20, "{}", mock.requests());

    // The directory comes back: the next retry restores the user.
    mock.clear_failures();
    mock.set_groups("00u1", &[("00gA", "Admins"), ("00gC", "Ops")]);
    advance(INTERVAL).await;
    cache.current("00u1");
    until(|| matches!(cache.current("00u1"), Membership::Known(g) if g.len() == 4)).await;
}

#[tokio::test(start_paused = true)]
async fn refresh_now_looks_up_immediately_and_keeps_groups_on_failure() {
    let (mock, _dir, cache) = okta_cache().await;
    mock.set_groups("00u1", &[("00gA", "Admins")]);
    cache.load("00u1").await.unwrap();
    mock.set_groups("00u1", &[("00gB", "Engineering")]);
    assert_eq!(
        cache.refresh_now("00u1").await.unwrap(),
        keys(&["00gB", "Engineering"])
    );
    assert_eq!(mock.requests(), 2);
    assert_eq!(
        cache.current("00u1"),
        Membership::Known(keys(&["00gB", "Engineering"]))
    );

    mock.fail_next(1, 500);
    assert!(matches!(
        cache.refresh_now("00u1").await,
        Err(DirectoryError::Unavailable(_))
    ));
    assert_eq!(
        cache.current("00u1"),
        Membership::Known(keys(&["00gB", "Engineering"]))
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_token_at_sign_in_is_an_error() {
    let mock = MockOkta::start(TOKEN).await;
    mock.set_groups("00u1", &[("00gA", "Admins")]);
    let dir = Arc::new(directory(&mock, "wrong", Duration::from_secs(10)));
    let cache = GroupCache::new(dir, INTERVAL, TIMEOUT, STALENESS);
    assert_eq!(
        cache.load("00u1").await,
        Err(DirectoryError::Unauthorized {
            summary: "Invalid token provided".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_lookup_is_bounded_by_the_timeout() {
    let mock = MockOkta::start(TOKEN).await;
    mock.set_groups("00u1", &[("00gA", "Admins")]);
    // Requests may take 60 s each, and rate limits may add waits; the lookup may not.
    let dir = Arc::new(directory(&mock, TOKEN, Duration::from_secs(60)));
    let cache = GroupCache::new(dir, INTERVAL, Duration::from_secs(5), STALENESS);
    mock.fail_next_with(1, Failure::Delay(Duration::from_secs(3600)));
    let start = Instant::now();
    assert!(matches!(
        cache.load("00u1").await,
        Err(DirectoryError::Unavailable(_))
    ));
    assert!(start.elapsed() < Duration::from_secs(6));
    mock.fail_next(100, 429);
    let start = Instant::now();
    assert!(matches!(
        cache.load("00u1").await,
        Err(DirectoryError::Unavailable(_))
    ));
    assert!(start.elapsed() < Duration::from_secs(6));
}

/// An in-memory source that can be held closed.
#[derive(Debug)]
struct Fake {
    groups: std::sync::Mutex<Result<Vec<Group>, DirectoryError>>,
    calls: AtomicUsize,
    gate: Semaphore,
}

impl Fake {
    fn new(open: bool) -> Arc<Self> {
        Arc::new(Self {
            groups: std::sync::Mutex::new(Ok(vec![Group {
                id: "00gA".into(),
                name: "Admins".into(),
            }])),
            calls: AtomicUsize::new(0),
            gate: Semaphore::new(if open { Semaphore::MAX_PERMITS } else { 0 }),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn set(&self, result: Result<Vec<Group>, DirectoryError>) {
        *self.groups.lock().unwrap() = result;
    }
}

impl GroupSource for Fake {
    fn user_groups<'a>(&'a self, _user_id: &'a str) -> GroupsFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            // The answer is taken when the call starts; the gate only delays it.
            let result = self.groups.lock().unwrap().clone();
            // Each call uses up a permit, so a closed gate stays closed.
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
            result
        })
    }
}

#[tokio::test(start_paused = true)]
async fn current_does_no_io_and_looks_up_unknown_users_in_the_background() {
    let source = Fake::new(true);
    let cache = Arc::new(GroupCache::new(
        source.clone(),
        INTERVAL,
        TIMEOUT,
        STALENESS,
    ));
    // E.g. after a restart, with sessions still valid: unknown until looked up.
    assert_eq!(cache.current("00u1"), Membership::Unavailable);
    assert_eq!(
        source.calls(),
        0,
        "current() itself did not call the source"
    );
    until(|| matches!(cache.current("00u1"), Membership::Known(_))).await;
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn one_background_refresh_per_user_at_a_time() {
    let source = Fake::new(false);
    let cache = Arc::new(GroupCache::new(
        source.clone(),
        INTERVAL,
        TIMEOUT,
        STALENESS,
    ));
    source.gate.add_permits(1);
    cache.load("00u1").await.unwrap();
    assert_eq!(source.calls(), 1);

    advance(INTERVAL + SLACK).await;
    source.set(Ok(vec![]));
    for _ in 0..100 {
        assert!(matches!(cache.current("00u1"), Membership::Known(g) if g.len() == 2));
        tokio::task::yield_now().await;
    }
    assert_eq!(source.calls(), 2, "a single refresh in flight");
    source.gate.add_permits(1);
    until(|| cache.current("00u1") == Membership::Known(keys(&[]))).await;
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hung_background_refresh_ends_with_the_timeout() {
    let source = Fake::new(false);
    let cache = Arc::new(GroupCache::new(
        source.clone(),
        INTERVAL,
        TIMEOUT,
        STALENESS,
    ));
    source.gate.add_permits(1);
    cache.load("00u1").await.unwrap();
    advance(INTERVAL + SLACK).await;
    assert!(matches!(cache.current("00u1"), Membership::Known(_)));
    until(|| source.calls() == 2).await;
    // The source never answers; after the timeout the refresh counts as failed.
    advance(TIMEOUT).await;
    until(|| matches!(cache.current("00u1"), Membership::Stale(_))).await;
    // And a later retry runs (the in-flight flag was cleared).
    source.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    advance(INTERVAL).await;
    until(|| matches!(cache.current("00u1"), Membership::Known(_))).await;
    assert_eq!(source.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_newer_answer_is_not_replaced_by_an_older_one() {
    let source = Fake::new(false);
    let cache = Arc::new(GroupCache::new(
        source.clone(),
        INTERVAL,
        TIMEOUT,
        STALENESS,
    ));
    // A first lookup starts and hangs (holding the old answer)...
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.load("00u1").await })
    };
    until(|| source.calls() == 1).await;
    // ...a second one starts later and finishes first with newer groups.
    source.set(Ok(vec![Group {
        id: "00gN".into(),
        name: "New".into(),
    }]));
    source.gate.add_permits(2);
    let second = cache.refresh_now("00u1").await.unwrap();
    assert_eq!(second, keys(&["00gN", "New"]));
    let first = first.await.unwrap().unwrap();
    assert_eq!(first, keys(&["00gN", "New"]));
    assert_eq!(
        cache.current("00u1"),
        Membership::Known(keys(&["00gN", "New"]))
    );
}

#[tokio::test(start_paused = true)]
async fn idle_users_are_forgotten() {
    let source = Fake::new(true);
    let cache = Arc::new(GroupCache::new(
        source.clone(),
        INTERVAL,
        TIMEOUT,
        STALENESS,
    ));
    cache.load("00u1").await.unwrap();
    cache.load("00u2").await.unwrap();
    assert_eq!(cache.len(), 2);
    advance(STALENESS + INTERVAL + SLACK).await;
    cache.load("00u3").await.unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.current("00u1"), Membership::Unavailable);
}

#[test]
fn current_without_a_runtime_only_answers() {
    let source = Fake::new(true);
    let cache = Arc::new(GroupCache::new(
        source.clone(),
        INTERVAL,
        TIMEOUT,
        STALENESS,
    ));
    assert_eq!(cache.current("00u1"), Membership::Unavailable);
    assert_eq!(source.calls(), 0);
}

#[test]
fn backoff_doubles_up_to_the_interval() {
    let cache = GroupCache::new(Fake::new(true), INTERVAL, TIMEOUT, STALENESS);
    let waits: Vec<u64> = (1..=10).map(|f| cache.backoff(f)).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    assert_eq!(cache.backoff(u32::MAX), 600);
}
