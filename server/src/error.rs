//! The one error type of the HTTP layer. Every failure answers JSON
//! `{"error": "…"}` with a fitting status; never plain text, never empty.

use app::api::ErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad JSON, or a required field missing or empty; the message names it.
    #[error("{0}")]
    BadRequest(String),
    /// No such model, generation or route.
    #[error("{0}")]
    NotFound(String),
    /// The path exists, but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is over the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The server is at a configured capacity limit; retrying later helps.
    #[error("{0}")]
    Busy(String),
    /// A backend could not serve the request; its own status mapping applies.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A bug on our side. The detail is logged, never sent.
    #[error("internal server error")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Backend(error) => backend_status(error),
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client sees: the error's text, except for our own bugs.
    pub fn public_message(&self) -> String {
        self.to_string()
    }
}

fn backend_status(error: &BackendError) -> StatusCode {
    match error {
        BackendError::ModelNotFound(_) => StatusCode::NOT_FOUND,
        BackendError::Rejected { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
        }
        BackendError::Unreachable { .. } | BackendError::Failed(_) => StatusCode::BAD_GATEWAY,
        BackendError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        BackendError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        let status = self.status();
        match &self {
            Self::Internal(detail) => tracing::error!(%detail, "internal error"),
            _ if status.is_server_error() => tracing::warn!(error = %self, "backend error"),
            _ => tracing::debug!(error = %self, "client error"),
        }
        json_error(status, self.public_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_failures_map_to_gateway_statuses() {
        let unreachable = AppError::from(BackendError::Unreachable {
            backend: "ollama",
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(unreachable.status(), StatusCode::BAD_GATEWAY);
        let timeout = AppError::from(BackendError::Timeout {
            backend: "ollama",
            after: std::time::Duration::from_secs(2),
        });
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(timeout.public_message(), "ollama did not answer within 2s");
    }

    #[test]
    fn internal_details_are_not_sent() {
        let error = AppError::Internal("lock poisoned at registry.rs:42".into());
        assert_eq!(error.public_message(), "internal server error");
    }
}
