//! Ollama's API at Ollama's own paths (`/api/chat`, `/api/generate`,
//! `/api/tags`…), over every backend: point `OLLAMA_HOST` at llm-chat and
//! Ollama's clients work unchanged. Its requests parsed into the inference
//! request, and answers encoded back: one JSON object with `stream: false`,
//! NDJSON lines otherwise ([`events`]). Errors are `{"error": "…"}`, as
//! Ollama's (and ours) are.

pub mod events;
pub mod wire;

use app::api::ModelInfo;

pub use self::events::{Endpoint, stream_answer};
use self::wire::{
    AnswerMessage, ChatRequest, ChatResponse, Controls, Details, EmbedResponse, GenerateRequest,
    GenerateResponse, Metrics, Process, ProcessList, ShowResponse, Tag, TagList,
};
use super::native::{keep_alive_of, non_empty, options_of, think_of};
use crate::backend::{LoadedModel, ModelCard};
use crate::error::AppError;
use crate::inference::{EmbedRequest, Embeddings, Format, InferenceRequest, Input, Message, Role};
use crate::stream::{Collected, Completion};

/// The Ollama version whose API llm-chat speaks, for clients that check
/// `/api/version` before using a feature (`think` came in 0.9).
pub const API_VERSION: &str = "0.12.6";

// ------------------------------------------------------------ requests

/// `POST /api/generate`, and whether to stream the answer.
pub fn generate_request(request: GenerateRequest) -> Result<(InferenceRequest, bool), AppError> {
    require_model(&request.model)?;
    unsupported("images", !request.images.is_empty())?;
    unsupported("suffix", !request.suffix.is_empty())?;
    unsupported("template", !request.template.is_empty())?;
    let input = if request.prompt.is_empty() && request.context.is_none() {
        Input::Load
    } else {
        Input::Completion {
            prompt: request.prompt,
            system: request.system.filter(|system| !system.is_empty()),
            context: request.context,
            raw: request.raw,
        }
    };
    inference(request.model, input, request.controls)
}

/// `POST /api/chat`, and whether to stream the answer.
pub fn chat_request(request: ChatRequest) -> Result<(InferenceRequest, bool), AppError> {
    require_model(&request.model)?;
    unsupported("tools", !request.tools.is_empty())?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in request.messages {
        unsupported("images", !message.images.is_empty())?;
        unsupported("tool_calls", !message.tool_calls.is_empty())?;
        messages.push(Message::new(role(&message.role)?, message.content));
    }
    let input = if messages.is_empty() {
        Input::Load
    } else {
        Input::Chat(messages)
    };
    inference(request.model, input, request.controls)
}

/// The inference request for `input`, and whether to stream its answer.
fn inference(
    model: String,
    input: Input,
    controls: Controls,
) -> Result<(InferenceRequest, bool), AppError> {
    Ok((
        InferenceRequest {
            model,
            input,
            options: controls.options.map(options_of).unwrap_or_default(),
            keep_alive: controls.keep_alive.map(keep_alive_of),
            think: controls.think.map(think_of),
            format: format(controls.format)?,
        },
        controls.stream.unwrap_or(true),
    ))
}

