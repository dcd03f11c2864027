//! Two proxy replicas sharing sessions through a real Redis: any replica serves any
//! user, sign-out and refresh are seen everywhere, records are sealed, and a Redis
//! outage degrades as documented.

use std::time::Duration;

use base64::Engine as _;

use crate::support::TestProxy;
use crate::support::redis::RedisServer;
use crate::support::signin::{Browser, SECRET, csrf_of, with_fixture_keys};
use crate::support::upstream::{self, Upstream};
use portcullis::demo::idp::{IdpOptions, MockIdp, TestUser};
use portcullis::demo::okta::MockOkta;

/// Two replicas with one configuration, one provider, one upstream, one Redis.
struct Pair {
    idp: MockIdp,
    redis: RedisServer,
    a: TestProxy,
    b: TestProxy,
    _up: Upstream,
}

impl Pair {
    async fn start(extra: &str, routes: &str) -> Pair {
        Self::start_with(extra, routes, |_| {}).await
    }

    async fn start_with(extra: &str, routes: &str, prepare: impl FnOnce(&MockIdp)) -> Pair {
        let redis = RedisServer::start().await;
        let idp = MockIdp::start_with(with_fixture_keys(IdpOptions::default())).await;
        prepare(&idp);
        let up = upstream::start("app").await;
        let provider = if extra.contains("idp_provider:") {
            ""
        } else {
            "idp_provider: oidc\n"
        };
        let yaml = format!(
            "insecure_server: true\n{provider}idp_provider_url: {issuer}\nidp_client_id: portcullis\n\
             idp_client_secret: s3cret\ncookie_secret: {SECRET}\nshared_secret: {SECRET}\n\
             databroker_storage_type: redis\ndatabroker_storage_connection_string: {redis}\n{extra}\
             routes:\n  - from: http://app.example.com\n    to: {u}\n    allow_any_authenticated_user: true\n\
             \x20   set_request_headers:\n      X-Token: \"${{pomerium.access_token}}\"\n{routes}",
            issuer = idp.issuer(),
            redis = redis.url(),
            u = up.url(),
        );
        let a = TestProxy::start(&yaml).await;
        let b = TestProxy::start(&yaml).await;
        Pair {
            idp,
            redis,
            a,
            b,
            _up: up,
        }
    }

    fn url(proxy: &TestProxy, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", proxy.addr.port())
    }

    fn app(proxy: &TestProxy) -> String {
        Self::url(proxy, "app.example.com", "/")
    }

    /// A browser signed in through replica A, and one on replica B with the same cookie.
    async fn signed_in(&self) -> (Browser, Browser) {
        let on_a = Browser::new(self.a.addr);
        let r = on_a.sign_in(&Self::app(&self.a)).await;
        let status = r.status();
        assert_eq!(status, 302, "signed in on A: {}", r.text().await.unwrap());
        let on_b = with_cookie_of(&on_a, &Self::app(&self.a), &self.b, &Self::app(&self.b));
        (on_a, on_b)
    }
}

/// A browser on `proxy` holding the session cookie `from` has for `from_url`.
fn with_cookie_of(from: &Browser, from_url: &str, proxy: &TestProxy, url: &str) -> Browser {
    let cookies = from.cookies(from_url);
    let cookie = cookies
        .split("; ")
        .find(|c| c.starts_with("_pomerium="))
        .expect("session cookie");
    let b = Browser::new(proxy.addr);
    b.jar.add_cookie_str(cookie, &url.parse().unwrap());
    b
}

/// The access token the upstream was sent (X-Token), or None on a non-200.
async fn token_seen(b: &Browser, url: &str) -> Option<String> {
    let r = b.get_json(url).await;
    if r.status() != 200 {
        return None;
    }
    let body: serde_json::Value = r.json().await.unwrap();
    body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "x-token")
        .map(|h| h[1].as_str().unwrap().to_owned())
}

/// Polls until `f` is true, at most `limit` (an event across processes, not a timing
/// assertion: the bound is the documented propagation bound).
async fn within<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_session_from_one_replica_works_on_the_other_and_sign_out_ends_it_everywhere() {
    let p = Pair::start("", "").await;
    p.idp
        .set_user(TestUser::new("alice").email("alice@example.com"));
    let (on_a, on_b) = p.signed_in().await;
    let (app_a, app_b) = (Pair::app(&p.a), Pair::app(&p.b));
    assert_eq!(
        on_b.get_json(&app_b).await.status(),
        200,
        "B serves A's user"
    );
    assert_eq!(on_a.get_json(&app_a).await.status(), 200);
    // Both replicas now hold the session in their local cache; sign out on B.
    let page = on_b
        .get_html(&Pair::url(&p.b, "app.example.com", "/.pomerium/sign_out"))
        .await;
    let csrf = csrf_of(&page.text().await.unwrap());
    let r = on_b
        .client
        .post(Pair::url(&p.b, "app.example.com", "/.pomerium/sign_out"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "signed out on B");
    let ended = within(Duration::from_secs(1), || async {
        on_a.get_json(&app_a).await.status() == 401
    })
    .await;
    assert!(
        ended,
        "the copied cookie stops working on A within a second"
    );
    // Nothing brings it back: the record is a tombstone until it expires.
    let records: Vec<_> = p
        .redis
        .dump()
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with("portcullis:session:"))
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].1, "-");
    assert!(
        p.redis.ttl(&records[0].0).await > 0,
        "expires with the session"
    );
}

