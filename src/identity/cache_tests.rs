// Test-only: included from its parent module under #[cfg(test)].
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::identity::test_support::*;

async fn advance(secs: u64) {
    tokio::time::advance(Duration::from_secs(secs)).await;
}

fn claims<'a>(
    session: &'a crate::session::Session,
    host: &'a str,
    groups: &'a [String],
) -> Claims<'a> {
    Claims {
        issuer_and_audience: host,
        session,
        groups,
        extra: &[],
    }
}

#[tokio::test(start_paused = true)]
async fn reuses_the_assertion_until_a_minute_before_exp() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let cache = AssertionCache::new(100);
    let session = session(clock::now() + 3600);
    let groups = session.groups.clone();
    let c = claims(&session, HOST, &groups);

    let first = cache.get_or_sign(&keys, &c).unwrap();
    let again = cache.get_or_sign(&keys, &c).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "the same string comes back");
    advance(239).await;
    assert!(Arc::ptr_eq(&first, &cache.get_or_sign(&keys, &c).unwrap()));
    advance(1).await; // 60 s before exp
    let renewed = cache.get_or_sign(&keys, &c).unwrap();
    assert_ne!(first, renewed);
    let claims = verify(&keys, &renewed, Algorithm::ES256, HOST);
    assert_eq!(claims["iat"], clock::now());
    assert_eq!(claims["exp"], clock::now() + 300);
    assert!(Arc::ptr_eq(
        &renewed,
        &cache.get_or_sign(&keys, &c).unwrap()
    ));
    assert_eq!(cache.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_short_lived_session_renews_at_half_the_lifetime() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let cache = AssertionCache::new(100);
    let session = session(clock::now() + 100);
    let c = claims(&session, HOST, &[]);
    let first = cache.get_or_sign(&keys, &c).unwrap();
    advance(49).await;
    assert!(Arc::ptr_eq(&first, &cache.get_or_sign(&keys, &c).unwrap()));
    advance(1).await;
    assert_ne!(first, cache.get_or_sign(&keys, &c).unwrap());
    advance(50).await;
    assert!(matches!(
        cache.get_or_sign(&keys, &c),
        Err(IdentityError::SessionEnded)
    ));
}

#[tokio::test(start_paused = true)]
async fn anything_the_assertion_says_is_part_of_the_key() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let other_keys = SigningKeys::load(None, &SECRET_B).unwrap();
    let cache = AssertionCache::new(100);
    let session = session(clock::now() + 3600);
    let groups = vec!["a".to_owned()];
    let base = cache
        .get_or_sign(&keys, &claims(&session, HOST, &groups))
        .unwrap();

    let other_host = cache
        .get_or_sign(&keys, &claims(&session, "other.example.com", &groups))
        .unwrap();
    assert_ne!(base, other_host);
    verify(&keys, &other_host, Algorithm::ES256, "other.example.com");

    let more_groups = vec!["a".to_owned(), "b".to_owned()];
    let regrouped = cache
        .get_or_sign(&keys, &claims(&session, HOST, &more_groups))
        .unwrap();
    assert_eq!(
        verify(&keys, &regrouped, Algorithm::ES256, HOST)["groups"],
        json!(["a", "b"])
    );

    let mut renamed = session.clone();
    renamed.email = Some("new@example.com".into());
    let reemailed = cache
        .get_or_sign(&keys, &claims(&renamed, HOST, &groups))
        .unwrap();
    assert_eq!(
        verify(&keys, &reemailed, Algorithm::ES256, HOST)["email"],
        "new@example.com"
    );

    let extra = vec![("locale".to_owned(), json!("fr"))];
    let with_extra = cache
        .get_or_sign(
            &keys,
            &Claims {
                extra: &extra,
                ..claims(&session, HOST, &groups)
            },
        )
        .unwrap();
    assert_eq!(
        verify(&keys, &with_extra, Algorithm::ES256, HOST)["locale"],
        "fr"
    );

    let rekeyed = cache
        .get_or_sign(&other_keys, &claims(&session, HOST, &groups))
        .unwrap();
    verify(&other_keys, &rekeyed, Algorithm::ES256, HOST);

    let all = [
        &base,
        &other_host,
        &regrouped,
        &reemailed,
        &with_extra,
        &rekeyed,
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(cache.len(), 6);
    // And the original is still the cached one.
    let again = cache
        .get_or_sign(&keys, &claims(&session, HOST, &groups))
        .unwrap();
    assert!(Arc::ptr_eq(&base, &again));
}

#[tokio::test(start_paused = true)]
async fn the_cache_is_bounded_and_evicts_the_oldest() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let cache = AssertionCache::new(3);
    let session = session(clock::now() + 100_000);
    let hosts = ["h0", "h1", "h2", "h3", "h4"];
    let tokens: Vec<Arc<str>> = hosts
        .iter()
        .map(|h| cache.get_or_sign(&keys, &claims(&session, h, &[])).unwrap())
        .collect();
    assert_eq!(cache.len(), 3);
    // The newest are still cached …
    let h4 = cache
        .get_or_sign(&keys, &claims(&session, "h4", &[]))
        .unwrap();
    assert!(Arc::ptr_eq(&tokens[4], &h4));
    // … the oldest was evicted, so it is signed again.
    let h0 = cache
        .get_or_sign(&keys, &claims(&session, "h0", &[]))
        .unwrap();
    assert!(!Arc::ptr_eq(&tokens[0], &h0));
    assert_eq!(cache.len(), 3);

    // Entries past their reuse window are dropped before live ones.
    for i in 0..50 {
        advance(300).await;
        let host = format!("later{i}");
        cache
            .get_or_sign(&keys, &claims(&session, &host, &[]))
            .unwrap();
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.len(), 1, "every older entry had expired");
}

#[tokio::test(start_paused = true)]
async fn the_order_queue_stays_bounded_when_keys_are_renewed() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let cache = AssertionCache::new(2);
    let session = session(clock::now() + 100_000);
    for _ in 0..100 {
        cache
            .get_or_sign(&keys, &claims(&session, "a", &[]))
            .unwrap();
        cache
            .get_or_sign(&keys, &claims(&session, "b", &[]))
            .unwrap();
        advance(241).await;
    }
    assert!(cache.lock().order.len() <= 2 * 2 + 16);
    assert_eq!(cache.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn capacity_zero_turns_caching_off() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let cache = AssertionCache::new(0);
    let session = session(clock::now() + 3600);
    let a = cache
        .get_or_sign(&keys, &claims(&session, HOST, &[]))
        .unwrap();
    let b = cache
        .get_or_sign(&keys, &claims(&session, HOST, &[]))
        .unwrap();
    assert_ne!(a, b);
    assert!(cache.is_empty());
}
