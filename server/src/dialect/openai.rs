//! The OpenAI dialect, under `/v1`: its requests parsed into the inference
//! request (a parameter llm-chat cannot honour is a 400 naming it, never
//! silently dropped), and answers encoded back as OpenAI's objects, whole
//! here or as `chat.completion.chunk` / `text_completion` events
//! ([`events`]). Errors are OpenAI's shape ([`error`]).

pub mod embeddings;
pub mod error;
mod events;
pub mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

use app::api::ModelInfo;
use serde_json::Value;

pub use self::error::OpenAiError;
pub use self::events::{Dialect, stream_answer};
use self::wire::{
    AnswerMessage, ChatChoice, ChatCompletion, ChatCompletionRequest, CompletionRequest, Model,
    Sampling, TextChoice, TextCompletion, Unsupported, Usage,
};
use crate::inference::{Format, InferenceRequest, Input, Message, Options, Role, Think};
use crate::stream::{Collected, Completion};

/// What an answer needs to be encoded: the request's id and the model as
/// the client named it (OpenAI echoes it), and whether usage is wanted.
#[derive(Debug, Clone)]
pub struct Answering {
    pub id: String,
    pub model: String,
    pub created: u64,
    pub include_usage: bool,
}

impl Answering {
    fn new(prefix: &str, model: &str, include_usage: bool) -> Self {
        Self {
            id: format!("{prefix}-{}", uuid::Uuid::new_v4().simple()),
            model: model.to_string(),
            created: unix_now(),
            include_usage,
        }
    }
}

// ------------------------------------------------------------ requests

/// `POST /v1/chat/completions`.
pub fn chat_request(
    request: ChatCompletionRequest,
) -> Result<(InferenceRequest, Answering), OpenAiError> {
    require_model(&request.model)?;
    refuse_unsupported(&request.unsupported)?;
    if request.messages.is_empty() {
        return Err(OpenAiError::invalid(
            "messages",
            "`messages` is required and must not be empty",
        ));
    }
    let messages = request
        .messages
        .into_iter()
        .map(|message| {
            Ok(Message::new(
                role(&message.role)?,
                text_of(message.content)?,
            ))
        })
        .collect::<Result<Vec<_>, OpenAiError>>()?;
    let max_tokens = request.max_completion_tokens.or(request.max_tokens);
    let format = match request.response_format {
        None => None,
        Some(format) => match format.kind.as_str() {
            "text" => None,
            "json_object" => Some(Format::Json),
            "json_schema" => {
                let schema = format
                    .json_schema
                    .as_ref()
                    .and_then(|spec| spec.get("schema"))
                    .cloned()
                    .ok_or_else(|| {
                        OpenAiError::invalid(
                            "response_format",
                            "`response_format.json_schema.schema` is required",
                        )
                    })?;
                Some(Format::Schema(schema))
            }
            other => {
                return Err(OpenAiError::invalid(
                    "response_format",
                    format!(
                        "`response_format.type` {other:?} is not one of text, json_object, json_schema"
                    ),
                ));
            }
        },
    };
    let think = request
        .reasoning_effort
        .map(|effort| match effort.as_str() {
            "none" => Think::Enabled(false),
            _ => Think::Level(effort),
        });
    let answering = Answering::new(
        "chatcmpl",
        &request.model,
        request.stream_options.is_some_and(|o| o.include_usage),
    );
    Ok((
        InferenceRequest {
            model: request.model,
            input: Input::Chat(messages),
            options: options(request.sampling, max_tokens)?,
            keep_alive: None,
            think,
            format,
        },
        answering,
    ))
}

/// `POST /v1/completions`.
pub fn completion_request(
    request: CompletionRequest,
) -> Result<(InferenceRequest, Answering), OpenAiError> {
    require_model(&request.model)?;
    refuse_unsupported(&request.unsupported)?;
    if request.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(OpenAiError::unsupported(
            "suffix",
            "the backends complete text forwards only",
        ));
    }
    if request.echo == Some(true) {
        return Err(OpenAiError::unsupported(
            "echo",
            "the answer never repeats the prompt",
        ));
    }
    if request.best_of.is_some_and(|n| n > 1) {
        return Err(OpenAiError::unsupported(
            "best_of",
            "one answer per request",
        ));
    }
    let prompt = match request.prompt {
        Value::String(prompt) => prompt,
        Value::Array(mut prompts) if prompts.len() == 1 && prompts[0].is_string() => {
            match prompts.pop() {
                Some(Value::String(prompt)) => prompt,
                _ => unreachable!("checked to be one string"),
            }
        }
        Value::Array(prompts) if prompts.len() > 1 => {
            return Err(OpenAiError::unsupported(
                "prompt",
                "one prompt per request (send each on its own)",
            ));
        }
        _ => {
            return Err(OpenAiError::invalid(
                "prompt",
                "`prompt` is required: a string",
            ));
        }
    };
    if prompt.trim().is_empty() {
        return Err(OpenAiError::invalid(
            "prompt",
            "`prompt` is required and must not be empty",
        ));
    }
    let answering = Answering::new(
        "cmpl",
        &request.model,
        request.stream_options.is_some_and(|o| o.include_usage),
    );
    Ok((
        InferenceRequest {
            model: request.model,
            input: Input::Completion {
                prompt,
                system: None,
                context: None,
                raw: false,
            },
            options: options(request.sampling, request.max_tokens)?,
            keep_alive: None,
            think: None,
            format: None,
        },
        answering,
    ))
}

