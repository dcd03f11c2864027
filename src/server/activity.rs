//! What a connection's deadlines watch: traffic (for `timeout_idle`), whether a
//! request head is awaited (for `timeout_read_header`), whether the response's bytes
//! are refused — by the socket, or by HTTP/2 flow control for one stream — (for
//! `timeout_send`) and how many requests are in flight (for the forced close after a
//! graceful shutdown).
//!
//! All are plain atomics the request path updates without touching a timer; the
//! connection task checks them from one long-lived sleep each, which it re-arms only
//! when the sleep fires ([`Activity::idle_for`], [`Activity::head_timeout`],
//! [`Activity::send_stalled`]). A busy connection therefore costs no timer
//! registration per request.
//!
//! The head clock runs **from accept**: the TLS handshake, the protocol preface and the
//! first request head all fall within one `timeout_read_header`, so a connection that
//! sends nothing, or half an HTTP/2 preface, is closed then. On HTTP/1.1 it runs again
//! from the end of each response and stops when a request head has been read (the
//! service is called). It stops for good once the whole HTTP/2 preface has arrived, and
//! after a protocol switch (101).

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::body::{BoxError, ResponseBody};

/// The HTTP/2 client preface, which marks a connection as HTTP/2 (as hyper-util reads it).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `head_since_ms` when no head is awaited, `blocked_since_ms` when writes go through.
const NOT_WAITING: u64 = u64::MAX;

/// Protocol states.
const UNKNOWN: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

