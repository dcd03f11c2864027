//! Sign-in against the mock provider: the redirect, the callback and every way it must
//! refuse, ID token validation, key rotation, discovery, and what never reaches a log.

use crate::support::signin::{World, location, set_cookies};
use crate::support::{Echo, capture_logs};
use portcullis::demo::idp::{IdpOptions, TestUser};

#[tokio::test]
async fn browsers_are_redirected_and_api_clients_get_401() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    let r = b.get_html(&w.app("/docs?page=2")).await;
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&format!("{}/authorize?", w.idp.base_url())),
        "{authorize}"
    );
    let q: Vec<(String, String)> = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
    assert!(get("code_challenge").is_some() && get("nonce").is_some() && get("state").is_some());
    assert_eq!(
        get("scope").as_deref(),
        Some("openid profile email offline_access")
    );
    assert_eq!(get("redirect_uri"), Some(w.app("/oauth2/callback")));
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 1);
    assert!(
        cookies[0].starts_with("_pomerium_state_")
            && cookies[0].contains("HttpOnly")
            && cookies[0].contains("SameSite=Lax")
            && cookies[0].contains("Max-Age=600"),
        "{}",
        cookies[0]
    );
    assert!(
        !cookies[0].contains(&get("state").unwrap()),
        "the state cookie is sealed, not the state in clear"
    );

    let r = b.get_json(&w.app("/docs")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], 401);
}

#[tokio::test]
async fn sign_in_reaches_the_app_and_sets_a_safe_cookie() {
    let w = World::start("").await;
    w.ready().await;
    w.idp.set_user(
        TestUser::new("00u-alice")
            .email("alice@example.com")
            .name("Alice <Admin>")
            .groups(["admins", "00g-eng"]),
    );
    let b = w.browser();
    let r = b.sign_in(&w.app("/docs?page=2")).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        w.app("/docs?page=2"),
        "back to where the user started"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("_pomerium="))
        .expect("session cookie");
    assert!(
        session.contains("; Path=/")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Domain="), "host-only");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("_pomerium_state_") && c.contains("Max-Age=0")),
        "state cookie cleared"
    );
    assert!(
        w.idp.last_token_request().unwrap().code_verifier_present,
        "PKCE verifier sent"
    );

    let echo = Echo::from(b.get_html(&w.app("/docs?page=2")).await).await;
    assert_eq!(echo.uri(), "/docs?page=2");
    let user: serde_json::Value = b
        .get_json(&w.app("/.pomerium/user"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["sub"], "00u-alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["groups"], serde_json::json!(["00g-eng", "admins"]));
    let page = b.get_html(&w.app("/.pomerium/")).await;
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Alice &lt;Admin&gt;") && !html.contains("Alice <Admin>"),
        "escaped"
    );
    assert!(
        html.contains("alice@example.com") && html.contains("00g-eng") && html.contains("Sign out")
    );
}

