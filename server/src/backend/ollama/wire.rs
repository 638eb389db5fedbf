//! Ollama's own wire format: the requests we send it (mapped from the
//! inference request), and the lines and lists it sends back.

mod token_line;

use std::borrow::Cow;

use app::api::{Counters, ModelDetails, ModelInfo};
use serde::{Deserialize, Serialize};

use crate::backend::LoadedModel;
use crate::inference::{
    EmbedRequest, Embeddings, Format, InferenceRequest, Input, KeepAlive, Message, Options, Think,
};
use crate::stream::Completion;

/// The body of `POST /api/generate` or `/api/chat`, always streamed.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Request<'a> {
    Generate(GenerateBody<'a>),
    Chat(ChatBody<'a>),
}

#[derive(Debug, Serialize)]
pub struct GenerateBody<'a> {
    model: &'a str,
    prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a [i64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<OptionsBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<KeepAliveBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<ThinkBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<FormatBody<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    raw: bool,
    stream: bool,
}

#[derive(Debug, Serialize)]
pub struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<MessageBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<OptionsBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<KeepAliveBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<ThinkBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<FormatBody<'a>>,
    stream: bool,
}

#[derive(Debug, Serialize)]
struct MessageBody<'a> {
    role: &'static str,
    content: &'a str,
}

/// Ollama's option names.
#[derive(Debug, Serialize)]
struct OptionsBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat_last_n: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_ctx: Option<u32>,
    /// Options Ollama knows and we do not type: passed as given.
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum KeepAliveBody<'a> {
    Seconds(f64),
    Text(&'a str),
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ThinkBody<'a> {
    Enabled(bool),
    Level(&'a str),
}

/// `"json"`, or a JSON Schema the answer must match.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum FormatBody<'a> {
    Json(&'static str),
    Schema(&'a serde_json::Value),
}

impl<'a> Request<'a> {
    /// Ollama's request for `request`: a completion goes to `/api/generate`,
    /// a chat to `/api/chat`.
    pub fn new(request: &'a InferenceRequest) -> Self {
        let options = options(&request.options);
        let keep_alive = request.keep_alive.as_ref().map(keep_alive);
        let think = request.think.as_ref().map(|think| match think {
            Think::Enabled(on) => ThinkBody::Enabled(*on),
            Think::Level(level) => ThinkBody::Level(level),
        });
        let format = request.format.as_ref().map(|format| match format {
            Format::Json => FormatBody::Json("json"),
            Format::Schema(schema) => FormatBody::Schema(schema),
        });
        match &request.input {
            Input::Completion {
                prompt,
                system,
                context,
                raw,
            } => Self::Generate(GenerateBody {
                model: &request.model,
                prompt,
                context: context.as_deref(),
                system: system.as_deref(),
                options,
                keep_alive,
                think,
                format: format.clone(),
                raw: *raw,
                stream: true,
            }),
            // Ollama loads (or unloads) the model for an empty prompt.
            Input::Load => Self::Generate(GenerateBody {
                model: &request.model,
                prompt: "",
                context: None,
                system: None,
                options,
                keep_alive,
                think: None,
                format: None,
                raw: false,
                stream: true,
            }),
            Input::Chat(messages) => Self::Chat(ChatBody {
                model: &request.model,
                messages: messages.iter().map(message).collect(),
                options,
                keep_alive,
                think,
                format,
                stream: true,
            }),
        }
    }
}

fn keep_alive(keep_alive: &KeepAlive) -> KeepAliveBody<'_> {
    match keep_alive {
        KeepAlive::Seconds(seconds) => KeepAliveBody::Seconds(*seconds),
        KeepAlive::Text(text) => KeepAliveBody::Text(text),
    }
}

fn message(message: &Message) -> MessageBody<'_> {
    MessageBody {
        role: message.role.as_str(),
        content: &message.content,
    }
}

/// Ollama's options, or none when the request set none.
fn options(options: &Options) -> Option<OptionsBody<'_>> {
    if *options == Options::default() {
        return None;
    }
    Some(OptionsBody {
        temperature: options.temperature,
        top_p: options.top_p,
        top_k: options.top_k,
        seed: options.seed,
        num_predict: options.max_tokens,
        stop: options.stop.as_deref(),
        repeat_penalty: options.repeat_penalty,
        repeat_last_n: options.repeat_last_n,
        num_ctx: options.context_window,
        extra: &options.extra,
    })
}

/// What one line of an answer means.
#[derive(Debug, PartialEq)]
pub enum Line {
    Token(String),
    /// Reasoning (`thinking`), and the answer's first text when the same
    /// chunk starts it.
    Thinking {
        thinking: String,
        then: Option<String>,
    },
    /// A chunk with no text (a model's special token): nothing to pass on.
    Skip,
    Done {
        text: Option<String>,
        completion: Completion,
    },
    /// Ollama reported a failure: its message, for the client.
    Error(String),
}

