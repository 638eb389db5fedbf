//! OpenAI's streamed answers: `data: {…chunk…}` frames, then `data: [DONE]`.
//! A chat stream opens with the assistant's role, carries each token as a
//! `delta`, and closes with the `finish_reason` (and, when asked, a last
//! chunk with the usage); a legacy completion carries `text`. A failure
//! after the stream started is OpenAI's streamed error, and the stream
//! ends. Every chunk of one answer starts the same way (id, object,
//! created, model), so that start is written once and copied per token.

use std::sync::LazyLock;

use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};

use super::error::OpenAiError;
use super::{Answering, finish_reason, usage};
use crate::backend::BackendError;
use crate::dialect::write_json;
use crate::shutdown::SHUTTING_DOWN;
use crate::stream::body::{self, Chunk, Framing, StreamContext};
use crate::stream::coalesce::{Batch, coalesce_into};
use crate::stream::{StreamEvent, TokenStream};

/// Which of OpenAI's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `chat.completion.chunk`
    Chat,
    /// `text_completion`
    Text,
}

fn framing() -> Framing {
    static SHUTDOWN: LazyLock<Bytes> = LazyLock::new(|| {
        let mut frame = BytesMut::new();
        write_data(&mut frame, &OpenAiError::in_stream(SHUTTING_DOWN.into()));
        frame.freeze()
    });
    Framing {
        content_type: "text/event-stream",
        keep_alive: Some(b": keep-alive\n\n"),
        shutdown: SHUTDOWN.clone(),
    }
}

/// The answer as OpenAI streams it.
pub fn stream_answer(
    tokens: TokenStream,
    dialect: Dialect,
    answering: Answering,
    context: &StreamContext,
) -> Response {
    body::response(
        coalesce_into(tokens, Frames::new(dialect, answering)),
        framing(),
        context,
    )
}

