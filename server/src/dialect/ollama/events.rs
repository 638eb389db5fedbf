//! Ollama's streamed answers: NDJSON, one object per line. Each token is
//! `{"model":…,"created_at":…,"response":"…","done":false}` on
//! `/api/generate`, `…"message":{"role":"assistant","content":"…"}…` on
//! `/api/chat` (reasoning in `thinking`); the last line is the whole
//! answer's counters with `"done":true`. A failure after the stream started
//! is a `{"error":"…"}` line, and the stream ends: Ollama's clients raise it.
//!
//! NDJSON has no comment line, so a quiet stream sends nothing (Ollama
//! sends nothing either). The timestamp is written once per body chunk,
//! not per token: lines that leave together were made together.

use std::sync::LazyLock;

use app::api::ErrorBody;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};

use super::{chat_response, generate_response, now};
use crate::backend::BackendError;
use crate::dialect::write_json;
use crate::shutdown::SHUTTING_DOWN;
use crate::stream::body::{self, Chunk, Framing, StreamContext};
use crate::stream::coalesce::{Batch, coalesce_into};
use crate::stream::{Collected, StreamEvent, TokenStream};

/// Which of Ollama's answer streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/generate`: text in `response`.
    Generate,
    /// `/api/chat`: text in `message.content`.
    Chat,
}

fn framing() -> Framing {
    static SHUTDOWN: LazyLock<Bytes> = LazyLock::new(|| {
        let mut line = BytesMut::new();
        write_line(
            &mut line,
            &ErrorBody {
                error: SHUTTING_DOWN.into(),
            },
        );
        line.freeze()
    });
    Framing {
        content_type: "application/x-ndjson",
        keep_alive: None,
        shutdown: SHUTDOWN.clone(),
    }
}

/// The answer as Ollama streams it; `model` is the name the request used.
pub fn stream_answer(
    tokens: TokenStream,
    endpoint: Endpoint,
    model: String,
    context: &StreamContext,
) -> Response {
    body::response(
        coalesce_into(tokens, Lines::new(endpoint, model)),
        framing(),
        context,
    )
}

struct Lines {
    endpoint: Endpoint,
    model: String,
    /// `{"model":"…","created_at":` (the model written once).
    start: Bytes,
    /// `"<time>",` for the lines of the chunk being built.
    stamp: Option<String>,
    out: BytesMut,
    events: usize,
    tokens: u64,
}

impl Lines {
    fn new(endpoint: Endpoint, model: String) -> Self {
        let mut start = BytesMut::new();
        start.put_slice(b"{\"model\":");
        write_json(&mut start, &model);
        start.put_slice(b",\"created_at\":");
        Self {
            endpoint,
            model,
            start: start.freeze(),
            stamp: None,
            out: BytesMut::new(),
            events: 0,
            tokens: 0,
        }
    }

    /// A token line: `text` as the answer's, or as its reasoning.
    fn text(&mut self, text: &str, thinking: bool) {
        let stamp = self.stamp.get_or_insert_with(|| format!("\"{}\",", now()));
        self.out
            .reserve(self.start.len() + stamp.len() + text.len() + 80);
        self.out.put_slice(&self.start);
        self.out.put_slice(stamp.as_bytes());
        match self.endpoint {
            Endpoint::Generate => {
                self.out.put_slice(b"\"response\":");
                if thinking {
                    self.out.put_slice(b"\"\",\"thinking\":");
                }
                write_json(&mut self.out, text);
            }
            Endpoint::Chat => {
                self.out
                    .put_slice(b"\"message\":{\"role\":\"assistant\",\"content\":");
                if thinking {
                    self.out.put_slice(b"\"\",\"thinking\":");
                }
                write_json(&mut self.out, text);
                self.out.put_slice(b"}");
            }
        }
        self.out.put_slice(b",\"done\":false}\n");
    }

    /// The last line: the counters, with no text of its own.
    fn done(&mut self, completion: crate::stream::Completion) {
        let answer = Collected {
            text: String::new(),
            reasoning: String::new(),
            completion,
        };
        let model = self.model.clone();
        match self.endpoint {
            Endpoint::Generate => write_line(&mut self.out, &generate_response(model, answer)),
            Endpoint::Chat => write_line(&mut self.out, &chat_response(model, answer)),
        }
    }
}

