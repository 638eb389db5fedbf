//! A model's answer as it is produced, and what carries it to a client:
//! [`TokenStream`] (what every backend answers with), [`coalesce`] (burst
//! batching), [`collect`] (the whole answer, for non-streaming clients),
//! [`reasoning`] (`<think>` tags read as reasoning) and [`body`] (the
//! streaming HTTP body every dialect writes into).

pub mod body;
pub mod coalesce;
pub mod reasoning;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use app::api::Counters;
use futures_util::{Stream, StreamExt};

use self::reasoning::ThinkTags;
use crate::backend::BackendError;

/// One step of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of the answer's text (never empty).
    Token(String),
    /// The next piece of the model's reasoning (never empty). Reasoning
    /// comes before the answer: a [`TokenStream`] gives none after its
    /// first `Token`.
    Thinking(String),
    /// The answer ended normally; nothing follows. Boxed: tokens are most
    /// of the events, and each is moved through several layers (an event
    /// is 32 bytes this way, 144 with the completion inline).
    Done(Box<Completion>),
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
type OnEnd = Box<dyn FnOnce(Result<(), &BackendError>) + Send>;

/// A backend's answer. Whatever the backend does, it yields reasoning, then
/// tokens, then exactly one final item (`Done` or an error), then ends; an
/// answer that stops short ends with [`BackendError::EndedEarly`]. An
/// answer that opens with `<think>` has that part given as reasoning
/// ([`reasoning`]), and reasoning a backend reports after the answer has
/// started is given as answer text (kept, in the order it came). The
/// backend's stream is released as soon as the final item is out, and an
/// error is logged with its detail as it passes. Dropping it cancels the
/// answer upstream.
pub struct TokenStream {
    backend: Arc<str>,
    events: Option<Events>,
    think_tags: ThinkTags,
    answered: bool,
    /// Events already read and not yet given out (while the answer's
    /// opening is read for tags, and at its end).
    pending: VecDeque<Result<StreamEvent, BackendError>>,
    /// What the answer's end is told (the router's count of answers in
    /// flight on its backend, and its record of how they end): called with
    /// how it ended when the backend's stream is released, or only dropped
    /// if the answer is dropped first (a client that left is nobody's
    /// failure).
    on_end: Option<OnEnd>,
}

impl TokenStream {
    pub fn new(
        backend: Arc<str>,
        events: impl Stream<Item = Result<StreamEvent, BackendError>> + Send + 'static,
    ) -> Self {
        Self {
            backend,
            events: Some(Box::pin(events)),
            think_tags: ThinkTags::default(),
            answered: false,
            pending: VecDeque::new(),
            on_end: None,
        }
    }

    /// The backend instance answering.
    pub fn backend(&self) -> &Arc<str> {
        &self.backend
    }

    /// Calls `end` with how the answer ended (`Ok` for `Done`) as it ends;
    /// an answer dropped before its end drops `end` uncalled. What `end`
    /// holds lives as long as the answer does.
    pub fn on_end(mut self, end: impl FnOnce(Result<(), &BackendError>) + Send + 'static) -> Self {
        self.on_end = Some(Box::new(end));
        self
    }
}

impl Stream for TokenStream {
    type Item = Result<StreamEvent, BackendError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(event));
            }
            let Some(events) = this.events.as_mut() else {
                return Poll::Ready(None);
            };
            let event = match std::task::ready!(events.as_mut().poll_next(cx)) {
                Some(Ok(StreamEvent::Token(text))) => {
                    this.answered = true;
                    if this.think_tags.is_passing() {
                        return Poll::Ready(Some(Ok(StreamEvent::Token(text))));
                    }
                    let pending = &mut this.pending;
                    this.think_tags
                        .push(text, &mut |event| pending.push_back(Ok(event)));
                    continue;
                }
                Some(Ok(StreamEvent::Thinking(text))) => {
                    this.think_tags.reasoning_reported();
                    let event = if this.answered {
                        StreamEvent::Token(text)
                    } else {
                        StreamEvent::Thinking(text)
                    };
                    return Poll::Ready(Some(Ok(event)));
                }
                Some(event) => event,
                None => Err(BackendError::EndedEarly {
                    backend: this.backend.clone(),
                }),
            };
            if let Err(error) = &event {
                error.log();
            }
            // The end: release the backend's stream (its connection, its slot) now.
            this.events = None;
            if let Some(end) = this.on_end.take() {
                end(event.as_ref().map(|_| ()));
            }
            let pending = &mut this.pending;
            this.think_tags
                .finish(&mut |event| pending.push_back(Ok(event)));
            pending.push_back(event);
        }
    }
}

