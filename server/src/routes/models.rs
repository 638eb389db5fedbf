//! `GET /api/v1/models`: the models of every backend.

use app::api::{ErrorBody, ModelList};
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_models))
}

/// Lists every model the backends can run.
#[utoipa::path(
    get,
    path = "/models",
    tag = "models",
    responses(
        (status = 200, description = "The models, with the backend serving each", body = ModelList),
        (status = 502, description = "No backend could list its models", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn list_models(State(state): State<AppState>) -> Result<Json<ModelList>, AppError> {
    let models = state.registry.list_models().await?;
    Ok(Json(ModelList { models }))
}
