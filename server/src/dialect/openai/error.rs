//! Errors in OpenAI's shape, `{"error": {"message", "type", "param",
//! "code"}}`, with the status OpenAI would give: what the SDKs turn into
//! their own error classes (`NotFoundError`, `BadRequestError`…).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::wire::{ErrorBody, ErrorDetail};
use crate::backend::BackendError;
use crate::error::AppError;

/// A refusal or failure, as an OpenAI client reads it.
#[derive(Debug)]
pub struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl OpenAiError {
    /// A request parameter that is missing or wrong.
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param),
            code: None,
        }
    }

    /// A parameter llm-chat does not offer: refused, never ignored.
    pub fn unsupported(param: &'static str, why: &str) -> Self {
        Self {
            code: Some("unsupported_parameter"),
            ..Self::invalid(param, format!("`{param}` is not supported: {why}"))
        }
    }

    /// No model of that name.
    pub fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist"),
            kind: "invalid_request_error",
            param: Some("model"),
            code: Some("model_not_found"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body, for a response or a stream's error frame.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind.to_string(),
                param: self.param.map(String::from),
                code: self.code.map(String::from),
            },
        }
    }

    /// A failure after the stream started: OpenAI's streamed error.
    pub fn in_stream(message: String) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message,
                kind: "server_error".into(),
                param: None,
                code: None,
            },
        }
    }
}

impl From<AppError> for OpenAiError {
    fn from(error: AppError) -> Self {
        let status = error.status();
        let (kind, code, param) = match &error {
            AppError::BadRequest(_) => ("invalid_request_error", None, None),
            AppError::PayloadTooLarge(_) => {
                ("invalid_request_error", Some("request_too_large"), None)
            }
            AppError::NotFound(_) => ("not_found_error", None, None),
            AppError::Backend(BackendError::ModelNotFound { .. }) => (
                "invalid_request_error",
                Some("model_not_found"),
                Some("model"),
            ),
            AppError::Backend(BackendError::Rejected { .. }) => {
                ("invalid_request_error", None, None)
            }
            AppError::Backend(BackendError::Busy { .. })
            | AppError::Generations(crate::generations::StoreError::Full { .. }) => {
                ("server_error", Some("server_busy"), None)
            }
            AppError::Backend(BackendError::Timeout { .. }) => {
                ("server_error", Some("upstream_timeout"), None)
            }
            AppError::Backend(_) => ("server_error", Some("upstream_error"), None),
            AppError::Generations(_) | AppError::Conversations(_) => ("server_error", None, None),
        };
        if let AppError::Backend(backend) = &error {
            backend.log();
        }
        Self {
            status,
            message: error.to_string(),
            kind,
            param,
            code,
        }
    }
}

impl From<BackendError> for OpenAiError {
    fn from(error: BackendError) -> Self {
        AppError::from(error).into()
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_openais_shape() {
        let body = serde_json::to_string(&OpenAiError::model_not_found("nope").body()).unwrap();
        assert_eq!(
            body,
            r#"{"error":{"message":"The model `nope` does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#
        );
        let busy = OpenAiError::from(BackendError::Busy {
            backend: "embedded".into(),
            message: "all slots are taken".into(),
        });
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.body().error.code.as_deref(), Some("server_busy"));
        let unsupported = OpenAiError::unsupported("n", "one choice per request");
        assert_eq!(unsupported.status(), StatusCode::BAD_REQUEST);
        assert_eq!(unsupported.body().error.param.as_deref(), Some("n"));
    }
}