impl Batch<Result<StreamEvent, BackendError>> for Lines {
    type Output = Chunk;

    fn push(&mut self, event: Result<StreamEvent, BackendError>) {
        self.events += 1;
        match event {
            Ok(StreamEvent::Token(text)) => {
                self.text(&text, false);
                self.tokens += 1;
            }
            Ok(StreamEvent::Thinking(text)) => {
                self.text(&text, true);
                self.tokens += 1;
            }
            Ok(StreamEvent::Done(completion)) => self.done(*completion),
            Err(error) => write_line(
                &mut self.out,
                &ErrorBody {
                    error: error.to_string(),
                },
            ),
        }
    }

    fn len(&self) -> usize {
        self.events
    }

    fn take(&mut self) -> Chunk {
        self.events = 0;
        self.stamp = None;
        Chunk {
            bytes: self.out.split().freeze(),
            tokens: std::mem::take(&mut self.tokens),
        }
    }
}

fn write_line(out: &mut BytesMut, value: &impl serde::Serialize) {
    write_json(out, value);
    out.put_slice(b"\n");
}

#[cfg(test)]
mod tests {
    use app::api::Counters;

    use super::*;
    use crate::stream::Completion;

    fn encode(endpoint: Endpoint, events: Vec<Result<StreamEvent, BackendError>>) -> String {
        let mut lines = Lines::new(endpoint, "m".into());
        for event in events {
            lines.push(event);
        }
        let body = String::from_utf8(lines.take().bytes.to_vec()).unwrap();
        // The time is the one thing that differs from run to run.
        let stamp = body
            .split("\"created_at\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        assert!(stamp.ends_with('Z') && stamp.len() >= 20, "{stamp}");
        body.replace(&stamp, "T")
    }

    fn done() -> Result<StreamEvent, BackendError> {
        Ok(StreamEvent::Done(Box::new(Completion {
            created_at: "T".into(),
            done_reason: Some("stop".into()),
            counters: Counters {
                prompt_eval_count: 3,
                eval_count: 2,
                ..Counters::default()
            },
            ..Completion::default()
        })))
    }

    #[test]
    fn a_chat_stream_is_ollamas_ndjson() {
        let body = encode(
            Endpoint::Chat,
            vec![
                Ok(StreamEvent::Thinking("hm".into())),
                Ok(StreamEvent::Token("a \"b\"\n".into())),
                done(),
            ],
        );
        assert_eq!(
            body,
            concat!(
                r#"{"model":"m","created_at":"T","message":{"role":"assistant","content":"","thinking":"hm"},"done":false}"#,
                "\n",
                r#"{"model":"m","created_at":"T","message":{"role":"assistant","content":"a \"b\"\n"},"done":false}"#,
                "\n",
                r#"{"model":"m","created_at":"T","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}"#,
                "\n"
            )
        );
    }

    #[test]
    fn a_generate_stream_carries_response_and_ends_with_the_counters() {
        let body = encode(
            Endpoint::Generate,
            vec![
                Ok(StreamEvent::Thinking("hm".into())),
                Ok(StreamEvent::Token("Once".into())),
                done(),
            ],
        );
        assert_eq!(
            body,
            concat!(
                r#"{"model":"m","created_at":"T","response":"","thinking":"hm","done":false}"#,
                "\n",
                r#"{"model":"m","created_at":"T","response":"Once","done":false}"#,
                "\n",
                r#"{"model":"m","created_at":"T","response":"","done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}"#,
                "\n"
            )
        );
    }

    #[test]
    fn a_failure_mid_stream_is_an_error_line() {
        let body = encode(
            Endpoint::Generate,
            vec![
                Ok(StreamEvent::Token("x".into())),
                Err(BackendError::EndedEarly {
                    backend: "ollama".into(),
                }),
            ],
        );
        assert!(body.ends_with("{\"error\":\"ollama ended the stream before it was done\"}\n"));
        assert!(!body.contains("\"done\":true"));
    }
}
