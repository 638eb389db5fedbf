//! The HTTP API's wire types, defined once for the server and the WASM client.
//!
//! Field names and order follow the original Go API (itself a thin layer over
//! Ollama), so its clients keep working: serde serialises fields in
//! declaration order, which the byte-exact wire tests rely on.

mod conversations;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

pub use self::conversations::*;

/// Every error answer: `{"error": "…"}`, whatever the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, readable by a person.
    pub error: String,
}

/// Answer of `GET /api/v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelList {
    pub models: Vec<ModelInfo>,
    /// Every backend instance, in the order configured, listing or not.
    #[serde(default)]
    pub backends: Vec<BackendInfo>,
}

/// One backend instance llm-chat routes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BackendInfo {
    /// As models name it in `backends` (`ollama`, `ollama-2`, `embedded`).
    pub name: String,
    /// `ollama`, `openai` or `embedded`.
    pub kind: String,
    /// Models can be pulled onto it and deleted from it (an Ollama server).
    pub manages_models: bool,
}

/// Body of `POST /api/v1/models/pull`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PullRequest {
    /// What to pull, as Ollama names it (`llama3.2:1b`).
    pub model: String,
    /// The Ollama upstream to pull it to, by name [default: the first].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// One `data:` frame of a pull's progress: Ollama's status line, with the
/// layer's bytes while one downloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PullProgress {
    /// `pulling manifest`, `pulling 6a0746a1ec1a`, `verifying sha256 digest`…
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The layer's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Bytes of the layer downloaded so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
}

/// `event: done` of a pull: the model is there, and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PullDone {
    /// `success`.
    pub status: String,
    pub model: String,
}

/// One model as Ollama's `/api/tags` describes it, plus the backend serving it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelInfo {
    /// The name to put in a request's `model` field, e.g. `llama3.2:latest`.
    pub name: String,
    pub model: String,
    /// RFC 3339 time the model was last changed.
    pub modified_at: String,
    /// Size on disk in bytes.
    pub size: u64,
    /// The sha256 of the model's file. Empty for an embedded model while
    /// its checksum is still being computed (just after it appears).
    pub digest: String,
    pub details: ModelDetails,
    /// The name of the backend instance serving it (`ollama`, `embedded`):
    /// the first of `backends`.
    pub backend: String,
    /// Every backend instance serving it: a model several upstreams list is
    /// one model, and each request goes to one of them.
    #[serde(default)]
    pub backends: Vec<String>,
}

/// What a model is: format, family, size class and quantisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelDetails {
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub family: String,
    /// Ollama sends `null` for models with no family list; we send `[]`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub families: Vec<String>,
    #[serde(default)]
    pub parameter_size: String,
    #[serde(default)]
    pub quantization_level: String,
}

/// Body of `POST /api/v1/generate` and `POST /api/v1/generate/stream`.
///
/// `model` and `prompt` default to empty so that a missing field and an empty
/// one get the same clear message from validation instead of serde's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GenerateRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    /// The `context` of an earlier answer, to continue that conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    /// Overrides the model's system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ModelOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Whether a reasoning model thinks before it answers (`true`, `false`,
    /// or a level: `"low"`, `"medium"`, `"high"`), for backends that support
    /// it. The reasoning comes apart from the answer, as `thinking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
}

/// Body of `POST /api/v1/chat` and `POST /api/v1/chat/stream`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ModelOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Whether a reasoning model thinks before it answers (`true`, `false`,
    /// or a level: `"low"`, `"medium"`, `"high"`), for backends that support
    /// it. The reasoning comes apart from the answer, as `thinking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// A reasoning model's thoughts before this answer (answers only;
    /// ignored in a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            thinking: None,
        }
    }
}

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// Sampling options, named as Ollama names them. Options not listed here are
/// forwarded to Ollama untouched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Most tokens to generate; -1 means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
    /// Any other Ollama option, passed through as given.
    #[serde(flatten)]
    #[cfg_attr(feature = "ssr", schema(ignore))]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// How long the backend keeps the model loaded after this request: a
/// duration string such as `"5m"` or `"-1"` (forever), or a number of seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum KeepAlive {
    Seconds(f64),
    Duration(String),
}

/// Whether a reasoning model thinks first: on or off, or a level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Think {
    Enabled(bool),
    Level(String),
}

/// Answer of `POST /api/v1/generate`: the whole generation at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GenerateResponse {
    pub model: String,
    pub created_at: String,
    pub response: String,
    /// A reasoning model's thoughts before the answer, when it had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    pub done: bool,
    /// `stop` (natural end or stop sequence) or `length` (token limit).
    pub done_reason: Option<String>,
    /// Send this back as `context` to continue the conversation.
    pub context: Option<Vec<i64>>,
    #[serde(flatten)]
    pub counters: Counters,
}

