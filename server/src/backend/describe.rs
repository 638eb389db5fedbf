//! What a backend says about its models beyond the list: one model's card
//! (Ollama's `/api/show`), the models in memory now (`/api/ps`), and the
//! model-management calls only an Ollama can make (pull, delete, copy,
//! create, push).

use std::pin::Pin;

use app::api::{ModelDetails, ModelInfo};
use bytes::Bytes;
use futures_util::Stream;
use serde::Deserialize;

use super::BackendError;

/// One model described: how it is built and prompted.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelCard {
    #[serde(default)]
    pub license: String,
    #[serde(default)]
    pub modelfile: String,
    /// Its default parameters, one `name value` per line.
    #[serde(default)]
    pub parameters: String,
    /// Its prompt template (Go template on Ollama, Jinja in a GGUF).
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub system: String,
    #[serde(default)]
    pub details: ModelDetails,
    /// The model file's metadata (`general.architecture`, `….context_length`…).
    #[serde(default)]
    pub model_info: serde_json::Map<String, serde_json::Value>,
    /// What it can do: `completion`, `embedding`, `vision`, `tools`, `thinking`…
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub modified_at: String,
    /// Whatever else the backend said (tensors, projector…), passed on as it is.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A model loaded in memory now.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedModel {
    pub info: ModelInfo,
    /// RFC 3339 time it will be unloaded if nothing asks for it.
    pub expires_at: String,
    /// Bytes of it on a GPU (0 on a CPU).
    pub size_vram: u64,
    /// Tokens of context it was loaded with.
    pub context_length: Option<u64>,
}

/// One of Ollama's model-management calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manage {
    Pull,
    Push,
    Create,
    Copy,
    Delete,
}

impl Manage {
    /// The path it has on Ollama.
    pub fn path(self) -> &'static str {
        match self {
            Self::Pull => "api/pull",
            Self::Push => "api/push",
            Self::Create => "api/create",
            Self::Copy => "api/copy",
            Self::Delete => "api/delete",
        }
    }

    /// What it is called in a message.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Create => "create",
            Self::Copy => "copy",
            Self::Delete => "delete",
        }
    }
}

/// An upstream's answer to a management call, passed on as it came: its
/// status, its content type, and its body (a pull's progress streams).
pub struct Forwarded {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Pin<Box<dyn Stream<Item = Result<Bytes, BackendError>> + Send>>,
}

impl Forwarded {
    /// For a caller that speaks its own dialect rather than passing the
    /// answer on: a non-2xx answer as the error it is (mapped as every
    /// upstream answer is), or the answer itself.
    pub async fn into_success(self, backend: &str) -> Result<Self, BackendError> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let mut body = Vec::new();
        let mut chunks = self.body;
        // Error bodies are small; a huge one is cut, not buffered whole.
        while body.len() < 64 * 1024 {
            match futures_util::StreamExt::next(&mut chunks).await {
                Some(Ok(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        Err(super::http::status_error(backend, self.status, &body))
    }
}
