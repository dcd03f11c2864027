//! One downstream connection: TLS handshake, HTTP/1.1 or HTTP/2, limits and timeouts.
//!
//! Limits enforced here: the TLS handshake and every HTTP/1.1 request head must arrive
//! within `timeout_read_header` (the connection is closed otherwise; hyper answers 431
//! to a head larger than `max_request_header_bytes` and closes); a connection with no
//! traffic for `timeout_idle` is closed gracefully; on shutdown every connection is
//! told to finish its in-flight requests and close. The two timeouts are watched as
//! described in [`super::activity`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::activity::{Activity, Served, Tracked};
use crate::config::server::{ServerSettings as Settings, Timeouts};
use crate::pipeline::{self, App, Connection};

/// The shared HTTP/1.1 + HTTP/2 connection builder.
pub fn builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // The request-head timeout is ours (see `super::activity`), not hyper's.
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
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
    pub upstreams: Arc<crate::proxy::UpstreamClients>,
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
        match self.acceptor.clone() {
            None => {
                let io = Tracked::new(stream, activity.clone(), true, true);
                self.serve(io, peer, false, activity).await;
            }
            Some(acceptor) => {
                let io = Tracked::new(stream, activity.clone(), true, false);
                let handshake =
                    tokio::time::timeout(self.timeouts.read_header, acceptor.accept(io)).await;
                match handshake {
                    Ok(Ok(tls)) => {
                        let io = Tracked::new(tls, activity.clone(), false, true);
                        self.serve(io, peer, true, activity).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve<I>(self, io: I, peer: SocketAddr, tls: bool, activity: Arc<Activity>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let upstreams = self.upstreams.clone();
        let conn_info = Connection { peer, tls };
        let seen = activity.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            seen.head_received(req.version());
            let (app, upstreams, seen) = (app.clone(), upstreams.clone(), seen.clone());
            async move {
                let response = pipeline::handle(&app, &upstreams, req, conn_info).await;
                // After a protocol switch no request head follows.
                let done = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then_some(seen);
                Ok::<_, Infallible>(response.map(|body| Served::new(body, done)))
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let (idle, read_header) = (self.timeouts.idle, self.timeouts.read_header);
        let mut closing = *self.stop.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        // Shutdown and the timeouts are watched with a waker of their own, so that the
        // many wake-ups of a busy connection do not poll them again each time.
        let mut stop = self.stop.clone();
        let stopped = async move {
            let _ = stop.changed().await;
        };
        let idle_out = async {
            if idle.is_zero() {
                std::future::pending::<()>().await;
            }
            activity.idle_for(idle).await;
        };
        let head_out = async {
            if read_header.is_zero() {
                std::future::pending::<()>().await;
            }
            activity.head_timeout(read_header).await;
        };
        tokio::pin!(stopped, idle_out, head_out);
        let watch = Arc::new(WatchWaker::default());
        let watch_waker = Waker::from(watch.clone());
        let result = std::future::poll_fn(|cx| {
            watch.register(cx.waker());
            if watch.take() {
                let mut wcx = Context::from_waker(&watch_waker);
                if head_out.as_mut().poll(&mut wcx).is_ready() {
                    // As hyper's own header timeout did: close at once.
                    return Poll::Ready(Err(None));
                }
                if !closing
                    && (stopped.as_mut().poll(&mut wcx).is_ready()
                        || idle_out.as_mut().poll(&mut wcx).is_ready())
                {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            conn.as_mut().poll(cx).map_err(Some)
        })
        .await;
        match result {
            Ok(()) => {}
            Err(Some(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
            Err(None) => tracing::debug!(%peer, "request head timed out"),
        }
        drop(self.done);
    }
}

/// The waker of a connection's shutdown and idle watches: it records that they need a
/// look, then wakes the connection's task.
#[derive(Default)]
struct WatchWaker {
    /// Polled since the last wake-up (false at first: the watches start unpolled).
    settled: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl WatchWaker {
    fn register(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if !task.as_ref().is_some_and(|t| t.will_wake(waker)) {
            *task = Some(waker.clone());
        }
    }

    /// Whether the watches need polling; true the first time.
    fn take(&self) -> bool {
        !self.settled.swap(true, Ordering::AcqRel)
    }
}

impl Wake for WatchWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.settled.store(false, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = task.as_ref() {
            t.wake_by_ref();
        }
    }
}
