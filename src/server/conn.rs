//! One downstream connection: TLS handshake, HTTP/1.1 or HTTP/2, limits and timeouts.
//!
//! Limits enforced here ([`drive`], on every listener): from accept, the TLS handshake,
//! the protocol preface and the first request head must arrive within
//! `timeout_read_header`, and every later HTTP/1.1 head within it of the previous
//! response (the connection is closed otherwise; hyper answers 431 to a head larger
//! than `max_request_header_bytes` and closes); a peer that takes no response bytes for
//! `timeout_send` is cut off, which also drops the upstream side of its response; a
//! connection with no traffic for `timeout_idle` is closed gracefully; on shutdown
//! every connection is told to finish its in-flight requests and close, and one that
//! stays open with nothing in flight is closed after [`SHUTDOWN_GRACE`]. The deadlines
//! are watched as described in [`super::activity`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

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

/// After a graceful shutdown, how long a connection with nothing in flight may stay
/// silent before it is closed anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    /// Its place under `max_connections`, held until the connection closes.
    pub slot: super::limit::Slot,
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
                let limit = self.timeouts.read_header;
                let handshake = if limit.is_zero() {
                    Ok(acceptor.accept(io).await)
                } else {
                    // From accept, as the rest of the head deadline.
                    tokio::time::timeout(limit, acceptor.accept(io)).await
                };
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
            let request = seen.request_started(req.version());
            let (app, upstreams) = (app.clone(), upstreams.clone());
            async move {
                let response = pipeline::handle(&app, &upstreams, req, conn_info).await;
                // After a protocol switch no request head follows.
                let next_head = response.status() != StatusCode::SWITCHING_PROTOCOLS;
                Ok::<_, Infallible>(response.map(|body| Served::new(body, request, next_head)))
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let ended = drive(
            conn,
            |c| c.graceful_shutdown(),
            &activity,
            &self.timeouts,
            &self.stop,
        )
        .await;
        log_end(peer, ended);
        drop(self.done);
    }
}

/// Why a connection was closed by us rather than by HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// No request head (or TLS handshake, or HTTP/2 preface) within `timeout_read_header`.
    HeadTimeout,
    /// The peer took none of the response's bytes for `timeout_send`.
    SendStalled,
    /// Told to shut down gracefully, it stayed open with nothing in flight.
    Abandoned,
}

/// Logs how a connection ended.
pub fn log_end<E: std::fmt::Display>(peer: SocketAddr, ended: Result<Result<(), E>, Cut>) {
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
        Err(Cut::HeadTimeout) => tracing::debug!(%peer, "request head timed out"),
        Err(Cut::SendStalled) => tracing::debug!(%peer, "client stopped reading: closed"),
        Err(Cut::Abandoned) => tracing::debug!(%peer, "closed after the shutdown grace"),
    }
}

/// Runs a connection to its end under its deadlines: the head deadline and a stalled
/// send close it at once; shutdown and `timeout_idle` close it gracefully, and a
/// connection that then stays open with nothing in flight for [`SHUTDOWN_GRACE`] (an
/// HTTP/2 client ignoring GOAWAY's PING) is closed anyway.
pub async fn drive<F, E>(
    mut conn: Pin<&mut F>,
    graceful: fn(Pin<&mut F>),
    activity: &Activity,
    timeouts: &Timeouts,
    stop: &watch::Receiver<bool>,
) -> Result<Result<(), E>, Cut>
where
    F: Future<Output = Result<(), E>>,
{
    let (idle, read_header, send) = (timeouts.idle, timeouts.read_header, timeouts.send);
    let mut closing = *stop.borrow();
    if closing {
        graceful(conn.as_mut());
    }
    // Shutdown and the timeouts are watched with a waker of their own, so that the
    // many wake-ups of a busy connection do not poll them again each time.
    let mut stop = stop.clone();
    let stopped = async move {
        let _ = stop.changed().await;
    };
    let idle_out = limited(idle, activity.idle_for(idle));
    let head_out = limited(read_header, activity.head_timeout(read_header));
    let send_out = limited(send, activity.send_stalled(send));
    let drained = activity.drained(SHUTDOWN_GRACE);
    tokio::pin!(stopped, idle_out, head_out, send_out, drained);
    let watch = Arc::new(WatchWaker::default());
    let watch_waker = Waker::from(watch.clone());
    std::future::poll_fn(|cx| {
        watch.register(cx.waker());
        if watch.take() {
            let mut wcx = Context::from_waker(&watch_waker);
            if head_out.as_mut().poll(&mut wcx).is_ready() {
                // As hyper's own header timeout did: close at once.
                return Poll::Ready(Err(Cut::HeadTimeout));
            }
            if send_out.as_mut().poll(&mut wcx).is_ready() {
                return Poll::Ready(Err(Cut::SendStalled));
            }
            if !closing
                && (stopped.as_mut().poll(&mut wcx).is_ready()
                    || idle_out.as_mut().poll(&mut wcx).is_ready())
            {
                closing = true;
                graceful(conn.as_mut());
            }
            if closing && drained.as_mut().poll(&mut wcx).is_ready() {
                return Poll::Ready(Err(Cut::Abandoned));
            }
        }
        conn.as_mut().poll(cx).map(Ok)
    })
    .await
}

/// `watch`, or never when `limit` is zero (off).
async fn limited(limit: Duration, watch: impl Future<Output = ()>) {
    if limit.is_zero() {
        std::future::pending::<()>().await;
    }
    watch.await;
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
