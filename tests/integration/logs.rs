//! Logs and decisions: attacker-controlled text never starts a log line; query values
//! never reach the access log.

use crate::support::signin::World;
use crate::support::{TestProxy, capture_logs, config_with_routes, public_route, raw, upstream};

#[tokio::test]
async fn a_provider_error_cannot_forge_a_log_line() {
    let logs = capture_logs();
    let w = World::start("log_level: debug\n").await;
    w.ready().await;
    let b = w.browser();
    let authorize = b.start_sign_in(&w.app("/")).await;
    let url = reqwest::Url::parse(&authorize).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let mut callback = reqwest::Url::parse(&param("redirect_uri")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("state", &param("state"))
        .append_pair(
            "error",
            "access_denied\n2026-01-01T00:00:00Z  INFO portcullis::access: FORGED status=200\r",
        );
    let r = b.get_html(callback.as_str()).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let text = logs.text();
    assert!(
        text.contains("access_denied\\n2026"),
        "the error is logged, escaped: {text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("2026-01-01")),
        "a forged line: {text}"
    );
    assert!(!text.contains('\r'));
}

#[tokio::test]
async fn a_bare_query_item_is_a_value_and_is_not_logged() {
    let logs = capture_logs();
    let up = upstream::start("a").await;
    let proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let r = raw(
        proxy.addr,
        b"GET /x?TOPSECRETTOKEN&name=VALUE1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("portcullis::access"))
        .unwrap_or_else(|| panic!("no access line: {text}"));
    assert!(line.contains("?-&name"), "{line}");
    assert!(
        !text.contains("TOPSECRETTOKEN") && !text.contains("VALUE1"),
        "{text}"
    );
}

#[tokio::test]
async fn the_authorize_line_names_the_rule_and_criterion_of_a_deny() {
    let logs = capture_logs();
    let up = upstream::start("a").await;
    let routes = format!(
        "  - from: https://app.example.com\n    to: {}\n    policy:\n      allow:\n        and:\n          - http_path: {{starts_with: /public}}\n",
        up.url()
    );
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let r = raw(
        proxy.addr,
        b"GET /secret HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("authorize") && l.contains("decision=\"deny\""))
        .unwrap_or_else(|| panic!("no authorize line: {text}"));
    assert!(
        line.contains(
            r#"denied: allow rule 1 (policy): http_path starts_with \"/public\" — another path"#
        ) || line.contains(
            "denied: allow rule 1 (policy): http_path starts_with \"/public\" — another path"
        ),
        "{line}"
    );
}
