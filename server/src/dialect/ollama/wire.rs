//! Ollama's wire types as its server speaks them: what Ollama's clients
//! (ollama-python/js, Open WebUI, editor plugins) send to `/api/*`, and what
//! they read back. Field names, order and omissions follow Ollama's own
//! answers (its Go structs leave out empty `done_reason`, `context`,
//! `thinking` and zero counters).

use app::api::{KeepAlive, ModelDetails, ModelOptions, Think};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ------------------------------------------------------------ requests

/// Body of `POST /api/generate`. Fields llm-chat cannot honour are read
/// too, so that sending them is a clear 400 rather than silently ignored.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OllamaGenerateRequest)]
pub struct GenerateRequest {
    #[serde(default)]
    pub model: String,
    /// Empty: load the model (with `keep_alive: 0`, unload it) and answer nothing.
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub system: Option<String>,
    /// The `context` of an earlier answer, to continue it.
    #[serde(default)]
    pub context: Option<Vec<i64>>,
    /// The prompt is already in the model's format: no template.
    #[serde(default)]
    pub raw: bool,
    #[serde(flatten)]
    pub controls: Controls,
    /// Not supported: a clear 400.
    #[serde(default)]
    pub suffix: String,
    /// Not supported: a clear 400.
    #[serde(default)]
    pub template: String,
    /// Not supported: a clear 400.
    #[serde(default)]
    pub images: Vec<String>,
}

/// How an answer is produced and sent: what `/api/generate` and
/// `/api/chat` both take.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OllamaControls)]
pub struct Controls {
    /// `true` unless set: NDJSON, one line per token.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `"json"`, or a JSON Schema the answer must match.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub format: Value,
    #[serde(default)]
    pub options: Option<ModelOptions>,
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
    #[serde(default)]
    pub think: Option<Think>,
}

/// Body of `POST /api/chat`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OllamaChatRequest)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    /// Empty: load the model and answer nothing.
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(flatten)]
    pub controls: Controls,
    /// Not supported: a clear 400.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
}

/// One message of a chat request (an earlier answer's `thinking` is
/// accepted and, as Ollama does, not sent back to the model).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OllamaMessage)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub content: String,
    /// Not supported: a clear 400.
    #[serde(default)]
    pub images: Vec<String>,
    /// Not supported: a clear 400.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: Vec<Value>,
}

/// Body of `POST /api/embed`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OllamaEmbedRequest)]
pub struct EmbedRequest {
    #[serde(default)]
    pub model: String,
    /// A string or an array of strings; empty loads the model only.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Value,
    /// Cut an input too long for the context (`true` unless set).
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    pub dimensions: Option<i64>,
    #[serde(default)]
    pub options: Option<ModelOptions>,
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
}

/// Body of `POST /api/show`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OllamaShowRequest)]
pub struct ShowRequest {
    #[serde(default)]
    pub model: String,
    /// The older name of `model`.
    #[serde(default)]
    pub name: String,
}

/// What llm-chat reads of a management call's body (pull, push, create,
/// copy, delete) to route it; the body goes on as it came.
#[derive(Debug, Default, Deserialize)]
pub struct ManageTarget {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub name: String,
    /// `copy`'s model.
    #[serde(default)]
    pub source: String,
}

// ------------------------------------------------------------ answers

/// `GET /api/version`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaVersion)]
pub struct Version {
    pub version: &'static str,
}

/// `GET /api/tags`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaTagList)]
pub struct TagList {
    pub models: Vec<Tag>,
}

/// One model of `/api/tags`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaTag)]
pub struct Tag {
    pub name: String,
    pub model: String,
    pub modified_at: String,
    pub size: u64,
    pub digest: String,
    pub details: Details,
}

/// A model's details, with Ollama's `parent_model`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaDetails)]
pub struct Details {
    pub parent_model: String,
    pub format: String,
    pub family: String,
    pub families: Vec<String>,
    pub parameter_size: String,
    pub quantization_level: String,
}

impl From<ModelDetails> for Details {
    fn from(details: ModelDetails) -> Self {
        Self {
            parent_model: String::new(),
            format: details.format,
            family: details.family,
            families: details.families,
            parameter_size: details.parameter_size,
            quantization_level: details.quantization_level,
        }
    }
}

/// `GET /api/ps`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaProcessList)]
pub struct ProcessList {
    pub models: Vec<Process>,
}

/// A model in memory.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaProcess)]
pub struct Process {
    pub name: String,
    pub model: String,
    pub size: u64,
    pub digest: String,
    pub details: Details,
    pub expires_at: String,
    pub size_vram: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
}

/// `POST /api/show`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaShowResponse)]
pub struct ShowResponse {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub license: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub modelfile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parameters: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub template: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system: String,
    pub details: Details,
    #[schema(value_type = Object)]
    pub model_info: serde_json::Map<String, Value>,
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub modified_at: String,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: serde_json::Map<String, Value>,
}

/// `POST /api/embed`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaEmbedResponse)]
pub struct EmbedResponse {
    pub model: String,
    pub embeddings: Vec<Vec<f32>>,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub load_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
}

/// `POST /api/generate`'s answer with `stream: false`, and the last line of
/// its stream.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaGenerateResponse)]
pub struct GenerateResponse {
    pub model: String,
    pub created_at: String,
    pub response: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// `POST /api/chat`'s answer with `stream: false`, and the last line of its
/// stream.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaChatResponse)]
pub struct ChatResponse {
    pub model: String,
    pub created_at: String,
    pub message: AnswerMessage,
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// The assistant's message in a chat answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaAnswerMessage)]
pub struct AnswerMessage {
    pub role: &'static str,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
}

/// How long an answer took (nanoseconds) and its token counts; zeros left
/// out, as Ollama leaves them.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaMetrics)]
pub struct Metrics {
    #[serde(skip_serializing_if = "is_zero")]
    pub total_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub load_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub prompt_eval_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub eval_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub eval_duration: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}
