//! Relays a backend's token stream to a client as Server-Sent Events:
//! `data: {"response":…,"done":false}` per token, then `event: done` or
//! `event: error`. The frames are the same for every streaming endpoint.
//!
//! Each frame is its own body chunk, so hyper writes it out at once; the
//! response is never compressed (the compression layer skips
//! `text/event-stream`) and tells proxies not to buffer it either.

use std::convert::Infallible;

use app::api::{DoneChunk, EVENT_CANCELLED, EVENT_DONE, EVENT_ERROR, ErrorBody, TokenChunk};
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
    let metrics = state.metrics.clone();
    let events = async_stream::stream! {
        let mut tokens = tokens;
        loop {
            match tokens.next().await {
                Some(Ok(StreamEvent::Token(text))) => {
                    metrics.token_relayed();
                    yield token_event(&text);
                }
                Some(Ok(StreamEvent::Done(completion))) => {
                    yield done_event(&DoneChunk::from(&completion));
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
    stream_response(events, state)
}

/// An SSE response for any event stream: counted as open while it lasts,
/// ended with `event: error` `{"error":"server shutting down"}` when the
/// server stops, kept alive with comments, and marked for no buffering.
pub fn stream_response(
    events: impl Stream<Item = Event> + Send + 'static,
    state: &AppState,
) -> Response {
    let guard = state.metrics.stream_opened();
    let shutdown = state.shutdown.clone().cancelled_owned();
    let events = async_stream::stream! {
        let _open = guard;
        tokio::pin!(events);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                // Shutdown first: a fast stream must still notice it.
                biased;
                () = &mut shutdown => {
                    yield error_event(SHUTTING_DOWN);
                    break;
                }
                next = events.next() => match next {
                    Some(event) => yield event,
                    None => break,
                },
            }
        }
    };
    let mut response = Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(state.sse_keep_alive))
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

/// A token frame with its sequence number as the SSE `id`, for resuming.
pub fn token_event_with_id(sequence: u64, text: &str) -> Event {
    json_event(
        Event::default().id(sequence.to_string()),
        &TokenChunk {
            response: text.into(),
            done: false,
        },
    )
}

pub fn done_event(done: &DoneChunk) -> Event {
    json_event(Event::default().event(EVENT_DONE), done)
}

pub fn cancelled_event(reason: &str) -> Event {
    let body = ErrorBody {
        error: reason.to_string(),
    };
    json_event(Event::default().event(EVENT_CANCELLED), &body)
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
