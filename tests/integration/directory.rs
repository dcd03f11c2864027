//! Okta group membership through the Management API, end to end through the proxy:
//! the mock provider serves sign-in, and its origin serves `/api/v1/…` from the mock
//! Okta org, as one Okta org does.

use std::time::Duration;

use base64::Engine as _;

use crate::support::capture_logs;
use crate::support::signin::{Browser, World};
use portcullis::demo::idp::{IdpOptions, TestUser};
use portcullis::demo::okta::{Failure, MockOkta};

const TOKEN: &str = "00-test-api-token";

struct Org {
    w: World,
    okta: MockOkta,
}

/// `app.example.com/eng` gated on the group *name* engineering, `/id` on the id 00g-eng.
fn gated_routes(up: &str) -> String {
    format!(
        "  - from: http://other.example.com\n    prefix: /eng\n    to: {up}\n    allowed_groups: [engineering]\n\
         \x20 - from: http://other.example.com\n    prefix: /id\n    to: {up}\n    allowed_groups: [00g-eng]\n"
    )
}

async fn org_with_gates(token: &str, extra: &str) -> (Org, crate::support::upstream::Upstream) {
    let up = crate::support::upstream::start("gated").await;
    let okta = MockOkta::start(TOKEN).await;
    let account =
        base64::engine::general_purpose::STANDARD.encode(format!("{{\"api_key\":\"{token}\"}}"));
    let w = World::start_with(
        IdpOptions::default(),
        &format!("idp_service_account: {account}\n{extra}"),
        &gated_routes(&up.url()),
    )
    .await;
    w.idp.behaviour().api_upstream = Some(okta.addr);
    w.ready().await;
    (Org { w, okta }, up)
}

fn eng(o: &Org) -> String {
    o.w.url("other.example.com", "/eng")
}

fn by_id(o: &Org) -> String {
    o.w.url("other.example.com", "/id")
}

async fn signed_in(o: &Org, user: &str) -> Browser {
    o.w.idp
        .set_user(TestUser::new(user).email(&format!("{user}@example.com")));
    let b = o.w.browser();
    let r = b.sign_in(&eng(o)).await;
    assert_eq!(r.status(), 302);
    b
}

#[tokio::test]
async fn groups_by_id_and_by_name_with_one_call_per_page() {
    let (o, _up) = org_with_gates(TOKEN, "idp_provider: okta\n").await;
    o.okta.set_groups(
        "00u-alice",
        &[
            ("00g-eng", "engineering"),
            ("00g-adm", "admins"),
            ("00g-x", "other"),
        ],
    );
    o.okta.set_page_size(1);
    let b = signed_in(&o, "00u-alice").await;
    assert_eq!(
        o.okta.requests(),
        3,
        "three pages, three requests, nothing else"
    );
    assert_eq!(
        o.okta.last_authorization().as_deref(),
        Some(&*format!("SSWS {TOKEN}"))
    );
    assert_eq!(o.okta.last_accept().as_deref(), Some("application/json"));
    assert_eq!(b.get_json(&eng(&o)).await.status(), 200, "by name");
    assert_eq!(b.get_json(&by_id(&o)).await.status(), 200, "by id");
    let user: serde_json::Value = b
        .get_json(&o.w.url("other.example.com", "/.pomerium/user"))
        .await
        .json()
        .await
        .unwrap();
    let groups: Vec<&str> = user["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    for g in [
        "00g-eng",
        "engineering",
        "00g-adm",
        "admins",
        "00g-x",
        "other",
    ] {
        assert!(groups.contains(&g), "{g} in {groups:?}");
    }
    assert_eq!(
        o.okta.requests(),
        3,
        "requests use the cache: no API call per request"
    );

    o.okta.set_groups("00u-bob", &[("00g-x", "other")]);
    let outsider = signed_in(&o, "00u-bob").await;
    assert_eq!(outsider.get_json(&eng(&o)).await.status(), 403);
}

#[tokio::test]
async fn a_groups_claim_is_merged() {
    let (o, _up) = org_with_gates(TOKEN, "idp_provider: okta\n").await;
    o.okta.set_groups("00u-carol", &[]);
    o.w.idp.set_user(
        TestUser::new("00u-carol")
            .email("carol@example.com")
            .groups(["engineering"]),
    );
    let b = o.w.browser();
    b.sign_in(&eng(&o)).await;
    assert_eq!(
        b.get_json(&eng(&o)).await.status(),
        200,
        "from the token's groups claim"
    );
    assert_eq!(b.get_json(&by_id(&o)).await.status(), 403);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_are_waited_out() {
    let (o, _up) = org_with_gates(TOKEN, "idp_provider: okta\n").await;
    o.okta
        .set_groups("00u-alice", &[("00g-eng", "engineering")]);
    o.okta.fail_next_with(
        1,
        Failure::TooManyRequests {
            reset: Some("garbage".into()),
            remaining: Some("0".into()),
        },
    );
    let b = signed_in(&o, "00u-alice").await;
    assert_eq!(o.okta.requests(), 2, "one 429, one retry — no hot loop");
    assert_eq!(b.get_json(&eng(&o)).await.status(), 200);
}

#[tokio::test]
async fn a_bad_api_token_is_one_clear_log_line_and_group_gates_fail_closed() {
    let logs = capture_logs();
    let (o, _up) = org_with_gates("wrong-token", "idp_provider: okta\n").await;
    o.okta
        .set_groups("00u-alice", &[("00g-eng", "engineering")]);
    let b = signed_in(&o, "00u-alice").await;
    let r = b.get_html(&eng(&o)).await;
    assert_eq!(r.status(), 503);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Groups could not be verified")
    );
    assert_eq!(
        b.get_json(&o.w.url("other.example.com", "/.pomerium/user"))
            .await
            .status(),
        200,
        "signed in all the same"
    );
    let second = signed_in(&o, "00u-alice").await;
    assert_eq!(second.get_json(&eng(&o)).await.status(), 503);
    let text = logs.text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("Invalid token provided"))
        .collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        !text.contains("wrong-token"),
        "the token never reaches the log"
    );
}

