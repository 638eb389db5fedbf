//! How an answer travels (browser only): the server starts its generation,
//! then the browser's own `EventSource` (through gloo-net) reads it at its
//! events URL, reconnecting by itself and resuming with `Last-Event-ID`. Stop
//! ends the answer's task, which closes the stream, and cancels the
//! generation on the server; the text so far stays.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::PollNext;
use gloo_net::eventsource::State;
use gloo_net::eventsource::futures::{EventSource, EventSourceSubscription};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;
use web_sys::MessageEvent;

use super::conversation::{AnswerStats, Turn, TurnStatus};
use crate::api::{
    DoneChunk, EVENT_CANCELLED, EVENT_DONE, EVENT_ERROR, ErrorBody, GenerationCreated, TokenChunk,
};

/// Milliseconds on the page's clock.
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

/// The answer in flight, and how to stop it.
struct Answer {
    turn: Turn,
    /// Ends the answer's task (its stream or request goes with it).
    task: AbortHandle,
    /// Set once the server has created the generation.
    generation_id: Option<String>,
}

/// Carries one answer at a time for the page.
#[derive(Clone, Default)]
pub struct Transport {
    current: Rc<RefCell<Option<Answer>>>,
}

impl Transport {
    /// Runs the answer to `turn`: `start` has the server begin it (it posts
    /// the question, or asks for another answer) and says where its
    /// generation streams; the events are read into `turn` until it ends.
    /// With `whole`, the text lands at once when the answer is complete.
    pub fn answer(
        &self,
        turn: Turn,
        start: impl Future<Output = Result<GenerationCreated, String>> + 'static,
        whole: bool,
    ) {
        let this = self.clone();
        let task_turn = turn.clone();
        self.run(turn, async move {
            let turn = task_turn;
            let started_ms = now_ms();
            match start.await {
                Ok(created) => {
                    this.created(&turn, created.id);
                    this.follow(&turn, &created.events_url, started_ms, whole)
                        .await;
                }
                Err(message) => turn.fail(message),
            }
            this.end(&turn);
        });
    }

    /// Stops the answer in flight; its text so far stays, marked stopped.
    pub fn stop(&self) {
        let Some(answer) = self.current.borrow_mut().take() else {
            return;
        };
        answer.task.abort();
        if let Some(id) = answer.generation_id {
            delete_generation(id);
        }
        answer.turn.status.set(TurnStatus::Stopped);
    }

    /// Runs an answer's task as the current answer, replacing any other.
    fn run(&self, turn: Turn, task: impl Future<Output = ()> + 'static) {
        self.stop();
        let (handle, registration) = AbortHandle::new_pair();
        *self.current.borrow_mut() = Some(Answer {
            turn,
            task: handle,
            generation_id: None,
        });
        spawn_local(async move {
            let _ = Abortable::new(task, registration).await;
        });
    }

    /// Records the generation the server made for `turn`; if the answer was
    /// stopped while the request was on its way, cancels it.
    fn created(&self, turn: &Turn, id: String) {
        match self.current.borrow_mut().as_mut() {
            Some(answer) if answer.turn.id == turn.id => answer.generation_id = Some(id),
            _ => delete_generation(id),
        }
    }

    /// Ends the answer to `turn`, if it is still the current one.
    fn end(&self, turn: &Turn) {
        let mut current = self.current.borrow_mut();
        if current
            .as_ref()
            .is_some_and(|answer| answer.turn.id == turn.id)
        {
            current.take();
        }
    }

    /// Reads the generation's events into `turn` until it ends.
    async fn follow(&self, turn: &Turn, events_url: &str, started_ms: f64, whole: bool) {
        let Ok(mut source) = EventSource::new(events_url) else {
            turn.fail("the browser could not open the event stream");
            return;
        };
        let Some((messages, signals)) = subscribe(&mut source) else {
            turn.fail("the browser could not open the event stream");
            return;
        };
        // gloo gives each event type its own queue. Tokens are read first
        // whenever some are waiting: every token the server sent before its
        // final event is queued by the time that event is, so none is lost
        // behind it.
        let mut events = futures_util::stream::select_with_strategy(
            messages,
            futures_util::stream::select_all(signals),
            |_: &mut ()| PollNext::Left,
        );
        let mut reader = Reader {
            turn,
            started_ms,
            first_token_ms: None,
            whole: whole.then(Gathered::default),
        };
        while let Some(event) = events.next().await {
            let ended = match event {
                Ok((name, event)) => reader.event(&name, &event, source.state()),
                // gloo reports every `error` event the browser will not
                // recover from: the stream is closed for good.
                Err(_) => reader.lost_if(source.state()),
            };
            if ended {
                break;
            }
        }
        // The subscriptions go first: closing the source makes gloo
        // dispatch an `error` event that must not be read as a failure.
        drop(events);
        source.close();
    }
}

