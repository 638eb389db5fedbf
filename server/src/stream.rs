//! A model's answer as it is produced, and what carries it to a client:
//! [`TokenStream`] (what every backend answers with), [`coalesce`] (burst
//! batching), [`collect`] (the whole answer, for non-streaming clients) and
//! [`body`] (the streaming HTTP body every dialect writes into).

pub mod body;
pub mod coalesce;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use app::api::Counters;
use futures_util::{Stream, StreamExt};

use crate::backend::BackendError;

/// One step of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of text (never empty).
    Token(String),
    /// The answer ended normally; nothing follows.
    Done(Completion),
}

/// How an answer ended, with its counters (durations in ns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// The model that answered, as the backend names it (empty: the one asked for).
    pub model: String,
    pub created_at: String,
    /// `stop` (a natural end or a stop sequence) or `length` (the token limit).
    pub done_reason: Option<String>,
    /// Token ids of the exchange, to continue it (completions only).
    pub context: Option<Vec<i64>>,
    pub counters: Counters,
}

type Events = Pin<Box<dyn Stream<Item = Result<StreamEvent, BackendError>> + Send>>;

/// A backend's answer. Whatever the backend does, it yields tokens, then
/// exactly one final item (`Done` or an error), then ends; an answer that
/// stops short ends with [`BackendError::EndedEarly`]. The backend's stream
/// is released as soon as the final item is out, and an error is logged
/// with its detail as it passes. Dropping it cancels the answer upstream.
pub struct TokenStream {
    backend: Arc<str>,
    events: Option<Events>,
}

impl TokenStream {
    pub fn new(
        backend: Arc<str>,
        events: impl Stream<Item = Result<StreamEvent, BackendError>> + Send + 'static,
    ) -> Self {
        Self {
            backend,
            events: Some(Box::pin(events)),
        }
    }

    /// The backend instance answering.
    pub fn backend(&self) -> &Arc<str> {
        &self.backend
    }
}

impl Stream for TokenStream {
    type Item = Result<StreamEvent, BackendError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(events) = self.events.as_mut() else {
            return Poll::Ready(None);
        };
        let event = match std::task::ready!(events.as_mut().poll_next(cx)) {
            Some(Ok(StreamEvent::Token(text))) => {
                return Poll::Ready(Some(Ok(StreamEvent::Token(text))));
            }
            Some(event) => event,
            None => Err(BackendError::EndedEarly {
                backend: self.backend.clone(),
            }),
        };
        if let Err(error) = &event {
            error.log();
        }
        // The end: release the backend's stream (its connection, its slot) now.
        self.events = None;
        Poll::Ready(Some(event))
    }
}

/// Drains an answer into its whole text and how it ended, for clients that
/// asked for one JSON answer.
pub async fn collect(mut tokens: TokenStream) -> Result<(String, Completion), BackendError> {
    let mut text = String::new();
    while let Some(event) = tokens.next().await {
        match event? {
            StreamEvent::Token(token) => text.push_str(&token),
            StreamEvent::Done(completion) => return Ok((text, completion)),
        }
    }
    // A token stream always ends with a final item; this is only its shape.
    Err(BackendError::EndedEarly {
        backend: tokens.backend.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Result<StreamEvent, BackendError> {
        Ok(StreamEvent::Token(text.into()))
    }

    #[tokio::test]
    async fn an_answer_that_stops_short_ends_with_an_error() {
        let tokens = TokenStream::new("fake".into(), futures_util::stream::iter([token("a")]));
        let events: Vec<_> = tokens.collect().await;
        assert_eq!(
            events,
            [
                token("a"),
                Err(BackendError::EndedEarly {
                    backend: "fake".into()
                })
            ]
        );
    }

    #[tokio::test]
    async fn nothing_after_the_final_item_is_read() {
        let done = Ok(StreamEvent::Done(Completion::default()));
        let tokens = TokenStream::new(
            "fake".into(),
            futures_util::stream::iter([token("a"), done.clone(), token("late")]),
        );
        let events: Vec<_> = tokens.collect().await;
        assert_eq!(events, [token("a"), done]);
    }

    #[tokio::test]
    async fn collect_puts_the_text_together() {
        let done = Ok(StreamEvent::Done(Completion {
            done_reason: Some("stop".into()),
            ..Completion::default()
        }));
        let tokens = TokenStream::new(
            "fake".into(),
            futures_util::stream::iter([token("Hel"), token("lo"), done]),
        );
        let (text, completion) = collect(tokens).await.unwrap();
        assert_eq!(text, "Hello");
        assert_eq!(completion.done_reason.as_deref(), Some("stop"));
    }
}
