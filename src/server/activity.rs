//! What a connection's timeouts watch: traffic (for `timeout_idle`) and whether an
//! HTTP/1.1 request head is awaited (for `timeout_read_header`).
//!
//! Both are plain atomics the request path updates without touching a timer; the
//! connection task checks them from one long-lived sleep each, which it re-arms only
//! when the sleep fires ([`Activity::idle_for`], [`Activity::head_timeout`]). A busy
//! connection therefore costs no timer registration per request.
//!
//! The head clock follows hyper's own header-read timeout, which it replaces: it runs
//! from the moment an HTTP/1.1 connection is known (its first bytes, which are not the
//! HTTP/2 preface) and again from the end of each response, and stops when a request
//! head has been read (the service is called). It never runs on HTTP/2 connections or
//! after a protocol switch (101).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::body::{BoxError, ResponseBody};

/// The HTTP/2 client preface, which marks a connection as HTTP/2 (as hyper-util reads it).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `head_since_ms` when no head is awaited.
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
            head_since_ms: AtomicU64::new(NOT_WAITING),
            protocol: AtomicU8::new(UNKNOWN),
            preface_seen: AtomicU8::new(0),
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
            self.protocol.store(HTTP1, Ordering::Relaxed);
            self.head_since_ms.store(self.now_ms(), Ordering::Relaxed);
        } else if seen + n == H2_PREFACE.len() {
            self.protocol.store(HTTP2, Ordering::Relaxed);
        } else {
            self.preface_seen.store((seen + n) as u8, Ordering::Relaxed);
        }
    }

    /// A request head was read (the service is called).
    pub fn head_received(&self, version: http::Version) {
        if version == http::Version::HTTP_2 {
            self.protocol.store(HTTP2, Ordering::Relaxed);
        }
        self.head_since_ms.store(NOT_WAITING, Ordering::Relaxed);
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
        if self.touch && matches!(result, Poll::Ready(Ok(n)) if n > 0) {
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
        if self.touch && matches!(result, Poll::Ready(Ok(n)) if n > 0) {
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

/// A response body that, once hyper is done with it, starts the wait for the next
/// request head (unless it is `None`: a protocol switch).
pub struct Served {
    inner: ResponseBody,
    done: Option<Arc<Activity>>,
}

impl Served {
    /// Wraps `inner`; `done` is told when the body is finished with.
    pub fn new(inner: ResponseBody, done: Option<Arc<Activity>>) -> Self {
        Self { inner, done }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(activity) = self.done.take() {
            activity.response_done();
        }
    }
}

impl Body for Served {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
