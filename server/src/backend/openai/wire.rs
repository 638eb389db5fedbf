//! The OpenAI dialect as an upstream speaks it (vLLM, llama.cpp server,
//! SGLang, LM Studio, hosted APIs): the requests we send, mapped from the
//! inference request, and the stream frames, lists and errors that come back.

use std::borrow::Cow;

use app::api::{Counters, ModelDetails, ModelInfo};
use serde::{Deserialize, Serialize};

use crate::inference::{EmbedRequest, Embeddings, Format, InferenceRequest, Message, Think};

/// `POST /v1/chat/completions`, always streamed with usage.
#[derive(Debug, Serialize)]
pub struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<MessageBody<'a>>,
    #[serde(flatten)]
    sampling: Sampling<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    /// A reasoning model's effort (`low`, `medium`, `high`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    /// Thinking on or off, as vLLM and SGLang take it for templates that
    /// have the switch (Qwen3's `enable_thinking`).
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_template_kwargs: Option<TemplateSwitch>,
    stream: bool,
    stream_options: StreamOptions,
}

/// `POST /v1/completions`: the prompt as written, always streamed.
#[derive(Debug, Serialize)]
pub struct CompletionBody<'a> {
    model: &'a str,
    prompt: &'a str,
    #[serde(flatten)]
    sampling: Sampling<'a>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Debug, Serialize)]
struct MessageBody<'a> {
    role: &'static str,
    content: &'a str,
}

/// OpenAI's sampling fields, and the common extensions (`top_k`,
/// `repetition_penalty`) only when the client set them.
#[derive(Debug, Serialize)]
struct Sampling<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repetition_penalty: Option<f32>,
    /// Options we do not type, passed as given (a server's own knobs).
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Debug, Serialize)]
struct TemplateSwitch {
    enable_thinking: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat<'a> {
    JsonObject,
    JsonSchema { json_schema: NamedSchema<'a> },
}

#[derive(Debug, Serialize)]
struct NamedSchema<'a> {
    name: &'static str,
    schema: &'a serde_json::Value,
}

fn sampling(request: &InferenceRequest) -> Sampling<'_> {
    let options = &request.options;
    Sampling {
        temperature: options.temperature,
        top_p: options.top_p,
        top_k: options.top_k,
        seed: options.seed,
        // Ollama's "no limit" (negative) is OpenAI's absent field.
        max_tokens: options
            .max_tokens
            .and_then(|limit| u32::try_from(limit).ok()),
        stop: options.stop.as_deref(),
        repetition_penalty: options.repeat_penalty,
        extra: &options.extra,
    }
}

const STREAMED: StreamOptions = StreamOptions {
    include_usage: true,
};

impl<'a> ChatBody<'a> {
    pub fn new(request: &'a InferenceRequest, messages: &'a [Message]) -> Self {
        let (reasoning_effort, chat_template_kwargs) = match &request.think {
            None => (None, None),
            Some(Think::Level(level)) => (Some(level.as_str()), None),
            Some(Think::Enabled(on)) => (
                None,
                Some(TemplateSwitch {
                    enable_thinking: *on,
                }),
            ),
        };
        Self {
            model: &request.model,
            messages: messages
                .iter()
                .map(|message| MessageBody {
                    role: message.role.as_str(),
                    content: &message.content,
                })
                .collect(),
            sampling: sampling(request),
            response_format: request.format.as_ref().map(|format| match format {
                Format::Json => ResponseFormat::JsonObject,
                Format::Schema(schema) => ResponseFormat::JsonSchema {
                    json_schema: NamedSchema {
                        name: "answer",
                        schema,
                    },
                },
            }),
            reasoning_effort,
            chat_template_kwargs,
            stream: true,
            stream_options: STREAMED,
        }
    }
}

impl<'a> CompletionBody<'a> {
    pub fn new(request: &'a InferenceRequest, prompt: &'a str) -> Self {
        Self {
            model: &request.model,
            prompt,
            sampling: sampling(request),
            stream: true,
            stream_options: STREAMED,
        }
    }
}

/// One `data:` payload of a streamed answer.
#[derive(Debug, PartialEq)]
pub enum Data<'a> {
    /// `[DONE]`: the stream is over.
    Done,
    Chunk(Chunk<'a>),
    /// A failure reported inside the stream (vLLM does this even before
    /// the first token, under a 200), with the HTTP status it names, if any.
    Error {
        message: String,
        status: Option<u16>,
    },
}

