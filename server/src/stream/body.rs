//! The body of every streaming response, whatever its dialect: encoded
//! chunks sent the moment they are ready, a keep-alive after every quiet
//! interval (so proxies do not time the stream out), and the dialect's
//! shutdown frame when the server stops. Counted as an open stream while it
//! lasts. Dropping it (the client went away) drops the chunks' source, and
//! with it the answer upstream.
//!
//! The response is never compressed (the compression layer skips event
//! streams by content type) and tells proxies not to buffer it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::metrics::{Metrics, StreamGuard};
use crate::shutdown::Shutdown;

/// Encoded bytes ready to send, and how many tokens they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub bytes: Bytes,
    pub tokens: u64,
}

/// How a dialect frames its stream, beyond its chunks.
#[derive(Debug, Clone)]
pub struct Framing {
    pub content_type: &'static str,
    /// Sent after a quiet keep-alive interval, if the format has a way to
    /// say nothing (an SSE comment).
    pub keep_alive: Option<&'static [u8]>,
    /// The last bytes of a stream cut short by a server shutdown.
    pub shutdown: Bytes,
}

/// What a streaming body needs from the server.
#[derive(Clone)]
pub struct StreamContext {
    pub shutdown: Shutdown,
    pub keep_alive: Duration,
    pub metrics: Arc<Metrics>,
}

