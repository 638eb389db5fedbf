//! `/api/v1/models`: the models of every backend, and managing them on an
//! Ollama upstream from the page: pull (progress as Server-Sent Events) and
//! delete.

use app::api::{ErrorBody, ModelList, PullProgress, PullRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::Manage;
use crate::dialect::native;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(pull_model))
        .routes(routes!(delete_model))
}

/// Lists every model the backends can run.
#[utoipa::path(
    get,
    path = "/models",
    tag = "models",
    responses(
        (status = 200, description = "The models, with the backends serving each", body = ModelList),
        (status = 502, description = "No backend could list its models", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn list_models(State(state): State<AppState>) -> Result<Json<ModelList>, AppError> {
    Ok(Json(state.registry.catalog().await?))
}

/// Pulls a model onto an Ollama upstream, its progress streamed: `data:`
/// frames of `PullProgress`, then `event: done` (`PullDone`, the model now
/// listed) or `event: error`. Closing the stream cancels the pull.
#[utoipa::path(
    post,
    path = "/models/pull",
    tag = "models",
    request_body = PullRequest,
    responses(
        (status = 200, description = "Progress frames, then `event: done` or `event: error`", content_type = "text/event-stream", body = PullProgress),
        (status = 400, description = "No model named, or no Ollama upstream to pull to", body = ErrorBody),
        (status = 404, description = "No upstream of that name", body = ErrorBody),
        (status = 502, description = "The Ollama upstream is unreachable", body = ErrorBody),
    )
)]
pub async fn pull_model(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PullRequest>,
) -> Result<Response, AppError> {
    let model = request.model.trim().to_string();
    if model.is_empty() {
        return Err(AppError::BadRequest("model is required".into()));
    }
    let backend = match &request.upstream {
        Some(name) => state
            .registry
            .backend_named(name)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("no upstream named \"{name}\"")))?,
        None => state.registry.manager(Manage::Pull, &model).await?,
    };
    let body = serde_json::json!({ "model": model, "stream": true });
    let forwarded = backend
        .manage(Manage::Pull, Bytes::from(body.to_string()))
        .await?
        .into_success(backend.name())
        .await?;
    Ok(native::stream_pull(
        forwarded.body,
        model,
        state.registry.clone(),
        &state.streams,
    ))
}

/// Deletes a model from the Ollama upstream that holds it.
#[utoipa::path(
    delete,
    path = "/models/{name}",
    tag = "models",
    params(("name" = String, Path, description = "The model, as listed (`llama3.2:latest`)")),
    responses(
        (status = 204, description = "Deleted; it is no longer listed"),
        (status = 400, description = "An embedded model (delete its file), or no Ollama", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 502, description = "The Ollama upstream is unreachable", body = ErrorBody),
    )
)]
pub async fn delete_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    let backend = state.registry.manager(Manage::Delete, &name).await?;
    let body = serde_json::json!({ "model": name });
    backend
        .manage(Manage::Delete, Bytes::from(body.to_string()))
        .await?
        .into_success(backend.name())
        .await?;
    if let Err(listing) = state.registry.list_models().await {
        tracing::debug!(%listing, "cannot list models after a delete");
    }
    Ok(StatusCode::NO_CONTENT)
}
