//! llm-chat's own API (`/api/v1`, the Go API's shapes): its requests parsed
//! into the inference request, and answers encoded back: one JSON object,
//! or Server-Sent Events. A token frame is `data: {"response":"…",
//! "done":false}` (with an `id:` line for generations); a stream ends with
//! `event: done`, `event: error` or `event: cancelled`. Errors are
//! `{"error": "…"}` (see [`crate::error`]).

use app::api::{
    ChatMessage, ChatRequest, ChatResponse, CreateGenerationRequest, DoneChunk, EVENT_CANCELLED,
    EVENT_DONE, EVENT_ERROR, ErrorBody, GenerateRequest, GenerateResponse, GenerationState,
    GenerationStatus, KeepAlive as WireKeepAlive, ModelOptions, Role as WireRole,
    Think as WireThink,
};
use axum::response::Response;
use bytes::{BufMut, BytesMut};
use futures_util::StreamExt;

use crate::backend::BackendError;
use crate::error::AppError;
use crate::generations::{End, EventStream, GenerationEvent, Snapshot, Status};
use crate::inference::{InferenceRequest, Input, KeepAlive, Message, Options, Role, Think};
use crate::shutdown::SHUTTING_DOWN;
use crate::stream::body::{self, Chunk, Framing, StreamContext};
use crate::stream::coalesce::coalesce;
use crate::stream::{Completion, StreamEvent, TokenStream};

/// How soon a browser reconnects after losing a generation's stream.
const RECONNECT_AFTER_MS: u64 = 1000;

// ------------------------------------------------------------ requests

/// `POST /generate` and `/generate/stream`.
pub fn generate_request(request: GenerateRequest) -> Result<InferenceRequest, AppError> {
    require("model", &request.model)?;
    require("prompt", &request.prompt)?;
    Ok(InferenceRequest {
        model: request.model,
        input: Input::Completion {
            prompt: request.prompt,
            system: request.system,
            context: request.context,
        },
        options: options(request.options),
        keep_alive: request.keep_alive.map(keep_alive),
        think: request.think.map(think),
    })
}

/// `POST /chat` and `/chat/stream`.
pub fn chat_request(request: ChatRequest) -> Result<InferenceRequest, AppError> {
    require("model", &request.model)?;
    require_messages(&request.messages)?;
    Ok(InferenceRequest {
        model: request.model,
        input: Input::Chat(messages(request.messages)),
        options: options(request.options),
        keep_alive: request.keep_alive.map(keep_alive),
        think: request.think.map(think),
    })
}

/// `POST /generations`: a chat (`messages`) or a completion (`prompt`).
pub fn generation_request(request: CreateGenerationRequest) -> Result<InferenceRequest, AppError> {
    require("model", &request.model)?;
    let input = match (request.messages, request.prompt) {
        (Some(_), Some(_)) => {
            return Err(AppError::BadRequest(
                "send either `messages` (a chat) or `prompt` (a completion), not both".into(),
            ));
        }
        (None, None) => {
            return Err(AppError::BadRequest(
                "field `messages` (or `prompt`) is required and must not be empty".into(),
            ));
        }
        (Some(list), None) => {
            require_messages(&list)?;
            Input::Chat(messages(list))
        }
        (None, Some(prompt)) => {
            require("prompt", &prompt)?;
            Input::Completion {
                prompt,
                system: request.system,
                context: request.context,
            }
        }
    };
    Ok(InferenceRequest {
        model: request.model,
        input,
        options: options(request.options),
        keep_alive: request.keep_alive.map(keep_alive),
        think: request.think.map(think),
    })
}

fn require(field: &str, value: &str) -> Result<(), AppError> {
    if value.trim().is_empty() {
        return Err(AppError::BadRequest(format!(
            "field `{field}` is required and must not be empty"
        )));
    }
    Ok(())
}

fn require_messages(messages: &[ChatMessage]) -> Result<(), AppError> {
    if messages.is_empty() {
        return Err(AppError::BadRequest(
            "field `messages` is required and must not be empty".into(),
        ));
    }
    Ok(())
}

fn messages(messages: Vec<ChatMessage>) -> Vec<Message> {
    messages
        .into_iter()
        .map(|message| {
            let role = match message.role {
                WireRole::System => Role::System,
                WireRole::User => Role::User,
                WireRole::Assistant => Role::Assistant,
                WireRole::Tool => Role::Tool,
            };
            Message::new(role, message.content)
        })
        .collect()
}

