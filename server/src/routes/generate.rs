//! `POST /api/v1/generate` and `POST /api/v1/generate/stream`: complete a
//! prompt, whole or as Server-Sent Events.

use app::api::{ErrorBody, GenerateRequest, GenerateResponse, TokenChunk};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};

use crate::backend::TokenStream;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::sse;
use crate::state::AppState;
use crate::validation::validate_generate;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/generate", post(generate))
        .route("/generate/stream", post(stream_generate))
}

/// Validates, routes and starts a generation; resolves once the backend has
/// accepted it, so refusals are proper statuses.
async fn start(state: &AppState, request: GenerateRequest) -> Result<TokenStream, AppError> {
    validate_generate(&request)?;
    let backend = state.registry.resolve(&request.model).await;
    Ok(backend.generate(request).await?)
}

/// Completes a prompt and answers with the whole text.
#[utoipa::path(
    post,
    path = "/api/v1/generate",
    tag = "generate",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "The whole answer", body = GenerateResponse),
        (status = 400, description = "Bad JSON, or `model` or `prompt` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<Json<GenerateResponse>, AppError> {
    let model = request.model.clone();
    let tokens = start(&state, request).await?;
    let (response, completion) = sse::collect(tokens).await?;
    Ok(Json(GenerateResponse {
        model: if completion.model.is_empty() {
            model
        } else {
            completion.model
        },
        created_at: completion.created_at,
        response,
        done: true,
        done_reason: completion.done_reason,
        context: completion.context,
        total_duration: completion.total_duration,
        load_duration: completion.load_duration,
        prompt_eval_count: completion.prompt_eval_count,
        prompt_eval_duration: completion.prompt_eval_duration,
        eval_count: completion.eval_count,
        eval_duration: completion.eval_duration,
    }))
}

/// Completes a prompt, streaming tokens as Server-Sent Events.
///
/// Each token is `data: {"response":"…","done":false}`. A successful stream
/// ends with `event: done` whose data is a `DoneChunk`; a failure after the
/// stream started ends it with `event: error` and an `ErrorBody`. Failures
/// before the first byte are ordinary JSON error answers.
#[utoipa::path(
    post,
    path = "/api/v1/generate/stream",
    tag = "generate",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "Token frames, then `event: done` (DoneChunk) or `event: error` (ErrorBody)",
            content_type = "text/event-stream", body = TokenChunk),
        (status = 400, description = "Bad JSON, or `model` or `prompt` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn stream_generate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<Response, AppError> {
    let tokens = start(&state, request).await?;
    Ok(sse::relay(tokens, &state))
}
