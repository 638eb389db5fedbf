//! Server-Sent Events, written by hand for the hot path: a token frame is
//! `data: {"response":"…","done":false}` (with an `id:` line for
//! generations); a stream ends with `event: done`, `event: error` or
//! `event: cancelled`. The frames are the same for every streaming endpoint.
//!
//! Frames are encoded straight into the response body, and frames that are
//! ready together leave in one body chunk. Every frame is flushed at once,
//! except in a burst: a token arriving less than [`BURST_WINDOW`] after the
//! last write (faster than 1,000 tokens/s, far above any model's pace) waits
//! out the rest of that window, so the burst leaves in one write instead of
//! one write per token. The first token, and tokens at a model's pace, are
//! never held. The response is never compressed (the
//! compression layer skips `text/event-stream`), tells proxies not to
//! buffer, and carries a comment after every quiet keep-alive interval.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use app::api::{DoneChunk, EVENT_CANCELLED, EVENT_DONE, EVENT_ERROR, ErrorBody};
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::backend::{BackendError, Completion, StreamEvent, TokenStream};
use crate::generations::TokenRun;
use crate::metrics::{Metrics, StreamGuard};
use crate::shutdown::Shutdown;
use crate::state::AppState;

/// The message an open stream ends with when the server shuts down.
pub const SHUTTING_DOWN: &str = "server shutting down";

/// How much a single body chunk may gather before it is sent.
const CHUNK_LIMIT: usize = 32 * 1024;

/// Writes closer together than this are merged (see the module comment).
pub const BURST_WINDOW: Duration = Duration::from_millis(1);

/// One SSE frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `data: {"response":…,"done":false}`, with `id: n` when resumable.
    Token { id: Option<u64>, text: String },
    /// Several numbered token frames, as a generation's log holds them.
    Tokens(TokenRun),
    /// `event: done` with the final counters.
    Done(DoneChunk),
    /// `event: error` with `{"error": …}`.
    Error(String),
    /// `event: cancelled` with `{"error": …}`.
    Cancelled(String),
    /// `retry: ms`: how soon a browser reconnects.
    Retry(Duration),
}

impl Frame {
    /// Whether the stream ends with this frame.
    fn is_last(&self) -> bool {
        matches!(self, Self::Done(_) | Self::Error(_) | Self::Cancelled(_))
    }

    /// How many tokens the frame carries.
    fn tokens(&self) -> u64 {
        match self {
            Self::Token { .. } => 1,
            Self::Tokens(run) => run.len() as u64,
            _ => 0,
        }
    }

    /// Appends the frame's bytes: the same bytes axum's `Event` would write.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Token { id, text } => token(out, *id, text),
            Self::Tokens(run) => {
                for (id, text) in run.iter() {
                    token(out, Some(id), text);
                }
            }
            Self::Done(done) => event(out, EVENT_DONE, done),
            Self::Error(message) => event(
                out,
                EVENT_ERROR,
                &ErrorBody {
                    error: message.clone(),
                },
            ),
            Self::Cancelled(reason) => event(
                out,
                EVENT_CANCELLED,
                &ErrorBody {
                    error: reason.clone(),
                },
            ),
            Self::Retry(after) => {
                out.put_slice(b"retry: ");
                out.put_slice(itoa::Buffer::new().format(after.as_millis()).as_bytes());
                out.put_slice(b"\n\n");
            }
        }
    }
}

fn token(out: &mut BytesMut, id: Option<u64>, text: &str) {
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(itoa::Buffer::new().format(id).as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"data: {\"response\":");
    write_json(out, text);
    out.put_slice(b",\"done\":false}\n\n");
}

fn event(out: &mut BytesMut, name: &str, data: &impl serde::Serialize) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    write_json(out, data);
    out.put_slice(b"\n\n");
}

/// JSON has no raw newlines, so one `data:` line always holds it.
fn write_json(out: &mut BytesMut, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(out.writer(), value).expect("wire types always serialise");
}

/// An SSE response relaying a backend's tokens. Dropping it (the client
/// went away) drops `tokens`, which cancels the generation upstream.
pub fn relay(tokens: TokenStream, state: &AppState) -> Response {
    stream_response(
        Relay {
            tokens: Some(tokens),
        },
        state,
    )
}

/// Backend events as frames, ending with exactly one final frame.
struct Relay {
    tokens: Option<TokenStream>,
}

impl Stream for Relay {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let Some(tokens) = self.tokens.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match std::task::ready!(tokens.as_mut().poll_next(cx)) {
            Some(Ok(StreamEvent::Token(text))) => {
                return Poll::Ready(Some(Frame::Token { id: None, text }));
            }
            Some(Ok(StreamEvent::Done(completion))) => Frame::Done(DoneChunk::from(&completion)),
            Some(Err(error)) => Frame::Error(error.to_string()),
            None => Frame::Error("the backend ended the stream before it was done".into()),
        };
        // The end: release the backend's stream now, not when the body goes.
        self.tokens = None;
        Poll::Ready(Some(frame))
    }
}