/// Reads one NDJSON line of `/api/generate` or `/api/chat`; the error is
/// serde's, for the logs. A plain token's line, most of them, is read by
/// [`token_line`] in one pass.
pub fn parse_line(line: &[u8]) -> Result<Line, serde_json::Error> {
    match token_line::token_line(line) {
        Some(line) => Ok(line),
        None => parse_with_serde(line),
    }
}

/// Reads any line, the final one with its counters included.
fn parse_with_serde(line: &[u8]) -> Result<Line, serde_json::Error> {
    let chunk: Chunk<'_> = serde_json::from_slice(line)?;
    if let Some(message) = chunk.error {
        return Ok(Line::Error(message));
    }
    let (text, thinking) = match chunk.message {
        Some(message) => (message.content, message.thinking),
        None => (chunk.response, chunk.thinking),
    };
    if !chunk.done {
        return Ok(match (text.is_empty(), thinking.is_empty()) {
            (true, true) => Line::Skip,
            (false, true) => Line::Token(text.into_owned()),
            (empty, false) => Line::Thinking {
                thinking: thinking.into_owned(),
                then: (!empty).then(|| text.into_owned()),
            },
        });
    }
    Ok(Line::Done {
        text: (!text.is_empty()).then(|| text.into_owned()),
        completion: Completion {
            model: chunk.model.into_owned(),
            created_at: chunk.created_at.into_owned(),
            done_reason: chunk.done_reason,
            context: chunk.context,
            counters: Counters {
                total_duration: chunk.total_duration,
                load_duration: chunk.load_duration,
                prompt_eval_count: chunk.prompt_eval_count,
                prompt_eval_duration: chunk.prompt_eval_duration,
                eval_count: chunk.eval_count,
                eval_duration: chunk.eval_duration,
            },
        },
    })
}

/// One line of an answer; text borrowed where possible.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow)]
    created_at: Cow<'a, str>,
    #[serde(default, borrow)]
    response: Cow<'a, str>,
    /// Reasoning, from `/api/generate`.
    #[serde(default, borrow)]
    thinking: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<ChunkMessage<'a>>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    context: Option<Vec<i64>>,
    // Named one by one rather than a flattened `Counters`: flattening makes
    // serde buffer a line's fields, and this parse runs once per token.
    #[serde(default)]
    total_duration: u64,
    #[serde(default)]
    load_duration: u64,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    prompt_eval_duration: u64,
    #[serde(default)]
    eval_count: u64,
    #[serde(default)]
    eval_duration: u64,
}

#[derive(Deserialize)]
struct ChunkMessage<'a> {
    #[serde(default, borrow)]
    content: Cow<'a, str>,
    #[serde(default, borrow)]
    thinking: Cow<'a, str>,
}

/// The body of an error answer.
#[derive(Deserialize)]
pub struct Version {
    pub version: String,
}

#[derive(Deserialize)]
pub struct TagList {
    #[serde(default)]
    pub models: Vec<Tag>,
}

#[derive(Deserialize)]
pub struct Tag {
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    modified_at: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    details: ModelDetails,
}

impl Tag {
    /// The model as we list it, served by `backend`.
    pub fn into_model_info(self, backend: &str) -> ModelInfo {
        ModelInfo {
            model: if self.model.is_empty() {
                self.name.clone()
            } else {
                self.model
            },
            name: self.name,
            modified_at: self.modified_at,
            size: self.size,
            digest: self.digest,
            details: self.details,
            backend: backend.to_string(),
            backends: vec![backend.to_string()],
        }
    }
}

/// The body of `POST /api/embed`.
#[derive(Debug, Serialize)]
pub struct EmbedBody<'a> {
    model: &'a str,
    input: &'a [String],
    truncate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<OptionsBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<KeepAliveBody<'a>>,
}

impl<'a> EmbedBody<'a> {
    pub fn new(request: &'a EmbedRequest) -> Self {
        Self {
            model: &request.model,
            input: &request.input,
            truncate: request.truncate,
            dimensions: request.dimensions,
            options: options(&request.options),
            keep_alive: request.keep_alive.as_ref().map(keep_alive),
        }
    }
}

/// Ollama's answer to `/api/embed`.
#[derive(Deserialize)]
pub struct EmbedResponse {
    #[serde(default)]
    model: String,
    #[serde(default)]
    embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    total_duration: u64,
    #[serde(default)]
    load_duration: u64,
    #[serde(default)]
    prompt_eval_count: u64,
}

impl EmbedResponse {
    /// The vectors, named as Ollama named the model (or as asked).
    pub fn into_embeddings(self, asked: String) -> Embeddings {
        Embeddings {
            model: if self.model.is_empty() {
                asked
            } else {
                self.model
            },
            vectors: self.embeddings,
            prompt_tokens: self.prompt_eval_count,
            total_duration: self.total_duration,
            load_duration: self.load_duration,
        }
    }
}

/// `/api/ps`.
#[derive(Deserialize)]
pub struct ProcessList {
    #[serde(default)]
    pub models: Vec<Process>,
}

