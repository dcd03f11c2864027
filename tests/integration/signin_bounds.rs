//! Sign-in hardening: bounded callback parsing, endpoints only on their hosts, security
//! headers on our own responses, a refused code as the client's error, the hand-off
//! bound to its browser, duplicate session cookies and unverified emails.

use crate::support::signin::{World, csrf_of, location, set_cookies};
use portcullis::demo::idp::TestUser;

#[tokio::test]
async fn a_flooded_callback_is_refused_at_once() {
    let w = World::start("max_request_header_bytes: 262144\n").await;
    w.ready().await;
    let b = w.browser();
    let authorize = b.start_sign_in(&w.app("/")).await;
    let callback = b.authorize(&authorize).await;
    // 16,000 distinct three-letter names: a 64 KB query.
    let letters = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let name = |i: usize| [i % 62, i / 62 % 62, i / 3844].map(|d| letters[d] as char);
    let flood: String = (0..16_000)
        .map(|i| format!("&{}", String::from_iter(name(i))))
        .collect();
    let r = b.get_html(&format!("{callback}{flood}")).await;
    assert_eq!(r.status(), 400);
    // A few dozen extra parameters are already too many.
    let extra: String = (0..40).map(|i| format!("&p{i}=x")).collect();
    assert_eq!(
        b.get_html(&format!("{callback}{extra}")).await.status(),
        400
    );
    assert_eq!(w.idp.token_requests(), 0, "no code was exchanged");
    // The callback itself still works.
    assert_eq!(b.get_html(&callback).await.status(), 302);
}

#[tokio::test]
async fn a_refused_code_is_a_400_not_a_502() {
    let w = World::start("").await;
    w.ready().await;
    w.idp.behaviour().code_refused = true;
    let r = w.browser().sign_in(&w.app("/")).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("did not accept"), "{html}");
}

#[tokio::test]
async fn endpoints_answer_only_on_route_and_authenticate_hosts() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    // other.example.com resolves to the proxy but is no route host.
    for path in [
        "/.pomerium/",
        "/.pomerium/sign_in",
        "/.pomerium/sign_out",
        "/.pomerium/user",
        "/oauth2/callback?code=x&state=y",
        "/.well-known/pomerium",
        "/.well-known/pomerium/",
        "/.well-known/pomerium/jwks.json",
    ] {
        let r = b.get_html(&w.url("other.example.com", path)).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(set_cookies(&r).is_empty(), "no sign-in started: {path}");
    }
    // Health answers on every host.
    for path in ["/ping", "/healthz", "/readyz"] {
        let r = b.get_html(&w.url("other.example.com", path)).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = b.get_html(&w.app("/.well-known/pomerium")).await;
    assert_eq!(r.status(), 200, "on a route host it is served");
    let r = b.get_html(&w.app("/.well-known/pomerium/jwks.json")).await;
    assert_eq!(r.status(), 200, "the keys too");
}

