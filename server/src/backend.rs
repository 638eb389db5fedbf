//! What every LLM backend offers (list models, generate, chat, report its
//! health), and the token stream they all answer with.

pub mod embedded;
pub mod ndjson;
pub mod ollama;

use std::pin::Pin;
use std::time::Duration;

use app::api::{BackendKind, ChatRequest, GenerateRequest, ModelInfo};
use futures_util::Stream;
use serde::Serialize;

/// A boxed future, so backends can sit behind `dyn Backend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A generation's output as it is produced. Ends after `Done` or an error;
/// dropping it cancels the generation upstream.
pub type TokenStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, BackendError>> + Send>>;

/// One step of a generation.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of text (never empty).
    Token(String),
    /// The generation ended normally; nothing follows.
    Done(Completion),
}

/// How a generation ended, with Ollama's counters (durations in ns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub model: String,
    pub created_at: String,
    pub done_reason: Option<String>,
    /// Token ids of the conversation so far (generate only).
    pub context: Option<Vec<i64>>,
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: u64,
    pub prompt_eval_duration: u64,
    pub eval_count: u64,
    pub eval_duration: u64,
}

/// Why a backend could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend has no such model; its own message is kept.
    #[error("{0}")]
    ModelNotFound(String),
    /// The backend refused the request as invalid (an Ollama 4xx).
    #[error("{message}")]
    Rejected { status: u16, message: String },
    /// No connection could be made, or it broke before the answer started.
    #[error("{backend} is unreachable at {url}: {reason}")]
    Unreachable {
        backend: &'static str,
        url: String,
        reason: String,
    },
    /// No answer (connection and response headers) within the timeout.
    #[error("{backend} did not answer within {}", humantime::format_duration(*.after))]
    Timeout {
        backend: &'static str,
        after: Duration,
    },
    /// The backend failed while answering: a 5xx, an error line mid-stream,
    /// a malformed line, or a stream that ended before `done`.
    #[error("{0}")]
    Failed(String),
    /// Every slot is taken and the queue is full.
    #[error("{0}")]
    Busy(String),
}

/// Whether a backend can serve requests right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackendHealth {
    pub backend: BackendKind,
    pub ready: bool,
    /// Where it is (a URL or a directory).
    pub location: String,
    /// Its version, when it reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An LLM backend. Methods resolve once the backend has accepted the work
/// (for a stream: once its response headers are in), so a refusal becomes a
/// proper HTTP status before any stream starts.
pub trait Backend: Send + Sync + 'static {
    fn kind(&self) -> BackendKind;

    /// The models this backend can run.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>>;

    /// Completes a prompt.
    fn generate(
        &self,
        request: GenerateRequest,
    ) -> BoxFuture<'_, Result<TokenStream, BackendError>>;

    /// Answers the last message of a conversation.
    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>>;

    /// Checks that the backend is reachable.
    fn health(&self) -> BoxFuture<'_, BackendHealth>;

    /// Generations this backend is producing right now.
    fn active_sequences(&self) -> usize {
        0
    }
}
