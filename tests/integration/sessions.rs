//! Sessions after sign-in: refresh (single-flight, rotation, failures), sign-out,
//! cookie tampering, and the hand-off between hosts with `authenticate_service_url`.

use std::time::Duration;

use crate::support::signin::{Browser, World, csrf_of, location, set_cookies};
use portcullis::demo::idp::TestUser;

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_requests_at_expiry_refresh_once_and_keep_the_rotated_token() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    b.sign_in(&w.app("/")).await;
    assert_eq!(w.idp.refresh_requests(), 0);
    w.idp.behaviour().token_delay_ms = 50; // keep the refresh in flight while the others arrive
    // 300 s tokens: less than 60 s left after 245 s.
    tokio::time::advance(Duration::from_secs(245)).await;
    let url = w.app("/");
    let requests = (0..50).map(|_| b.get_json(&url));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(w.idp.refresh_requests(), 1, "exactly one token request");
    // The provider rotates refresh tokens and rejects reuse: a second refresh only works
    // if the rotated one was kept.
    tokio::time::advance(Duration::from_secs(300)).await;
    assert_eq!(b.get_json(&w.app("/")).await.status(), 200);
    assert_eq!(w.idp.refresh_requests(), 2);
    assert_eq!(
        w.idp.last_token_request().unwrap().grant_type,
        "refresh_token"
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_grant_ends_the_session() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    b.sign_in(&w.app("/")).await;
    w.idp.behaviour().refresh_fails_with = Some("invalid_grant");
    tokio::time::advance(Duration::from_secs(250)).await;
    assert_eq!(b.get_json(&w.app("/")).await.status(), 401);
    w.idp.behaviour().refresh_fails_with = None;
    assert_eq!(
        b.get_json(&w.app("/")).await.status(),
        401,
        "the session is gone for good"
    );
    assert_eq!(
        b.get_html(&w.app("/")).await.status(),
        302,
        "browsers are sent to sign in again"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_refresh_errors_never_end_a_valid_session() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    b.sign_in(&w.app("/")).await;
    w.idp.behaviour().refresh_fails_with = Some("server_error");
    tokio::time::advance(Duration::from_secs(250)).await;
    for _ in 0..5 {
        assert_eq!(
            b.get_json(&w.app("/")).await.status(),
            200,
            "the access token is still valid"
        );
    }
    assert!(
        w.idp.refresh_requests() <= 2,
        "failures back off instead of retrying on every request"
    );
    // The provider recovers before the access token expires: the backoff lets it retry.
    w.idp.behaviour().refresh_fails_with = None;
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(b.get_json(&w.app("/")).await.status(), 200);
    let before = w.idp.refresh_requests();
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        b.get_json(&w.app("/")).await.status(),
        200,
        "refreshed, not expired"
    );
    assert!(w.idp.refresh_requests() >= before);
}

#[tokio::test(start_paused = true)]
async fn a_refreshed_id_token_for_someone_else_ends_the_session() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    b.sign_in(&w.app("/")).await;
    w.idp.behaviour().refresh_id_token_sub = Some("someone-else".into());
    tokio::time::advance(Duration::from_secs(250)).await;
    assert_eq!(b.get_json(&w.app("/")).await.status(), 401);
}

