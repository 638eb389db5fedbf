//! A JSON body extractor whose every rejection is an [`AppError`], so even a
//! malformed or oversized body is answered in the house format.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Like `axum::Json`, but lenient about `Content-Type` (as the Go API was:
/// `curl -d` without `-H` works) and strict about the answer's format.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::BadRequest(
                "request body is empty: send a JSON object".into(),
            ));
        }
        serde_json::from_slice(&body)
            .map(ApiJson)
            .map_err(|error| AppError::BadRequest(format!("invalid JSON body: {error}")))
    }
}

fn body_rejection(rejection: BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("request body is larger than the server's limit".into())
    } else {
        AppError::BadRequest(format!("cannot read the request body: {rejection}"))
    }
}
