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

/// A public route with WebSockets and one without.
async fn websockets() -> (TestProxy, upstream::Upstream) {
    let up = upstream::start("a").await;
    let routes = [
        public_route("ws.example.com", &up.url(), "    allow_websockets: true\n"),
        public_route("app.example.com", &up.url(), ""),
    ]
    .concat();
    (TestProxy::start(&config_with_routes(&routes)).await, up)
}

#[tokio::test]
async fn trace_and_connect_are_405() {
    let (proxy, _up) = websockets().await;
    for host in ["app.example.com", "ws.example.com"] {
        for request in [
            format!("TRACE / HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            format!("CONNECT / HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        ] {
            let r = raw(proxy.addr, request.as_bytes()).await;
            assert_eq!(status_of(&r), 405, "{request}: {r}");
        }
        let authority_form = format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n");
        let r = raw(proxy.addr, authority_form.as_bytes()).await;
        assert!(
            (400..500).contains(&status_of(&r)) && !r.contains("\"upstream\""),
            "{r}"
        );
    }
}

#[tokio::test]
async fn only_a_completed_websocket_handshake_opens_a_tunnel() {
    let (proxy, _up) = websockets().await;
    // A 101 for a request that asked for no upgrade.
    for host in ["app.example.com", "ws.example.com"] {
        let r = raw(proxy.addr, &get(host, "/__101")).await;
        assert_eq!(status_of(&r), 502, "{r}");
    }
    let handshake = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAccept: application/json\r\n\r\n"
        )
    };
    // The wrong Sec-WebSocket-Accept, or none.
    for path in ["/__ws_wrong", "/__101"] {
        let r = raw(proxy.addr, handshake(path).as_bytes()).await;
        assert_eq!(status_of(&r), 502, "{path}: {r}");
    }
    // The right one: the switch is relayed with its accept.
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(handshake("/__ws").as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
}

#[tokio::test]
async fn an_http2_websocket_is_carried_only_where_websockets_are_allowed() {
    use http_body_util::Empty;
    use hyper::ext::Protocol;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (proxy, _up) = websockets().await;
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<bytes::Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let connect = |host: &str| {
        let mut req = http::Request::builder()
            .method(http::Method::CONNECT)
            .version(http::Version::HTTP_2)
            .uri(format!("http://{host}/__ws"))
            .header("sec-websocket-version", "13")
            .body(Empty::new())
            .unwrap();
        req.extensions_mut()
            .insert(Protocol::from_static("websocket"));
        req
    };
    let refused = send.send_request(connect("app.example.com")).await.unwrap();
    assert_eq!(refused.status(), 405);
    let accepted = send.send_request(connect("ws.example.com")).await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(accepted.headers().get("sec-websocket-accept").is_none());
    let upgraded = hyper::upgrade::on(accepted).await.unwrap();
    let mut io = TokioIo::new(upgraded);
    io.write_all(b"through h2").await.unwrap();
    let mut echoed = [0u8; 10];
    io.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"through h2");
}

#[tokio::test]
async fn framing_the_client_got_wrong_is_the_clients_error() {
    let up = upstream::start("a").await;
    let proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let post = |extra: &str, body: &str| {
        format!(
            "POST /x HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\nConnection: close\r\n{extra}\r\n{body}"
        )
    };
    // A chunk size that is not hex.
    let r = raw(
        proxy.addr,
        post("Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&r), 400, "{r}");
    // A coding we do not implement.
    let r = raw(
        proxy.addr,
        post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&r), 501, "{r}");
    // An absolute-form target of another scheme.
    let r = raw(
        proxy.addr,
        b"GET ftp://app.example.com/x HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&r), 400, "{r}");
    // What is right still passes.
    let r = raw(
        proxy.addr,
        post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&r), 200, "{r}");
}