fn options(options: Option<ModelOptions>) -> Options {
    let Some(mut options) = options else {
        return Options::default();
    };
    // The one untyped option a backend of ours reads; the rest pass through.
    let repeat_last_n = options
        .other
        .get("repeat_last_n")
        .and_then(serde_json::Value::as_i64)
        .and_then(|n| i32::try_from(n).ok());
    if repeat_last_n.is_some() {
        options.other.remove("repeat_last_n");
    }
    Options {
        temperature: options.temperature,
        top_p: options.top_p,
        top_k: options.top_k,
        seed: options.seed,
        max_tokens: options.num_predict,
        stop: options.stop,
        repeat_penalty: options.repeat_penalty,
        repeat_last_n,
        context_window: options.num_ctx,
        extra: options.other,
    }
}

fn think(think: WireThink) -> Think {
    match think {
        WireThink::Enabled(on) => Think::Enabled(on),
        WireThink::Level(level) => Think::Level(level),
    }
}

fn keep_alive(keep_alive: WireKeepAlive) -> KeepAlive {
    match keep_alive {
        WireKeepAlive::Seconds(seconds) => KeepAlive::Seconds(seconds),
        WireKeepAlive::Duration(text) => KeepAlive::Text(text),
    }
}

// ------------------------------------------------------------ whole answers

/// The answer's model: the backend's name for it, else the one asked for.
fn answering_model(asked: String, completion: &mut Completion) -> String {
    if completion.model.is_empty() {
        asked
    } else {
        std::mem::take(&mut completion.model)
    }
}

pub fn generate_response(
    asked: String,
    text: String,
    mut completion: Completion,
) -> GenerateResponse {
    GenerateResponse {
        model: answering_model(asked, &mut completion),
        created_at: completion.created_at,
        response: text,
        done: true,
        done_reason: completion.done_reason,
        context: completion.context,
        counters: completion.counters,
    }
}

pub fn chat_response(asked: String, text: String, mut completion: Completion) -> ChatResponse {
    ChatResponse {
        model: answering_model(asked, &mut completion),
        created_at: completion.created_at,
        message: ChatMessage::new(WireRole::Assistant, text),
        done: true,
        done_reason: completion.done_reason,
        counters: completion.counters,
    }
}

/// The counters a stream's `event: done` carries.
pub fn done_chunk(completion: Completion, time_to_first_token: Option<u64>) -> DoneChunk {
    DoneChunk {
        done: true,
        done_reason: completion.done_reason,
        context: completion.context,
        counters: completion.counters,
        time_to_first_token,
    }
}

/// `GET /generations/{id}`: where a generation stands.
pub fn generation_state(snapshot: Snapshot) -> GenerationState {
    let (error, stats) = match snapshot.end {
        None => (None, None),
        Some(End::Done {
            completion,
            time_to_first_token,
        }) => (
            None,
            Some(done_chunk(completion, time_to_first_token.map(nanos))),
        ),
        Some(End::Failed(error) | End::Cancelled(error)) => (Some(error), None),
    };
    GenerationState {
        id: snapshot.id,
        model: snapshot.model,
        status: match snapshot.status {
            Status::Running => GenerationStatus::Running,
            Status::Done => GenerationStatus::Done,
            Status::Failed => GenerationStatus::Failed,
            Status::Cancelled => GenerationStatus::Cancelled,
        },
        created_at: snapshot.created_at,
        text: snapshot.text,
        tokens: snapshot.tokens,
        error,
        stats,
    }
}

fn nanos(duration: std::time::Duration) -> u64 {
    duration.as_nanos().try_into().unwrap_or(u64::MAX)
}

// ------------------------------------------------------------ streams

/// How our event streams are framed: SSE comments keep them alive, and a
/// shutdown ends them with `event: error`.
fn framing() -> Framing {
    let mut shutdown = BytesMut::new();
    write_event(
        &mut shutdown,
        EVENT_ERROR,
        &ErrorBody {
            error: SHUTTING_DOWN.into(),
        },
    );
    Framing {
        content_type: "text/event-stream",
        keep_alive: Some(b":\n\n"),
        shutdown: shutdown.freeze(),
    }
}

/// `/generate/stream` and `/chat/stream`: the answer as it comes, one frame
/// per token (frames ready together leave together, see [`coalesce`]).
pub fn stream_answer(tokens: TokenStream, context: &StreamContext) -> Response {
    body::response(coalesce(tokens).map(encode_answer), framing(), context)
}