/// What one chunk carries; text borrowed where it needs no unescaping.
#[derive(Debug, Default, PartialEq)]
pub struct Chunk<'a> {
    pub thinking: Option<Cow<'a, str>>,
    pub text: Option<Cow<'a, str>>,
    pub finish_reason: Option<Cow<'a, str>>,
    pub usage: Option<Usage>,
    pub model: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct ChunkBody<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChoiceBody<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    model: Option<Text<'a>>,
    /// OpenAI's `{"error": {"message"}}` (or a bare string).
    #[serde(default)]
    error: Option<serde_json::Value>,
    /// vLLM's `{"object": "error", "message"}`.
    #[serde(default, borrow)]
    object: Option<Text<'a>>,
    #[serde(default)]
    message: Option<String>,
    /// vLLM's status beside its message.
    #[serde(default)]
    code: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChoiceBody<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaBody<'a>>,
    /// A legacy completion's text.
    #[serde(default, borrow)]
    text: Option<Text<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct DeltaBody<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
    /// vLLM's and DeepSeek's name for reasoning text.
    #[serde(default, borrow)]
    reasoning_content: Option<Text<'a>>,
    /// Newer vLLM's and OpenRouter's.
    #[serde(default, borrow)]
    reasoning: Option<Text<'a>>,
}

/// A string borrowed from the payload unless it has escapes; as a field
/// of its own so that `null` reads as `None` (serde borrows a `Cow` only
/// when it is a field's whole type).
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn text(value: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    value.map(|text| text.0)
}

/// Reads one `data:` payload.
pub fn parse_data(data: &[u8]) -> Result<Data<'_>, serde_json::Error> {
    if data.trim_ascii() == b"[DONE]" {
        return Ok(Data::Done);
    }
    let body: ChunkBody = serde_json::from_slice(data)?;
    // A code is a status only when it is one (OpenAI's codes are often
    // words, such as "context_length_exceeded").
    let status = |code: Option<&serde_json::Value>| {
        code.and_then(serde_json::Value::as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (400..600).contains(code))
    };
    if let Some(error) = body.error.filter(|error| !error.is_null()) {
        let (message, status) = match &error {
            serde_json::Value::String(text) => (Some(text.clone()), None),
            other => (
                other["message"].as_str().map(str::to_string),
                status(other.get("code")),
            ),
        };
        return Ok(Data::Error {
            message: message.unwrap_or_else(|| "the model failed".to_string()),
            status,
        });
    }
    if body
        .object
        .as_ref()
        .is_some_and(|object| object.0 == "error")
    {
        return Ok(Data::Error {
            message: body
                .message
                .unwrap_or_else(|| "the model failed".to_string()),
            status: status(body.code.as_ref()),
        });
    }
    let mut chunk = Chunk {
        usage: body.usage,
        model: text(body.model),
        ..Chunk::default()
    };
    // One choice is asked for (`n` is never sent).
    if let Some(choice) = body.choices.into_iter().next() {
        chunk.finish_reason = text(choice.finish_reason);
        match choice.delta {
            Some(delta) => {
                chunk.thinking = text(delta.reasoning_content.or(delta.reasoning));
                chunk.text = text(delta.content);
            }
            None => chunk.text = text(choice.text),
        }
    }
    chunk.thinking = chunk.thinking.filter(|text| !text.is_empty());
    chunk.text = chunk.text.filter(|text| !text.is_empty());
    Ok(Data::Chunk(chunk))
}

/// OpenAI's reasons mapped to ours: `length` stays, every other normal end
/// (`stop`, `tool_calls`, `content_filter`, `eos`) is a stop.
pub fn done_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "length",
        _ => "stop",
    }
}

/// The counters of an answer whose usage the upstream reported, with the
/// durations we measured (the dialect has none).
pub fn counters(usage: Usage, waited_ns: u64, generated_ns: u64) -> Counters {
    Counters {
        total_duration: waited_ns + generated_ns,
        load_duration: 0,
        prompt_eval_count: usage.prompt_tokens,
        prompt_eval_duration: waited_ns,
        eval_count: usage.completion_tokens,
        eval_duration: generated_ns,
    }
}

/// `GET /v1/models`.
#[derive(Debug, Deserialize)]
pub struct ModelList {
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    /// Seconds since the epoch.
    #[serde(default)]
    pub created: Option<u64>,
}

impl ModelEntry {
    pub fn into_model_info(self, backend: &str) -> ModelInfo {
        let modified_at = self
            .created
            .map(|seconds| {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
                humantime::format_rfc3339_seconds(at).to_string()
            })
            .unwrap_or_default();
        ModelInfo {
            model: self.id.clone(),
            name: self.id,
            modified_at,
            size: 0,
            digest: String::new(),
            details: ModelDetails::default(),
            backend: backend.to_string(),
            backends: vec![backend.to_string()],
        }
    }
}

/// `POST /v1/embeddings`, floats asked for.
#[derive(Debug, Serialize)]
pub struct EmbedBody<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
    encoding_format: &'static str,
}