/// A streaming response over `chunks`.
pub fn response(
    chunks: impl Stream<Item = Chunk> + Send + 'static,
    framing: Framing,
    context: &StreamContext,
) -> Response {
    let content_type = framing.content_type;
    let body = StreamBody {
        chunks: Box::pin(chunks),
        framing,
        shutdown: context.shutdown.clone(),
        shutdown_wait: Box::pin(context.shutdown.triggered_owned()),
        shutdown_waker: None,
        keep_alive: context.keep_alive,
        idle_timer: Box::pin(tokio::time::sleep(context.keep_alive)),
        last_sent: Instant::now(),
        metrics: context.metrics.clone(),
        _open: context.metrics.stream_opened(),
        ended: false,
    };
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct StreamBody {
    chunks: Pin<Box<dyn Stream<Item = Chunk> + Send>>,
    framing: Framing,
    /// Read at every poll (an atomic load)...
    shutdown: Shutdown,
    /// ...and awaited when the body has nothing to send, so a quiet stream
    /// is woken by it. Polling it takes locks, so it is polled again only
    /// when the task polling the body is another one.
    shutdown_wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker `shutdown_wait` will wake.
    shutdown_waker: Option<Waker>,
    keep_alive: Duration,
    /// Fires a keep-alive interval after the last chunk sent; re-armed
    /// lazily, so a busy stream does not touch the timer on every chunk.
    idle_timer: Pin<Box<Sleep>>,
    last_sent: Instant,
    metrics: Arc<Metrics>,
    _open: StreamGuard,
    ended: bool,
}

impl Stream for StreamBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        // Shutdown first: a fast stream must still notice it.
        if this.shutdown.is_triggered() {
            return Poll::Ready(Some(Ok(this.end_for_shutdown())));
        }
        match this.chunks.as_mut().poll_next(cx) {
            Poll::Ready(Some(chunk)) => {
                this.metrics.tokens_relayed(chunk.tokens);
                this.last_sent = Instant::now();
                return Poll::Ready(Some(Ok(chunk.bytes)));
            }
            Poll::Ready(None) => {
                this.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        // Quiet: a keep-alive once a whole interval has passed with nothing sent.
        if let Some(keep_alive) = this.framing.keep_alive {
            loop {
                if this.idle_timer.as_mut().poll(cx).is_pending() {
                    break;
                }
                let due = this.last_sent + this.keep_alive;
                if Instant::now() >= due {
                    this.last_sent = Instant::now();
                    this.idle_timer
                        .as_mut()
                        .reset(this.last_sent + this.keep_alive);
                    return Poll::Ready(Some(Ok(Bytes::from_static(keep_alive))));
                }
                this.idle_timer.as_mut().reset(due);
            }
        }
        this.pending(cx)
    }
}

impl StreamBody {
    /// Waits, listening for a shutdown too.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let listening = self
            .shutdown_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if !listening {
            if self.shutdown_wait.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Ok(self.end_for_shutdown())));
            }
            self.shutdown_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The dialect's shutdown frame; the stream ends after it, and the
    /// chunks' source (the answer upstream) is dropped with the body.
    fn end_for_shutdown(&mut self) -> Bytes {
        self.ended = true;
        self.framing.shutdown.clone()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    use super::*;

    const KEEP_ALIVE: Duration = Duration::from_secs(15);

    fn context() -> StreamContext {
        StreamContext {
            shutdown: Shutdown::default(),
            keep_alive: KEEP_ALIVE,
            metrics: Arc::new(Metrics::default()),
        }
    }

    fn framing() -> Framing {
        Framing {
            content_type: "text/event-stream",
            keep_alive: Some(b":\n\n"),
            shutdown: Bytes::from_static(b"bye\n"),
        }
    }

    fn chunk(text: &'static str) -> Chunk {
        Chunk {
            bytes: Bytes::from_static(text.as_bytes()),
            tokens: 1,
        }
    }

    /// A body fed through a channel, and its frames as they come.
    fn fed(context: &StreamContext) -> (mpsc::UnboundedSender<Chunk>, Body) {
        let (send, mut receive) = mpsc::unbounded_channel();
        let chunks = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
        let response = response(chunks, framing(), context);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert_eq!(response.headers()["x-accel-buffering"], "no");
        (send, response.into_body())
    }

    async fn next(body: &mut Body) -> Option<Bytes> {
        body.frame()
            .await
            .map(|frame| frame.unwrap().into_data().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_gets_a_keep_alive_after_each_interval() {
        let context = context();
        let (send, mut body) = fed(&context);
        let started = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
        assert_eq!(started.elapsed(), KEEP_ALIVE);
        // A chunk restarts the interval.
        tokio::time::sleep(Duration::from_secs(5)).await;
        send.send(chunk("a")).unwrap();
        assert_eq!(next(&mut body).await.unwrap(), "a");
        let sent = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
        assert_eq!(sent.elapsed(), KEEP_ALIVE);
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_pass_at_once_and_are_counted() {
        let context = context();
        let (send, mut body) = fed(&context);
        assert_eq!(context.metrics.active_streams(), 1);
        send.send(chunk("a")).unwrap();
        send.send(chunk("b")).unwrap();
        let started = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), "a");
        assert_eq!(next(&mut body).await.unwrap(), "b");
        assert_eq!(started.elapsed(), Duration::ZERO);
        drop(send);
        assert_eq!(next(&mut body).await, None);
        drop(body);
        assert_eq!(context.metrics.active_streams(), 0);
        assert!(
            context
                .metrics
                .render(0, &[], 0)
                .contains("llm_chat_tokens_relayed_total 2\n")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_ends_a_quiet_stream_with_the_dialects_frame() {
        let context = context();
        let (_send, mut body) = fed(&context);
        let shutdown = context.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            shutdown.trigger();
        });
        assert_eq!(next(&mut body).await.unwrap(), "bye\n");
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_stream_notices_a_shutdown_too() {
        let context = context();
        let chunks = futures_util::stream::repeat_with(|| chunk("x"));
        let mut body = response(chunks, framing(), &context).into_body();
        assert_eq!(next(&mut body).await.unwrap(), "x");
        context.shutdown.trigger();
        assert_eq!(next(&mut body).await.unwrap(), "bye\n");
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_format_without_keep_alive_stays_silent_when_quiet() {
        let context = context();
        let (send, mut receive) = mpsc::unbounded_channel::<Chunk>();
        let chunks = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
        let framing = Framing {
            keep_alive: None,
            ..framing()
        };
        let mut body = response(chunks, framing, &context).into_body();
        let quiet = tokio::time::timeout(KEEP_ALIVE * 3, next(&mut body)).await;
        assert!(quiet.is_err(), "nothing was sent");
        send.send(chunk("late")).unwrap();
        assert_eq!(next(&mut body).await.unwrap(), "late");
    }
}