#[tokio::test]
async fn sign_out_needs_a_post_with_its_token_and_ends_the_session_everywhere() {
    let w = World::start("signout_redirect_url: https://portal.example.com/bye\n").await;
    w.ready().await;
    w.idp
        .set_user(TestUser::new("alice").email("alice@example.com"));
    let b = w.browser();
    b.sign_in(&w.app("/")).await;
    let copied = b.cookies(&w.app("/"));
    let thief = Browser::new(w.proxy.addr);
    thief.jar.add_cookie_str(
        copied
            .split("; ")
            .find(|c| c.starts_with("_pomerium="))
            .unwrap(),
        &w.app("/").parse().unwrap(),
    );
    assert_eq!(
        thief.get_json(&w.app("/")).await.status(),
        200,
        "a copied cookie works while the session lives"
    );

    // GET only asks; a cross-site POST without the token is refused.
    let page = b.get_html(&w.app("/.pomerium/sign_out")).await;
    assert_eq!(page.headers()["cache-control"], "no-store");
    let csrf = csrf_of(&page.text().await.unwrap());
    assert_eq!(b.get_json(&w.app("/")).await.status(), 200);
    let forged = b
        .client
        .post(w.app("/.pomerium/sign_out"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(b.get_json(&w.app("/")).await.status(), 200);
    // A token from another session does not work either.
    let other = w.browser();
    other.sign_in(&w.app("/")).await;
    let other_csrf = csrf_of(
        &other
            .get_html(&w.app("/.pomerium/sign_out"))
            .await
            .text()
            .await
            .unwrap(),
    );
    let crossed = b
        .client
        .post(w.app("/.pomerium/sign_out"))
        .form(&[("csrf", other_csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), 403);

    let r = b
        .client
        .post(w.app("/.pomerium/sign_out"))
        .form(&[("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("_pomerium=;") && c.contains("Max-Age=0"))
    );
    let end = location(&r);
    assert!(
        end.starts_with(&format!("{}/logout?", w.idp.base_url())),
        "{end}"
    );
    let q: Vec<(String, String)> = reqwest::Url::parse(&end)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let has = |k: &str, v: Option<&str>| q.iter().any(|(n, x)| n == k && v.is_none_or(|v| v == x));
    assert!(has("id_token_hint", None) && has("client_id", Some("portcullis")));
    assert!(has(
        "post_logout_redirect_uri",
        Some("https://portal.example.com/bye")
    ));
    assert_eq!(
        w.idp.revocations().len(),
        1,
        "the refresh token was revoked"
    );

    assert_eq!(
        thief.get_json(&w.app("/")).await.status(),
        401,
        "the copied cookie no longer works"
    );
    assert_eq!(b.get_json(&w.app("/")).await.status(), 401);
    // Replaying the sign-out is harmless.
    let again = thief
        .client
        .post(w.app("/.pomerium/sign_out"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(w.idp.revocations().len(), 1);
}

#[tokio::test]
async fn tampered_or_doubled_cookies_are_just_no_session() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    b.sign_in(&w.app("/")).await;
    let cookie = b
        .cookies(&w.app("/"))
        .split("; ")
        .find(|c| c.starts_with("_pomerium="))
        .unwrap()
        .to_owned();
    let value = cookie.strip_prefix("_pomerium=").unwrap();
    let mut flipped = value.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let client = reqwest::Client::builder()
        .resolve_to_addrs("app.example.com", &[w.proxy.addr])
        .build()
        .unwrap();
    for bad in [
        format!("_pomerium={flipped}"),
        format!("_pomerium={}", &value[..value.len() / 2]),
        "_pomerium=".to_owned(),
        "_pomerium=%%%%".to_owned(),
        format!("_pomerium={}", "A".repeat(9000)),
    ] {
        let r = client
            .get(w.app("/"))
            .header("accept", "application/json")
            .header("cookie", &bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{}", &bad[..bad.len().min(40)]);
    }
    let r = client
        .get(w.app("/"))
        .header("accept", "application/json")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the genuine cookie still works");
}

#[tokio::test]
async fn the_authenticate_host_hands_sessions_to_route_hosts() {
    let port_probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = port_probe.local_addr().unwrap().port();
    drop(port_probe);
    let extra = format!(
        "address: 127.0.0.1:{port}\nauthenticate_service_url: http://auth.example.com:{port}\n"
    );
    let w = World::start_with(Default::default(), &extra, "").await;
    w.ready().await;
    let b = w.browser();
    // 1. The route host sends the browser to the authenticate host with a sealed link.
    let r = b.get_html(&w.app("/page")).await;
    let sign_in = location(&r);
    assert!(
        sign_in.starts_with(&w.url(
            "auth.example.com",
            "/.pomerium/sign_in?pomerium_redirect_uri="
        )),
        "{sign_in}"
    );
    assert!(
        !sign_in.contains("app.example.com"),
        "the return URL travels sealed"
    );
    // 2. The authenticate host starts the flow with its own callback.
    let authorize = b.start_sign_in(&sign_in).await;
    assert!(
        authorize.contains(&format!(
            "redirect_uri=http%3A%2F%2Fauth.example.com%3A{port}%2Foauth2%2Fcallback"
        )),
        "{authorize}"
    );
    // 3. Callback on the authenticate host, then the hand-off to the route host.
    let callback = b.authorize(&authorize).await;
    let r = b.get_html(&callback).await;
    let handoff = location(&r);
    assert!(
        handoff.starts_with(&w.app("/.pomerium/callback/?pomerium_session=")),
        "{handoff}"
    );
    let r = b.get_html(&handoff).await;
    assert_eq!(location(&r), w.app("/page"));
    assert_eq!(b.get_json(&w.app("/page")).await.status(), 200);
    // The hand-off works once, on that host only.
    assert_eq!(b.get_html(&handoff).await.status(), 400, "replayed");
    assert_eq!(w.idp.token_requests(), 1);

    // Open-redirect attempts: an unsealed or tampered link is refused.
    for link in [
        w.url(
            "auth.example.com",
            "/.pomerium/sign_in?pomerium_redirect_uri=https://evil.example/",
        ),
        w.url(
            "auth.example.com",
            "/.pomerium/sign_in?pomerium_redirect_uri=%2F%5Cevil.example",
        ),
        sign_in.replacen("pomerium_redirect_uri=", "pomerium_redirect_uri=A", 1),
        w.app("/.pomerium/callback/?pomerium_session=forged"),
    ] {
        let r = w.browser().get_html(&link).await;
        assert_eq!(r.status(), 400, "{link}");
        assert!(r.headers().get("location").is_none());
    }
    // A hand-off minted for one host does not work on another.
    let fresh = w.browser();
    let authorize = fresh
        .start_sign_in(&fresh.start_sign_in(&w.app("/x")).await)
        .await;
    let handoff = location(&fresh.get_html(&fresh.authorize(&authorize).await).await);
    let moved = handoff.replace("app.example.com", "public.example.com");
    assert_eq!(fresh.get_html(&moved).await.status(), 400);
}
