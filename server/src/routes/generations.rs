//! Generations as resources, for the browser's `EventSource` (which can
//! only GET, and reconnects by itself): `POST /api/v1/generations` starts
//! one, `GET …/{id}/events` streams it (resumable with `Last-Event-ID`),
//! `GET …/{id}` reads its state, `DELETE …/{id}` cancels it.

use app::api::{
    CreateGenerationRequest, ErrorBody, GenerationCreated, GenerationState, TokenChunk,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dialect::native;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_generation))
        .routes(routes!(get_generation, cancel_generation))
        .routes(routes!(generation_events))
}

/// Starts a generation. Answers once the backend has accepted it, so an
/// unknown model or a dead backend is an error status, not a created resource.
#[utoipa::path(
    post,
    path = "/generations",
    tag = "generations",
    request_body = CreateGenerationRequest,
    responses(
        (status = 201, description = "Started; read it at `events_url`", body = GenerationCreated,
            headers(("location" = String, description = "The generation's URL"))),
        (status = 400, description = "Bad JSON; `model` missing; neither or both of `messages` and `prompt`", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "Too many generations running, or the backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn create_generation(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateGenerationRequest>,
) -> Result<Response, AppError> {
    let request = native::generation_request(request)?;
    // Refuse before bothering the backend when the store is already full.
    state.generations.check_room().await?;
    let model = request.model.clone();
    let tokens = state.registry.infer(request).await?;
    let id = state.generations.start(model, tokens, None).await?;
    let location = format!("/api/v1/generations/{id}");
    let created = GenerationCreated {
        events_url: format!("{location}/events"),
        id,
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
    path = "/generations/{id}",
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
    let snapshot = state.generations.state(&id).await?;
    Ok(Json(native::generation_state(snapshot)))
}

/// Cancels a generation: the backend request is aborted and subscribers get
/// `event: cancelled`. Cancelling a finished generation changes nothing.
#[utoipa::path(
    delete,
    path = "/generations/{id}",
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
    let snapshot = state.generations.cancel(&id).await?;
    Ok(Json(native::generation_state(snapshot)))
}

/// The generation's tokens as Server-Sent Events.
///
/// Each token frame carries `id: <n>` (tokens count from 1). Reconnecting
/// with `Last-Event-ID: n` replays from token n+1. Ends with `event: done`
/// (a DoneChunk with `time_to_first_token`), `event: error` or
/// `event: cancelled` (an ErrorBody), also when joining a finished one.
#[utoipa::path(
    get,
    path = "/generations/{id}/events",
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
    let after = last_event_id(&headers)?;
    let events = state.generations.subscribe(&id, after).await?;
    Ok(native::stream_generation(events, &state.streams))
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