/// A whole answer.
#[derive(Debug, Default, PartialEq)]
pub struct Collected {
    pub text: String,
    /// The model's reasoning before it (empty when it gave none).
    pub reasoning: String,
    pub completion: Completion,
}

/// Drains an answer into its whole text and how it ended, for clients that
/// asked for one JSON answer.
pub async fn collect(mut tokens: TokenStream) -> Result<Collected, BackendError> {
    let mut collected = Collected::default();
    while let Some(event) = tokens.next().await {
        match event? {
            StreamEvent::Token(token) => collected.text.push_str(&token),
            StreamEvent::Thinking(thought) => collected.reasoning.push_str(&thought),
            StreamEvent::Done(completion) => {
                collected.completion = *completion;
                return Ok(collected);
            }
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
        let done = Ok(StreamEvent::Done(Box::default()));
        let tokens = TokenStream::new(
            "fake".into(),
            futures_util::stream::iter([token("a"), done.clone(), token("late")]),
        );
        let events: Vec<_> = tokens.collect().await;
        assert_eq!(events, [token("a"), done]);
    }

    #[tokio::test]
    async fn collect_puts_the_text_together() {
        let done = Ok(StreamEvent::Done(Box::new(Completion {
            done_reason: Some("stop".into()),
            ..Completion::default()
        })));
        let tokens = TokenStream::new(
            "fake".into(),
            futures_util::stream::iter([token("Hel"), token("lo"), done]),
        );
        let collected = collect(tokens).await.unwrap();
        assert_eq!(collected.text, "Hello");
        assert_eq!(collected.reasoning, "");
        assert_eq!(collected.completion.done_reason.as_deref(), Some("stop"));
    }

    fn thinking(text: &str) -> Result<StreamEvent, BackendError> {
        Ok(StreamEvent::Thinking(text.into()))
    }

    #[tokio::test]
    async fn think_tags_at_the_start_become_reasoning() {
        let done = Ok(StreamEvent::Done(Box::default()));
        let tokens = TokenStream::new(
            "fake".into(),
            futures_util::stream::iter([
                token("<thi"),
                token("nk>Hmm."),
                token("</think>\n"),
                token("Paris"),
                done.clone(),
            ]),
        );
        let events: Vec<_> = tokens.collect().await;
        assert_eq!(events, [thinking("Hmm."), token("Paris"), done]);
    }

    #[tokio::test]
    async fn held_text_comes_out_before_the_end() {
        let failed = Err(BackendError::EndedEarly {
            backend: "fake".into(),
        });
        let tokens = TokenStream::new(
            "fake".into(),
            futures_util::stream::iter([token("<think>Hmm</thi"), failed.clone()]),
        );
        let events: Vec<_> = tokens.collect().await;
        assert_eq!(events, [thinking("Hmm"), thinking("</thi"), failed]);
    }

    #[tokio::test]
    async fn reported_reasoning_comes_first_and_tags_are_then_text() {
        let done = Ok(StreamEvent::Done(Box::default()));
        let tokens = TokenStream::new(
            "fake".into(),
            futures_util::stream::iter([
                thinking("Hmm"),
                token("<think>literal"),
                thinking("late"),
                done.clone(),
            ]),
        );
        let events: Vec<_> = tokens.collect().await;
        assert_eq!(
            events,
            [
                thinking("Hmm"),
                token("<think>literal"),
                token("late"),
                done
            ]
        );
    }
}