struct Frames {
    dialect: Dialect,
    include_usage: bool,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`
    start: Bytes,
    opened: bool,
    out: BytesMut,
    events: usize,
    tokens: u64,
}

impl Frames {
    fn new(dialect: Dialect, answering: Answering) -> Self {
        let object = match dialect {
            Dialect::Chat => "chat.completion.chunk",
            Dialect::Text => "text_completion",
        };
        let mut start = BytesMut::new();
        start.put_slice(b"data: {\"id\":");
        write_json(&mut start, &answering.id);
        start.put_slice(b",\"object\":\"");
        start.put_slice(object.as_bytes());
        start.put_slice(b"\",\"created\":");
        start.put_slice(itoa::Buffer::new().format(answering.created).as_bytes());
        start.put_slice(b",\"model\":");
        write_json(&mut start, &answering.model);
        start.put_slice(b",\"choices\":[");
        Self {
            dialect,
            include_usage: answering.include_usage,
            start: start.freeze(),
            opened: false,
            out: BytesMut::new(),
            events: 0,
            tokens: 0,
        }
    }

    /// The end of a chunk with one choice: `]` and, when usage was asked
    /// for, the `"usage":null` every chunk but the last carries.
    fn close_choice(&mut self) {
        self.out.put_slice(b"]");
        if self.include_usage {
            self.out.put_slice(b",\"usage\":null");
        }
        self.out.put_slice(b"}\n\n");
    }

    /// A chat stream's first chunk: the role, before any text.
    fn open(&mut self) {
        if self.opened || self.dialect == Dialect::Text {
            self.opened = true;
            return;
        }
        self.opened = true;
        self.out.put_slice(&self.start);
        self.out.put_slice(
            b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}",
        );
        self.close_choice();
    }

    /// One piece of text: a chat `delta` (`content`, or `reasoning_content`
    /// for thoughts) or a completion's `text`.
    fn text(&mut self, field: &str, text: &str) {
        self.out.reserve(self.start.len() + text.len() + 96);
        self.out.put_slice(&self.start);
        match self.dialect {
            Dialect::Chat => {
                self.out.put_slice(b"{\"index\":0,\"delta\":{\"");
                self.out.put_slice(field.as_bytes());
                self.out.put_slice(b"\":");
                write_json(&mut self.out, text);
                self.out
                    .put_slice(b"},\"logprobs\":null,\"finish_reason\":null}");
            }
            Dialect::Text => {
                self.out.put_slice(b"{\"text\":");
                write_json(&mut self.out, text);
                self.out
                    .put_slice(b",\"index\":0,\"logprobs\":null,\"finish_reason\":null}");
            }
        }
        self.close_choice();
    }

    fn done(&mut self, completion: &crate::stream::Completion) {
        let reason = finish_reason(completion);
        self.out.put_slice(&self.start);
        match self.dialect {
            Dialect::Chat => self
                .out
                .put_slice(b"{\"index\":0,\"delta\":{},\"logprobs\":null"),
            Dialect::Text => self
                .out
                .put_slice(b"{\"text\":\"\",\"index\":0,\"logprobs\":null"),
        }
        self.out.put_slice(b",\"finish_reason\":\"");
        self.out.put_slice(reason.as_bytes());
        self.out.put_slice(b"\"}");
        self.close_choice();
        if self.include_usage {
            self.out.put_slice(&self.start);
            self.out.put_slice(b"],\"usage\":");
            write_json(&mut self.out, &usage(completion));
            self.out.put_slice(b"}\n\n");
        }
        self.out.put_slice(b"data: [DONE]\n\n");
    }
}

impl Batch<Result<StreamEvent, BackendError>> for Frames {
    type Output = Chunk;

    fn push(&mut self, event: Result<StreamEvent, BackendError>) {
        self.events += 1;
        match event {
            Ok(StreamEvent::Token(text)) => {
                self.open();
                self.text("content", &text);
                self.tokens += 1;
            }
            Ok(StreamEvent::Thinking(text)) => {
                self.open();
                // A legacy completion has nowhere to put thoughts.
                if self.dialect == Dialect::Chat {
                    self.text("reasoning_content", &text);
                    self.tokens += 1;
                }
            }
            Ok(StreamEvent::Done(completion)) => {
                self.open();
                self.done(&completion);
            }
            Err(error) => {
                write_data(&mut self.out, &OpenAiError::in_stream(error.to_string()));
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

fn write_data(out: &mut BytesMut, value: &impl serde::Serialize) {
    out.put_slice(b"data: ");
    write_json(out, value);
    out.put_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use app::api::Counters;

    use super::*;
    use crate::stream::Completion;

    fn answering(include_usage: bool) -> Answering {
        Answering {
            id: "chatcmpl-1".into(),
            model: "m".into(),
            created: 7,
            include_usage,
        }
    }

    fn encode(
        dialect: Dialect,
        include_usage: bool,
        events: Vec<Result<StreamEvent, BackendError>>,
    ) -> String {
        let mut frames = Frames::new(dialect, answering(include_usage));
        for event in events {
            frames.push(event);
        }
        String::from_utf8(frames.take().bytes.to_vec()).unwrap()
    }

    fn done(reason: &str) -> Result<StreamEvent, BackendError> {
        Ok(StreamEvent::Done(Box::new(Completion {
            done_reason: Some(reason.into()),
            counters: Counters {
                prompt_eval_count: 3,
                eval_count: 2,
                ..Counters::default()
            },
            ..Completion::default()
        })))
    }

    const START: &str = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m","choices":["#;

    #[test]
    fn a_chat_stream_has_openais_frames() {
        let body = encode(
            Dialect::Chat,
            false,
            vec![
                Ok(StreamEvent::Thinking("hm".into())),
                Ok(StreamEvent::Token("a \"b\"\n".into())),
                done("length"),
            ],
        );
        let expected = [
            r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"index":0,"delta":{"reasoning_content":"hm"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"index":0,"delta":{"content":"a \"b\"\n"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}"#,
        ]
        .iter()
        .map(|chunk| format!("{START}{chunk}\n\n"))
        .collect::<String>()
            + "data: [DONE]\n\n";
        assert_eq!(body, expected);
    }

    #[test]
    fn usage_comes_last_when_asked_for() {
        let body = encode(
            Dialect::Chat,
            true,
            vec![Ok(StreamEvent::Token("x".into())), done("stop")],
        );
        assert!(body.contains(r#""finish_reason":"stop"}],"usage":null}"#));
        assert!(body.ends_with(&format!(
            "{START}],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}}}\n\ndata: [DONE]\n\n"
        )));
    }

    #[test]
    fn a_completion_stream_carries_text() {
        let body = encode(
            Dialect::Text,
            false,
            vec![Ok(StreamEvent::Token("Once".into())), done("stop")],
        );
        let start = START.replace("chat.completion.chunk", "text_completion");
        assert_eq!(
            body,
            format!(
                "{start}{{\"text\":\"Once\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}}]}}\n\n\
                 {start}{{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n\
                 data: [DONE]\n\n"
            )
        );
    }

    #[test]
    fn a_failure_mid_stream_is_openais_streamed_error() {
        let body = encode(
            Dialect::Chat,
            false,
            vec![
                Ok(StreamEvent::Token("x".into())),
                Err(BackendError::EndedEarly {
                    backend: "ollama".into(),
                }),
            ],
        );
        assert!(body.ends_with(
            "data: {\"error\":{\"message\":\"ollama ended the stream before it was done\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
        ));
        assert!(!body.contains("[DONE]"));
    }
}
