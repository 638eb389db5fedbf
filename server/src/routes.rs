//! The whole HTTP surface: our API under `/api/v1`, OpenAI's under `/v1`,
//! Ollama's at its own paths (`/api/chat`…), health and metrics, the
//! OpenAPI document and Swagger UI, and the server-rendered page. Each
//! resource registers its operations with the OpenAPI document as it
//! registers its routes, so the document cannot miss one.

mod answers;
mod conversations;
mod generations;
mod health;
mod models;
mod ollama;
mod openai;

use axum::Router;
use axum::extract::OriginalUri;
use utoipa_axum::router::OpenApiRouter;

use crate::error::AppError;
use crate::state::AppState;
use crate::{middleware, openapi, ssr};

/// Every documented route, with the document.
pub fn documented() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(models::router())
        .merge(answers::router())
        .merge(generations::router())
        .merge(conversations::router())
        .fallback(api_not_found);
    OpenApiRouter::with_openapi(openapi::base())
        .nest("/api/v1", api)
        .nest("/v1", openai::router())
        .merge(ollama::router())
        .merge(health::router())
}

/// The application: every route, with the middleware stack around it.
pub fn app(state: AppState) -> Router {
    let (documented, document) = documented().split_for_parts();
    let body_limit = state.body_limit;
    let router = documented
        .merge(openapi::router(openapi::finish(document)))
        .merge(ssr::router(&state))
        .with_state(state);
    middleware::apply(router, body_limit)
}

/// Unknown paths under the API answer JSON, not the HTML 404 page.
async fn api_not_found(OriginalUri(uri): OriginalUri) -> AppError {
    AppError::NotFound(format!("no such endpoint: {}", uri.path()))
}