#[tokio::test(start_paused = true)]
async fn an_outage_keeps_known_groups_for_a_while_then_fails_closed() {
    let (o, _up) = org_with_gates(
        TOKEN,
        "idp_provider: okta\nidp_refresh_directory_interval: 10m\n",
    )
    .await;
    o.okta
        .set_groups("00u-alice", &[("00g-eng", "engineering")]);
    let b = signed_in(&o, "00u-alice").await;
    o.okta.fail_next(1000, 500);
    tokio::time::advance(Duration::from_secs(11 * 60)).await;
    // Due for a refresh: it fails in the background; the known groups stay usable.
    for _ in 0..3 {
        assert_eq!(b.get_json(&eng(&o)).await.status(), 200);
        settle().await;
    }
    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    settle().await;
    assert_eq!(
        b.get_json(&eng(&o)).await.status(),
        503,
        "past 2× the interval: fail closed"
    );
    assert!(
        o.okta.requests() < 20,
        "failures are retried with backoff, not per request"
    );
}

#[tokio::test(start_paused = true)]
async fn a_group_change_applies_within_the_interval_and_on_demand() {
    let (o, _up) = org_with_gates(
        TOKEN,
        "idp_provider: okta\nidp_refresh_directory_interval: 5m\n",
    )
    .await;
    o.okta
        .set_groups("00u-alice", &[("00g-eng", "engineering")]);
    let b = signed_in(&o, "00u-alice").await;
    assert_eq!(b.get_json(&eng(&o)).await.status(), 200);
    o.okta.set_groups("00u-alice", &[]);
    tokio::time::advance(Duration::from_secs(5 * 60 + 5)).await;
    b.get_json(&eng(&o)).await; // starts the background refresh
    settle().await;
    assert_eq!(
        b.get_json(&eng(&o)).await.status(),
        403,
        "removed from the group, no new sign-in needed"
    );

    // The user's own "refresh my groups" button applies a change at once.
    o.okta
        .set_groups("00u-alice", &[("00g-eng", "engineering")]);
    let csrf = refresh_csrf(&o, &b).await;
    assert_eq!(refresh_groups(&o, &b, &csrf).await.status(), 302);
    assert_eq!(b.get_json(&eng(&o)).await.status(), 200);
    assert_eq!(refresh_groups(&o, &b, "x").await.status(), 403);
}

/// The CSRF token of the user page's "Refresh my groups" form.
async fn refresh_csrf(o: &Org, b: &Browser) -> String {
    let page = b
        .get_html(&o.w.url("other.example.com", "/.pomerium/"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Refresh my groups"));
    page.split("refresh_groups\"><input type=\"hidden\" name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// Presses "Refresh my groups" with `csrf`, as a browser.
async fn refresh_groups(o: &Org, b: &Browser, csrf: &str) -> reqwest::Response {
    b.client
        .post(o.w.url("other.example.com", "/.pomerium/refresh_groups"))
        .header("accept", "text/html")
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

/// Lets background refreshes run without moving the paused clock.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn refresh_my_groups_is_throttled_per_session() {
    let (o, _up) = org_with_gates(TOKEN, "idp_provider: okta\n").await;
    o.okta
        .set_groups("00u-alice", &[("00g-eng", "engineering")]);
    let b = signed_in(&o, "00u-alice").await;
    let csrf = refresh_csrf(&o, &b).await;
    let post = || refresh_groups(&o, &b, &csrf);
    let before = o.okta.requests();
    assert_eq!(post().await.status(), 302, "the first one reads");
    let after_first = o.okta.requests();
    assert!(after_first > before);
    // 200 more within the window: none reaches the directory, and each says so.
    for _ in 0..200 {
        let r = post().await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "10");
        assert!(r.text().await.unwrap().contains("moments ago"));
    }
    assert_eq!(o.okta.requests(), after_first, "no directory call");
    // The window is per session: another session of the same user may refresh.
    let other = signed_in(&o, "00u-alice").await;
    let csrf = refresh_csrf(&o, &other).await;
    assert_eq!(refresh_groups(&o, &other, &csrf).await.status(), 302);
}
