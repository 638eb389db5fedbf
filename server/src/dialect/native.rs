//! llm-chat's own API (`/api/v1`, the Go API's shapes): its requests parsed
//! into the inference request, and answers encoded back, as one JSON object
//! here or as Server-Sent Events ([`events`]). Errors are `{"error": "…"}`
//! (see [`crate::error`]).

use app::api::{
    ChatMessage, ChatRequest, ChatResponse, CreateGenerationRequest, DoneChunk, GenerateRequest,
    GenerateResponse, GenerationState, GenerationStatus, KeepAlive as WireKeepAlive, ModelOptions,
    Role as WireRole, Think as WireThink,
};

mod events;
mod pull;

pub use self::events::{stream_answer, stream_generation};
pub use self::pull::stream_pull;
use crate::error::AppError;
use crate::generations::{End, Snapshot, Status};
use crate::inference::{InferenceRequest, Input, KeepAlive, Message, Options, Role, Think};
use crate::stream::{Collected, Completion};

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
            raw: false,
        },
        options: options(request.options),
        keep_alive: request.keep_alive.map(keep_alive_of),
        think: request.think.map(think_of),
        format: None,
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
        keep_alive: request.keep_alive.map(keep_alive_of),
        think: request.think.map(think_of),
        format: None,
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
                raw: false,
            }
        }
    };
    Ok(InferenceRequest {
        model: request.model,
        input,
        options: options(request.options),
        keep_alive: request.keep_alive.map(keep_alive_of),
        think: request.think.map(think_of),
        format: None,
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
        .map(|message| message_of(message.role, message.content))
        .collect()
}

/// One of our messages as the inference request's.
pub fn message_of(role: WireRole, content: String) -> Message {
    let role = match role {
        WireRole::System => Role::System,
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
        WireRole::Tool => Role::Tool,
    };
    Message::new(role, content)
}

fn options(options: Option<ModelOptions>) -> Options {
    options.map(options_of).unwrap_or_default()
}

/// Our options (Ollama's names) as the inference request's.
pub fn options_of(mut options: ModelOptions) -> Options {
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

pub(crate) fn think_of(think: WireThink) -> Think {
    match think {
        WireThink::Enabled(on) => Think::Enabled(on),
        WireThink::Level(level) => Think::Level(level),
    }
}

pub(crate) fn keep_alive_of(keep_alive: WireKeepAlive) -> KeepAlive {
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

pub fn generate_response(asked: String, answer: Collected) -> GenerateResponse {
    let Collected {
        text,
        reasoning,
        mut completion,
    } = answer;
    GenerateResponse {
        model: answering_model(asked, &mut completion),
        created_at: completion.created_at,
        response: text,
        thinking: non_empty(reasoning),
        done: true,
        done_reason: completion.done_reason,
        context: completion.context,
        counters: completion.counters,
    }
}

pub fn chat_response(asked: String, answer: Collected) -> ChatResponse {
    let Collected {
        text,
        reasoning,
        mut completion,
    } = answer;
    ChatResponse {
        model: answering_model(asked, &mut completion),
        created_at: completion.created_at,
        message: ChatMessage {
            thinking: non_empty(reasoning),
            ..ChatMessage::new(WireRole::Assistant, text)
        },
        done: true,
        done_reason: completion.done_reason,
        counters: completion.counters,
    }
}

/// Reasoning as the wire carries it: absent when there was none.
pub fn non_empty(reasoning: String) -> Option<String> {
    (!reasoning.is_empty()).then_some(reasoning)
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
        thinking: non_empty(snapshot.reasoning),
        tokens: snapshot.tokens,
        error,
        stats,
    }
}

pub(super) fn nanos(duration: std::time::Duration) -> u64 {
    duration.as_nanos().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

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
