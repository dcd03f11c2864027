//! An echo upstream: answers every request with a JSON description of what it received.
//!
//! Special paths: `/__delay/<ms>` waits before answering (or forever for `/__hang`),
//! `/__ws` accepts an upgrade and echoes bytes (`/__ws_wrong` with a wrong
//! `Sec-WebSocket-Accept`, `/__101` switches for any request), `/__stream` streams three
//! chunks, `/__endless` streams 64 KiB chunks until the proxy drops it (then
//! `gate.dropped` is notified), `/__cookies` sets cookies (ours and the app's), `/__hop`
//! sends hop-by-hop headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A running echo upstream.
pub(crate) struct Upstream {
    pub addr: SocketAddr,
    /// `/__gate` requests signal `arrived` and wait for `release`.
    pub gate: Arc<Gate>,
}

/// Lets a test hold a request inside the upstream.
#[derive(Default)]
pub(crate) struct Gate {
    pub arrived: Notify,
    pub release: Notify,
    /// An `/__endless` response was dropped: its connection to the proxy is gone.
    pub dropped: Notify,
}

/// Notifies `gate.dropped` when the `/__endless` body it lives in is dropped.
struct OnDrop(Arc<Gate>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.dropped.notify_one();
    }
}

impl Upstream {
    /// `http://127.0.0.1:PORT`
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts an echo upstream that labels its answers with `name`.
pub(crate) async fn start(name: &'static str) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, name, g.clone()));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Upstream { addr, gate }
}

/// Starts an echo upstream behind TLS with `config` (which may require client certs).
pub(crate) async fn start_tls(name: &'static str, config: Arc<rustls::ServerConfig>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (g, acceptor) = (g.clone(), acceptor.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req| handle(req, name, g.clone()));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Upstream { addr, gate }
}

/// RFC 6455 §4.2.2: base64 of SHA-1 of the key and the protocol's GUID.
pub(crate) fn websocket_accept(key: &[u8]) -> String {
    use base64::Engine as _;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(
    mut req: Request<Incoming>,
    name: &'static str,
    gate: Arc<Gate>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/__gate" {
        gate.arrived.notify_one();
        gate.release.notified().await;
    }
    if path == "/__hang" {
        std::future::pending::<()>().await;
    }
    if let Some(ms) = path
        .strip_prefix("/__delay/")
        .and_then(|m| m.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if path == "/__101" {
        // A switch nobody asked for (and no handshake answer).
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .body(full(""))
            .unwrap());
    }
    if (path == "/__ws" || path == "/__ws_wrong") && req.headers().contains_key("upgrade") {
        let key = req
            .headers()
            .get("sec-websocket-key")
            .map(|k| k.as_bytes().to_vec())
            .unwrap_or_default();
        let key = if path == "/__ws_wrong" {
            b"another key".to_vec()
        } else {
            key
        };
        let accept = websocket_accept(&key);
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-accept", accept)
            .body(full(""))
            .unwrap());
    }
    if path == "/__endless" {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = futures_util::stream::unfold(OnDrop(gate.clone()), move |on_drop| {
            let chunk = chunk.clone();
            async move { Some((Ok::<_, std::io::Error>(Frame::data(chunk)), on_drop)) }
        });
        return Ok(Response::new(StreamBody::new(chunks).boxed()));
    }
    if path == "/__stream" {
        let chunks = futures_util::stream::iter(
            ["one ", "two ", "three"].map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from(c)))),
        );
        return Ok(Response::new(StreamBody::new(chunks).boxed()));
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let version = format!("{:?}", req.version());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let echo = json!({
        "upstream": name,
        "method": method,
        "uri": uri,
        "version": version,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", name);
    if path == "/__cookies" {
        response = response
            .header("set-cookie", "_pomerium=forged; Path=/")
            .header("set-cookie", "app=1; Path=/");
    }
    if path == "/__hop" {
        response = response
            .header("connection", "x-up-private")
            .header("x-up-private", "1")
            .header("keep-alive", "timeout=5");
    }
    Ok(response.body(full(echo.to_string())).unwrap())
}
