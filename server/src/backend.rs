//! What every LLM backend offers: its models, one streaming operation over
//! the inference request, and its health. Each backend instance has a name
//! (what `/readyz`, the metrics, the logs and a model's `backend` say) and a
//! kind. A new kind of upstream is one file here, mapping the inference
//! request into its own upstream request.

mod describe;
pub mod embedded;
mod error;
pub mod http;
pub(crate) mod ndjson;
pub mod ollama;
pub mod openai;
pub mod scoped;

use std::pin::Pin;

use app::api::ModelInfo;
use bytes::Bytes;
use serde::Serialize;

pub use self::describe::{Forwarded, LoadedModel, Manage, ModelCard};
pub use self::error::{BackendError, ConnectFailure};
use crate::inference::{EmbedRequest, Embeddings, InferenceRequest};
pub use crate::stream::{Completion, StreamEvent, TokenStream};

/// A boxed future, so backends can sit behind `dyn Backend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which kind of backend an instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// An Ollama server reached over HTTP.
    Ollama,
    /// GGUF models run inside the llm-chat process.
    Embedded,
    /// An OpenAI-compatible server (vLLM, llama.cpp server, a hosted API).
    Openai,
}

impl BackendKind {
    /// As the API spells it (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::Embedded => "embedded",
            Self::Openai => "openai",
        }
    }
}

/// Whether a backend can serve requests right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackendHealth {
    pub kind: BackendKind,
    pub ready: bool,
    /// Where it is (a URL or a directory): for operators, never in an
    /// answer to an API client.
    pub location: String,
    /// Its version, when it reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An LLM backend. `infer` resolves once the backend has accepted the work
/// (its response headers are in, or a slot is reserved), so a refusal
/// becomes a proper HTTP status before any stream starts.
pub trait Backend: Send + Sync + 'static {
    /// This instance's name, unique among the server's backends.
    fn name(&self) -> &str;

    fn kind(&self) -> BackendKind;

    /// The models this backend can run.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>>;

    /// Starts answering.
    fn infer(&self, request: InferenceRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>>;

    /// Turns texts into vectors, one per input, each of unit length.
    fn embed(&self, request: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>>;

    /// Checks that the backend is reachable.
    fn health(&self) -> BoxFuture<'_, BackendHealth>;

    /// What it knows of one model (Ollama's `/api/show`).
    fn describe(&self, model: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>>;

    /// The models it holds in memory now (Ollama's `/api/ps`).
    fn loaded(&self) -> BoxFuture<'_, Result<Vec<LoadedModel>, BackendError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Makes one of Ollama's model-management calls, for a backend that
    /// can: its answer comes back as it is.
    fn manage(&self, call: Manage, body: Bytes) -> BoxFuture<'_, Result<Forwarded, BackendError>> {
        let _ = body;
        Box::pin(std::future::ready(Err(BackendError::Rejected {
            status: 400,
            message: format!("the {} backend cannot {} models", self.name(), call.verb()),
        })))
    }

    /// Whether a model of this name may be fetched onto it (pull, create):
    /// an upstream with an allow-list takes only the models on it.
    fn accepts_model(&self, name: &str) -> bool {
        let _ = name;
        true
    }

    /// Answers this backend is producing right now.
    fn active_sequences(&self) -> usize {
        0
    }

    /// Whether the backend may serve a model name it did not list: Ollama
    /// resolves names itself (and says "not found" in its own words); the
    /// embedded backend serves exactly its files.
    fn serves_unlisted_models(&self) -> bool {
        false
    }
}