#[tokio::test]
async fn every_sign_in_gets_its_own_session() {
    let w = World::start("").await;
    w.ready().await;
    let first = w.browser();
    let second = w.browser();
    first.sign_in(&w.app("/")).await;
    second.sign_in(&w.app("/")).await;
    assert_ne!(first.cookies(&w.app("/")), second.cookies(&w.app("/")));
    // Ending the second session leaves the first alone: two records, two ids.
    let page = second
        .get_html(&w.app("/.pomerium/sign_out"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = second
        .client
        .post(w.app("/.pomerium/sign_out"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(second.get_json(&w.app("/")).await.status(), 401);
    assert_eq!(first.get_json(&w.app("/")).await.status(), 200);
}

#[tokio::test]
async fn the_callback_refuses_what_it_must() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();

    // No state at all, and a state this browser never started.
    assert_eq!(
        b.get_html(&w.app("/oauth2/callback?code=x")).await.status(),
        400
    );
    let authorize = b.start_sign_in(&w.app("/")).await;
    let callback = b.authorize(&authorize).await;
    let stranger = w.browser();
    assert_eq!(
        stranger.get_html(&callback).await.status(),
        400,
        "state cookie missing"
    );
    // A tampered state.
    let tampered = callback.replacen("state=", "state=x", 1);
    assert_eq!(b.get_html(&tampered).await.status(), 400);
    // Duplicate parameters.
    assert_eq!(
        b.get_html(&format!("{callback}&code=again")).await.status(),
        400
    );
    // The real one works once; a replay (even with the state cookie put back) does not.
    let state_cookie = b
        .cookies(&w.app("/"))
        .split("; ")
        .find(|c| c.starts_with("_pomerium_state_"))
        .unwrap()
        .to_owned();
    assert_eq!(b.get_html(&callback).await.status(), 302);
    b.jar
        .add_cookie_str(&state_cookie, &w.app("/").parse().unwrap());
    let r = b.get_html(&callback).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("already used"));
}

#[tokio::test]
async fn a_code_that_fails_pkce_is_refused() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    // Two sign-ins in one browser: A's code presented with B's state (and so B's verifier).
    let a = b.authorize(&b.start_sign_in(&w.app("/a")).await).await;
    let bb = b.authorize(&b.start_sign_in(&w.app("/b")).await).await;
    let code_a = reqwest::Url::parse(&a)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut mixed = reqwest::Url::parse(&bb).unwrap();
    let pairs: Vec<(String, String)> = mixed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                code_a.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    mixed.query_pairs_mut().clear().extend_pairs(pairs);
    let r = b.get_html(mixed.as_str()).await;
    assert_eq!(
        r.status(),
        400,
        "the provider refused the code: the client's error"
    );
    assert!(r.text().await.unwrap().contains("did not accept"));
    assert_eq!(b.get_json(&w.app("/")).await.status(), 401, "no session");
}

#[tokio::test]
async fn provider_errors_are_shown_escaped() {
    let w = World::start("").await;
    w.ready().await;
    w.idp.behaviour().authorize_error = Some("access_denied".into());
    let b = w.browser();
    let r = b.sign_in(&w.app("/")).await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Sign-in refused") && html.contains("Sign in again"),
        "{html}"
    );
    assert!(
        !html.contains("<script>"),
        "the provider's text is escaped: {html}"
    );
}

#[tokio::test]
async fn id_tokens_are_validated_strictly() {
    type Tweak = fn(&mut portcullis::demo::idp::Behaviour);
    let refused: [(&str, Tweak); 11] = [
        ("wrong nonce", |b| b.id_token_wrong_nonce = true),
        ("expired", |b| b.id_token_expired = true),
        ("wrong issuer", |b| b.id_token_wrong_issuer = true),
        ("alg none", |b| b.id_token_alg_none = true),
        ("HS256 with the public key", |b| {
            b.id_token_hs256_with_public_key = true
        }),
        ("bad signature", |b| b.id_token_bad_signature = true),
        ("untrusted extra audience", |b| {
            b.id_token_extra_audience = Some("someone-else".into())
        }),
        ("azp of another client", |b| {
            b.id_token_azp = Some("someone-else".into())
        }),
        ("issued in the future", |b| b.id_token_iat_offset = 3600),
        ("not valid yet", |b| b.id_token_nbf_offset = Some(3600)),
        ("userinfo for another subject", |b| {
            b.userinfo_sub = Some("someone-else".into())
        }),
    ];
    let w = World::start("").await;
    w.ready().await;
    for (what, tweak) in refused {
        *w.idp.behaviour() = Default::default();
        tweak(&mut w.idp.behaviour());
        let b = w.browser();
        let r = b.sign_in(&w.app("/")).await;
        assert_eq!(r.status(), 400, "{what}");
        assert_eq!(
            b.get_json(&w.app("/")).await.status(),
            401,
            "{what}: no session"
        );
    }
    // Within the allowed clock skew: accepted.
    *w.idp.behaviour() = Default::default();
    w.idp.behaviour().id_token_iat_offset = 30;
    assert_eq!(w.browser().sign_in(&w.app("/")).await.status(), 302);
}

#[tokio::test]
async fn rotated_keys_are_fetched_once_and_unknown_kids_cannot_hammer() {
    let w = World::start("").await;
    w.ready().await;
    assert_eq!(w.idp.jwks_fetches(), 1);
    w.idp.rotate_keys();
    w.idp.behaviour().jwks_only_current_key = true;
    assert_eq!(
        w.browser().sign_in(&w.app("/")).await.status(),
        302,
        "new key fetched on demand"
    );
    assert_eq!(w.idp.jwks_fetches(), 2);
    w.idp.behaviour().id_token_unknown_kid = true;
    for _ in 0..5 {
        assert_eq!(w.browser().sign_in(&w.app("/")).await.status(), 400);
    }
    assert_eq!(w.idp.jwks_fetches(), 2, "at most one refetch a minute");
}

