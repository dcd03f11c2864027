//! Forwarding: every route field, header hygiene, errors, websockets, streaming.

use crate::support::{
    self, Echo, TestProxy, client, config_with_routes, public_route, raw, status_of, upstream,
};

#[tokio::test]
async fn forwards_public_routes_and_refuses_protected_ones() {
    let up = upstream::start("a").await;
    let routes = format!(
        "{}  - from: https://private.example.com\n    to: {}\n    allowed_domains: [example.com]\n",
        public_route("public.example.com", &up.url(), ""),
        up.url()
    );
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let port = proxy.addr.port();

    let echo = Echo::from(
        c.get(format!("http://public.example.com:{port}/hello?x=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo.uri(), "/hello?x=1");
    assert_eq!(
        echo.header("host").as_deref(),
        Some(up.addr.to_string().as_str()),
        "Host rewritten to the upstream"
    );

    // API client: 401 JSON with a request id.
    let r = c
        .get(format!("http://private.example.com:{port}/"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str());
    // Browser: a page saying sign-in is not configured, never the upstream.
    let r = c
        .get(format!("http://private.example.com:{port}/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(text.contains("sign-in is not configured"), "{text}");
    assert!(!text.contains("\"upstream\""));
}

#[tokio::test]
async fn unknown_host_or_path_is_404_without_contacting_anything() {
    let up = upstream::start("a").await;
    let routes = public_route("public.example.com", &up.url(), "    prefix: /app\n");
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let port = proxy.addr.port();
    for url in [
        format!("http://other.example.com:{port}/app"),
        format!("http://public.example.com:{port}/nope"),
    ] {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 404, "{url}");
        assert!(r.headers().contains_key("x-request-id"));
        assert!(r.headers().get("x-upstream").is_none());
    }
}

#[tokio::test]
async fn health_endpoints_answer_on_any_host() {
    let proxy = TestProxy::start("insecure_server: true\n").await;
    let c = client(proxy.addr);
    for path in ["/ping", "/healthz"] {
        let r = c.get(proxy.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "OK");
        assert_eq!(c.head(proxy.url(path)).send().await.unwrap().status(), 200);
        assert_eq!(c.post(proxy.url(path)).send().await.unwrap().status(), 405);
    }
}

#[tokio::test]
async fn path_matching_and_rewrites() {
    let a = upstream::start("a").await;
    let b = upstream::start("b").await;
    let routes = [
        public_route("app.example.com", &a.url(), "    path: /exact\n    prefix_rewrite: /renamed\n"),
        public_route("app.example.com", &a.url(), "    prefix: /api/\n    prefix_rewrite: /v1/\n"),
        public_route(
            "app.example.com",
            &b.url(),
            "    regex: '/svc/([a-z]+)/.*'\n    regex_rewrite_pattern: '^/svc/([a-z]+)/(.*)$'\n    regex_rewrite_substitution: '/\\2?from=\\1'\n",
        ),
        public_route("app.example.com", &format!("{}/base", b.url()), "    prefix: /mounted\n"),
        public_route("app.example.com", &a.url(), ""),
    ]
    .concat();
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let port = proxy.addr.port();
    let get = |path: &str| c.get(format!("http://app.example.com:{port}{path}")).send();
    let cases = [
        ("/exact", "a", "/renamed"),
        ("/exact/more", "a", "/exact/more"),
        ("/api/users?id=7", "a", "/v1/users?id=7"),
        ("/svc/alpha/x/y", "b", "/x/y%3Ffrom=alpha"),
        ("/mounted/page", "b", "/base/page"),
        ("/svc/ALPHA/x", "a", "/svc/ALPHA/x"),
    ];
    for (path, upstream, want) in cases {
        let echo = Echo::from(get(path).await.unwrap()).await;
        assert_eq!((echo.upstream(), echo.uri()), (upstream, want), "{path}");
    }
}

#[tokio::test]
async fn weighted_upstreams_share_the_load() {
    let a = upstream::start("a").await;
    let b = upstream::start("b").await;
    let routes = format!(
        "  - from: https://app.example.com\n    to: ['{},3', '{},1']\n    allow_public_unauthenticated_access: true\n",
        a.url(),
        b.url()
    );
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let mut seen = Vec::new();
    for _ in 0..8 {
        let echo = Echo::from(
            c.get(format!("http://app.example.com:{}/", proxy.addr.port()))
                .send()
                .await
                .unwrap(),
        )
        .await;
        seen.push(echo.upstream().to_owned());
    }
    assert_eq!(seen.iter().filter(|s| *s == "a").count(), 6);
    assert_eq!(seen.iter().filter(|s| *s == "b").count(), 2);
}

#[tokio::test]
async fn host_header_options() {
    let up = upstream::start("a").await;
    let routes = [
        public_route(
            "app.example.com",
            &up.url(),
            "    prefix: /preserve\n    preserve_host_header: true\n",
        ),
        public_route(
            "app.example.com",
            &up.url(),
            "    prefix: /rewrite\n    host_rewrite: internal.local\n",
        ),
    ]
    .concat();
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let port = proxy.addr.port();
    let echo = Echo::from(
        c.get(format!("http://app.example.com:{port}/preserve"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo.header("host"), Some(format!("app.example.com:{port}")));
    let echo = Echo::from(
        c.get(format!("http://app.example.com:{port}/rewrite"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo.header("host").as_deref(), Some("internal.local"));
    assert_eq!(
        echo.header("x-forwarded-host"),
        Some(format!("app.example.com:{port}"))
    );
}

#[tokio::test]
async fn request_and_response_header_settings() {
    let up = upstream::start("a").await;
    let routes = [
        public_route(
            "app.example.com",
            &up.url(),
            "    prefix: /custom\n    set_request_headers: {X-Team: blue, X-Drop: replaced}\n    remove_request_headers: [X-Drop, X-Private]\n    set_response_headers: {X-Frame-Options: DENY, X-Route: custom}\n",
        ),
        public_route("app.example.com", &up.url(), "    prefix: /bare\n    set_response_headers: {disable: true}\n"),
        public_route("app.example.com", &up.url(), ""),
    ]
    .concat();
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let port = proxy.addr.port();
    let r = c
        .get(format!("http://app.example.com:{port}/custom"))
        .header("x-drop", "1")
        .header("x-private", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["x-route"], "custom");
    assert_eq!(
        r.headers()["x-xss-protection"],
        "1; mode=block",
        "global defaults still apply"
    );
    let echo = Echo::from(r).await;
    assert_eq!(echo.header("x-team").as_deref(), Some("blue"));
    assert_eq!(
        echo.header("x-drop").as_deref(),
        Some("replaced"),
        "set wins over remove"
    );
    assert_eq!(echo.header("x-private"), None);

    let r = c
        .get(format!("http://app.example.com:{port}/bare"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-frame-options").is_none());
    let r = c
        .get(format!("http://app.example.com:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "no HSTS without TLS"
    );
}

#[tokio::test]
async fn header_hygiene() {
    let up = upstream::start("a").await;
    let routes = [public_route("app.example.com", &up.url(), "")].concat();
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let port = proxy.addr.port();
    let r = c
        .get(format!("http://app.example.com:{port}/"))
        .header("connection", "x-nominated")
        .header("x-nominated", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9v")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "for=6.6.6.6")
        .header("x-real-ip", "6.6.6.6")
        .header("x_forwarded_for", "6.6.6.6")
        .header("x-pomerium-jwt-assertion", "forged")
        .header("X_Pomerium_Claim_Email", "forged@evil")
        .header("cookie", "_pomerium=stolen; app=1; _pomerium_csrf=x")
        .send()
        .await
        .unwrap();
    let echo = Echo::from(r).await;
    let names = echo.header_names();
    for gone in [
        "x-nominated",
        "keep-alive",
        "proxy-authorization",
        "forwarded",
        "x-real-ip",
        "x_forwarded_for",
        "x-pomerium-jwt-assertion",
        "x_pomerium_claim_email",
    ] {
        assert!(
            !names.contains(&gone.to_owned()),
            "{gone} reached the upstream: {names:?}"
        );
    }
    assert_eq!(echo.header_all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        echo.header("x-forwarded-host"),
        Some(format!("app.example.com:{port}"))
    );
    assert_eq!(echo.header("cookie").as_deref(), Some("app=1"));
    assert_eq!(echo.header("x-request-id").map(|v| v.len()), Some(16));

    // Response side: hop-by-hop headers and Set-Cookie for our cookie are dropped.
    let r = c
        .get(format!("http://app.example.com:{port}/__hop"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-up-private").is_none());
    assert!(r.headers().get("keep-alive").is_none());
    let r = c
        .get(format!("http://app.example.com:{port}/__cookies"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies, ["app=1; Path=/"]);
}

#[tokio::test]
async fn trusted_proxies_keep_forwarded_headers() {
    let up = upstream::start("a").await;
    let yaml = format!(
        "trusted_proxies: [127.0.0.0/8]\n{}",
        config_with_routes(&public_route("app.example.com", &up.url(), ""))
    );
    let proxy = TestProxy::start(&yaml).await;
    let c = client(proxy.addr);
    let r = c
        .get(format!("http://app.example.com:{}/", proxy.addr.port()))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let echo = Echo::from(r).await;
    assert_eq!(
        echo.header("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("https"));
}

#[tokio::test]
async fn upstream_refused_is_502() {
    // A port that was just free: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let routes = public_route("app.example.com", &format!("http://{dead}"), "");
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let r = client(proxy.addr)
        .get(format!("http://app.example.com:{}/", proxy.addr.port()))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains(&id), "the page shows the request id");
    assert!(
        !body.contains(&dead.to_string()),
        "no internal detail on the page"
    );
}

#[tokio::test(start_paused = true)]
async fn upstream_timeout_is_504() {
    let up = upstream::start("a").await;
    let routes = public_route("app.example.com", &up.url(), "    timeout: 2s\n");
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let r = raw(
        proxy.addr,
        b"GET /__hang HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), 504, "{r}");
    assert!(r.contains("request_id"));
}

#[tokio::test(start_paused = true)]
async fn default_upstream_timeout_applies_when_the_route_sets_none() {
    let up = upstream::start("a").await;
    let yaml = format!(
        "default_upstream_timeout: 3s\n{}",
        config_with_routes(&public_route("app.example.com", &up.url(), ""))
    );
    let proxy = TestProxy::start(&yaml).await;
    let r = raw(
        proxy.addr,
        b"GET /__hang HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), 504, "{r}");
}

#[tokio::test]
async fn responses_stream() {
    let up = upstream::start("a").await;
    let proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let mut r = client(proxy.addr)
        .get(format!(
            "http://app.example.com:{}/__stream",
            proxy.addr.port()
        ))
        .send()
        .await
        .unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        chunks.push(chunk);
    }
    assert_eq!(chunks.concat(), b"one two three");
}

#[tokio::test]
async fn request_bodies_reach_the_upstream() {
    let up = upstream::start("a").await;
    let proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let body = "x".repeat(300_000);
    let r = client(proxy.addr)
        .post(format!(
            "http://app.example.com:{}/upload",
            proxy.addr.port()
        ))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let echo = Echo::from(r).await;
    assert_eq!(echo.json["method"], "POST");
    assert_eq!(echo.json["body"].as_str().unwrap().len(), body.len());
}

#[tokio::test]
async fn websockets_pass_only_when_allowed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = upstream::start("a").await;
    let routes = [
        public_route("ws.example.com", &up.url(), "    allow_websockets: true\n"),
        public_route("app.example.com", &up.url(), ""),
    ]
    .concat();
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let handshake = |host: &str| {
        format!(
            "GET /__ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(handshake("ws.example.com").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping through the tunnel").await.unwrap();
    let mut echoed = vec![0u8; 23];
    s.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, b"ping through the tunnel");

    // Not allowed: the upgrade headers are stripped, the upstream sees a plain request.
    let r = raw(proxy.addr, handshake("app.example.com").as_bytes()).await;
    assert_eq!(status_of(&r), 200, "{r}");
    assert!(
        !r.contains("\"upgrade\""),
        "upgrade header must not reach the upstream: {r}"
    );
}

#[tokio::test]
async fn h2c_upstreams() {
    let up = upstream::start("a").await;
    let routes = public_route("app.example.com", &format!("h2c://{}", up.addr), "");
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let echo = Echo::from(
        client(proxy.addr)
            .get(format!("http://app.example.com:{}/", proxy.addr.port()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo.json["version"], "HTTP/2.0");
}

#[tokio::test]
async fn cors_preflight_passes_only_where_allowed() {
    let up = upstream::start("a").await;
    let routes = format!(
        "  - from: https://app.example.com\n    to: {}\n    cors_allow_preflight: true\n",
        up.url()
    );
    let proxy = TestProxy::start(&config_with_routes(&routes)).await;
    let c = client(proxy.addr);
    let url = format!("http://app.example.com:{}/api", proxy.addr.port());
    let preflight = c
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://web.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(Echo::from(preflight).await.json["method"], "OPTIONS");
    let plain = c
        .request(reqwest::Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.status(),
        403,
        "nothing else allows it: denied, no sign-in offered"
    );
    assert_eq!(c.get(&url).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn access_log_has_exactly_one_line_per_request_without_query_values() {
    let logs = support::capture_logs();
    let up = upstream::start("a").await;
    let proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let c = client(proxy.addr);
    let r = c
        .get(format!(
            "http://app.example.com:{}/cb?code=SECRET123&state=s",
            proxy.addr.port()
        ))
        .send()
        .await
        .unwrap();
    let id = support::Echo::from(r).await.header("x-request-id").unwrap();
    let r = c
        .get(format!(
            "http://other.example.com:{}/missing",
            proxy.addr.port()
        ))
        .send()
        .await
        .unwrap();
    let missing_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("portcullis::access"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains(&id)
            && lines[0].contains("status=200")
            && lines[0].contains("path=\"/cb\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("?code&state") && lines[0].contains("route=\"routes[0]\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&missing_id) && lines[1].contains("status=404"),
        "{}",
        lines[1]
    );
    assert!(
        !text.contains("SECRET123"),
        "query values never reach the log"
    );
}