impl<'a> EmbedBody<'a> {
    pub fn new(request: &'a EmbedRequest) -> Self {
        Self {
            model: &request.model,
            input: &request.input,
            dimensions: request.dimensions,
            encoding_format: "float",
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EmbedResponse {
    data: Vec<EmbedEntry>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct EmbedEntry {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}

impl EmbedResponse {
    /// The vectors in input order, each scaled to unit length (most
    /// servers send them so; not every one does).
    pub fn into_embeddings(mut self, asked: String, took_ns: u64) -> Embeddings {
        self.data.sort_by_key(|entry| entry.index);
        Embeddings {
            model: self.model.unwrap_or(asked),
            vectors: self
                .data
                .into_iter()
                .map(|entry| unit_length(entry.embedding))
                .collect(),
            prompt_tokens: self.usage.map_or(0, |usage| usage.prompt_tokens),
            total_duration: took_ns,
            load_duration: 0,
        }
    }
}

fn unit_length(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-4 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::{Input, Options, Role};

    fn request() -> InferenceRequest {
        InferenceRequest {
            model: "qwen".into(),
            input: Input::Chat(vec![Message::new(Role::User, "hi")]),
            options: Options {
                temperature: Some(0.5),
                max_tokens: Some(-1),
                stop: Some(vec!["\n".into()]),
                ..Options::default()
            },
            keep_alive: None,
            think: Some(Think::Enabled(false)),
            format: Some(Format::Json),
        }
    }

    #[test]
    fn a_chat_request_is_openais_with_streamed_usage() {
        let request = request();
        let Input::Chat(messages) = &request.input else {
            unreachable!()
        };
        let body = serde_json::to_value(ChatBody::new(&request, messages)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "qwen",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.5,
                "stop": ["\n"],
                "response_format": {"type": "json_object"},
                "chat_template_kwargs": {"enable_thinking": false},
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn chunks_carry_text_reasoning_and_the_end() {
        let data = br#"{"id":"x","object":"chat.completion.chunk","model":"qwen","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
        let Data::Chunk(chunk) = parse_data(data).unwrap() else {
            panic!()
        };
        assert_eq!(chunk.text.as_deref(), Some("Hel"));
        assert!(matches!(chunk.text, Some(Cow::Borrowed(_))));
        let data = br#"{"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}"#;
        let Data::Chunk(chunk) = parse_data(data).unwrap() else {
            panic!()
        };
        assert_eq!(chunk.thinking.as_deref(), Some("hmm"));
        assert_eq!(chunk.text, None);
        let data =
            br#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        let Data::Chunk(chunk) = parse_data(data).unwrap() else {
            panic!()
        };
        assert_eq!(
            chunk.usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 2
            })
        );
        let data = br#"{"choices":[{"text":" once","index":0,"finish_reason":"length"}]}"#;
        let Data::Chunk(chunk) = parse_data(data).unwrap() else {
            panic!()
        };
        assert_eq!(chunk.text.as_deref(), Some(" once"));
        assert_eq!(chunk.finish_reason.as_deref(), Some("length"));
        assert_eq!(parse_data(b"[DONE]").unwrap(), Data::Done);
    }

    #[test]
    fn errors_in_a_stream_are_read_in_every_shape() {
        assert_eq!(
            parse_data(br#"{"error":{"message":"out of memory","type":"server_error"}}"#).unwrap(),
            Data::Error {
                message: "out of memory".into(),
                status: None
            }
        );
        assert_eq!(
            parse_data(br#"{"object":"error","message":"engine dead","code":500}"#).unwrap(),
            Data::Error {
                message: "engine dead".into(),
                status: Some(500)
            }
        );
    }

    #[test]
    fn a_status_in_an_error_frame_is_kept_and_a_word_code_is_not() {
        assert_eq!(
            parse_data(br#"{"object":"error","message":"This model's maximum context length is 2048 tokens","type":"BadRequestError","code":400}"#).unwrap(),
            Data::Error {
                message: "This model's maximum context length is 2048 tokens".into(),
                status: Some(400)
            }
        );
        assert_eq!(
            parse_data(br#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#)
                .unwrap(),
            Data::Error {
                message: "too long".into(),
                status: None
            }
        );
        assert_eq!(
            parse_data(br#"{"error":{"type":"server_error"}}"#).unwrap(),
            Data::Error {
                message: "the model failed".into(),
                status: None
            }
        );
    }

    #[test]
    fn embeddings_come_back_in_input_order_at_unit_length() {
        let response: EmbedResponse = serde_json::from_str(
            r#"{"data":[{"index":1,"embedding":[0,2]},{"index":0,"embedding":[3,4]}],"usage":{"prompt_tokens":4}}"#,
        )
        .unwrap();
        let embeddings = response.into_embeddings("e".into(), 1);
        assert_eq!(embeddings.vectors, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
        assert_eq!(embeddings.prompt_tokens, 4);
        assert_eq!(embeddings.model, "e");
    }
}
