//! What every handler shares: the backends, the generations, what streams
//! need, counters and the shutdown signal.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::assets::Assets;
use crate::conversations::replies::Replies;
use crate::generations::GenerationStore;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::stream::body::StreamContext;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Conversations kept on the server, and the answers posted into them.
    pub conversations: Replies,
    /// Resumable generations for `EventSource` clients.
    pub generations: Arc<dyn GenerationStore>,
    /// What every streaming response needs: keep-alive, shutdown, counters.
    pub streams: StreamContext,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Triggered when the server starts shutting down; open streams then
    /// end with their dialect's shutdown frame.
    pub shutdown: Shutdown,
    pub leptos_options: LeptosOptions,
    /// The front end's file names, and how long browsers may keep each.
    pub assets: Arc<Assets>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
