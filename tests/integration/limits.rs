//! Request-target normalisation and connection limits, with raw HTTP/1.1 bytes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestProxy, config_with_routes, public_route, raw, status_of, upstream};

async fn proxy_with(extra_global: &str) -> (TestProxy, upstream::Upstream) {
    let up = upstream::start("a").await;
    let routes = [
        public_route("app.example.com", &up.url(), "    prefix: /public\n"),
        format!(
            "  - from: https://app.example.com\n    to: {}\n    prefix: /admin\n",
            up.url()
        ),
        public_route("app.example.com", &up.url(), ""),
    ]
    .concat();
    (
        TestProxy::start(&format!("{extra_global}{}", config_with_routes(&routes))).await,
        up,
    )
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\n\r\n")
        .into_bytes()
}

fn echoed_uri(response: &str) -> String {
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not an echo: {response}"));
    json["uri"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn dot_segments_and_encodings_are_resolved_before_routing() {
    let (proxy, _up) = proxy_with("").await;
    // Each of these would reach /admin upstream if the router and the upstream disagreed.
    for target in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/./../admin",
        "//admin",
        "/%61dmin",
    ] {
        let r = raw(proxy.addr, &get(target)).await;
        assert_eq!(
            status_of(&r),
            403,
            "{target} must be treated as /admin (which allows nobody): {r}"
        );
    }
    let r = raw(proxy.addr, &get("/public/a/../b//c/./d")).await;
    assert_eq!(echoed_uri(&r), "/public/b/c/d");
}

#[tokio::test]
async fn dangerous_paths_are_rejected_with_400() {
    let (proxy, _up) = proxy_with("").await;
    for target in [
        "/public/..%2Fadmin",
        "/public%2fx",
        "/public/%5C..",
        "/public\\..\\admin",
        "/public/%00",
    ] {
        let r = raw(proxy.addr, &get(target)).await;
        let status = status_of(&r);
        assert_eq!(status, 400, "{target}: {r}");
    }
}

#[tokio::test]
async fn a_raw_fragment_never_splits_router_and_upstream() {
    // The HTTP/1 parser cuts a raw `#…` off the target before anything else sees it, so the
    // router and the upstream always see the same, fragment-free path.
    let (proxy, _up) = proxy_with("").await;
    let r = raw(proxy.addr, &get("/public/x#/../../admin")).await;
    assert_eq!(echoed_uri(&r), "/public/x");
    let r = raw(proxy.addr, &get("/admin#/../public")).await;
    assert_eq!(status_of(&r), 403, "{r}");
    // An encoded `#` is refused: a decoding upstream would cut the path there.
    let r = raw(proxy.addr, &get("/public/a%23b")).await;
    assert_eq!(status_of(&r), 400, "{r}");
}

#[tokio::test]
async fn absolute_form_authority_wins_over_host() {
    let (proxy, _up) = proxy_with("").await;
    let r = raw(
        proxy.addr,
        b"GET http://app.example.com/public/x HTTP/1.1\r\nHost: other.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(echoed_uri(&r), "/public/x");
    let r = raw(
        proxy.addr,
        b"GET http://other.example.com/public/x HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), 404);
    let r = raw(
        proxy.addr,
        b"GET /public/x HTTP/1.1\r\nHost: APP.Example.COM.\r\n\r\n",
    )
    .await;
    assert_eq!(
        echoed_uri(&r),
        "/public/x",
        "host is case-folded and the trailing dot dropped"
    );
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let (proxy, _up) = proxy_with("max_request_header_bytes: 16384\n").await;
    let big = "a".repeat(20_000);
    let r = raw(
        proxy.addr,
        format!("GET /public HTTP/1.1\r\nHost: app.example.com\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&r), 431, "{r}");
    let ok = "a".repeat(8_000);
    let r = raw(
        proxy.addr,
        format!("GET /public HTTP/1.1\r\nHost: app.example.com\r\nX-Big: {ok}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&r), 200);
}

#[tokio::test]
async fn conflicting_lengths_are_rejected() {
    let (proxy, _up) = proxy_with("").await;
    let r = raw(proxy.addr, b"POST /public HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd").await;
    assert_eq!(status_of(&r), 400, "{r}");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_cannot_smuggle() {
    // RFC 9112 §6.3: Transfer-Encoding wins, Content-Length is dropped before forwarding,
    // and the connection is closed after the response, so no second request can hide in
    // the body. Both header orders behave the same.
    let (proxy, _up) = proxy_with("").await;
    for request in [
        &b"POST /public HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: app.example.com\r\n\r\n"[..],
        &b"POST /public HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: app.example.com\r\n\r\n"[..],
    ] {
        let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "exactly one response, then close: {text}");
        assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
        let body: serde_json::Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["body"], "abc");
        let headers = body["headers"].as_array().unwrap();
        assert!(!headers.iter().any(|h| h[0] == "content-length" && h[1] == "3" && headers.iter().any(|t| t[0] == "transfer-encoding")));
    }
}

#[tokio::test]
async fn missing_or_duplicate_host_is_400() {
    let (proxy, _up) = proxy_with("").await;
    let r = raw(
        proxy.addr,
        b"GET /public HTTP/1.1\r\nHost: app.example.com\r\nHost: other.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), 400, "{r}");
}

#[tokio::test(start_paused = true)]
async fn slow_request_heads_are_cut_off() {
    let (proxy, _up) = proxy_with("timeout_read_header: 10s\n").await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET /public HTTP/1.1\r\nHost: app.exa")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed() {
    let (proxy, _up) = proxy_with("timeout_idle: 60s\ntimeout_read_header: 0\n").await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&get("/public")).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(59) && waited <= Duration::from_secs(61),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn at_max_connections_accepting_pauses_until_one_closes() {
    let (proxy, _up) = proxy_with("max_connections: 2\n").await;
    let first = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    second.write_all(&get("/public")).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = second.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);
    // A third connection waits in the kernel's backlog: nobody answers it.
    let mut third = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    third.write_all(&get("/public")).await.unwrap();
    let unanswered = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await;
    assert!(unanswered.is_err(), "served beyond the cap");
    // One closes: the third is accepted and served.
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a place freed")
        .unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);
}

#[tokio::test]
async fn beyond_upstream_max_connections_requests_get_503() {
    let (proxy, up) = proxy_with("upstream_max_connections: 1\n").await;
    let addr = proxy.addr;
    let held = tokio::spawn(async move { status_of(&raw(addr, &get("/__gate")).await) });
    up.gate.arrived.notified().await;
    let r = raw(proxy.addr, &get("/public/x")).await;
    assert_eq!(status_of(&r), 503, "{r}");
    assert!(r.contains("Application busy"), "{r}");
    up.gate.release.notify_one();
    assert_eq!(held.await.unwrap(), 200);
    // The place is free again.
    let r = raw(proxy.addr, &get("/public/x")).await;
    assert_eq!(status_of(&r), 200, "{r}");
}