pub(super) fn require_model(model: &str) -> Result<(), OpenAiError> {
    if model.trim().is_empty() {
        return Err(OpenAiError::invalid(
            "model",
            "`model` is required and must not be empty",
        ));
    }
    Ok(())
}

fn refuse_unsupported(unsupported: &Unsupported) -> Result<(), OpenAiError> {
    if unsupported.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::unsupported("n", "one choice per request"));
    }
    if unsupported
        .logprobs
        .as_ref()
        .is_some_and(|value| !matches!(value, Value::Null | Value::Bool(false)))
        || unsupported.top_logprobs.is_some_and(|n| n > 0)
    {
        return Err(OpenAiError::unsupported(
            "logprobs",
            "the backends do not report token probabilities",
        ));
    }
    if unsupported
        .logit_bias
        .as_ref()
        .is_some_and(|bias| !bias.is_empty())
    {
        return Err(OpenAiError::unsupported(
            "logit_bias",
            "the backends take no token biases",
        ));
    }
    if unsupported
        .tools
        .as_ref()
        .is_some_and(|tools| !tools.is_empty())
    {
        return Err(OpenAiError::unsupported(
            "tools",
            "tool calls are not available yet",
        ));
    }
    if unsupported
        .functions
        .as_ref()
        .is_some_and(|f| !f.is_empty())
    {
        return Err(OpenAiError::unsupported(
            "functions",
            "function calls are not available",
        ));
    }
    if unsupported.audio.is_some() {
        return Err(OpenAiError::unsupported("audio", "answers are text only"));
    }
    if unsupported.prediction.is_some() {
        return Err(OpenAiError::unsupported(
            "prediction",
            "predicted outputs are not available",
        ));
    }
    Ok(())
}

fn role(role: &str) -> Result<Role, OpenAiError> {
    Ok(match role {
        // `developer` is what newer models call the system prompt.
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(OpenAiError::invalid(
                "messages",
                format!("unknown message role {other:?}"),
            ));
        }
    })
}

/// A message's text: a string, the text parts of an array, or nothing.
fn text_of(content: Value) -> Result<String, OpenAiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    Some(other) => {
                        return Err(OpenAiError::unsupported(
                            "messages",
                            &format!("content parts of type {other:?} (text only)"),
                        ));
                    }
                    None => {
                        return Err(OpenAiError::invalid(
                            "messages",
                            "a content part needs a `type`",
                        ));
                    }
                }
            }
            Ok(text)
        }
        _ => Err(OpenAiError::invalid(
            "messages",
            "a message's `content` is a string or an array of parts",
        )),
    }
}

