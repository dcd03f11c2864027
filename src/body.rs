//! Response bodies, on the ground floor: every response the proxy sends — a page, an
//! error, a health answer or a streamed upstream body — has the type [`ResponseBody`],
//! so the server, the sign-in endpoints, the error pages and the forward
//! stage agree on one type without importing each other.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Boxed error type of our bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body, type-erased: the forward stage decides what streams (an upstream
/// body with its timeouts), the rest of the house only sends it.
pub(crate) type StreamedBody = Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>;

/// The body of every response we send: a ready-made page or a streamed body.
pub enum ResponseBody {
    /// A complete body (pages, errors, health checks); None once sent.
    Full {
        /// The bytes still to send.
        data: Option<Bytes>,
    },
    /// A body streamed frame by frame (an upstream response).
    Stream {
        /// The stream.
        body: StreamedBody,
    },
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseBody::Full { data } => f
                .debug_struct("Full")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            ResponseBody::Stream { .. } => f.write_str("Stream"),
        }
    }
}

impl ResponseBody {
    /// A complete body.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        ResponseBody::Full {
            data: (!data.is_empty()).then_some(data),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        ResponseBody::Full { data: None }
    }

    /// A streamed body.
    pub fn stream<B>(body: B) -> Self
    where
        B: Body<Data = Bytes, Error = BoxError> + Send + 'static,
    {
        ResponseBody::Stream {
            body: Box::pin(body),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ResponseBody::Stream { body } => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full { data } => data.is_none(),
            ResponseBody::Stream { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            ResponseBody::Stream { body } => body.size_hint(),
        }
    }
}
