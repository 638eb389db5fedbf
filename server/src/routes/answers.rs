//! Answers in our own dialect: `POST /api/v1/generate` (complete a prompt)
//! and `POST /api/v1/chat` (answer a conversation), each whole or as
//! Server-Sent Events (`/stream`, the same frames for both).

use app::api::{
    ChatRequest, ChatResponse, ErrorBody, GenerateRequest, GenerateResponse, TokenChunk,
};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dialect::native;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::stream;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(generate))
        .routes(routes!(stream_generate))
        .routes(routes!(chat))
        .routes(routes!(stream_chat))
}

/// Completes a prompt and answers with the whole text.
#[utoipa::path(
    post,
    path = "/generate",
    tag = "generate",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "The whole answer", body = GenerateResponse),
        (status = 400, description = "Bad JSON, or `model` or `prompt` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<Json<GenerateResponse>, AppError> {
    let request = native::generate_request(request)?;
    let model = request.model.clone();
    let tokens = state.registry.infer(request).await?;
    let answer = stream::collect(tokens).await?;
    Ok(Json(native::generate_response(model, answer)))
}

/// Completes a prompt, streaming tokens as Server-Sent Events.
///
/// Each token is `data: {"response":"…","done":false}`; a reasoning model's
/// thoughts come first as `data: {"response":"","thinking":"…","done":false}`.
/// A successful stream ends with `event: done` whose data is a `DoneChunk`;
/// a failure after the stream started ends it with `event: error` and an
/// `ErrorBody`. Failures before the first byte are ordinary JSON error
/// answers.
#[utoipa::path(
    post,
    path = "/generate/stream",
    tag = "generate",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "Token frames, then `event: done` (DoneChunk) or `event: error` (ErrorBody)",
            content_type = "text/event-stream", body = TokenChunk),
        (status = 400, description = "Bad JSON, or `model` or `prompt` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn stream_generate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<Response, AppError> {
    let request = native::generate_request(request)?;
    let tokens = state.registry.infer(request).await?;
    Ok(native::stream_answer(tokens, &state.streams))
}

/// Answers a conversation with the assistant's whole message.
#[utoipa::path(
    post,
    path = "/chat",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The assistant's whole message", body = ChatResponse),
        (status = 400, description = "Bad JSON, or `model` or `messages` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn chat(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Json<ChatResponse>, AppError> {
    let request = native::chat_request(request)?;
    let model = request.model.clone();
    let tokens = state.registry.infer(request).await?;
    let answer = stream::collect(tokens).await?;
    Ok(Json(native::chat_response(model, answer)))
}

/// Answers a conversation, streaming tokens as Server-Sent Events, framed
/// exactly as `/generate/stream` frames them.
#[utoipa::path(
    post,
    path = "/chat/stream",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "Token frames, then `event: done` (DoneChunk) or `event: error` (ErrorBody)",
            content_type = "text/event-stream", body = TokenChunk),
        (status = 400, description = "Bad JSON, or `model` or `messages` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn stream_chat(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Response, AppError> {
    let request = native::chat_request(request)?;
    let tokens = state.registry.infer(request).await?;
    Ok(native::stream_answer(tokens, &state.streams))
}