/// A connection's traffic and request-head state.
pub struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
    head_since_ms: AtomicU64,
    protocol: AtomicU8,
    /// Bytes of the HTTP/2 preface matched so far, while the protocol is unknown.
    preface_seen: AtomicU8,
    /// Since when the socket has refused to take bytes (a write returned `Pending`).
    blocked_since_ms: AtomicU64,
    /// Requests read and not yet answered to the end.
    in_flight: AtomicU32,
    /// When each response frame that the protocol has not come back for yet was handed
    /// over (ms). HTTP/2 stops asking a stream's body for more while the client grants
    /// that stream no window, even though the socket keeps moving: this is how such a
    /// stall shows. One entry per response at most, so as short as the streams.
    untaken: Mutex<Vec<u64>>,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    /// A new connection, now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            // From accept: the handshake and the first head share one deadline.
            head_since_ms: AtomicU64::new(0),
            protocol: AtomicU8::new(UNKNOWN),
            preface_seen: AtomicU8::new(0),
            blocked_since_ms: AtomicU64::new(NOT_WAITING),
            in_flight: AtomicU32::new(0),
            untaken: Mutex::new(Vec::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    /// Bytes moved.
    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The first bytes read decide the protocol, as hyper-util's auto builder does.
    fn sniff(&self, data: &[u8]) {
        if data.is_empty() || self.protocol.load(Ordering::Relaxed) != UNKNOWN {
            return;
        }
        let seen = usize::from(self.preface_seen.load(Ordering::Relaxed));
        let want = &H2_PREFACE[seen..];
        let n = want.len().min(data.len());
        if data[..n] != want[..n] {
            // The first head is still due by the deadline that began at accept.
            self.protocol.store(HTTP1, Ordering::Relaxed);
        } else if seen + n == H2_PREFACE.len() {
            self.protocol.store(HTTP2, Ordering::Relaxed);
        } else {
            self.preface_seen.store((seen + n) as u8, Ordering::Relaxed);
        }
    }

    /// A request head was read (the service is called): the request is in flight until
    /// the returned guard (or the [`Served`] body it moves into) is dropped.
    pub fn request_started(self: &Arc<Self>, version: http::Version) -> InFlight {
        if version == http::Version::HTTP_2 {
            self.protocol.store(HTTP2, Ordering::Relaxed);
        }
        self.head_since_ms.store(NOT_WAITING, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// A write could not go through: the socket is full.
    fn blocked(&self) {
        if self.blocked_since_ms.load(Ordering::Relaxed) == NOT_WAITING {
            self.blocked_since_ms
                .store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// A write went through.
    fn unblocked(&self) {
        if self.blocked_since_ms.load(Ordering::Relaxed) != NOT_WAITING {
            self.blocked_since_ms.store(NOT_WAITING, Ordering::Relaxed);
        }
    }

    /// A response frame was handed to the protocol; returns when, for
    /// [`Activity::frame_taken`].
    fn frame_handed(&self) -> u64 {
        let now = self.now_ms();
        self.untaken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(now);
        now
    }

    /// The protocol came back for the next frame of the response handed one at `at`.
    fn frame_taken(&self, at: u64) {
        let mut untaken = self.untaken.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = untaken.iter().position(|&t| t == at) {
            untaken.swap_remove(i);
        }
    }

    /// Since when the oldest frame still waits to be taken.
    fn oldest_untaken(&self) -> Option<u64> {
        let untaken = self.untaken.lock().unwrap_or_else(PoisonError::into_inner);
        untaken.iter().copied().min()
    }

    /// A response is complete: on HTTP/1.1 the next head is awaited from now.
    fn response_done(&self) {
        if self.protocol.load(Ordering::Relaxed) == HTTP1 {
            self.head_since_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// Resolves once nothing has moved for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let deadline = self.at(self.last_ms.load(Ordering::Relaxed)) + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// Resolves once the socket has refused every byte for `limit`, or a response has
    /// waited that long for the protocol to take its next frame (HTTP/2 flow control
    /// withheld): the peer stopped reading.
    pub async fn send_stalled(&self, limit: Duration) {
        loop {
            let now = Instant::now();
            let blocked = self.blocked_since_ms.load(Ordering::Relaxed);
            let since = match self.oldest_untaken() {
                Some(untaken) => untaken.min(blocked),
                None => blocked,
            };
            // Not blocked: any block that starts later ends after `now + limit`.
            let deadline = match since {
                NOT_WAITING => now + limit,
                since => self.at(since) + limit,
            };
            if now >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// Resolves once no request is in flight and nothing has moved for `grace`: what a
    /// connection told to shut down gracefully may take before it is closed anyway.
    pub async fn drained(&self, grace: Duration) {
        loop {
            let deadline = self.at(self.last_ms.load(Ordering::Relaxed)) + grace;
            let now = Instant::now();
            if self.in_flight.load(Ordering::Relaxed) == 0 && now >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.max(now + grace)).await;
        }
    }

    /// Resolves once a request head has been awaited for `limit`.
    pub async fn head_timeout(&self, limit: Duration) {
        loop {
            if self.protocol.load(Ordering::Relaxed) == HTTP2 {
                std::future::pending::<()>().await;
            }
            let now = Instant::now();
            // Not waiting: any wait that starts later ends after `now + limit`.
            let deadline = match self.head_since_ms.load(Ordering::Relaxed) {
                NOT_WAITING => now + limit,
                since => self.at(since) + limit,
            };
            if now >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// An IO that records activity on every successful read or write. With `sniff`, it
/// also shows the bytes it reads to [`Activity`] until the protocol is known; put it
/// where the bytes are plain HTTP (above TLS).
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
    touch: bool,
    sniff: bool,
}

impl<T> Tracked<T> {
    /// Records traffic (`touch`) and/or the protocol (`sniff`) of `inner`.
    pub fn new(inner: T, activity: Arc<Activity>, touch: bool, sniff: bool) -> Self {
        Self {
            inner,
            activity,
            touch,
            sniff,
        }
    }
}

impl<T> Tracked<T> {
    /// Records a write's outcome: progress, or a full socket.
    fn wrote(&self, result: &Poll<std::io::Result<usize>>) {
        match result {
            Poll::Ready(Ok(n)) if *n > 0 => {
                self.activity.touch();
                self.activity.unblocked();
            }
            Poll::Pending => self.activity.blocked(),
            Poll::Ready(_) => {}
        }
    }
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
            if self.touch {
                self.activity.touch();
            }
            if self.sniff {
                self.activity.sniff(&buf.filled()[before..]);
                self.sniff = self.activity.protocol.load(Ordering::Relaxed) == UNKNOWN;
            }
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
        if self.touch {
            self.wrote(&result);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if self.touch {
            self.wrote(&result);
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

/// A request in flight, from its head to the end of its response.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that, once hyper is done with it, ends its request and starts the
/// wait for the next request head (unless `next_head` is false: a protocol switch).
pub struct Served {
    inner: ResponseBody,
    request: InFlight,
    next_head: bool,
    /// When the last frame was handed over, until the protocol asks for the next.
    handed: Option<u64>,
}

impl Served {
    /// Wraps `inner`, the answer to `request`.
    pub fn new(inner: ResponseBody, request: InFlight, next_head: bool) -> Self {
        Self {
            inner,
            request,
            next_head,
            handed: None,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(at) = self.handed.take() {
            self.request.0.frame_taken(at);
        }
        if self.next_head {
            self.request.0.response_done();
        }
    }
}

impl Body for Served {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(at) = this.handed.take() {
            this.request.0.frame_taken(at);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        // A frame with more to come: the protocol should come back for the next one
        // as soon as the client takes this one.
        if matches!(polled, Poll::Ready(Some(Ok(_)))) && !this.inner.is_end_stream() {
            this.handed = Some(this.request.0.frame_handed());
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
