//! Graceful shutdown: stop accepting, finish what is in flight.

use std::time::Duration;

use crate::support::{TestProxy, config_with_routes, public_route, raw, status_of, upstream};

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_begins() {
    let up = upstream::start("a").await;
    let mut proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let addr = proxy.addr;
    let in_flight = tokio::spawn(async move {
        status_of(
            &raw(
                addr,
                b"GET /__gate HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
            )
            .await,
        )
    });
    // The request is inside the upstream; now shut down.
    up.gate.arrived.notified().await;
    proxy.shutdown();
    // The listener closes: new connections are refused (checked until it happens).
    let mut refused = false;
    for _ in 0..1000 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "no new connections after shutdown");
    assert!(
        !proxy.task.is_finished(),
        "the server waits for the in-flight request"
    );
    up.gate.release.notify_one();
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the in-flight request completed"
    );
    tokio::time::timeout(Duration::from_secs(5), &mut proxy.task)
        .await
        .expect("server task ends")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_threads_share_the_connections_and_drain_on_shutdown() {
    let up = upstream::start("a").await;
    let text = format!(
        "address: 127.0.0.1:0\n{}",
        config_with_routes(&public_route("app.example.com", &up.url(), ""))
    );
    let config =
        portcullis::config::load_str(&text, None, &portcullis::config::env::MapEnv::default())
            .unwrap()
            .config;
    let mut proxy = TestProxy::start_config_workers(config, 3).await;
    // Fresh connections go round-robin to all three workers; each must serve.
    for _ in 0..9 {
        let r = raw(
            proxy.addr,
            b"GET /x HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(status_of(&r), 200, "{r}");
    }
    // The next connection goes to a worker thread (round-robin after nine): a request in
    // flight there finishes after shutdown begins.
    let addr = proxy.addr;
    let in_flight = tokio::spawn(async move {
        status_of(
            &raw(
                addr,
                b"GET /__gate HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n",
            )
            .await,
        )
    });
    up.gate.arrived.notified().await;
    proxy.shutdown();
    up.gate.release.notify_one();
    assert_eq!(in_flight.await.unwrap(), 200);
    tokio::time::timeout(Duration::from_secs(5), &mut proxy.task)
        .await
        .expect("all workers stop")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_http2_client_that_ignores_the_shutdown_ping_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = upstream::start("a").await;
    let mut proxy = TestProxy::start(&config_with_routes(&public_route(
        "app.example.com",
        &up.url(),
        "",
    )))
    .await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    // The preface and an empty SETTINGS frame; then read, and never answer anything.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut first = [0u8; 64];
    assert!(s.read(&mut first).await.unwrap() > 0, "server SETTINGS");
    proxy.shutdown();
    let started = tokio::time::Instant::now();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3600), s.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the connection is closed after the grace");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "before timeout_shutdown: {:?}",
        started.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(60), &mut proxy.task)
        .await
        .expect("server task ends")
        .unwrap();
}
