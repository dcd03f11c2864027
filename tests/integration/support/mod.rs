//! Test harness: start a proxy from YAML on 127.0.0.1, talk to it, read what the
//! upstream saw.

pub(crate) mod redis;
pub(crate) mod signin;
pub(crate) mod upstream;

use std::net::SocketAddr;

use portcullis::config::{self, env::MapEnv};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A proxy running in this process.
pub(crate) struct TestProxy {
    pub addr: SocketAddr,
    pub redirect_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

impl TestProxy {
    /// Starts a proxy from YAML (listening on 127.0.0.1:0 unless the YAML says otherwise).
    pub(crate) async fn start(yaml: &str) -> Self {
        Self::start_with_env(yaml, &[]).await
    }

    /// Starts a proxy from YAML plus environment variables.
    pub(crate) async fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Self {
        let text = if yaml.contains("address:") {
            yaml.to_owned()
        } else {
            format!("address: 127.0.0.1:0\n{yaml}")
        };
        let env = MapEnv::from_pairs(env.iter().copied());
        let loaded = config::load_str(&text, None, &env).unwrap_or_else(|e| panic!("config: {e}"));
        Self::start_config(loaded.config).await
    }

    /// Starts a proxy from a loaded configuration (one worker, on this runtime).
    pub(crate) async fn start_config(config: portcullis::Config) -> Self {
        Self::start_config_workers(config, 1).await
    }

    /// Starts a proxy with `workers` worker threads, as `portcullis run` does.
    pub(crate) async fn start_config_workers(config: portcullis::Config, workers: usize) -> Self {
        let server = portcullis::bind(config, workers).await.expect("bind");
        let addr = server.local_addr().unwrap();
        let redirect_addr = server.redirect_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            redirect_addr,
            stop: Some(tx),
            task,
        }
    }

    /// Asks the proxy to shut down gracefully.
    pub(crate) fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A client that sends every request to `proxy` whatever the URL's host, follows no
/// redirects and keeps no cookies.
pub(crate) fn client(proxy: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .resolve_to_addrs("app.example.com", &[proxy])
        .resolve_to_addrs("public.example.com", &[proxy])
        .resolve_to_addrs("private.example.com", &[proxy])
        .resolve_to_addrs("other.example.com", &[proxy])
        .resolve_to_addrs("ws.example.com", &[proxy])
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// What the echo upstream reported.
pub(crate) struct Echo {
    pub json: Value,
}

impl Echo {
    pub(crate) async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "status {status}: {text}");
        Self {
            json: serde_json::from_str(&text).unwrap_or_else(|_| panic!("not an echo: {text}")),
        }
    }

    pub(crate) fn uri(&self) -> &str {
        self.json["uri"].as_str().unwrap()
    }

    pub(crate) fn upstream(&self) -> &str {
        self.json["upstream"].as_str().unwrap()
    }

    /// All values of a header (lower-case name), in order.
    pub(crate) fn header_all(&self, name: &str) -> Vec<String> {
        self.json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0].as_str() == Some(name))
            .map(|p| p[1].as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    pub(crate) fn header_names(&self) -> Vec<String> {
        self.json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Sends raw bytes on a fresh connection and returns everything read until the peer
/// closes or `limit` bytes arrive.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 1 << 20 {
                    break;
                }
                // Stop after one complete response head+body when the server keeps the connection open.
                if let Ok(text) = std::str::from_utf8(&out)
                    && response_complete(text)
                {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response_complete(text: &str) -> bool {
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().ok())
        })
        .flatten();
    match len {
        Some(n) => body.len() >= n,
        None => false,
    }
}

/// The status code of a raw response.
pub(crate) fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// YAML for one public route from `host` to `upstream`, plus extra fields.
pub(crate) fn public_route(host: &str, upstream: &str, extra: &str) -> String {
    format!(
        "  - from: https://{host}\n    to: {upstream}\n    allow_public_unauthenticated_access: true\n{extra}"
    )
}

/// A minimal insecure config with the given routes.
pub(crate) fn config_with_routes(routes: &str) -> String {
    format!("insecure_server: true\nroutes:\n{routes}")
}

/// Captured log output of the current test (the test must use the current-thread
/// runtime, `#[tokio::test]`'s default, so every task logs on this thread).
pub(crate) struct Logs {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<std::sync::Arc<std::sync::Mutex<Vec<u8>>>>> = const { std::cell::RefCell::new(None) };
}

/// Writes into the current thread's capture buffer, if any.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(buf) = c.borrow().as_ref() {
                buf.lock().unwrap().extend_from_slice(data);
            }
        });
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing this thread's logs. One global subscriber (installed once) routes
/// each thread's events to that thread's buffer, so parallel tests do not mix.
pub(crate) fn capture_logs() -> Logs {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .fmt_fields(portcullis::telemetry::EscapedFields)
            .with_writer(|| ThreadWriter)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    CAPTURE.with(|c| *c.borrow_mut() = Some(buf.clone()));
    Logs { buf }
}
