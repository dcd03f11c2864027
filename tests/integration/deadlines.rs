//! Every connection has a deadline from accept, on every listener, and a client that
//! stops reading a response does not hold it (nor its upstream connection) forever.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::{TestProxy, config_with_routes, public_route, upstream};

async fn proxy_with(extra_global: &str) -> (TestProxy, upstream::Upstream) {
    let up = upstream::start("a").await;
    let routes = public_route("app.example.com", &up.url(), "");
    let proxy = TestProxy::start(&format!("{extra_global}{}", config_with_routes(&routes))).await;
    (proxy, up)
}

/// How long until the peer closes `s` (reading and discarding), at most `bound`.
async fn closed_after(s: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(bound, s.read_to_end(&mut sink))
        .await
        .ok()
        .map(|_| started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_at_the_head_deadline_not_the_idle_one() {
    let (proxy, _up) = proxy_with("timeout_read_header: 10s\ntimeout_idle: 5m\n").await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let waited = closed_after(&mut s, Duration::from_secs(600)).await;
    let waited = waited.expect("closed");
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_head_deadline_runs_from_accept_not_from_the_first_byte() {
    let (proxy, _up) = proxy_with("timeout_read_header: 10s\n").await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.exa")
        .await
        .unwrap();
    let waited = closed_after(&mut s, Duration::from_secs(600)).await;
    let waited = waited.expect("closed");
    assert!(
        waited < Duration::from_secs(3),
        "closed {waited:?} after the first byte"
    );
}

#[tokio::test(start_paused = true)]
async fn a_partial_http2_preface_is_closed_at_the_head_deadline() {
    let (proxy, _up) = proxy_with("timeout_read_header: 10s\n").await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let waited = closed_after(&mut s, Duration::from_secs(3600)).await;
    let waited = waited.expect("closed");
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_redirect_listener_closes_a_silent_connection() {
    let (proxy, _up) =
        proxy_with("http_redirect_addr: 127.0.0.1:0\ntimeout_read_header: 10s\n").await;
    let mut s = TcpStream::connect(proxy.redirect_addr.unwrap())
        .await
        .unwrap();
    let waited = closed_after(&mut s, Duration::from_secs(3600)).await;
    let waited = waited.expect("closed");
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "closed after {waited:?}"
    );
    // It still redirects.
    let r = crate::support::raw(
        proxy.redirect_addr.unwrap(),
        b"GET /x HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(crate::support::status_of(&r), 301, "{r}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_loses_both_connections() {
    // timeout_send defaults to 60s.
    let (proxy, up) = proxy_with("").await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET /__endless HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 1024];
    let n = s.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    // Stop reading: both socket buffers fill, the proxy cannot write.
    let stalled = Instant::now();
    tokio::time::timeout(Duration::from_secs(3600), up.gate.dropped.notified())
        .await
        .expect("the upstream response was dropped");
    assert!(
        stalled.elapsed() >= Duration::from_secs(60),
        "{:?}",
        stalled.elapsed()
    );
    // And the client's connection is closed (after what was already sent).
    let mut sink = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match s.read_buf(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => sink.clear(),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the downstream connection was closed");
}

#[tokio::test(start_paused = true)]
async fn an_http2_stream_starved_of_window_loses_both_connections() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (proxy, up) = proxy_with("timeout_send: 20s\n").await;
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    // The stream window is the minimum: once 64 KiB of the endless body are in, the
    // client grants no more for that stream, while the connection keeps moving.
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(8 * 1024 * 1024)
        .handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let get = |path: &str| {
        http::Request::get(format!("http://app.example.com{path}"))
            .body(Empty::new())
            .unwrap()
    };
    let endless = sender.send_request(get("/__endless")).await.unwrap();
    assert_eq!(endless.status(), 200);
    let stalled = Instant::now();
    // The client keeps talking on the same connection, so its socket is never full.
    let dropped = up.gate.dropped.notified();
    tokio::pin!(dropped);
    let mut answered = 0;
    loop {
        tokio::select! {
            () = &mut dropped => break,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        assert!(
            stalled.elapsed() < Duration::from_secs(600),
            "never cut off"
        );
        match sender.send_request(get("/healthz")).await {
            Ok(r) => {
                let _ = r.into_body().collect().await;
                answered += 1;
            }
            Err(_) => break,
        }
    }
    tokio::time::timeout(Duration::from_secs(60), dropped)
        .await
        .expect("the upstream response was dropped");
    assert!(
        stalled.elapsed() >= Duration::from_secs(20),
        "not before timeout_send: {:?}",
        stalled.elapsed()
    );
    assert!(
        answered >= 5,
        "the connection kept moving meanwhile ({answered})"
    );
    drop(endless);
    let _ = tokio::time::timeout(Duration::from_secs(60), driver).await;
}
