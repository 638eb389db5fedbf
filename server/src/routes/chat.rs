//! `POST /api/v1/chat` and `POST /api/v1/chat/stream`: answer a
//! conversation, whole or as Server-Sent Events (the same frames as generate).

use app::api::{ChatMessage, ChatRequest, ChatResponse, ErrorBody, Role, TokenChunk};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};

use crate::backend::TokenStream;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::sse;
use crate::state::AppState;
use crate::validation::validate_chat;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/chat", post(chat))
        .route("/chat/stream", post(stream_chat))
}

async fn start(state: &AppState, request: ChatRequest) -> Result<TokenStream, AppError> {
    validate_chat(&request)?;
    let backend = state.registry.resolve(&request.model).await;
    Ok(backend.chat(request).await?)
}

/// Answers a conversation with the assistant's whole message.
#[utoipa::path(
    post,
    path = "/api/v1/chat",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The assistant's whole message", body = ChatResponse),
        (status = 400, description = "Bad JSON, or `model` or `messages` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn chat(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Json<ChatResponse>, AppError> {
    let model = request.model.clone();
    let tokens = start(&state, request).await?;
    let (content, completion) = sse::collect(tokens).await?;
    Ok(Json(ChatResponse {
        model: if completion.model.is_empty() {
            model
        } else {
            completion.model
        },
        created_at: completion.created_at,
        message: ChatMessage::new(Role::Assistant, content),
        done: true,
        done_reason: completion.done_reason,
        total_duration: completion.total_duration,
        load_duration: completion.load_duration,
        prompt_eval_count: completion.prompt_eval_count,
        prompt_eval_duration: completion.prompt_eval_duration,
        eval_count: completion.eval_count,
        eval_duration: completion.eval_duration,
    }))
}

/// Answers a conversation, streaming tokens as Server-Sent Events, framed
/// exactly as `/generate/stream` frames them.
#[utoipa::path(
    post,
    path = "/api/v1/chat/stream",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "Token frames, then `event: done` (DoneChunk) or `event: error` (ErrorBody)",
            content_type = "text/event-stream", body = TokenChunk),
        (status = 400, description = "Bad JSON, or `model` or `messages` missing", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn stream_chat(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Response, AppError> {
    let tokens = start(&state, request).await?;
    Ok(sse::relay(tokens, &state))
}