/// A loaded model, as `/api/ps` lists it: a tag and how it is loaded.
#[derive(Deserialize)]
pub struct Process {
    #[serde(flatten)]
    tag: Tag,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    size_vram: u64,
    #[serde(default)]
    context_length: Option<u64>,
}

impl Process {
    pub fn into_loaded_model(self, backend: &str) -> LoadedModel {
        LoadedModel {
            info: self.tag.into_model_info(backend),
            expires_at: self.expires_at,
            size_vram: self.size_vram,
            context_length: self.context_length,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::inference::Role;

    #[test]
    fn a_token_line_of_either_endpoint_gives_its_text() {
        let generate = br#"{"model":"m","created_at":"t","response":"Hel","done":false}"#;
        let chat = br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"lo\n"},"done":false}"#;
        assert_eq!(parse_line(generate).unwrap(), Line::Token("Hel".into()));
        assert_eq!(parse_line(chat).unwrap(), Line::Token("lo\n".into()));
    }

    #[test]
    fn reasoning_lines_of_either_endpoint_give_their_thoughts() {
        let generate =
            br#"{"model":"m","created_at":"t","response":"","thinking":"Hm","done":false}"#;
        let chat = br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","thinking":"Hm"},"done":false}"#;
        let both = br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Paris","thinking":"."},"done":false}"#;
        let thinking = |text: &str| Line::Thinking {
            thinking: text.into(),
            then: None,
        };
        assert_eq!(parse_line(generate).unwrap(), thinking("Hm"));
        assert_eq!(parse_line(chat).unwrap(), thinking("Hm"));
        assert_eq!(
            parse_line(both).unwrap(),
            Line::Thinking {
                thinking: ".".into(),
                then: Some("Paris".into())
            }
        );
    }

    #[test]
    fn the_done_line_keeps_its_text_and_counters() {
        let line = br#"{"model":"m","created_at":"t","response":"!","done":true,"done_reason":"stop","context":[1,2],"total_duration":10,"load_duration":1,"prompt_eval_count":3,"prompt_eval_duration":2,"eval_count":4,"eval_duration":5}"#;
        let Ok(Line::Done { text, completion }) = parse_line(line) else {
            panic!("not a done line");
        };
        assert_eq!(text.as_deref(), Some("!"));
        assert_eq!(completion.done_reason.as_deref(), Some("stop"));
        assert_eq!(completion.context, Some(vec![1, 2]));
        let counters = completion.counters;
        assert_eq!((counters.eval_count, counters.total_duration), (4, 10));
    }

    #[test]
    fn an_error_line_carries_ollamas_message() {
        let line = br#"{"error":"model runner has unexpectedly stopped"}"#;
        assert_eq!(
            parse_line(line).unwrap(),
            Line::Error("model runner has unexpectedly stopped".into())
        );
        assert!(parse_line(b"{\"model\": oops").is_err());
    }

    fn body(request: &InferenceRequest) -> serde_json::Value {
        serde_json::to_value(Request::new(request)).unwrap()
    }

    #[test]
    fn a_completion_maps_to_generate_with_ollamas_option_names() {
        let mut options = Options {
            temperature: Some(0.25),
            max_tokens: Some(8),
            context_window: Some(2048),
            stop: Some(vec!["\n".into()]),
            ..Options::default()
        };
        options.extra.insert("mirostat".into(), json!(2));
        let request = InferenceRequest {
            model: "llama3.2".into(),
            input: Input::Completion {
                prompt: "Hi".into(),
                system: Some("Be brief.".into()),
                context: Some(vec![1, 2]),
                raw: false,
            },
            options,
            keep_alive: Some(KeepAlive::Text("10m".into())),
            think: Some(Think::Enabled(true)),
            format: Some(Format::Json),
        };
        assert_eq!(
            body(&request),
            json!({"model": "llama3.2", "prompt": "Hi", "context": [1, 2], "system": "Be brief.",
                   "options": {"temperature": 0.25, "num_predict": 8, "stop": ["\n"],
                               "num_ctx": 2048, "mirostat": 2},
                   "keep_alive": "10m", "think": true, "format": "json", "stream": true})
        );
    }

    #[test]
    fn a_chat_maps_to_chat_and_leaves_out_what_was_not_set() {
        let request = InferenceRequest {
            model: "qwen2.5:0.5b".into(),
            input: Input::Chat(vec![
                Message::new(Role::System, "Terse."),
                Message::new(Role::User, "Hi"),
            ]),
            options: Options::default(),
            keep_alive: Some(KeepAlive::Seconds(0.0)),
            think: None,
            format: None,
        };
        assert_eq!(
            body(&request),
            json!({"model": "qwen2.5:0.5b", "messages": [
                       {"role": "system", "content": "Terse."},
                       {"role": "user", "content": "Hi"}],
                   "keep_alive": 0.0, "stream": true})
        );
    }
}
