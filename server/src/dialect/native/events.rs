//! Our Server-Sent Events. A token frame is `data: {"response":"…",
//! "done":false}` (with an `id:` line for generations), a reasoning frame
//! `data: {"response":"","thinking":"…","done":false}`; a stream ends with
//! `event: done`, `event: error` or `event: cancelled`. Frames are written
//! straight into the buffer of the body chunk they leave in, as each event
//! arrives.

use std::sync::LazyLock;

use app::api::{EVENT_CANCELLED, EVENT_DONE, EVENT_ERROR, ErrorBody};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;

use super::{done_chunk, nanos};
use crate::backend::BackendError;
use crate::dialect::write_json;
use crate::generations::{End, EventStream, GenerationEvent};
use crate::shutdown::SHUTTING_DOWN;
use crate::stream::body::{self, Chunk, Framing, StreamContext};
use crate::stream::coalesce::{Batch, coalesce_into};
use crate::stream::{StreamEvent, TokenStream};

/// How soon a browser reconnects after losing a generation's stream.
const RECONNECT_AFTER_MS: u64 = 1000;

/// How our event streams are framed: SSE comments keep them alive, and a
/// shutdown ends them with `event: error`.
pub(super) fn framing() -> Framing {
    static SHUTDOWN: LazyLock<Bytes> = LazyLock::new(|| {
        let mut frame = BytesMut::new();
        write_event(
            &mut frame,
            EVENT_ERROR,
            &ErrorBody {
                error: SHUTTING_DOWN.into(),
            },
        );
        frame.freeze()
    });
    Framing {
        content_type: "text/event-stream",
        keep_alive: Some(b":\n\n"),
        shutdown: SHUTDOWN.clone(),
    }
}

/// `/generate/stream` and `/chat/stream`: the answer as it comes, one frame
/// per token; frames ready together leave together (see [`coalesce_into`]).
pub fn stream_answer(tokens: TokenStream, context: &StreamContext) -> Response {
    body::response(
        coalesce_into(tokens, AnswerFrames::default()),
        framing(),
        context,
    )
}

/// An answer's frames, encoded as each event arrives into the buffer that
/// leaves as one body chunk.
#[derive(Default)]
struct AnswerFrames {
    out: BytesMut,
    events: usize,
    tokens: u64,
}

impl Batch<Result<StreamEvent, BackendError>> for AnswerFrames {
    type Output = Chunk;

    fn push(&mut self, event: Result<StreamEvent, BackendError>) {
        self.events += 1;
        match event {
            Ok(StreamEvent::Token(text)) => {
                write_token(&mut self.out, None, &text);
                self.tokens += 1;
            }
            Ok(StreamEvent::Thinking(text)) => {
                write_thought(&mut self.out, None, &text);
                self.tokens += 1;
            }
            Ok(StreamEvent::Done(completion)) => {
                write_event(&mut self.out, EVENT_DONE, &done_chunk(*completion, None));
            }
            Err(error) => write_event(
                &mut self.out,
                EVENT_ERROR,
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
        Chunk {
            // The buffer's spare room stays for the next batch.
            bytes: self.out.split().freeze(),
            tokens: std::mem::take(&mut self.tokens),
        }
    }
}

/// `GET /generations/{id}/events`: `retry:` first, then `id:`-numbered
/// token frames, then how the generation ended.
pub fn stream_generation(events: EventStream, context: &StreamContext) -> Response {
    let mut retry = BytesMut::new();
    retry.put_slice(b"retry: ");
    retry.put_slice(itoa::Buffer::new().format(RECONNECT_AFTER_MS).as_bytes());
    retry.put_slice(b"\n\n");
    let retry = Chunk {
        bytes: retry.freeze(),
        tokens: 0,
    };
    let chunks = futures_util::stream::once(std::future::ready(retry))
        .chain(coalesce_into(events, GenerationFrames::default()));
    body::response(chunks, framing(), context)
}

/// A generation's frames, numbered, encoded as each event arrives.
#[derive(Default)]
struct GenerationFrames {
    out: BytesMut,
    events: usize,
    tokens: u64,
}

impl Batch<GenerationEvent> for GenerationFrames {
    type Output = Chunk;

    fn push(&mut self, event: GenerationEvent) {
        self.events += 1;
        let out = &mut self.out;
        match event {
            GenerationEvent::Tokens(run) => {
                out.reserve(run.text.len() + 48 * run.len());
                for (id, text) in run.iter() {
                    if run.is_reasoning(id) {
                        write_thought(out, Some(id), text);
                    } else {
                        write_token(out, Some(id), text);
                    }
                }
                self.tokens += run.len() as u64;
            }
            GenerationEvent::End(End::Done {
                completion,
                time_to_first_token,
            }) => write_event(
                out,
                EVENT_DONE,
                &done_chunk(completion, time_to_first_token.map(nanos)),
            ),
            GenerationEvent::End(End::Failed(error)) => {
                write_event(out, EVENT_ERROR, &ErrorBody { error });
            }
            GenerationEvent::End(End::Cancelled(reason)) => {
                write_event(out, EVENT_CANCELLED, &ErrorBody { error: reason });
            }
        }
    }

    fn len(&self) -> usize {
        self.events
    }

    fn take(&mut self) -> Chunk {
        self.events = 0;
        Chunk {
            bytes: self.out.split().freeze(),
            tokens: std::mem::take(&mut self.tokens),
        }
    }
}

/// `data: {"response":…,"done":false}`, with `id: n` when resumable: the
/// same bytes axum's `Event` would write, without building a value.
fn write_token(out: &mut BytesMut, id: Option<u64>, text: &str) {
    write_id(out, id, text);
    out.put_slice(b"data: {\"response\":");
    write_json(out, text);
    out.put_slice(b",\"done\":false}\n\n");
}

/// `data: {"response":"","thinking":…,"done":false}`: a piece of reasoning.
fn write_thought(out: &mut BytesMut, id: Option<u64>, text: &str) {
    write_id(out, id, text);
    out.put_slice(b"data: {\"response\":\"\",\"thinking\":");
    write_json(out, text);
    out.put_slice(b",\"done\":false}\n\n");
}

fn write_id(out: &mut BytesMut, id: Option<u64>, text: &str) {
    // The frame's text plus its framing (escapes may need more; rare).
    out.reserve(text.len() + 64);
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(itoa::Buffer::new().format(id).as_bytes());
        out.put_u8(b'\n');
    }
}

pub(super) fn write_event(out: &mut BytesMut, name: &str, data: &impl serde::Serialize) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    write_json(out, data);
    out.put_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use app::api::Counters;