/// `POST /api/embed`.
pub fn embed_request(request: wire::EmbedRequest) -> Result<EmbedRequest, AppError> {
    require_model(&request.model)?;
    let input = match request.input {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::String(text) if text.is_empty() => Vec::new(),
        serde_json::Value::String(text) => vec![text],
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(text) => Ok(text),
                _ => Err(AppError::BadRequest(
                    "invalid input type: input must be a string or an array of strings".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(AppError::BadRequest(
                "invalid input type: input must be a string or an array of strings".into(),
            ));
        }
    };
    let dimensions = match request.dimensions {
        None | Some(0) => None,
        Some(n) if n > 0 => Some(n as usize),
        Some(_) => {
            return Err(AppError::BadRequest(
                "dimensions must be a positive number".into(),
            ));
        }
    };
    Ok(EmbedRequest {
        model: request.model,
        input,
        truncate: request.truncate.unwrap_or(true),
        dimensions,
        options: request.options.map(options_of).unwrap_or_default(),
        keep_alive: request.keep_alive.map(keep_alive_of),
    })
}

/// The model a `show` or management call names (`model`, or the older `name`).
pub fn named_model(model: String, name: String) -> Result<String, AppError> {
    let model = if model.is_empty() { name } else { model };
    require_model(&model)?;
    Ok(model)
}

fn require_model(model: &str) -> Result<(), AppError> {
    if model.trim().is_empty() {
        return Err(AppError::BadRequest("model is required".into()));
    }
    Ok(())
}

/// A field llm-chat cannot pass on yet, refused rather than ignored.
fn unsupported(field: &str, present: bool) -> Result<(), AppError> {
    if present {
        return Err(AppError::BadRequest(format!(
            "`{field}` is not supported by llm-chat yet; send the request without it"
        )));
    }
    Ok(())
}

fn role(role: &str) -> Result<Role, AppError> {
    match role {
        "system" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        "tool" => Ok(Role::Tool),
        other => Err(AppError::BadRequest(format!(
            "invalid role {other:?}: expected system, user, assistant or tool"
        ))),
    }
}

/// `""` or absent: free text; `"json"`; or a JSON Schema.
fn format(format: serde_json::Value) -> Result<Option<Format>, AppError> {
    match format {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(text) if text.is_empty() => Ok(None),
        serde_json::Value::String(text) if text == "json" => Ok(Some(Format::Json)),
        schema @ serde_json::Value::Object(_) => Ok(Some(Format::Schema(schema))),
        other => Err(AppError::BadRequest(format!(
            "invalid format {other}: expected \"json\" or a JSON schema"
        ))),
    }
}

// ------------------------------------------------------------ answers

/// Ollama names the model as the request did, on every line.
pub fn generate_response(model: String, answer: Collected) -> GenerateResponse {
    let Collected {
        text,
        reasoning,
        completion,
    } = answer;
    GenerateResponse {
        model,
        created_at: created_at(&completion),
        metrics: metrics(&completion),
        response: text,
        thinking: non_empty(reasoning),
        done: true,
        done_reason: completion.done_reason,
        context: completion.context,
    }
}

pub fn chat_response(model: String, answer: Collected) -> ChatResponse {
    let Collected {
        text,
        reasoning,
        completion,
    } = answer;
    ChatResponse {
        model,
        created_at: created_at(&completion),
        metrics: metrics(&completion),
        message: AnswerMessage {
            role: "assistant",
            content: text,
            thinking: non_empty(reasoning),
        },
        done: true,
        done_reason: completion.done_reason,
    }
}

/// The backend's time for the answer, or now.
fn created_at(completion: &Completion) -> String {
    if completion.created_at.is_empty() {
        now()
    } else {
        completion.created_at.clone()
    }
}

/// Now, as Ollama writes its times.
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

pub fn metrics(completion: &Completion) -> Metrics {
    let counters = &completion.counters;
    Metrics {
        total_duration: counters.total_duration,
        load_duration: counters.load_duration,
        prompt_eval_count: counters.prompt_eval_count,
        prompt_eval_duration: counters.prompt_eval_duration,
        eval_count: counters.eval_count,
        eval_duration: counters.eval_duration,
    }
}

// ------------------------------------------------------------ models

/// The vectors, under the model's name as the request gave it.
pub fn embed_response(model: String, embeddings: Embeddings) -> EmbedResponse {
    EmbedResponse {
        model,
        embeddings: embeddings.vectors,
        total_duration: embeddings.total_duration,
        load_duration: embeddings.load_duration,
        prompt_eval_count: embeddings.prompt_tokens,
    }
}

pub fn tags(models: Vec<ModelInfo>) -> TagList {
    TagList {
        models: models.into_iter().map(tag).collect(),
    }
}

fn tag(info: ModelInfo) -> Tag {
    Tag {
        name: info.name,
        model: info.model,
        modified_at: info.modified_at,
        size: info.size,
        digest: info.digest,
        details: info.details.into(),
    }
}

pub fn processes(models: Vec<LoadedModel>) -> ProcessList {
    ProcessList {
        models: models
            .into_iter()
            .map(|loaded| {
                let Tag {
                    name,
                    model,
                    size,
                    digest,
                    details,
                    ..
                } = tag(loaded.info);
                Process {
                    name,
                    model,
                    size,
                    digest,
                    details,
                    expires_at: loaded.expires_at,
                    size_vram: loaded.size_vram,
                    context_length: loaded.context_length,
                }
            })
            .collect(),
    }
}

pub fn show(card: ModelCard) -> ShowResponse {
    ShowResponse {
        license: card.license,
        modelfile: card.modelfile,
        parameters: card.parameters,
        template: card.template,
        system: card.system,
        details: Details::from(card.details),
        model_info: card.model_info,
        capabilities: card.capabilities,
        modified_at: card.modified_at,
        extra: card.extra,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn generate(body: serde_json::Value) -> Result<(InferenceRequest, bool), AppError> {
        generate_request(serde_json::from_value(body).unwrap())
    }

    fn chat(body: serde_json::Value) -> Result<(InferenceRequest, bool), AppError> {
        chat_request(serde_json::from_value(body).unwrap())
    }

    #[test]
    fn a_generate_request_maps_every_field_and_streams_by_default() {
        let (request, streamed) = generate(json!({
            "model": "m", "prompt": "Hi", "system": "Terse.", "raw": true,
            "context": [1, 2], "format": "json", "keep_alive": "5m", "think": "high",
            "options": {"temperature": 0.5, "num_predict": 4, "mirostat": 1}
        }))
        .unwrap();
        assert!(streamed);
        assert_eq!(
            request.input,
            Input::Completion {
                prompt: "Hi".into(),
                system: Some("Terse.".into()),
                context: Some(vec![1, 2]),
                raw: true,
            }
        );
        assert_eq!(request.format, Some(Format::Json));
        assert_eq!(request.options.max_tokens, Some(4));
        assert_eq!(request.options.extra["mirostat"], 1);
        assert!(request.keep_alive.is_some() && request.think.is_some());
    }

    #[test]
    fn an_empty_prompt_or_conversation_loads_the_model() {
        let (request, _) = generate(json!({"model": "m", "stream": false})).unwrap();
        assert_eq!(request.input, Input::Load);
        let (request, streamed) = chat(json!({"model": "m", "messages": []})).unwrap();
        assert_eq!((request.input, streamed), (Input::Load, true));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let message =
            |result: Result<(InferenceRequest, bool), AppError>| result.unwrap_err().to_string();
        assert_eq!(
            message(generate(json!({"prompt": "Hi"}))),
            "model is required"
        );
        assert!(
            message(generate(
                json!({"model": "m", "prompt": "a", "images": ["AA=="]})
            ))
            .contains("`images`")
        );
        assert!(
            message(generate(
                json!({"model": "m", "prompt": "a", "suffix": "z"})
            ))
            .contains("`suffix`")
        );
        assert!(
            message(chat(json!({"model": "m", "messages": [], "tools": [{}]}))).contains("`tools`")
        );
        assert!(
            message(chat(
                json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]})
            ))
            .contains("\"robot\"")
        );
        assert!(
            message(generate(
                json!({"model": "m", "prompt": "a", "format": "yaml"})
            ))
            .contains("invalid format")
        );
    }

    #[test]
    fn embed_takes_a_string_or_strings_and_truncates_unless_told_not_to() {
        let parse = |body: serde_json::Value| embed_request(serde_json::from_value(body).unwrap());
        let one = parse(json!({"model": "m", "input": "hi"})).unwrap();
        assert_eq!((one.input, one.truncate), (vec!["hi".to_string()], true));
        let two = parse(json!({"model": "m", "input": ["a", "b"], "truncate": false,
                                "dimensions": 4}))
        .unwrap();
        assert_eq!(
            (two.input.len(), two.truncate, two.dimensions),
            (2, false, Some(4))
        );
        assert!(parse(json!({"model": "m"})).unwrap().input.is_empty());
        assert!(parse(json!({"model": "m", "input": [1]})).is_err());
    }

    #[test]
    fn a_schema_format_passes_as_a_schema() {
        let schema = json!({"type": "object"});
        let (request, _) = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                        "format": schema.clone(), "stream": false}),
        )
        .unwrap();
        assert_eq!(request.format, Some(Format::Schema(schema)));
    }

    #[test]
    fn answers_leave_out_what_ollama_leaves_out() {
        let answer = Collected {
            text: "Paris".into(),
            reasoning: String::new(),
            completion: Completion {
                created_at: "t".into(),
                done_reason: Some("stop".into()),
                counters: app::api::Counters {
                    eval_count: 1,
                    ..Default::default()
                },
                ..Completion::default()
            },
        };
        assert_eq!(
            serde_json::to_value(chat_response("m".into(), answer)).unwrap(),
            json!({"model": "m", "created_at": "t",
                   "message": {"role": "assistant", "content": "Paris"},
                   "done": true, "done_reason": "stop", "eval_count": 1})
        );
    }
}
