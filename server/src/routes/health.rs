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
use crate::metrics::BackendGauges;
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
    pub backends: BTreeMap<String, BackendStatus>,
}

/// A backend's health checked now, and how the router sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackendStatus {
    #[serde(flatten)]
    pub health: BackendHealth,
    /// `healthy`, `cooling_down` (failed lately; skipped while another
    /// backend serves the model) or `down` (its last probe failed).
    pub state: &'static str,
    /// Requests on it right now, waiting for headers included.
    pub in_flight: u32,
    /// Failures the router saw since start.
    pub failures: u64,
    /// How long its last periodic probe took, in milliseconds.
    pub probe_ms: f64,
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
    let registry = &state.registry;
    let backends: BTreeMap<_, _> = registry
        .health()
        .await
        .into_iter()
        .zip(registry.members())
        .map(|((name, health), member)| {
            let status = BackendStatus {
                health,
                state: member.state().as_str(),
                in_flight: member.in_flight(),
                failures: member.failures(),
                probe_ms: member.probe_latency().as_secs_f64() * 1000.0,
            };
            (name.to_string(), status)
        })
        .collect();
    let ready = backends.values().any(|status| status.health.ready);
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
    let backends: Vec<BackendGauges<'_>> = state
        .registry
        .members()
        .iter()
        .map(|member| BackendGauges {
            name: member.name(),
            sequences: member.backend.active_sequences(),
            in_flight: member.in_flight(),
            state: member.state().as_str(),
            failures: member.failures(),
            probe_seconds: member.probe_latency().as_secs_f64(),
        })
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
