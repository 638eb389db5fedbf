//! OpenAI's wire types, as its API and SDKs define them: what clients send
//! to `/v1/chat/completions`, `/v1/completions` and `/v1/models`, and what
//! they read back. Field order follows OpenAI's own answers. Only the server
//! needs them (the page speaks our own API), so they live here, not in `app`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ------------------------------------------------------------ requests

/// Body of `POST /v1/chat/completions`. Parameters llm-chat cannot honour
/// are read too, so that asking for them is a clear 400 rather than
/// silently ignored; unknown ones are let through (clients send extras).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiChatCompletionRequest)]
pub struct ChatCompletionRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    #[serde(flatten)]
    pub sampling: Sampling,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// The newer name of `max_tokens`.
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Ollama's own extension, as its `/v1` takes it.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unsupported: Unsupported,
}

/// Body of `POST /v1/completions` (the legacy prompt API).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiCompletionRequest)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: String,
    /// A string, or an array holding one string.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub prompt: Value,
    #[serde(flatten)]
    pub sampling: Sampling,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub best_of: Option<u32>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unsupported: Unsupported,
}

/// The sampling parameters both requests share.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiSampling)]
pub struct Sampling {
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    /// A string or an array of up to four strings.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub stop: Option<Value>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
}

/// Parameters of OpenAI's API that llm-chat does not offer: any of them
/// set (to something other than its neutral value) is refused by name.
#[derive(Debug, Default, Deserialize)]
pub struct Unsupported {
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub logprobs: Option<Value>,
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub logit_bias: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub functions: Option<Vec<Value>>,
    #[serde(default)]
    pub audio: Option<Value>,
    #[serde(default)]
    pub prediction: Option<Value>,
}

/// One message of a chat request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiChatMessage)]
pub struct ChatMessage {
    pub role: String,
    /// A string, an array of content parts, or `null` (an assistant turn
    /// that only called tools).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub content: Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiResponseFormat)]
pub struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub json_schema: Option<Value>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiStreamOptions)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

// ------------------------------------------------------------ answers

/// `GET /v1/models`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiModelList)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<Model>,
}

/// One model, as `GET /v1/models/{id}` answers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiModel)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    /// Unix seconds the model was last changed.
    pub created: u64,
    /// The backend instance serving it (`ollama`, `embedded`).
    pub owned_by: String,
}

/// Token counts of an answer.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiUsage)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// A whole chat answer (`object: "chat.completion"`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiChatCompletion)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiChatChoice)]
pub struct ChatChoice {
    pub index: u32,
    pub message: AnswerMessage,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<()>,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiAnswerMessage)]
pub struct AnswerMessage {
    pub role: &'static str,
    pub content: String,
    /// A reasoning model's thoughts (as DeepSeek and vLLM name them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

/// A whole legacy completion (`object: "text_completion"`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiTextCompletion)]
pub struct TextCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<TextChoice>,
    pub usage: Usage,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiTextChoice)]
pub struct TextChoice {
    pub text: String,
    pub index: u32,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

/// Every error answer, streamed or not.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiErrorBody)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiErrorDetail)]
pub struct ErrorDetail {
    pub message: String,
    /// `invalid_request_error`, `not_found_error`, `server_error`…
    #[serde(rename = "type")]
    pub kind: String,
    /// The request parameter at fault, when one is.
    pub param: Option<String>,
    /// `model_not_found`, `unsupported_parameter`…
    pub code: Option<String>,
}

// ------------------------------------------------------------ embeddings

/// Body of `POST /v1/embeddings` (`user`, like any field not named here,
/// is accepted and not used).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = OpenAiEmbeddingRequest)]
pub struct EmbeddingRequest {
    #[serde(default)]
    pub model: String,
    /// A string, or an array of strings (token-id arrays are refused).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Value,
    /// `float` (the default) or `base64`.
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<i64>,
}

/// `POST /v1/embeddings`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiEmbeddingList)]
pub struct EmbeddingList {
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

/// One input's vector.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiEmbedding)]
pub struct Embedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingVector,
}

/// Floats, or their little-endian `f32` bytes in base64.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = OpenAiEmbeddingVector)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiEmbeddingUsage)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}