#[tokio::test]
async fn one_refresh_across_both_replicas_and_both_forward_the_new_token() {
    // The sign-in's access token is due at once; the refreshed one lives 300 s.
    let p = Pair::start_with("", "", |idp| idp.queue_access_token_ttls(&[0])).await;
    let (on_a, on_b) = p.signed_in().await;
    p.idp.behaviour().token_delay_ms = 300; // keep the refresh in flight while the rest arrive
    let before = p.idp.refresh_requests();
    let (app_a, app_b) = (Pair::app(&p.a), Pair::app(&p.b));
    let requests = (0..10).flat_map(|_| [token_seen(&on_a, &app_a), token_seen(&on_b, &app_b)]);
    let seen = futures_util::future::join_all(requests).await;
    assert_eq!(
        p.idp.refresh_requests() - before,
        1,
        "exactly one token request across both replicas"
    );
    let latest = p.idp.last_access_token().unwrap();
    assert!(
        seen.iter().all(|t| t.as_deref() == Some(latest.as_str())),
        "every request on both replicas went upstream with the refreshed token: {seen:?}"
    );
}

#[tokio::test]
async fn the_other_replica_refreshes_with_the_rotated_refresh_token() {
    // Sign-in token due at once; the first refresh's token too; the second lives.
    let p = Pair::start_with("", "", |idp| idp.queue_access_token_ttls(&[0, 0])).await;
    let (on_a, on_b) = p.signed_in().await;
    let first = token_seen(&on_a, &Pair::app(&p.a)).await;
    assert!(first.is_some(), "A refreshed");
    // The provider rejects a used refresh token: B's refresh works only with the one
    // A received.
    let second = token_seen(&on_b, &Pair::app(&p.b)).await;
    assert!(
        second.is_some(),
        "B refreshed with the rotated refresh token"
    );
    assert_ne!(first, second);
    assert_eq!(p.idp.refresh_requests(), 2);
    assert_eq!(
        second,
        token_seen(&on_a, &Pair::app(&p.a)).await,
        "A sees B's tokens"
    );
}

#[tokio::test]
async fn redis_down_keeps_cached_sessions_refuses_new_sign_ins_and_recovers() {
    let mut p = Pair::start("", "").await;
    let (on_a, _) = p.signed_in().await;
    let app_a = Pair::app(&p.a);
    assert_eq!(on_a.get_json(&app_a).await.status(), 200);
    let ready = |proxy: &TestProxy| Pair::url(proxy, "app.example.com", "/readyz");
    assert_eq!(on_a.get_json(&ready(&p.a)).await.status(), 200);

    p.redis.stop();
    assert_eq!(
        on_a.get_json(&app_a).await.status(),
        200,
        "a session cached on this replica keeps working"
    );
    let newcomer = Browser::new(p.b.addr);
    let r = newcomer.get_html(&Pair::app(&p.b)).await;
    assert_eq!(r.status(), 503, "no sign-in that could not be stored");
    assert!(r.text().await.unwrap().contains("session store"));
    assert_eq!(newcomer.get_json(&ready(&p.b)).await.status(), 503);
    let healthz = Pair::url(&p.b, "app.example.com", "/healthz");
    assert_eq!(
        newcomer.get_json(&healthz).await.status(),
        200,
        "alive, not ready"
    );

    p.redis.restart().await;
    let back = within(Duration::from_secs(10), || async {
        newcomer.get_json(&ready(&p.b)).await.status() == 200
    })
    .await;
    assert!(back, "reconnects by itself");
    // The session survived on Redis's side and works on both replicas again.
    let on_b = with_cookie_of(&on_a, &app_a, &p.b, &Pair::app(&p.b));
    assert_eq!(on_b.get_json(&Pair::app(&p.b)).await.status(), 200);
    assert_eq!(on_a.get_json(&app_a).await.status(), 200);
    let r = newcomer.sign_in(&Pair::app(&p.b)).await;
    assert_eq!(r.status(), 302, "sign-ins work again");
    assert_eq!(newcomer.get_json(&Pair::app(&p.b)).await.status(), 200);
}

