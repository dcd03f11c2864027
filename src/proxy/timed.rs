//! Stage 5 (forward): the timeouts of streamed bodies.
//!
//! [`TimedBody`] streams another body frame by frame, never buffering, and fails it when
//! an overall deadline passes or the stream stays silent for longer than an idle limit.
//! Timers are created lazily — only when the inner body actually has to wait — so an
//! empty or already-buffered body costs no timer at all.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;

/// A body timed out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyTimeout {
    /// The overall deadline passed.
    #[error("body deadline exceeded")]
    Deadline,
    /// No data for longer than the idle limit.
    #[error("body idle timeout")]
    Idle,
}

pin_project! {
    /// A body with an optional overall deadline and an optional idle limit.
    pub struct TimedBody<B> {
        #[pin]
        inner: B,
        deadline: Option<Instant>,
        idle: Option<Duration>,
        timer: Option<Pin<Box<Sleep>>>,
        timer_kind: Option<BodyTimeout>,
    }
}

impl<B> TimedBody<B> {
    /// Wraps `inner`. `deadline` is measured from now; zero durations mean no limit.
    pub fn new(inner: B, deadline: Option<Duration>, idle: Option<Duration>) -> Self {
        let deadline = deadline
            .filter(|d| !d.is_zero())
            .map(|d| Instant::now() + d);
        Self {
            inner,
            deadline,
            idle: idle.filter(|d| !d.is_zero()),
            timer: None,
            timer_kind: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            // Progress: the idle clock restarts at the next wait.
            if this.idle.is_some() {
                *this.timer = None;
            }
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if this.deadline.is_none() && this.idle.is_none() {
            return Poll::Pending;
        }
        if this.timer.is_none() {
            let idle_at = this.idle.map(|d| Instant::now() + d);
            let (at, kind) = match (*this.deadline, idle_at) {
                (Some(d), Some(i)) if i < d => (i, BodyTimeout::Idle),
                (Some(d), _) => (d, BodyTimeout::Deadline),
                (None, Some(i)) => (i, BodyTimeout::Idle),
                (None, None) => return Poll::Pending,
            };
            *this.timer = Some(Box::pin(tokio::time::sleep_until(at)));
            *this.timer_kind = Some(kind);
        }
        if let Some(timer) = this.timer.as_mut() {
            ready!(timer.as_mut().poll(cx));
            let kind = this.timer_kind.take().unwrap_or(BodyTimeout::Deadline);
            return Poll::Ready(Some(Err(Box::new(kind))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test(start_paused = true)]
    async fn idle_limit_fails_a_silent_stream() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = tokio_stream_from(rx);
        let mut body = TimedBody::new(StreamBody::new(stream), None, Some(Duration::from_secs(5)));
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // Silence for longer than the idle limit.
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("idle"));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_fails_a_slow_stream_even_with_progress() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(8);
        let mut body = TimedBody::new(
            StreamBody::new(tokio_stream_from(rx)),
            Some(Duration::from_secs(10)),
            None,
        );
        tokio::spawn(async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if tx
                    .send(Ok(Frame::data(Bytes::from_static(b"x"))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let mut frames = 0;
        let err = loop {
            match body.frame().await.unwrap() {
                Ok(_) => frames += 1,
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("deadline"));
        assert!((9..=10).contains(&frames), "{frames}");
    }

    fn tokio_stream_from<T>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