fn encode_answer(batch: Vec<Result<StreamEvent, BackendError>>) -> Chunk {
    let mut out = BytesMut::with_capacity(estimate(batch.iter().map(|event| match event {
        Ok(StreamEvent::Token(text)) => text.len(),
        _ => 256,
    })));
    let mut tokens = 0;
    for event in batch {
        match event {
            Ok(StreamEvent::Token(text)) => {
                write_token(&mut out, None, &text);
                tokens += 1;
            }
            Ok(StreamEvent::Done(completion)) => {
                write_event(&mut out, EVENT_DONE, &done_chunk(completion, None));
            }
            Err(error) => write_event(
                &mut out,
                EVENT_ERROR,
                &ErrorBody {
                    error: error.to_string(),
                },
            ),
        }
    }
    Chunk {
        bytes: out.freeze(),
        tokens,
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
        .chain(coalesce(events).map(encode_generation));
    body::response(chunks, framing(), context)
}

fn encode_generation(batch: Vec<GenerationEvent>) -> Chunk {
    let mut out = BytesMut::with_capacity(estimate(batch.iter().map(|event| match event {
        GenerationEvent::Tokens(run) => run.text.len() + 16 * run.len(),
        GenerationEvent::End(_) => 256,
    })));
    let mut tokens = 0;
    for event in batch {
        match event {
            GenerationEvent::Tokens(run) => {
                for (id, text) in run.iter() {
                    write_token(&mut out, Some(id), text);
                }
                tokens += run.len() as u64;
            }
            GenerationEvent::End(End::Done {
                completion,
                time_to_first_token,
            }) => write_event(
                &mut out,
                EVENT_DONE,
                &done_chunk(completion, time_to_first_token.map(nanos)),
            ),
            GenerationEvent::End(End::Failed(error)) => {
                write_event(&mut out, EVENT_ERROR, &ErrorBody { error });
            }
            GenerationEvent::End(End::Cancelled(reason)) => {
                write_event(&mut out, EVENT_CANCELLED, &ErrorBody { error: reason });
            }
        }
    }
    Chunk {
        bytes: out.freeze(),
        tokens,
    }
}

/// Room for the frames of a batch: each frame's text plus its framing.
fn estimate(sizes: impl Iterator<Item = usize>) -> usize {
    sizes.map(|size| size + 40).sum()
}

/// `data: {"response":…,"done":false}`, with `id: n` when resumable: the
/// same bytes axum's `Event` would write, without building a value.
fn write_token(out: &mut BytesMut, id: Option<u64>, text: &str) {
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(itoa::Buffer::new().format(id).as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"data: {\"response\":");
    write_json(out, text);
    out.put_slice(b",\"done\":false}\n\n");
}

fn write_event(out: &mut BytesMut, name: &str, data: &impl serde::Serialize) {
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

#[cfg(test)]
mod tests {
    use app::api::Counters;

    use super::*;
    use crate::generations::TokenRun;

    fn text(chunk: Chunk) -> String {
        String::from_utf8(chunk.bytes.to_vec()).unwrap()
    }

    #[test]
    fn answer_frames_have_the_wire_format() {
        let chunk = encode_answer(vec![
            Ok(StreamEvent::Token("a \"b\"\n".into())),
            Ok(StreamEvent::Token("x".into())),
            Ok(StreamEvent::Done(Completion {
                done_reason: Some("stop".into()),
                counters: Counters {
                    eval_count: 2,
                    ..Counters::default()
                },
                ..Completion::default()
            })),
        ]);
        assert_eq!(chunk.tokens, 2);
        assert_eq!(
            text(chunk),
            concat!(
                "data: {\"response\":\"a \\\"b\\\"\\n\",\"done\":false}\n\n",
                "data: {\"response\":\"x\",\"done\":false}\n\n",
                "event: done\ndata: {\"done\":true,\"done_reason\":\"stop\",\"total_duration\":0,",
                "\"load_duration\":0,\"prompt_eval_count\":0,\"prompt_eval_duration\":0,",
                "\"eval_count\":2,\"eval_duration\":0}\n\n"
            )
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
                first: 4,
                text: "ab\"c".into(),
                ends: vec![1, 4],
            }),
            GenerationEvent::End(End::Cancelled("stopped".into())),
        ]);
        assert_eq!(chunk.tokens, 2);
        assert_eq!(
            text(chunk),
            concat!(
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

    #[test]
    fn a_missing_field_is_named() {
        let error = generate_request(GenerateRequest {
            model: "llama3.2".into(),
            prompt: "  ".into(),
            ..GenerateRequest::default()
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "field `prompt` is required and must not be empty"
        );
        let error = chat_request(ChatRequest::default()).unwrap_err();
        assert!(error.to_string().contains("`model`"));
    }

    #[test]
    fn options_become_typed_and_the_rest_pass_through() {
        let options: ModelOptions = serde_json::from_str(
            r#"{"temperature":0.5,"num_predict":8,"repeat_last_n":16,"mirostat":2}"#,
        )
        .unwrap();
        let options = super::options(Some(options));
        assert_eq!(options.temperature, Some(0.5));
        assert_eq!(options.max_tokens, Some(8));
        assert_eq!(options.repeat_last_n, Some(16));
        assert_eq!(options.extra.len(), 1);
        assert_eq!(options.extra["mirostat"], 2);
    }
}