#[tokio::test]
async fn redis_holds_only_sealed_values_under_hashed_keys() {
    let okta = MockOkta::start("00-api").await;
    okta.set_groups("00u-carol", &[("00g-eng", "engineering-team")]);
    let account = base64::engine::general_purpose::STANDARD.encode("{\"api_key\":\"00-api\"}");
    let p = Pair::start(
        &format!("idp_provider: okta\nidp_service_account: {account}\n"),
        "",
    )
    .await;
    p.idp.behaviour().api_upstream = Some(okta.addr);
    p.idp.set_user(
        TestUser::new("00u-carol")
            .email("carol@example.com")
            .name("Carol Jones"),
    );
    let (on_a, _) = p.signed_in().await;
    let token = token_seen(&on_a, &Pair::app(&p.a)).await.unwrap();
    let records = p.redis.dump().await;
    let kinds: Vec<&str> = records
        .iter()
        .map(|(k, _)| k.split(':').nth(1).unwrap_or(""))
        .collect();
    assert!(
        kinds.contains(&"session") && kinds.contains(&"groups"),
        "{kinds:?}"
    );
    for (key, value) in &records {
        assert!(key.starts_with("portcullis:"), "{key}");
        for secret in [
            token.as_str(),
            "carol",
            "00u-carol",
            "Carol",
            "engineering-team",
            "00g-eng",
            "refresh",
        ] {
            assert!(!key.contains(secret), "{key} names {secret}");
            assert!(
                !value.contains(secret),
                "the value of {key} contains {secret}"
            );
        }
        assert!(p.redis.ttl(key).await > 0, "{key} expires");
    }
}

#[tokio::test]
async fn group_gated_routes_work_on_a_replica_that_never_looked_the_user_up() {
    let okta = MockOkta::start("00-api").await;
    okta.set_groups("00u-dave", &[("00g-eng", "engineering")]);
    let account = base64::engine::general_purpose::STANDARD.encode("{\"api_key\":\"00-api\"}");
    let up = upstream::start("gated").await;
    let p = Pair::start(
        &format!("idp_provider: okta\nidp_service_account: {account}\n"),
        &format!(
            "  - from: http://other.example.com\n    to: {}\n    allowed_groups: [engineering]\n",
            up.url()
        ),
    )
    .await;
    p.idp.behaviour().api_upstream = Some(okta.addr);
    p.idp.set_user(TestUser::new("00u-dave"));
    let on_a = Browser::new(p.a.addr);
    let gated_a = Pair::url(&p.a, "other.example.com", "/");
    let r = on_a.sign_in(&gated_a).await;
    assert_eq!(r.status(), 302);
    let calls = okta.requests();
    let gated_b = Pair::url(&p.b, "other.example.com", "/");
    let on_b = with_cookie_of(&on_a, &gated_a, &p.b, &gated_b);
    // Okta would now say "no groups": B must not have asked it.
    okta.set_groups("00u-dave", &[]);
    assert_eq!(
        on_b.get_json(&gated_b).await.status(),
        200,
        "B trusts the groups A confirmed instead of failing closed"
    );
    // B's own background lookup is answered from Redis (A's sealed answer), not Okta.
    for _ in 0..20 {
        assert_eq!(on_b.get_json(&gated_b).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        okta.requests(),
        calls,
        "no second Okta lookup for the same user"
    );
}

fn record(id: &str, issued: u64) -> portcullis::session::Session {
    let mut s = portcullis::session::Session::hypothetical(
        "00u-erin".into(),
        None,
        vec![],
        Default::default(),
    );
    s.id = id.into();
    s.tokens.access_issued_at = issued;
    s.expires_at = portcullis::clock::now() + 600;
    s
}

#[tokio::test]
async fn an_update_that_could_not_be_written_is_written_back_unless_signed_out_meanwhile() {
    use portcullis::config::secret::Secret;
    use portcullis::session::SessionStore;
    use portcullis::session::redis::RedisStore;

    let mut redis = RedisServer::start().await;
    let url = Secret::new(redis.url());
    let (a, b) = (
        RedisStore::new(&url, &[7; 32]).unwrap(),
        RedisStore::new(&url, &[7; 32]).unwrap(),
    );
    a.start().await.unwrap();
    b.start().await.unwrap();
    for id in ["kept", "signed-out"] {
        a.put(record(id, 1)).await.unwrap();
        assert!(a.get(id).await.unwrap().is_some());
    }
    redis.stop();
    // A refresh rotated the tokens just as Redis went away.
    for id in ["kept", "signed-out"] {
        assert!(a.put(record(id, 2)).await.is_err());
        let served = a.get(id).await.unwrap().unwrap();
        assert_eq!(
            served.tokens.access_issued_at, 2,
            "A serves what it could not write"
        );
    }
    assert_eq!(a.pending(), 2);
    redis.restart().await;
    // Before A writes anything back, B signs one of the sessions out.
    b.delete("signed-out").await.unwrap();
    let written = within(Duration::from_secs(10), || async {
        let _ = a.get("kept").await;
        a.pending() == 0
            && b.get_fresh("kept")
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.tokens.access_issued_at == 2)
    })
    .await;
    assert!(written, "the rotated tokens reached Redis once it was back");
    assert!(
        b.get_fresh("signed-out").await.unwrap().is_none(),
        "a sign-out in between is not undone"
    );
    assert!(a.get("signed-out").await.unwrap().is_none());
}
