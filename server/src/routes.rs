//! The whole HTTP surface: the API under `/api/v1`, health and metrics, the
//! OpenAPI document and Swagger UI, and the server-rendered page.

mod chat;
mod generate;
mod generations;
mod health;
mod models;

use axum::Router;
use axum::extract::OriginalUri;

use crate::error::AppError;
use crate::state::AppState;
use crate::{middleware, openapi, ssr};

pub use chat::{__path_chat, __path_stream_chat};
pub use generate::{__path_generate, __path_stream_generate};
pub use generations::{
    __path_cancel_generation, __path_create_generation, __path_generation_events,
    __path_get_generation,
};
pub use health::{__path_health, __path_metrics, __path_readiness, Health, Readiness};
pub use models::__path_list_models;

/// The application: every route, with the middleware stack around it.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(models::router())
        .merge(generate::router())
        .merge(chat::router())
        .merge(generations::router())
        .fallback(api_not_found);
    let body_limit = state.body_limit;
    let router = Router::new()
        .nest("/api/v1", api)
        .merge(health::router())
        .merge(openapi::router())
        .merge(ssr::router(&state))
        .with_state(state);
    middleware::apply(router, body_limit)
}

/// Unknown paths under the API answer JSON, not the HTML 404 page.
async fn api_not_found(OriginalUri(uri): OriginalUri) -> AppError {
    AppError::NotFound(format!("no such endpoint: {}", uri.path()))
}
