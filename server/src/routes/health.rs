//! `GET /healthz` (the process answers) and `GET /readyz` (which backends
//! can serve), for load balancers and orchestrators; plus `GET /metrics`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::BackendHealth;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(readiness))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`: answering at all is the signal.
    pub status: &'static str,
}

/// Whether the process is alive. Never touches a backend.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// True when at least one backend can serve requests.
    pub ready: bool,
    /// Each backend instance's state, by its name (`ollama`, `embedded`).
    pub backends: BTreeMap<String, BackendHealth>,
}

/// Whether the backends are reachable, each reported on its own.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "At least one backend can serve", body = Readiness),
        (status = 503, description = "No backend can serve", body = Readiness),
    )
)]
pub async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    let backends: BTreeMap<_, _> = state
        .registry
        .health()
        .await
        .into_iter()
        .map(|(name, health)| (name.to_string(), health))
        .collect();
    let ready = backends.values().any(|health| health.ready);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, backends }))
}

/// Counters in Prometheus' text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let backends: Vec<(&str, usize)> = state
        .registry
        .backends()
        .iter()
        .map(|backend| (backend.name(), backend.active_sequences()))
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(
            state.generations.running(),
            &backends,
            state.conversations.store.writes(),
        ),
    )
}
