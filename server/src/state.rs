//! What every handler shares: the backends, stream settings, counters and
//! the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::generations::Generations;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::shutdown::Shutdown;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Resumable generations for `EventSource` clients.
    pub generations: Arc<Generations>,
    /// Interval of keep-alive comments on idle SSE streams.
    pub sse_keep_alive: Duration,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Triggered when the server starts shutting down; open streams then
    /// end with an `event: error` saying so.
    pub shutdown: Shutdown,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
