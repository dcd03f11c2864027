//! One reading of each request: paths an upstream would read differently, method
//! overrides, tunnelling methods and upgrades, and request framing the client got wrong
//! — refused or cleaned before anything reaches the upstream. Raw sockets throughout,
//! since HTTP clients would normalise these requests themselves.

use crate::support::{
    Echo, TestProxy, client, config_with_routes, public_route, raw, status_of, upstream,
};

/// A route that lets anyone reach `/public` and `/pol/open` only, and one regex route.
async fn gated() -> (TestProxy, upstream::Upstream) {
    let up = upstream::start("a").await;
    let u = up.url();
    let routes = format!(
        "  - from: https://app.example.com\n    to: {u}\n    policy:\n      allow:\n        or:\n          - http_path: {{starts_with: /public}}\n          - http_path: {{starts_with: /pol/open}}\n\
         \x20 - from: https://other.example.com\n    regex: '^/foo/[^/]+/bar$'\n    to: {u}\n    allow_public_unauthenticated_access: true\n"
    );
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    (proxy, up)
}

fn get(host: &str, target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n")
        .into_bytes()
}

#[tokio::test]
async fn paths_an_upstream_reads_otherwise_are_400() {
    let (proxy, _up) = gated().await;
    // What the gate is for.
    let ok = raw(proxy.addr, &get("app.example.com", "/public/page")).await;
    assert_eq!(status_of(&ok), 200, "{ok}");
    let denied = raw(proxy.addr, &get("app.example.com", "/secret")).await;
    assert_eq!(status_of(&denied), 403, "{denied}");
    let named = raw(
        proxy.addr,
        &get("app.example.com", "/public;jsessionid=1/x"),
    )
    .await;
    assert_eq!(
        status_of(&named),
        200,
        "a named segment's parameters are kept: {named}"
    );
    let regex = raw(proxy.addr, &get("other.example.com", "/foo/page/bar")).await;
    assert_eq!(status_of(&regex), 200, "{regex}");

    for (host, target) in [
        ("app.example.com", "/public/..;/secret"),
        ("app.example.com", "/pol/open/..;/secret"),
        ("app.example.com", "/public/.;x=1/../secret"),
        ("app.example.com", "/public/%2e%2e;/secret"),
        ("app.example.com", "/public/%C0%AE%C0%AE/secret"),
        ("app.example.com", "/public/%3F/x"),
        ("other.example.com", "/foo/secret%23/bar"),
    ] {
        let r = raw(proxy.addr, &get(host, target)).await;
        assert_eq!(status_of(&r), 400, "{target}: {r}");
        assert!(
            !r.contains("\"upstream\""),
            "{target} reached the upstream: {r}"
        );
    }
}

#[tokio::test]
async fn method_overrides_never_reach_the_upstream() {
    let up = upstream::start("a").await;
    let proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let r = client(proxy.addr)
        .get(format!("http://app.example.com:{}/", proxy.addr.port()))
        .header("x-http-method-override", "DELETE")
        .header("x-http-method", "PUT")
        .header("X-Method-Override", "PATCH")
        .header("x_http_method_override", "DELETE")
        .send()
        .await
        .unwrap();
    let echo = Echo::from(r).await;
    assert_eq!(echo.json["method"], "GET");
    let names = echo.header_names();
    for gone in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x_http_method_override",
    ] {
        assert!(
            !names.contains(&gone.to_owned()),
            "{gone} reached the upstream: {names:?}"
        );
    }
}