    use super::*;
    use crate::generations::TokenRun;
    use crate::stream::Completion;

    fn text(chunk: Chunk) -> String {
        String::from_utf8(chunk.bytes.to_vec()).unwrap()
    }

    fn encode_answer(events: Vec<Result<StreamEvent, BackendError>>) -> Chunk {
        let mut frames = AnswerFrames::default();
        for event in events {
            frames.push(event);
        }
        frames.take()
    }

    fn encode_generation(events: Vec<GenerationEvent>) -> Chunk {
        let mut frames = GenerationFrames::default();
        for event in events {
            frames.push(event);
        }
        frames.take()
    }

    #[test]
    fn answer_frames_have_the_wire_format() {
        let chunk = encode_answer(vec![
            Ok(StreamEvent::Thinking("hm".into())),
            Ok(StreamEvent::Token("a \"b\"\n".into())),
            Ok(StreamEvent::Token("x".into())),
            Ok(StreamEvent::Done(Box::new(Completion {
                done_reason: Some("stop".into()),
                counters: Counters {
                    eval_count: 2,
                    ..Counters::default()
                },
                ..Completion::default()
            }))),
        ]);
        assert_eq!(chunk.tokens, 3);
        assert_eq!(
            text(chunk),
            concat!(
                "data: {\"response\":\"\",\"thinking\":\"hm\",\"done\":false}\n\n",
                "data: {\"response\":\"a \\\"b\\\"\\n\",\"done\":false}\n\n",
                "data: {\"response\":\"x\",\"done\":false}\n\n",
                "event: done\ndata: {\"done\":true,\"done_reason\":\"stop\",\"total_duration\":0,",
                "\"load_duration\":0,\"prompt_eval_count\":0,\"prompt_eval_duration\":0,",
                "\"eval_count\":2,\"eval_duration\":0}\n\n"
            )
        );
        // A batch taken starts the next one empty.
        let mut frames = AnswerFrames::default();
        frames.push(Ok(StreamEvent::Token("one".into())));
        assert_eq!(frames.len(), 1);
        frames.take();
        frames.push(Ok(StreamEvent::Token("two".into())));
        assert_eq!(
            text(frames.take()),
            "data: {\"response\":\"two\",\"done\":false}\n\n"
        );
        let failed = encode_answer(vec![Err(BackendError::EndedEarly {
            backend: "ollama".into(),
        })]);
        assert_eq!(
            text(failed),
            "event: error\ndata: {\"error\":\"ollama ended the stream before it was done\"}\n\n"
        );
    }

    #[test]
    fn generation_frames_carry_their_token_numbers() {
        let chunk = encode_generation(vec![
            GenerationEvent::Tokens(TokenRun {
                first: 3,
                text: "hmab\"c".into(),
                ends: vec![2, 3, 6],
                reasoning: 1,
            }),
            GenerationEvent::End(End::Cancelled("stopped".into())),
        ]);
        assert_eq!(chunk.tokens, 3);
        assert_eq!(
            text(chunk),
            concat!(
                "id: 3\ndata: {\"response\":\"\",\"thinking\":\"hm\",\"done\":false}\n\n",
                "id: 4\ndata: {\"response\":\"a\",\"done\":false}\n\n",
                "id: 5\ndata: {\"response\":\"b\\\"c\",\"done\":false}\n\n",
                "event: cancelled\ndata: {\"error\":\"stopped\"}\n\n"
            )
        );
    }

    #[test]
    fn the_shutdown_frame_is_an_error_event() {
        assert_eq!(
            framing().shutdown,
            "event: error\ndata: {\"error\":\"server shutting down\"}\n\n"
        );
    }
}
