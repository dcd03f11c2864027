//! A small pool of plain-HTTP/1.1 upstream connections, one pool per worker.
//!
//! Every worker thread runs one single-threaded runtime, so a request, its downstream
//! connection and the upstream connection it borrows all live on one thread. This pool
//! keeps that path short: a checkout pops the most recently returned idle connection of
//! the upstream (a `hyper::client::conn::http1` sender), a request is handed to it
//! directly, and the connection goes back to the pool when the response body has been
//! read to its end ([`UpstreamBody`]), not through an extra task. Connections are made
//! by the same TCP connector as the general client (DNS, `TCP_NODELAY`, connect
//! timeout) and driven by a task of their own, with upgrades enabled.
//!
//! As with hyper's pooled client, a request that a *reused* connection could not start
//! (the upstream closed it while it sat idle) is retried once more on another
//! connection; anything else is the caller's error. Idle connections are closed after
//! `idle_timeout` by a reaper task that runs only while the pool holds idle connections,
//! and at most `max_idle` idle connections are kept per upstream.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
use tower_service::Service;

use super::limit::UpstreamPermit;
use super::timed::TimedBody;
use crate::body::BoxError;

/// The request body every upstream request carries.
pub(crate) type RequestBody = TimedBody<Incoming>;

type Sender = http1::SendRequest<RequestBody>;

/// Why a pooled request failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No TCP connection to the upstream.
    #[error("cannot connect to the upstream")]
    Connect(#[source] BoxError),
    /// The HTTP/1.1 connection could not be set up.
    #[error("upstream connection handshake failed")]
    Handshake(#[source] hyper::Error),
    /// The request failed on the connection.
    #[error("upstream request failed")]
    Send(#[source] hyper::Error),
}

/// Idle HTTP/1.1 connections to a fixed set of upstreams (slots), for one worker.
#[derive(Debug)]
pub struct Http1Pool {
    connector: HttpConnector,
    /// Per slot: the `http://authority` to connect to.
    targets: Vec<Uri>,
    state: Mutex<State>,
    idle_timeout: Duration,
    max_idle: usize,
}

#[derive(Debug)]
struct State {
    /// Per slot, oldest first.
    idle: Vec<Vec<Idle>>,
    reaping: bool,
}

#[derive(Debug)]
struct Idle {
    conn: Sender,
    since: Instant,
}

impl Http1Pool {
    /// A pool for `targets` (one slot each, `http://host:port`).
    pub fn new(
        connector: HttpConnector,
        targets: Vec<Uri>,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Self {
        let idle = targets.iter().map(|_| Vec::new()).collect();
        Self {
            connector,
            targets,
            state: Mutex::new(State {
                idle,
                reaping: false,
            }),
            idle_timeout,
            max_idle,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `req` (origin-form URI, `Host` set) to slot `slot`. On success the
    /// connection is leased to the response: hand the lease to [`UpstreamBody::new`].
    pub async fn send(
        self: &Arc<Self>,
        slot: usize,
        mut req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Lease), PoolError> {
        loop {
            let (mut conn, reused) = match self.checkout(slot) {
                Some(conn) => (conn, true),
                // Boxed: rare, and it would make every request's future larger.
                None => (Box::pin(self.connect(slot)).await?, false),
            };
            match conn.try_send_request(req).await {
                Ok(response) => {
                    let lease = Lease {
                        pool: Arc::downgrade(self),
                        slot,
                        conn,
                    };
                    return Ok((response, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Never started on a connection that went stale while idle: retry.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(PoolError::Send(e.into_error())),
                },
            }
        }
    }

    fn checkout(&self, slot: usize) -> Option<Sender> {
        let mut state = self.lock();
        let idle = state.idle.get_mut(slot)?;
        while let Some(entry) = idle.pop() {
            if entry.conn.is_ready() {
                return Some(entry.conn);
            }
        }
        None
    }

    async fn connect(&self, slot: usize) -> Result<Sender, PoolError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| PoolError::Connect(e.into()))?;
        let target = self.targets.get(slot).cloned().unwrap_or_default();
        let io = connector
            .call(target)
            .await
            .map_err(|e| PoolError::Connect(e.into()))?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(PoolError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection error");
            }
        });
        Ok(sender)
    }

    /// Takes a connection back (it must be ready for the next request).
    fn put(self: Arc<Self>, slot: usize, conn: Sender) {
        let since = Instant::now();
        let start_reaper = {
            let mut state = self.lock();
            let Some(idle) = state.idle.get_mut(slot) else {
                return;
            };
            if idle.len() >= self.max_idle {
                return;
            }
            idle.push(Idle { conn, since });
            !std::mem::replace(&mut state.reaping, true)
        };
        if start_reaper {
            let pool = Arc::downgrade(&self);
            tokio::spawn(async move {
                while let Some(at) = pool.upgrade().and_then(|p| p.reap()) {
                    tokio::time::sleep_until(at).await;
                }
            });
        }
    }

    /// Closes the idle connections that expired or closed. Returns when to look again,
    /// or `None` (and stops reaping) once nothing is idle.
    fn reap(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut next: Option<Instant> = None;
        for idle in &mut state.idle {
            idle.retain(|e| e.since + self.idle_timeout > now && !e.conn.is_closed());
            if let Some(oldest) = idle.first() {
                let at = oldest.since + self.idle_timeout;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        state.reaping = next.is_some();
        next
    }
}

/// A connection lent to one response; returned to the pool when its body ends.
#[derive(Debug)]
pub struct Lease {
    pool: Weak<Http1Pool>,
    slot: usize,
    conn: Sender,
}

impl Lease {
    /// The response is complete: the connection may serve the next request.
    fn release(self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut conn = self.conn;
        if conn.is_ready() {
            pool.put(self.slot, conn);
        } else if !conn.is_closed()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            // Still finishing the request body: return it once it is done.
            let slot = self.slot;
            handle.spawn(async move {
                if conn.ready().await.is_ok() {
                    pool.put(slot, conn);
                }
            });
        }
    }
}

pin_project_lite::pin_project! {
    /// An upstream response body; returns its pooled connection, if any, at its end.
    /// Dropped before its end, it drops the connection instead (hyper then closes it).
    /// It holds the request's place among the upstream's connections until dropped.
    pub struct UpstreamBody {
        #[pin]
        inner: Incoming,
        lease: Option<Lease>,
        place: Option<UpstreamPermit>,
    }
}

impl UpstreamBody {
    /// Wraps a response body, returning `lease` as soon as the body is complete.
    pub(crate) fn new(
        inner: Incoming,
        lease: Option<Lease>,
        place: Option<UpstreamPermit>,
    ) -> Self {
        let lease = match lease {
            Some(lease) if inner.is_end_stream() => {
                lease.release();
                None
            }
            other => other,
        };
        Self {
            inner,
            lease,
            place,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        let done = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) => {
                // A broken body: never reuse its connection.
                this.lease.take();
                false
            }
            Poll::Pending => false,
        };
        if done && let Some(lease) = this.lease.take() {
            lease.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
