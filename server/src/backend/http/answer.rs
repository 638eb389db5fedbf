//! An answer's body as a backend's decoder reads it, whichever client
//! brought it: [`super::h1`]'s, read in place, or reqwest's.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::h1::H1Body;
use super::root_cause;

/// The body of an answer being streamed. Dropping it before its end closes
/// the connection (and so cancels the answer upstream); once the answer's
/// last message is read, [`AnswerBody::release`] lets the connection be
/// kept for the next request.
pub struct AnswerBody {
    inner: Inner,
}

enum Inner {
    H1(H1Body),
    Reqwest(Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>),
    Released,
}

impl AnswerBody {
    pub fn h1(body: H1Body) -> Self {
        Self {
            inner: Inner::H1(body),
        }
    }

    pub fn reqwest(response: reqwest::Response) -> Self {
        Self {
            inner: Inner::Reqwest(Box::pin(response.bytes_stream())),
        }
    }

    /// The answer is complete: what is left of the body is not wanted, and
    /// the connection may carry another request once it is read.
    pub fn release(&mut self) {
        // reqwest drains a body dropped at its end by itself.
        if let Inner::H1(body) = std::mem::replace(&mut self.inner, Inner::Released) {
            body.release();
        }
    }
}

impl Stream for AnswerBody {
    /// A piece of the body, or what broke (for the logs).
    type Item = Result<Bytes, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.inner {
            Inner::H1(body) => Pin::new(body)
                .poll_next(cx)
                .map(|item| item.map(|piece| piece.map_err(|error| error.to_string()))),
            Inner::Reqwest(body) => body
                .as_mut()
                .poll_next(cx)
                .map(|item| item.map(|piece| piece.map_err(|error| root_cause(&error)))),
            Inner::Released => Poll::Ready(None),
        }
    }
}