fn options(sampling: Sampling, max_tokens: Option<i64>) -> Result<Options, OpenAiError> {
    let stop = match sampling.stop {
        None | Some(Value::Null) => None,
        Some(Value::String(stop)) => Some(vec![stop]),
        Some(Value::Array(stops)) => Some(
            stops
                .into_iter()
                .map(|stop| match stop {
                    Value::String(stop) => Ok(stop),
                    _ => Err(OpenAiError::invalid("stop", "`stop` holds strings")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(OpenAiError::invalid(
                "stop",
                "`stop` is a string or an array of strings",
            ));
        }
    };
    let max_tokens = max_tokens
        .map(|n| {
            i32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| OpenAiError::invalid("max_tokens", "`max_tokens` must be positive"))
        })
        .transpose()?;
    // Penalties OpenAI-style, passed to the backends that take them (Ollama).
    let mut extra = serde_json::Map::new();
    for (name, value) in [
        ("presence_penalty", sampling.presence_penalty),
        ("frequency_penalty", sampling.frequency_penalty),
    ] {
        if let Some(value) = value {
            extra.insert(name.into(), serde_json::json!(value));
        }
    }
    Ok(Options {
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        seed: sampling.seed,
        max_tokens,
        stop,
        extra,
        ..Options::default()
    })
}

// ------------------------------------------------------------ answers

/// `GET /v1/models` and `/v1/models/{id}`: one entry per model.
pub fn model(info: ModelInfo) -> Model {
    Model {
        created: humantime::parse_rfc3339_weak(&info.modified_at)
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs()),
        id: info.name,
        object: "model",
        owned_by: info.backend,
    }
}

pub fn usage(completion: &Completion) -> Usage {
    let prompt_tokens = completion.counters.prompt_eval_count;
    let completion_tokens = completion.counters.eval_count;
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

/// `stop` or `length`, from how the backend said it ended.
pub fn finish_reason(completion: &Completion) -> &'static str {
    match completion.done_reason.as_deref() {
        Some("length") => "length",
        _ => "stop",
    }
}

pub fn chat_completion(answering: Answering, answer: Collected) -> ChatCompletion {
    ChatCompletion {
        id: answering.id,
        object: "chat.completion",
        created: answering.created,
        model: answering.model,
        usage: usage(&answer.completion),
        choices: vec![ChatChoice {
            index: 0,
            finish_reason: finish_reason(&answer.completion),
            message: AnswerMessage {
                role: "assistant",
                content: answer.text,
                reasoning_content: super::native::non_empty(answer.reasoning),
            },
            logprobs: None,
        }],
    }
}

pub fn text_completion(answering: Answering, answer: Collected) -> TextCompletion {
    TextCompletion {
        id: answering.id,
        object: "text_completion",
        created: answering.created,
        model: answering.model,
        usage: usage(&answer.completion),
        choices: vec![TextChoice {
            text: answer.text,
            index: 0,
            logprobs: None,
            finish_reason: finish_reason(&answer.completion),
        }],
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chat(body: Value) -> Result<InferenceRequest, OpenAiError> {
        chat_request(serde_json::from_value(body).unwrap()).map(|(request, _)| request)
    }

    #[test]
    fn a_chat_request_becomes_the_inference_request() {
        let request = chat(json!({
            "model": "llama3.2",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": null},
            ],
            "temperature": 0.2, "max_completion_tokens": 16, "stop": "\n", "seed": 7,
            "presence_penalty": 0.5, "response_format": {"type": "json_object"}, "user": "u1",
            "n": 1, "logprobs": false,
        }))
        .unwrap();
        assert_eq!(
            request.input,
            Input::Chat(vec![
                Message::new(Role::System, "Be brief."),
                Message::new(Role::User, "Hi there"),
                Message::new(Role::Assistant, ""),
            ])
        );
        assert_eq!(request.options.temperature, Some(0.2));
        assert_eq!(request.options.max_tokens, Some(16));
        assert_eq!(request.options.stop, Some(vec!["\n".to_string()]));
        assert_eq!(request.options.seed, Some(7));
        assert_eq!(request.options.extra["presence_penalty"], 0.5);
        assert_eq!(request.format, Some(Format::Json));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        for (body, param) in [
            (json!({"n": 2}), "n"),
            (json!({"logprobs": true}), "logprobs"),
            (json!({"tools": [{"type": "function"}]}), "tools"),
            (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
            (
                json!({"response_format": {"type": "xml"}}),
                "response_format",
            ),
            (json!({"max_tokens": 0}), "max_tokens"),
            (json!({"stop": 3}), "stop"),
        ] {
            let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            request
                .as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            let error = chat(request).unwrap_err();
            assert_eq!(error.status(), 400);
            assert_eq!(error.body().error.param.as_deref(), Some(param), "{body}");
        }
        let image = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}),
        )
        .unwrap_err();
        assert!(image.body().error.message.contains("image_url"));
        assert!(chat(json!({"model": "m", "messages": []})).is_err());
        assert!(chat(json!({"messages": [{"role": "user", "content": "x"}]})).is_err());
    }

    #[test]
    fn a_legacy_prompt_is_a_string_or_one_string_in_a_list() {
        let completion = |body: Value| {
            completion_request(serde_json::from_value(body).unwrap()).map(|(request, _)| request)
        };
        let one = completion(json!({"model": "m", "prompt": ["Once"], "max_tokens": 5})).unwrap();
        assert!(matches!(one.input, Input::Completion { ref prompt, .. } if prompt == "Once"));
        assert!(completion(json!({"model": "m", "prompt": ["a", "b"]})).is_err());
        assert!(completion(json!({"model": "m", "prompt": "a", "echo": true})).is_err());
        assert!(completion(json!({"model": "m"})).is_err());
    }
}
