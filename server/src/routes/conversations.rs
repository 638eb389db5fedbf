//! Conversations kept on the server: `/api/v1/conversations`, their
//! message trees, and the answers posted into them (each a generation,
//! streamed at its `events_url`, stopped with `DELETE /generations/{id}`).

use app::api::{
    Conversation, ConversationList, CreateConversationRequest, ErrorBody, MessagePosted,
    PostMessageRequest, RegenerateRequest, Regenerated, UpdateConversationRequest,
};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::conversations::{ListQuery, NewConversation};
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// A page of the list holds this many unless asked otherwise...
const DEFAULT_PAGE: usize = 50;
/// ...and never more than this.
const MAX_PAGE: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_conversation, list_conversations))
        .routes(routes!(
            get_conversation,
            update_conversation,
            delete_conversation
        ))
        .routes(routes!(post_message))
        .routes(routes!(regenerate_message))
}

/// Starts a conversation.
#[utoipa::path(
    post,
    path = "/conversations",
    tag = "conversations",
    request_body = CreateConversationRequest,
    responses(
        (status = 201, description = "The new conversation", body = Conversation),
        (status = 400, description = "Bad JSON", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
    )
)]
pub async fn create_conversation(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateConversationRequest>,
) -> Result<Response, AppError> {
    let conversation = state
        .conversations
        .store
        .create(NewConversation {
            title: request.title,
            model: request.model,
            system: request.system,
            options: request.options.unwrap_or_default(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(conversation)).into_response())
}

/// `GET /conversations`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Matches titles and message text (case-insensitive).
    q: Option<String>,
    /// How many to answer, 1 to 200 (default 50).
    limit: Option<usize>,
    /// The `next` of the previous page.
    before: Option<String>,
}

/// The conversations, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/conversations",
    tag = "conversations",
    params(ListParams),
    responses(
        (status = 200, description = "A page of conversations", body = ConversationList),
        (status = 400, description = "A `limit` out of range or a `before` not given out here", body = ErrorBody),
    )
)]
pub async fn list_conversations(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ConversationList>, AppError> {
    let Query(params) = params.map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "`limit` must be from 1 to {MAX_PAGE}"
        )));
    }
    let list = state
        .conversations
        .store
        .list(ListQuery {
            search: params.q.filter(|q| !q.trim().is_empty()),
            limit,
            before: params.before,
        })
        .await?;
    Ok(Json(list))
}

/// A conversation with its whole message tree.
#[utoipa::path(
    get,
    path = "/conversations/{id}",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The conversation, every message and the one shown now", body = Conversation),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn get_conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, AppError> {
    Ok(Json(state.conversations.store.get(&id).await?))
}

/// Renames it, changes its model, system prompt or options, or shows
/// another branch (`current_id`).
#[utoipa::path(
    patch,
    path = "/conversations/{id}",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    request_body = UpdateConversationRequest,
    responses(
        (status = 200, description = "The conversation as changed", body = Conversation),
        (status = 400, description = "Bad JSON, an empty title, or a `current_id` not of this conversation", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn update_conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(changes): ApiJson<UpdateConversationRequest>,
) -> Result<Json<Conversation>, AppError> {
    if changes
        .title
        .as_deref()
        .is_some_and(|title| title.trim().is_empty())
    {
        return Err(AppError::BadRequest("`title` must not be empty".into()));
    }
    Ok(Json(state.conversations.store.update(&id, changes).await?))
}

/// Deletes it and its messages; an answer still being written is cancelled.
#[utoipa::path(
    delete,
    path = "/conversations/{id}",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn delete_conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let running = state.conversations.store.delete(&id).await?;
    for generation in running {
        // Gone already is fine: it ended between the two steps.
        let _ = state.generations.cancel(&generation).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Posts a question and starts its answer. The model gets the system
/// prompt and the branch from the first message down to this one.
#[utoipa::path(
    post,
    path = "/conversations/{id}/messages",
    tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id")),
    request_body = PostMessageRequest,
    responses(
        (status = 201, description = "The question as saved, and the answer being written", body = MessagePosted),
        (status = 400, description = "Bad JSON, empty `content`, a `parent_id` not of this conversation, or no model", body = ErrorBody),
        (status = 404, description = "No such conversation, or unknown model", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed (the failed answer is saved)", body = ErrorBody),
        (status = 503, description = "Too many generations running, or the backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn post_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<PostMessageRequest>,
) -> Result<Response, AppError> {
    let posted = state.conversations.post(&id, request).await?;
    Ok((StatusCode::CREATED, Json(posted)).into_response())
}

/// A new answer to the same question, beside the one given: nothing is
/// overwritten.
#[utoipa::path(
    post,
    path = "/conversations/{id}/messages/{mid}/regenerate",
    tag = "conversations",
    params(
        ("id" = String, Path, description = "The conversation's id"),
        ("mid" = String, Path, description = "The answer to write again"),
    ),
    request_body = RegenerateRequest,
    responses(
        (status = 201, description = "The new answer being written", body = Regenerated),
        (status = 400, description = "Bad JSON, the message is not an answer, or no model", body = ErrorBody),
        (status = 404, description = "No such conversation or message, or unknown model", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed (the failed answer is saved)", body = ErrorBody),
        (status = 503, description = "Too many generations running, or the backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn regenerate_message(
    State(state): State<AppState>,
    Path((id, mid)): Path<(String, String)>,
    ApiJson(request): ApiJson<RegenerateRequest>,
) -> Result<Response, AppError> {
    let regenerated = state.conversations.regenerate(&id, &mid, request).await?;
    Ok((StatusCode::CREATED, Json(regenerated)).into_response())
}