/// An SSE response for any frame stream: counted as open while it lasts,
/// ended with `event: error` `{"error":"server shutting down"}` when the
/// server stops, kept alive with comments, and marked for no buffering.
pub fn stream_response(
    frames: impl Stream<Item = Frame> + Send + 'static,
    state: &AppState,
) -> Response {
    let body = SseBody {
        frames: Box::pin(frames),
        shutdown: state.shutdown.clone(),
        shutdown_wait: Box::pin(state.shutdown.triggered_owned()),
        shutdown_waker: None,
        keep_alive: state.sse_keep_alive,
        idle_timer: Box::pin(tokio::time::sleep(state.sse_keep_alive)),
        last_sent: Instant::now(),
        metrics: state.metrics.clone(),
        _open: state.metrics.stream_opened(),
        out: BytesMut::new(),
        tokens: 0,
        burst_timer: None,
        ended: false,
    };
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The response body: frames encoded as they come, gathered while ready.
struct SseBody {
    frames: Pin<Box<dyn Stream<Item = Frame> + Send>>,
    /// Read at every poll (an atomic load)...
    shutdown: Shutdown,
    /// ...and awaited when the body has nothing to send, so a quiet stream
    /// is woken by it. Polling it takes locks, so it is polled again only
    /// when the task polling the body is another one.
    shutdown_wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker `shutdown_wait` will wake.
    shutdown_waker: Option<Waker>,
    keep_alive: Duration,
    /// Fires a keep-alive interval after the last frame sent.
    idle_timer: Pin<Box<Sleep>>,
    last_sent: Instant,
    metrics: Arc<Metrics>,
    _open: StreamGuard,
    /// Frames encoded but not sent yet.
    out: BytesMut,
    /// Tokens in `out`.
    tokens: u64,
    /// Armed while a burst is being gathered.
    burst_timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended && this.out.is_empty() {
            return Poll::Ready(None);
        }
        // Shutdown first: a fast stream must still notice it.
        if !this.ended && this.shutdown.is_triggered() {
            return Poll::Ready(Some(Ok(this.end_for_shutdown())));
        }
        let mut upstream_pending = false;
        while !this.ended && this.out.len() < CHUNK_LIMIT {
            match this.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(frame)) => {
                    this.tokens += frame.tokens();
                    frame.encode(&mut this.out);
                    this.ended = frame.is_last();
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => {
                    upstream_pending = true;
                    break;
                }
            }
        }
        if !this.out.is_empty() {
            let flush_at = this.last_sent + BURST_WINDOW;
            if upstream_pending && this.out.len() < CHUNK_LIMIT && Instant::now() < flush_at {
                // In a burst: gather until the window ends (or more arrives).
                let timer = this
                    .burst_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(flush_at)));
                if timer.as_mut().poll(cx).is_pending() {
                    return this.pending(cx);
                }
            }
            return Poll::Ready(Some(Ok(this.take())));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        // Quiet: a comment once a whole interval has passed with nothing sent.
        loop {
            if this.idle_timer.as_mut().poll(cx).is_pending() {
                return this.pending(cx);
            }
            let due = this.last_sent + this.keep_alive;
            if Instant::now() >= due {
                this.last_sent = Instant::now();
                this.idle_timer
                    .as_mut()
                    .reset(this.last_sent + this.keep_alive);
                return Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n"))));
            }
            this.idle_timer.as_mut().reset(due);
        }
    }
}

impl SseBody {
    /// Waits, listening for a shutdown too.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let listening = self
            .shutdown_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if !self.ended && !listening {
            if self.shutdown_wait.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Ok(self.end_for_shutdown())));
            }
            self.shutdown_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// What is gathered, then the shutdown event; the stream ends after it.
    fn end_for_shutdown(&mut self) -> Bytes {
        self.ended = true;
        Frame::Error(SHUTTING_DOWN.into()).encode(&mut self.out);
        self.take()
    }

    /// The gathered frames, as one body chunk.
    fn take(&mut self) -> Bytes {
        self.metrics
            .tokens_relayed(std::mem::take(&mut self.tokens));
        self.burst_timer = None;
        self.last_sent = Instant::now();
        self.out.split().freeze()
    }
}

impl From<&Completion> for DoneChunk {
    fn from(completion: &Completion) -> Self {
        Self {
            done: true,
            done_reason: completion.done_reason.clone(),
            context: completion.context.clone(),
            total_duration: completion.total_duration,
            load_duration: completion.load_duration,
            prompt_eval_count: completion.prompt_eval_count,
            prompt_eval_duration: completion.prompt_eval_duration,
            eval_count: completion.eval_count,
            eval_duration: completion.eval_duration,
            time_to_first_token: None,
        }
    }
}

/// Drains a token stream into the whole text and how it ended, for the
/// non-streaming endpoints.
pub async fn collect(mut tokens: TokenStream) -> Result<(String, Completion), BackendError> {
    let mut text = String::new();
    while let Some(event) = tokens.next().await {
        match event? {
            StreamEvent::Token(token) => text.push_str(&token),
            StreamEvent::Done(completion) => return Ok((text, completion)),
        }
    }
    Err(BackendError::Failed(
        "the backend ended the stream before it was done".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: Frame) -> String {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn frames_have_the_wire_format() {
        assert_eq!(
            encoded(Frame::Token {
                id: None,
                text: "a \"b\"\n".into()
            }),
            "data: {\"response\":\"a \\\"b\\\"\\n\",\"done\":false}\n\n"
        );
        assert_eq!(
            encoded(Frame::Token {
                id: Some(7),
                text: "x".into()
            }),
            "id: 7\ndata: {\"response\":\"x\",\"done\":false}\n\n"
        );
        assert_eq!(
            encoded(Frame::Tokens(TokenRun {
                first: 4,
                text: "ab\"c".into(),
                ends: vec![1, 4],
            })),
            "id: 4\ndata: {\"response\":\"a\",\"done\":false}\n\n\
             id: 5\ndata: {\"response\":\"b\\\"c\",\"done\":false}\n\n"
        );
        assert_eq!(
            encoded(Frame::Error("boom".into())),
            "event: error\ndata: {\"error\":\"boom\"}\n\n"
        );
        assert_eq!(
            encoded(Frame::Retry(Duration::from_secs(1))),
            "retry: 1000\n\n"
        );
    }
}
