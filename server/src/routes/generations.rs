//! Generations as resources, for the browser's `EventSource` (which can
//! only GET, and reconnects by itself): `POST /api/v1/generations` starts
//! one, `GET …/{id}/events` streams it (resumable with `Last-Event-ID`),
//! `GET …/{id}` reads its state, `DELETE …/{id}` cancels it.

use std::sync::Arc;
use std::time::Duration;

use app::api::{
    ChatRequest, CreateGenerationRequest, ErrorBody, GenerateRequest, GenerationCreated,
    GenerationState, TokenChunk,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::AppError;
use crate::extract::ApiJson;
use crate::generations::{End, Generation};
use crate::sse::{self, Frame};
use crate::state::AppState;
use crate::validation::validate_generation;

/// How soon a browser reconnects after losing the stream.
const RECONNECT_AFTER: Duration = Duration::from_millis(1000);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/generations", post(create_generation))
        .route(
            "/generations/{id}",
            get(get_generation).delete(cancel_generation),
        )
        .route("/generations/{id}/events", get(generation_events))
}

fn find(state: &AppState, id: &str) -> Result<Arc<Generation>, AppError> {
    state.generations.get(id).ok_or_else(|| {
        AppError::NotFound(format!(
            "no generation with id {id:?} (it may have expired)"
        ))
    })
}

/// Starts a generation. Answers once the backend has accepted it, so an
/// unknown model or a dead backend is an error status, not a created resource.
#[utoipa::path(
    post,
    path = "/api/v1/generations",
    tag = "generations",
    request_body = CreateGenerationRequest,
    responses(
        (status = 201, description = "Started; read it at `events_url`", body = GenerationCreated,
            headers(("location" = String, description = "The generation's URL"))),
        (status = 400, description = "Bad JSON; `model` missing; neither or both of `messages` and `prompt`", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "Too many generations running", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn create_generation(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateGenerationRequest>,
) -> Result<Response, AppError> {
    validate_generation(&request)?;
    // Refuse before bothering the backend when the store is already full.
    state
        .generations
        .check_room()
        .map_err(|full| AppError::Busy(full.to_string()))?;
    let backend = state.registry.resolve(&request.model).await;
    let model = request.model.clone();
    let tokens = match request.messages {
        Some(messages) => {
            backend
                .chat(ChatRequest {
                    model: request.model,
                    messages,
                    options: request.options,
                    keep_alive: request.keep_alive,
                })
                .await?
        }
        None => {
            backend
                .generate(GenerateRequest {
                    model: request.model,
                    prompt: request.prompt.unwrap_or_default(),
                    context: request.context,
                    system: request.system,
                    options: request.options,
                    keep_alive: request.keep_alive,
                })
                .await?
        }
    };
    let generation = state
        .generations
        .start(model, tokens)
        .map_err(|full| AppError::Busy(full.to_string()))?;
    let location = format!("/api/v1/generations/{}", generation.id);
    let created = GenerationCreated {
        events_url: format!("{location}/events"),
        id: generation.id.clone(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

/// A generation's state: status, text so far, and its stats once done.
#[utoipa::path(
    get,
    path = "/api/v1/generations/{id}",
    tag = "generations",
    params(("id" = String, Path, description = "The generation's id")),
    responses(
        (status = 200, description = "The generation", body = GenerationState),
        (status = 404, description = "No such generation, or it expired", body = ErrorBody),
    )
)]
pub async fn get_generation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<GenerationState>, AppError> {
    Ok(Json(find(&state, &id)?.state()))
}

/// Cancels a generation: the backend request is aborted and subscribers get
/// `event: cancelled`. Cancelling a finished generation changes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/generations/{id}",
    tag = "generations",
    params(("id" = String, Path, description = "The generation's id")),
    responses(
        (status = 200, description = "The generation's state after the cancel", body = GenerationState),
        (status = 404, description = "No such generation, or it expired", body = ErrorBody),
    )
)]
pub async fn cancel_generation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<GenerationState>, AppError> {
    let generation = find(&state, &id)?;
    generation.cancel();
    // Its task settles it at once; wait so the answer says so.
    let _ = tokio::time::timeout(Duration::from_secs(2), generation.ended()).await;
    Ok(Json(generation.state()))
}

/// The generation's tokens as Server-Sent Events.
///
/// Each token frame carries `id: <n>` (tokens count from 1). Reconnecting
/// with `Last-Event-ID: n` replays from token n+1. Ends with `event: done`
/// (a DoneChunk with `time_to_first_token`), `event: error` or
/// `event: cancelled` (an ErrorBody), also when joining a finished one.
#[utoipa::path(
    get,
    path = "/api/v1/generations/{id}/events",
    tag = "generations",
    params(
        ("id" = String, Path, description = "The generation's id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "The last token already received"),
    ),
    responses(
        (status = 200, description = "`id:`-numbered token frames, then `event: done`, `error` or `cancelled`",
            content_type = "text/event-stream", body = TokenChunk),
        (status = 400, description = "Last-Event-ID is not a token number", body = ErrorBody),
        (status = 404, description = "No such generation, or it expired", body = ErrorBody),
    )
)]
pub async fn generation_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let generation = find(&state, &id)?;
    let after = last_event_id(&headers)?;
    let frames = async_stream::stream! {
        let _subscriber = generation.subscribe();
        yield Frame::Retry(RECONNECT_AFTER);
        let mut cursor = after;
        loop {
            // Listen before reading, so a change made while we send is
            // waited for, not missed.
            let changed = generation.changes();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let update = generation.read_after(cursor);
            if let Some(last) = update.tokens.last() {
                cursor = last;
                yield Frame::Tokens(update.tokens);
            }
            if let Some(end) = update.end {
                yield match end {
                    End::Done(stats) => Frame::Done(stats),
                    End::Failed(error) => Frame::Error(error),
                    End::Cancelled(reason) => Frame::Cancelled(reason),
                };
                break;
            }
            changed.await;
        }
    };
    Ok(sse::stream_response(frames, &state))
}

fn last_event_id(headers: &HeaderMap) -> Result<u64, AppError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(0);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .and_then(|text| {
            if text.is_empty() {
                Some(0)
            } else {
                text.parse().ok()
            }
        })
        .ok_or_else(|| {
            AppError::BadRequest("Last-Event-ID must be the number of a token frame".into())
        })
}
