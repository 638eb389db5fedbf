//! Relays a backend's token stream to a client as Server-Sent Events:
//! `data: {"response":…,"done":false}` per token, then `event: done` or
//! `event: error`. The frames are the same for every streaming endpoint.
//!
//! Each frame is its own body chunk, so hyper writes it out at once; the
//! response is never compressed (the compression layer skips
//! `text/event-stream`) and tells proxies not to buffer it either.

use std::convert::Infallible;
use std::time::Duration;

use app::api::{DoneChunk, EVENT_DONE, EVENT_ERROR, ErrorBody, TokenChunk};
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use crate::backend::{BackendError, Completion, StreamEvent, TokenStream};
use crate::state::AppState;

/// The message an open stream ends with when the server shuts down.
pub const SHUTTING_DOWN: &str = "server shutting down";

/// An SSE response relaying `tokens`. Dropping it (the client went away)
/// drops `tokens`, which cancels the generation upstream.
pub fn relay(tokens: TokenStream, state: &AppState) -> Response {
    let guard = state.metrics.stream_opened();
    let metrics = state.metrics.clone();
    let shutdown = state.shutdown.clone().cancelled_owned();
    let events = async_stream::stream! {
        let _open = guard;
        let mut tokens = tokens;
        tokio::pin!(shutdown);
        loop {
            let next = tokio::select! {
                // Shutdown first: a fast stream must still notice it.
                biased;
                () = &mut shutdown => {
                    yield error_event(SHUTTING_DOWN);
                    break;
                }
                next = tokens.next() => next,
            };
            match next {
                Some(Ok(StreamEvent::Token(text))) => {
                    metrics.token_relayed();
                    yield token_event(&text);
                }
                Some(Ok(StreamEvent::Done(completion))) => {
                    yield done_event(&completion);
                    break;
                }
                Some(Err(error)) => {
                    yield error_event(&error.to_string());
                    break;
                }
                None => {
                    yield error_event("the backend ended the stream before it was done");
                    break;
                }
            }
        }
    };
    sse_response(events, state.sse_keep_alive)
}

/// Wraps SSE events with the headers streaming needs.
pub fn sse_response(
    events: impl Stream<Item = Event> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let mut response = Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

pub fn token_event(text: &str) -> Event {
    json_event(
        Event::default(),
        &TokenChunk {
            response: text.into(),
            done: false,
        },
    )
}

pub fn done_event(completion: &Completion) -> Event {
    json_event(
        Event::default().event(EVENT_DONE),
        &DoneChunk::from(completion),
    )
}

pub fn error_event(message: &str) -> Event {
    let body = ErrorBody {
        error: message.to_string(),
    };
    json_event(Event::default().event(EVENT_ERROR), &body)
}

/// Adds the `data:` line. Fields are written in the order they are set, so
/// `event:` (when there is one) must be set first: `event: done\ndata: …`.
fn json_event(event: Event, data: &impl serde::Serialize) -> Event {
    event.json_data(data).expect("wire types always serialise")
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
