//! How an answer travels (browser only). Streamed: `POST /api/v1/generations`,
//! then the browser's own `EventSource` on its events URL, which reconnects
//! by itself and resumes with `Last-Event-ID`. Whole: one `POST
//! /api/v1/chat`. Stop closes the stream (or aborts the request) and cancels
//! the generation on the server, keeping the text so far.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{AbortController, AbortSignal, Event, EventSource, MessageEvent};

use super::conversation::{AnswerStats, Turn, TurnStatus};
use crate::api::{
    ChatRequest, ChatResponse, CreateGenerationRequest, DoneChunk, EVENT_CANCELLED, EVENT_DONE,
    EVENT_ERROR, ErrorBody, GenerationCreated, TokenChunk,
};

/// Milliseconds on the page's clock.
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

/// An event name and the handler registered for it.
type Listener = (&'static str, Closure<dyn FnMut(Event)>);

/// The answer in flight, and what must be released when it ends.
struct Answer {
    turn: Turn,
    started_ms: f64,
    first_token_ms: Option<f64>,
    generation_id: Option<String>,
    source: Option<EventSource>,
    listeners: Vec<Listener>,
    abort: Option<AbortController>,
}

impl Answer {
    fn new(turn: Turn) -> Self {
        Self {
            turn,
            started_ms: now_ms(),
            first_token_ms: None,
            generation_id: None,
            source: None,
            listeners: Vec::new(),
            abort: None,
        }
    }

    /// Stops every channel of this answer.
    fn close(&self) {
        if let Some(source) = &self.source {
            for (name, listener) in &self.listeners {
                let _ = source
                    .remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            }
            source.close();
        }
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}

/// Carries one answer at a time for the page.
#[derive(Clone, Default)]
pub struct Transport {
    current: Rc<RefCell<Option<Answer>>>,
}

impl Transport {
    /// Streams the answer to `turn` through a generation and `EventSource`.
    pub fn stream(&self, turn: Turn, request: CreateGenerationRequest) {
        self.begin(Answer::new(turn.clone()));
        let this = self.clone();
        spawn_local(async move {
            let created =
                post_json::<_, GenerationCreated>("/api/v1/generations", &request, None).await;
            if !this.is_current(&turn) {
                // Stopped while the request was on its way: cancel what it started.
                if let Ok(created) = created {
                    delete_generation(created.id);
                }
                return;
            }
            match created {
                Ok(created) => this.listen(turn, created),
                Err(message) => {
                    turn.fail(message);
                    this.end(&turn);
                }
            }
        });
    }

    /// Fetches the whole answer to `turn` at once.
    pub fn whole(&self, turn: Turn, request: ChatRequest) {
        let mut answer = Answer::new(turn.clone());
        let abort = AbortController::new().ok();
        let signal = abort.as_ref().map(AbortController::signal);
        answer.abort = abort;
        let started_ms = answer.started_ms;
        self.begin(answer);
        let this = self.clone();
        spawn_local(async move {
            let result =
                post_json::<_, ChatResponse>("/api/v1/chat", &request, signal.as_ref()).await;
            if !this.is_current(&turn) {
                return;
            }
            match result {
                Ok(response) => {
                    let stats = AnswerStats::from_whole(&response, now_ms() - started_ms);
                    turn.text.set(response.message.content);
                    turn.stats.set(Some(stats));
                    turn.status.set(TurnStatus::Done);
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
        answer.close();
        if let Some(id) = answer.generation_id.clone() {
            delete_generation(id);
        }
        answer.turn.status.set(TurnStatus::Stopped);
        release(answer);
    }

    fn begin(&self, answer: Answer) {
        self.stop();
        *self.current.borrow_mut() = Some(answer);
    }

    fn is_current(&self, turn: &Turn) -> bool {
        self.current
            .borrow()
            .as_ref()
            .is_some_and(|answer| answer.turn.id == turn.id)
    }

    /// Ends the answer to `turn` (if it is still the current one).
    fn end(&self, turn: &Turn) {
        let answer = {
            let mut current = self.current.borrow_mut();
            if !current
                .as_ref()
                .is_some_and(|answer| answer.turn.id == turn.id)
            {
                return;
            }
            current.take()
        };
        if let Some(answer) = answer {
            answer.close();
            release(answer);
        }
    }

    /// Opens the generation's event stream and wires its events to `turn`.
    fn listen(&self, turn: Turn, created: GenerationCreated) {
        let source = match EventSource::new(&created.events_url) {
            Ok(source) => source,
            Err(_) => {
                turn.fail("the browser could not open the event stream");
                self.end(&turn);
                return;
            }
        };
        let mut listeners: Vec<Listener> = Vec::new();

        let this = self.clone();
        let token_turn = turn.clone();
        listeners.push((
            "message",
            Closure::new(move |event: Event| {
                let Some(data) = message_data(&event) else {
                    return;
                };
                let Ok(chunk) = serde_json::from_str::<TokenChunk>(&data) else {
                    return;
                };
                if let Some(answer) = this.current.borrow_mut().as_mut()
                    && answer.first_token_ms.is_none()
                {
                    answer.first_token_ms = Some(now_ms() - answer.started_ms);
                }
                if token_turn.status.get_untracked() != TurnStatus::Streaming {
                    token_turn.status.set(TurnStatus::Streaming);
                }
                token_turn
                    .text
                    .update(|text| text.push_str(&chunk.response));
            }),
        ));

        let this = self.clone();
        let done_turn = turn.clone();
        listeners.push((
            EVENT_DONE,
            Closure::new(move |event: Event| {
                let first_token_ms = this
                    .current
                    .borrow()
                    .as_ref()
                    .and_then(|a| a.first_token_ms);
                if let Some(done) = message_json::<DoneChunk>(&event) {
                    done_turn
                        .stats
                        .set(Some(AnswerStats::from_stream(&done, first_token_ms)));
                }
                done_turn.status.set(TurnStatus::Done);
                this.end(&done_turn);
            }),
        ));

        let this = self.clone();
        let cancelled_turn = turn.clone();
        listeners.push((
            EVENT_CANCELLED,
            Closure::new(move |event: Event| {
                let reason = message_json::<ErrorBody>(&event).map(|body| body.error);
                cancelled_turn.error.set(reason);
                cancelled_turn.status.set(TurnStatus::Stopped);
                this.end(&cancelled_turn);
            }),
        ));

        // `error` is both the server's `event: error` (a MessageEvent with
        // data) and the browser's own signal that the connection dropped.
        let this = self.clone();
        let error_turn = turn.clone();
        let error_source = source.clone();
        listeners.push((
            EVENT_ERROR,
            Closure::new(move |event: Event| {
                if let Some(body) = message_json::<ErrorBody>(&event) {
                    error_turn.fail(body.error);
                    this.end(&error_turn);
                } else if error_source.ready_state() == EventSource::CLOSED {
                    error_turn.fail("lost the connection to the server");
                    this.end(&error_turn);
                } else {
                    // The browser reconnects by itself and the server resumes
                    // after the last token received.
                    error_turn.status.set(TurnStatus::Reconnecting);
                }
            }),
        ));

        let open_turn = turn.clone();
        listeners.push((
            "open",
            Closure::new(move |_: Event| {
                if open_turn.status.get_untracked() == TurnStatus::Reconnecting {
                    let resumed = if open_turn.text.with_untracked(String::is_empty) {
                        TurnStatus::Waiting
                    } else {
                        TurnStatus::Streaming
                    };
                    open_turn.status.set(resumed);
                }
            }),
        ));

        for (name, listener) in &listeners {
            let _ =
                source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
        if let Some(answer) = self.current.borrow_mut().as_mut() {
            answer.generation_id = Some(created.id);
            answer.source = Some(source);
            answer.listeners = listeners;
        }
    }
}

/// Drops an answer's listeners after the current event handler returns: a
/// closure must not be freed while it runs.
fn release(answer: Answer) {
    spawn_local(async move { drop(answer) });
}

/// A server-sent event's data, if the event carries any.
fn message_data(event: &Event) -> Option<String> {
    event.dyn_ref::<MessageEvent>()?.data().as_string()
}

/// The JSON in a server-sent event's data, if it is one.
fn message_json<T: DeserializeOwned>(event: &Event) -> Option<T> {
    serde_json::from_str(&message_data(event)?).ok()
}

/// POSTs JSON; a non-2xx answer becomes its `{"error"}` message.
async fn post_json<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
    signal: Option<&AbortSignal>,
) -> Result<T, String> {
    let request = gloo_net::http::Request::post(url)
        .abort_signal(signal)
        .json(body)
        .map_err(|error| error.to_string())?;
    let response = request
        .send()
        .await
        .map_err(|error| format!("cannot reach the server: {error}"))?;
    if !response.ok() {
        let status = response.status();
        return Err(match response.json::<ErrorBody>().await {
            Ok(body) => body.error,
            Err(_) => format!("the server answered HTTP {status}"),
        });
    }
    response
        .json::<T>()
        .await
        .map_err(|error| format!("the server sent an unreadable answer: {error}"))
}

/// Cancels a generation on the server, in the background.
fn delete_generation(id: String) {
    spawn_local(async move {
        let url = format!("/api/v1/generations/{id}");
        let _ = gloo_net::http::Request::delete(&url).send().await;
    });
}