#[tokio::test]
async fn the_issuer_must_match_exactly() {
    let opts = IdpOptions {
        issuer_override: Some("{base}/".into()),
        ..Default::default()
    };
    let w = World::start_with(opts, "", "").await;
    let b = w.browser();
    let r = b.get_html(&w.app("/")).await;
    assert_eq!(
        r.status(),
        503,
        "protected routes wait for a usable provider"
    );
    assert!(r.text().await.unwrap().contains("cannot be reached"));
    assert_eq!(
        b.get_html(&w.url("public.example.com", "/")).await.status(),
        200,
        "public routes still work"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_provider_at_start_is_retried() {
    let w = World::start_prepared(IdpOptions::default(), "", "", |idp| {
        idp.behaviour().discovery_unavailable = true
    })
    .await;
    let b = w.browser();
    assert_eq!(
        b.get_html(&w.app("/")).await.status(),
        503,
        "the first attempt at start failed"
    );
    assert_eq!(
        b.get_html(&w.url("public.example.com", "/")).await.status(),
        200,
        "public routes are served"
    );
    w.idp.behaviour().discovery_unavailable = false;
    tokio::time::sleep(std::time::Duration::from_secs(70)).await;
    assert_eq!(
        b.get_html(&w.app("/")).await.status(),
        302,
        "discovered by a background retry"
    );
}

#[tokio::test]
async fn at_most_eight_sign_ins_are_pending_per_browser() {
    let w = World::start("").await;
    w.ready().await;
    let b = w.browser();
    for i in 0..12 {
        b.start_sign_in(&w.app(&format!("/{i}"))).await;
    }
    let states = b
        .cookies(&w.app("/"))
        .split("; ")
        .filter(|c| c.starts_with("_pomerium_state_"))
        .count();
    assert_eq!(states, 8);
}

#[tokio::test]
async fn codes_tokens_and_cookies_never_reach_the_log() {
    let logs = capture_logs();
    let w = World::start("log_level: debug\n").await;
    w.ready().await;
    let b = w.browser();
    let authorize = b.start_sign_in(&w.app("/")).await;
    let callback = b.authorize(&authorize).await;
    let r = b.get_html(&callback).await;
    assert_eq!(r.status(), 302);
    b.get_html(&w.app("/")).await;
    let text = logs.text();
    let url = reqwest::Url::parse(&callback).unwrap();
    for (k, v) in url.query_pairs() {
        if k == "code" || k == "state" {
            assert!(!text.contains(v.as_ref()), "{k} leaked into the log");
        }
    }
    let cookie = b.cookies(&w.app("/"));
    let session_value = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("_pomerium="))
        .unwrap();
    assert!(!text.contains(session_value), "cookie value leaked");
    assert!(!text.contains("s3cret") && !text.contains(crate::support::signin::SECRET));
    assert!(text.contains("portcullis::access"), "logging was captured");
}

#[tokio::test]
async fn the_subject_is_the_email_when_the_provider_sends_only_openid() {
    let routes = "  - from: http://other.example.com\n    to: http://127.0.0.1:9\n    allowed_users: [bob@example.com]\n";
    let w = World::start_with(IdpOptions::default(), "idp_scopes: [openid]\n", routes).await;
    w.ready().await;
    w.idp.set_user(TestUser {
        sub: "bob@example.com".into(),
        email: None,
        name: None,
        groups: vec![],
    });
    let b = w.browser();
    let authorize = b.start_sign_in(&w.url("other.example.com", "/")).await;
    assert!(
        authorize.contains("scope=openid&") || authorize.ends_with("scope=openid"),
        "{authorize}"
    );
    let r = b.get_html(&b.authorize(&authorize).await).await;
    assert_eq!(r.status(), 302);
    let user: serde_json::Value = b
        .get_json(&w.url("other.example.com", "/.pomerium/user"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["email"], "bob@example.com");
    // allowed_users matches it: the request is authorized (the upstream at :9 is down → 502).
    assert_eq!(
        b.get_json(&w.url("other.example.com", "/")).await.status(),
        502
    );
}