#[tokio::test]
async fn our_pages_and_redirects_carry_the_security_headers() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    let check = |r: &reqwest::Response, what: &str| {
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "SAMEORIGIN", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors"), "{what}: {csp}");
    };
    check(&b.get_html(&w.app("/")).await, "the sign-in redirect");
    b.sign_in(&w.app("/")).await;
    let r = b.get_html(&w.app("/.pomerium/")).await;
    check(&r, "the user page");
    let r = b.get_html(&w.app("/.pomerium/sign_out")).await;
    check(&r, "the sign-out confirmation");
    let csrf = csrf_of(&r.text().await.unwrap());
    let r = b
        .client
        .post(w.app("/.pomerium/sign_out"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    check(&r, "the sign-out");
    check(&b.get_json(&w.app("/.pomerium/user")).await, "an error");
    check(
        &b.get_html(&w.app("/.well-known/pomerium")).await,
        "discovery",
    );
}

/// A proxy with `authenticate_service_url` on `auth.example.com`.
async fn with_authenticate_host() -> World {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let extra = format!(
        "address: 127.0.0.1:{port}\nauthenticate_service_url: http://auth.example.com:{port}\n"
    );
    let w = World::start_with(Default::default(), &extra, "").await;
    w.ready().await;
    w
}

#[tokio::test]
async fn a_hand_off_works_only_in_the_browser_that_started_the_sign_in() {
    let w = with_authenticate_host().await;
    // The attacker signs in as themselves and keeps the hand-off link.
    w.idp
        .set_user(TestUser::new("mallory").email("mallory@example.com"));
    let attacker = w.browser();
    let r = attacker.get_html(&w.app("/page")).await;
    let binding = set_cookies(&r);
    assert!(
        binding.iter().any(|c| c.starts_with("_pomerium_handoff=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{binding:?}"
    );
    let authorize = attacker.start_sign_in(&location(&r)).await;
    let callback = attacker.authorize(&authorize).await;
    let handoff = location(&attacker.get_html(&callback).await);
    assert!(handoff.contains("/.pomerium/callback/?pomerium_session="));

    // A victim who opens it — fresh, or with a sign-in of their own pending — is refused.
    for victim in [w.browser(), w.browser()] {
        let pending = victim.get_html(&w.app("/mine")).await;
        assert_eq!(pending.status(), 302);
        let r = victim.get_html(&handoff).await;
        assert_eq!(r.status(), 400);
        assert!(set_cookies(&r).is_empty(), "no session cookie");
        assert!(r.text().await.unwrap().contains("another browser"));
        assert_eq!(victim.get_json(&w.app("/page")).await.status(), 401);
    }
    let stranger = w.browser();
    assert_eq!(stranger.get_html(&handoff).await.status(), 400);

    // In the browser that started it, it works, and the binding is cleared.
    let r = attacker.get_html(&handoff).await;
    assert_eq!(location(&r), w.app("/page"));
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("_pomerium_handoff=;") && c.contains("Max-Age=0")),
        "{:?}",
        set_cookies(&r)
    );
    assert_eq!(attacker.get_json(&w.app("/page")).await.status(), 200);
}

#[tokio::test]
async fn one_live_session_among_duplicate_cookies_is_used() {
    let w = World::start("").await;
    w.ready().await;
    let session_cookie = |b: &crate::support::signin::Browser| {
        b.cookies(&w.app("/"))
            .split("; ")
            .find(|c| c.starts_with("_pomerium="))
            .unwrap()
            .to_owned()
    };
    let (alice, bob, gone) = (w.browser(), w.browser(), w.browser());
    alice.sign_in(&w.app("/")).await;
    bob.sign_in(&w.app("/")).await;
    gone.sign_in(&w.app("/")).await;
    let (a, b, g) = (
        session_cookie(&alice),
        session_cookie(&bob),
        session_cookie(&gone),
    );
    // `gone` signs out: its session no longer exists.
    let page = gone.get_html(&w.app("/.pomerium/sign_out")).await;
    let csrf = csrf_of(&page.text().await.unwrap());
    gone.client
        .post(w.app("/.pomerium/sign_out"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .resolve_to_addrs("app.example.com", &[w.proxy.addr])
        .build()
        .unwrap();
    let status = |cookie: String| {
        let req = client
            .get(w.app("/"))
            .header("accept", "application/json")
            .header("cookie", cookie);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(
        status(format!("{g}; {a}")).await,
        200,
        "the live one is used"
    );
    assert_eq!(status(format!("{a}; {g}")).await, 200, "in either order");
    assert_eq!(status(format!("{a}; {a}")).await, 200, "copies are one");
    assert_eq!(
        status(format!("{a}; {b}")).await,
        401,
        "two live sessions: neither is picked"
    );
    assert_eq!(status(g).await, 401);
}

#[tokio::test]
async fn an_unverified_email_does_not_satisfy_email_rules() {
    let up = crate::support::upstream::start("corp").await;
    let routes = format!(
        "  - from: http://other.example.com\n    to: {u}\n    allowed_domains: [example.com]\n",
        u = up.url()
    );
    let w = World::start_with(Default::default(), "", &routes).await;
    w.ready().await;
    w.idp
        .set_user(TestUser::new("00u-eve").email("eve@example.com"));
    let verified = w.browser();
    verified.sign_in(&w.url("other.example.com", "/")).await;
    assert_eq!(
        verified
            .get_json(&w.url("other.example.com", "/"))
            .await
            .status(),
        200
    );

    w.idp.behaviour().email_unverified = true;
    let unverified = w.browser();
    unverified.sign_in(&w.url("other.example.com", "/")).await;
    assert_eq!(
        unverified
            .get_json(&w.url("other.example.com", "/"))
            .await
            .status(),
        403,
        "email_verified: false — the domain is not the user's"
    );
    let me: serde_json::Value = unverified
        .get_json(&w.url("other.example.com", "/.pomerium/user"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_provider_that_refuses_our_client_is_still_a_502() {
    // invalid_client is our configuration against the provider's, not the user's error.
    let opts = portcullis::demo::idp::IdpOptions {
        require_auth_method: Some("client_secret_post"),
        ..Default::default()
    };
    let w = World::start_with(
        opts,
        "idp_token_endpoint_auth_method: client_secret_basic\n",
        "",
    )
    .await;
    w.ready().await;
    assert_eq!(w.browser().sign_in(&w.app("/")).await.status(), 502);
}
