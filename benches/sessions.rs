//! Authenticated requests per second with the Redis session store against the memory
//! store, on the same machine in the same run.
//!
//! For each store the proxy runs with one worker per CPU (as `portcullis run` does) in
//! front of a small in-process upstream; a session is put into the store and `wrk`
//! sends every request with its cookie to a route that needs a signed-in user, so each
//! request loads the session and evaluates the policy. Rounds alternate between the
//! stores; medians are printed. Needs `wrk` and `redis-server` (Debian packages);
//! everything listens on 127.0.0.1.
//!
//! ```sh
//! cargo bench --bench sessions            # ROUNDS=3 DURATION=10 CONNECTIONS=32
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::config::env::MapEnv;
use portcullis::session::Session;

const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tiny upstream: 200 "ok" to everything, on its own thread.
fn upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req: Request<_>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

/// A proxy with `storage` (extra YAML) on its own threads; returns its address and a
/// session cookie valid on it.
fn proxy(storage: &str, upstream: SocketAddr) -> (SocketAddr, String) {
    let yaml = format!(
        "address: 127.0.0.1:0\ninsecure_server: true\nlog_level: warn\n\
         cookie_secret: {SECRET}\nshared_secret: {SECRET}\n{storage}\
         routes:\n  - from: http://app.bench\n    to: http://{upstream}\n    allow_any_authenticated_user: true\n"
    );
    let config = portcullis::config::load_str(&yaml, None, &MapEnv::default())
        .expect("config")
        .config;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            portcullis::install_crypto_provider();
            let app = portcullis::App::new(config).expect("app");
            app.start().await;
            let mut session = Session::hypothetical(
                "00u-bench".into(),
                Some("bench@example.com".into()),
                vec!["engineering".into()],
                Default::default(),
            );
            session.id = portcullis::seal::random_token(32);
            session.expires_at = portcullis::clock::now() + 3600;
            app.sessions
                .store()
                .put(session.clone())
                .await
                .expect("put");
            let set_cookie = app.sessions.cookies().session_cookie(&session.id, 3600);
            let cookie = set_cookie
                .to_str()
                .expect("cookie")
                .split(';')
                .next()
                .expect("cookie pair")
                .to_owned();
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            let server = portcullis::Server::bind(app, workers).await.expect("bind");
            let addr = server.local_addr().expect("address");
            tx.send((addr, cookie)).expect("send");
            server.serve(std::future::pending()).await;
        });
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("proxy start")
}

/// Requests per second from one wrk run.
fn wrk(addr: SocketAddr, cookie: &str, seconds: u64, connections: u64) -> f64 {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["-H", "Host: app.bench", "-H", &format!("Cookie: {cookie}")])
        .arg(format!("http://{addr}/"))
        .stderr(Stdio::inherit())
        .output()
        .expect("wrk (apt install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        panic!("non-2xx answers: the session was not accepted\n{text}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run us with no
    // such flag: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (rounds, seconds, connections) = (
        knob("ROUNDS", 3),
        knob("DURATION", 10),
        knob("CONNECTIONS", 32),
    );
    let redis_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt install redis-server)");
    std::thread::sleep(Duration::from_millis(300));

    let up = upstream();
    let memory = proxy("", up);
    let redis_proxy = proxy(
        &format!(
            "databroker_storage_type: redis\ndatabroker_storage_connection_string: redis://127.0.0.1:{redis_port}/\n"
        ),
        up,
    );
    // Warm up both.
    wrk(memory.0, &memory.1, 2, connections);
    wrk(redis_proxy.0, &redis_proxy.1, 2, connections);
    let (mut m, mut r) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        m.push(wrk(memory.0, &memory.1, seconds, connections));
        r.push(wrk(redis_proxy.0, &redis_proxy.1, seconds, connections));
        println!(
            "round {round}: memory {:.0} req/s, redis {:.0} req/s",
            m[m.len() - 1],
            r[r.len() - 1]
        );
    }
    let (m, r) = (median(m), median(r));
    println!(
        "authenticated requests, wrk -t1 -c{connections} {seconds}s x {rounds}, medians: \
         memory {m:.0} req/s, redis {r:.0} req/s, redis/memory = {:.3}",
        r / m
    );
    let _ = redis.kill();
    let _ = redis.wait();
}