/// The token queue, and the queues of the events that end or interrupt it.
fn subscribe(
    source: &mut EventSource,
) -> Option<(EventSourceSubscription, Vec<EventSourceSubscription>)> {
    let messages = source.subscribe("message").ok()?;
    let signals = [EVENT_DONE, EVENT_CANCELLED, EVENT_ERROR, "open"]
        .into_iter()
        .map(|name| source.subscribe(name).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((messages, signals))
}

/// Turns a generation's events into the answer's state.
struct Reader<'a> {
    turn: &'a Turn,
    started_ms: f64,
    first_token_ms: Option<f64>,
    /// For a whole answer: the text gathered so far, shown at the end.
    whole: Option<Gathered>,
}

/// A whole answer's reasoning and text, until it is shown.
#[derive(Default)]
struct Gathered {
    thinking: String,
    text: String,
}

impl Reader<'_> {
    /// Applies one event; true when the answer has ended.
    fn event(&mut self, name: &str, event: &MessageEvent, state: State) -> bool {
        let turn = self.turn;
        match name {
            "message" => {
                let Some(data) = event.data().as_string() else {
                    return false;
                };
                let Ok(chunk) = serde_json::from_str::<TokenChunk>(&data) else {
                    return false;
                };
                self.first_token_ms
                    .get_or_insert_with(|| now_ms() - self.started_ms);
                if let Some(gathered) = &mut self.whole {
                    if let Some(thought) = &chunk.thinking {
                        gathered.thinking.push_str(thought);
                    }
                    gathered.text.push_str(&chunk.response);
                    return false;
                }
                if turn.status.get_untracked() != TurnStatus::Streaming {
                    turn.status.set(TurnStatus::Streaming);
                }
                if let Some(thought) = &chunk.thinking {
                    turn.thinking.update(|thinking| thinking.push_str(thought));
                }
                if !chunk.response.is_empty() {
                    turn.text.update(|text| text.push_str(&chunk.response));
                }
                false
            }
            EVENT_DONE => {
                let done = json::<DoneChunk>(event);
                if self.show_gathered() {
                    let waited = now_ms() - self.started_ms;
                    turn.stats
                        .set(done.map(|done| AnswerStats::from_whole(&done, waited)));
                } else if let Some(done) = done {
                    let stats = AnswerStats::from_stream(&done, self.first_token_ms);
                    turn.stats.set(Some(stats));
                }
                turn.status.set(TurnStatus::Done);
                true
            }
            EVENT_CANCELLED => {
                turn.error
                    .set(json::<ErrorBody>(event).map(|body| body.error));
                turn.status.set(TurnStatus::Stopped);
                true
            }
            // Both the server's `event: error` (with data) and the browser's
            // own signal that the connection dropped (without).
            EVENT_ERROR => {
                if let Some(body) = json::<ErrorBody>(event) {
                    self.show_gathered();
                    turn.fail(body.error);
                    return true;
                }
                if state == State::Connecting {
                    // The browser reconnects by itself and the server resumes
                    // after the last token received.
                    turn.status.set(TurnStatus::Reconnecting);
                    return false;
                }
                self.lost_if(state)
            }
            "open" => {
                if turn.status.get_untracked() == TurnStatus::Reconnecting {
                    let nothing_yet = turn.text.with_untracked(String::is_empty)
                        && turn.thinking.with_untracked(String::is_empty);
                    let resumed = if nothing_yet {
                        TurnStatus::Waiting
                    } else {
                        TurnStatus::Streaming
                    };
                    turn.status.set(resumed);
                }
                false
            }
            _ => false,
        }
    }

    /// Fails the answer if the stream is closed for good.
    fn lost_if(&mut self, state: State) -> bool {
        if state == State::Closed {
            self.show_gathered();
            self.turn.fail("lost the connection to the server");
            return true;
        }
        false
    }

    /// Shows a whole answer (one that ended early still shows what it
    /// said); false when the answer streamed.
    fn show_gathered(&mut self) -> bool {
        let Some(gathered) = self.whole.take() else {
            return false;
        };
        self.turn.thinking.set(gathered.thinking);
        self.turn.text.set(gathered.text);
        true
    }
}

/// The JSON in a server-sent event's data, if it carries any.
fn json<T: DeserializeOwned>(event: &MessageEvent) -> Option<T> {
    serde_json::from_str(&event.data().as_string()?).ok()
}

/// Cancels a generation on the server, in the background.
fn delete_generation(id: String) {
    crate::client::fire(async move {
        crate::client::delete(&format!("/api/v1/generations/{id}")).await
    });
}