/// Answer of `POST /api/v1/chat`: the assistant's whole message at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChatResponse {
    pub model: String,
    pub created_at: String,
    pub message: ChatMessage,
    pub done: bool,
    pub done_reason: Option<String>,
    #[serde(flatten)]
    pub counters: Counters,
}

/// How long an answer took and how many tokens it read and wrote, as
/// Ollama counts them (durations in nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Counters {
    /// From the request's arrival to the answer's end.
    #[serde(default)]
    pub total_duration: u64,
    /// Loading the model, when it was not loaded yet.
    #[serde(default)]
    pub load_duration: u64,
    /// Tokens of the prompt.
    #[serde(default)]
    pub prompt_eval_count: u64,
    #[serde(default)]
    pub prompt_eval_duration: u64,
    /// Tokens of the answer.
    #[serde(default)]
    pub eval_count: u64,
    #[serde(default)]
    pub eval_duration: u64,
}

/// `data:` of each token frame of every SSE stream (generate, chat and
/// generations alike), so one client parser serves them all. A reasoning
/// model's thoughts come first, in frames whose `response` is empty and
/// whose `thinking` holds them (as Ollama sends them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenChunk<'a> {
    #[serde(borrow)]
    pub response: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Cow<'a, str>>,
    /// Always `false`: the end of a stream is its own `event: done` frame.
    pub done: bool,
}

/// `data:` of the `event: done` frame that ends a successful stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DoneChunk {
    pub done: bool,
    pub done_reason: Option<String>,
    /// Only for generate streams: send back as `context` to continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    #[serde(flatten)]
    pub counters: Counters,
    /// Nanoseconds from the start of a generation to its first token
    /// (generations only; measured by llm-chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_token: Option<u64>,
}

/// Name of the SSE event that ends a successful stream.
pub const EVENT_DONE: &str = "done";
/// Name of the SSE event that ends a failed stream; its data is an [`ErrorBody`].
pub const EVENT_ERROR: &str = "error";
/// Name of the SSE event that ends a cancelled generation; data is an [`ErrorBody`].
pub const EVENT_CANCELLED: &str = "cancelled";

/// Body of `POST /api/v1/generations`: a chat (`messages`) or a completion
/// (`prompt`, with `system` and `context`), never both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreateGenerationRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ModelOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Whether a reasoning model thinks before it answers (`true`, `false`,
    /// or a level: `"low"`, `"medium"`, `"high"`), for backends that support
    /// it. The reasoning comes apart from the answer, as `thinking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
}

/// Answer of `POST /api/v1/generations` (status 201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GenerationCreated {
    pub id: String,
    /// Where to read the tokens: an SSE stream `EventSource` can open.
    pub events_url: String,
}

/// Where a generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GenerationStatus {
    Running,
    Done,
    Failed,
    Cancelled,
}

/// Answer of `GET /api/v1/generations/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GenerationState {
    pub id: String,
    pub model: String,
    pub status: GenerationStatus,
    /// RFC 3339 time the generation started.
    pub created_at: String,
    /// The text produced so far (all of it, once finished).
    pub text: String,
    /// The reasoning before the text, when the model gave any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Tokens produced so far (reasoning included); also the `id` of the
    /// last token frame.
    pub tokens: u64,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// The final counters, once done.
    pub stats: Option<DoneChunk>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_chunk_has_the_go_apis_exact_shape() {
        let chunk = TokenChunk {
            response: "Hello".into(),
            thinking: None,
            done: false,
        };
        assert_eq!(
            serde_json::to_string(&chunk).unwrap(),
            r#"{"response":"Hello","done":false}"#
        );
    }

    #[test]
    fn missing_model_and_prompt_deserialize_as_empty_for_validation() {
        let request: GenerateRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(request.model, "");
        assert_eq!(request.prompt, "");
    }

    #[test]
    fn unknown_options_are_kept_for_ollama() {
        let options: ModelOptions =
            serde_json::from_str(r#"{"temperature":0.5,"mirostat":2}"#).unwrap();
        assert_eq!(options.temperature, Some(0.5));
        assert_eq!(options.other["mirostat"], 2);
        assert_eq!(
            serde_json::to_string(&options).unwrap(),
            r#"{"temperature":0.5,"mirostat":2}"#
        );
    }

    #[test]
    fn keep_alive_accepts_a_duration_or_seconds() {
        let text: KeepAlive = serde_json::from_str(r#""5m""#).unwrap();
        let number: KeepAlive = serde_json::from_str("300").unwrap();
        assert_eq!(text, KeepAlive::Duration("5m".into()));
        assert_eq!(number, KeepAlive::Seconds(300.0));
    }

    #[test]
    fn null_families_become_an_empty_list() {
        let details: ModelDetails = serde_json::from_str(r#"{"families":null}"#).unwrap();
        assert!(details.families.is_empty());
    }
}
