//! One downstream connection: TLS handshake, HTTP/1.1 or HTTP/2, limits and timeouts.
//!
//! Limits enforced here: the TLS handshake and every request head must arrive within
//! `timeout_read_header` (hyper answers 431 to a head larger than
//! `max_request_header_bytes` and closes); a connection with no traffic for
//! `timeout_idle` is closed gracefully; on shutdown every connection is told to finish
//! its in-flight requests and close.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::server::{Server as Settings, Timeouts};
use crate::pipeline::{self, App, Connection};

/// The shared HTTP/1.1 + HTTP/2 connection builder.
pub fn builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Some(settings.timeouts.read_header).filter(|d| !d.is_zero()))
        .max_buf_size(settings.max_request_header_bytes.max(8192))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(settings.max_request_header_bytes).unwrap_or(u32::MAX))
        .enable_connect_protocol();
    b
}

/// Everything a connection task needs.
pub struct Job {
    /// The application.
    pub app: Arc<App>,
    /// This worker's upstream clients.
    pub upstreams: Arc<crate::proxy::Upstreams>,
    /// The HTTP builder.
    pub builder: auto::Builder<TokioExecutor>,
    /// TLS, unless `insecure_server`.
    pub acceptor: Option<TlsAcceptor>,
    /// Flips to true on shutdown.
    pub stop: watch::Receiver<bool>,
    /// Dropped when the connection ends (the server waits for all of them).
    pub done: mpsc::Sender<()>,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl Job {
    /// Serves the connection to completion.
    pub async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let activity = Arc::new(Activity::new());
        let io = Tracked {
            inner: stream,
            activity: activity.clone(),
        };
        match self.acceptor.clone() {
            None => self.serve(io, peer, false, activity).await,
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(self.timeouts.read_header, acceptor.accept(io)).await;
                match handshake {
                    Ok(Ok(tls)) => self.serve(tls, peer, true, activity).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve<I>(mut self, io: I, peer: SocketAddr, tls: bool, activity: Arc<Activity>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let upstreams = self.upstreams.clone();
        let conn_info = Connection { peer, tls };
        let service = service_fn(move |req| {
            let (app, upstreams) = (app.clone(), upstreams.clone());
            async move { Ok::<_, Infallible>(pipeline::handle(&app, &upstreams, req, conn_info).await) }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let idle = self.timeouts.idle;
        let mut closing = *self.stop.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = self.stop.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = activity.idle_for(idle), if !closing && !idle.is_zero() => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        drop(self.done);
    }
}

/// When the connection last moved a byte.
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle_for(&self, idle: std::time::Duration) {
        loop {
            let last = self.origin
                + std::time::Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// An IO that records activity on every successful read or write.
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
