//! The one error type of our own API. Every failure answers JSON
//! `{"error": "…"}` with a fitting status; never plain text, never empty.
//! A server-side failure is logged with its detail; the client reads a plain
//! message that names no internal address or path.

use app::api::ErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::backend::BackendError;
use crate::conversations::StoreError as ConversationError;
use crate::conversations::replies::ReplyError;
use crate::generations::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad JSON, or a required field missing or empty; the message names it.
    #[error("{0}")]
    BadRequest(String),
    /// No such endpoint.
    #[error("{0}")]
    NotFound(String),
    /// The body is over the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A backend could not serve the request; its own status mapping applies.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// No such generation, or no room for one.
    #[error(transparent)]
    Generations(#[from] StoreError),
    /// No such conversation or message, or the database failed.
    #[error(transparent)]
    Conversations(#[from] ConversationError),
}

impl From<ReplyError> for AppError {
    fn from(error: ReplyError) -> Self {
        match error {
            ReplyError::BadRequest(message) => Self::BadRequest(message),
            ReplyError::NoSuchMessage(_) => Self::NotFound(error.to_string()),
            ReplyError::Store(error) => Self::Conversations(error),
            ReplyError::Backend(error) => Self::Backend(error),
            ReplyError::Generations(error) => Self::Generations(error),
        }
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Backend(error) => backend_status(error),
            Self::Generations(StoreError::NotFound { .. }) => StatusCode::NOT_FOUND,
            Self::Generations(StoreError::Full { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Conversations(error) => match error {
                ConversationError::NoConversation(_) => StatusCode::NOT_FOUND,
                ConversationError::NoMessage(_) | ConversationError::BadCursor => {
                    StatusCode::BAD_REQUEST
                }
                ConversationError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

/// The status a client gets for a backend's failure.
pub fn backend_status(error: &BackendError) -> StatusCode {
    match error {
        BackendError::ModelNotFound { .. } => StatusCode::NOT_FOUND,
        BackendError::Rejected { status, .. } => StatusCode::from_u16(*status)
            .ok()
            .filter(StatusCode::is_client_error)
            .unwrap_or(StatusCode::BAD_REQUEST),
        BackendError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        BackendError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        BackendError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        BackendError::Unreachable { .. }
        | BackendError::Status { .. }
        | BackendError::Failed { .. }
        | BackendError::Malformed { .. }
        | BackendError::Broken { .. }
        | BackendError::EndedEarly { .. } => StatusCode::BAD_GATEWAY,
    }
}

/// A JSON error answer with any status; for layers that build responses
/// outside a handler (panics, 405s).
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            Self::Backend(error) => error.log(),
            Self::Conversations(ConversationError::Database(source)) => {
                tracing::error!(error = %source, "the conversation store failed");
            }
            other => tracing::debug!(error = %other, "request refused"),
        }
        json_error(self.status(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::ConnectFailure;

    #[test]
    fn backend_failures_map_to_gateway_statuses() {
        let unreachable = AppError::from(BackendError::Unreachable {
            backend: "ollama".into(),
            reason: ConnectFailure::Refused,
            detail: "http://127.0.0.1:1: connection refused".into(),
        });
        assert_eq!(unreachable.status(), StatusCode::BAD_GATEWAY);
        assert!(!unreachable.to_string().contains("127.0.0.1"));
        let timeout = AppError::from(BackendError::Timeout {
            backend: "ollama".into(),
            after: Duration::from_secs(2),
        });
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(timeout.to_string(), "ollama did not answer within 2s");
    }

    #[test]
    fn internal_details_are_not_sent() {
        let error = AppError::from(BackendError::Internal {
            backend: "embedded".into(),
            message: "the model gemma3:270m could not be loaded".into(),
            detail: "/home/me/.cache/llm-chat/models/gemma.gguf: bad magic".into(),
        });
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            error.to_string(),
            "the model gemma3:270m could not be loaded"
        );
    }

    #[test]
    fn a_full_store_is_busy_and_a_missing_generation_not_found() {
        let full = AppError::from(StoreError::Full { running: 3 });
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            full.to_string(),
            "server busy: 3 generations are running; try again shortly"
        );
        let missing = AppError::from(StoreError::NotFound { id: "x".into() });
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
