//! A controllable stand-in for the Ollama HTTP API.
//!
//! It serves `/`, `/api/version`, `/api/tags`, `/api/ps`, `/api/show`,
//! `/api/generate`, `/api/chat` and `/api/embed` the way Ollama does (NDJSON streams by
//! default, one JSON with `"stream": false`, Ollama's error bodies, an
//! empty prompt loading the model), and manages models as Ollama does
//! (`/api/pull` with paced progress lines, `/api/delete`, `/api/copy`,
//! `/api/create`). The same models and behaviour are served in OpenAI's
//! dialect too (`/v1/models`, `/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, `/health`), as vLLM or llama.cpp server would, for the
//! OpenAI-compatible backend. It paces and breaks its answers on request, and records
//! what it saw so tests can prove, for example, that a client's cancel
//! reached the upstream.
//!
//! Control endpoints, outside Ollama's API:
//! - `GET /_fake/events`, `DELETE /_fake/events`: the event log;
//! - `GET /_fake/stats`: just the counters (open answers, events logged);
//! - `GET /_fake/behavior`, `POST /_fake/behavior`: the current [`Behavior`].

mod answer;
mod behavior;
mod embed;
mod events;
mod manage;
mod models;
mod openai;
mod routes;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use behavior::{Behavior, Fault};
pub use events::{EventLog, FakeEvent};
pub use models::{FakeModel, default_models};

/// The fake's shared state: what it has, how it behaves, what it saw.
#[derive(Debug, Clone)]
pub struct FakeState {
    /// What it has: pulls add to it, deletes take away.
    models: Arc<RwLock<Vec<FakeModel>>>,
    /// The names of the models answers have used (what `/api/ps` lists).
    loaded: Arc<RwLock<BTreeSet<String>>>,
    behavior: Arc<RwLock<Behavior>>,
    events: EventLog,
}

impl FakeState {
    pub fn new(models: Vec<FakeModel>, behavior: Behavior) -> Self {
        Self {
            models: Arc::new(RwLock::new(models)),
            loaded: Arc::default(),
            behavior: Arc::new(RwLock::new(behavior)),
            events: EventLog::default(),
        }
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    pub fn behavior(&self) -> Behavior {
        self.behavior
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        *self.behavior.write().unwrap_or_else(|p| p.into_inner()) = behavior;
    }

    fn find_model(&self, requested: &str) -> Option<FakeModel> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|model| model.answers_to(requested))
            .cloned()
    }

    fn models(&self) -> Vec<FakeModel> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn edit_models(&self) -> std::sync::RwLockWriteGuard<'_, Vec<FakeModel>> {
        self.models.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Models stay loaded once an answer used them (the fake never unloads
    /// on its own), until a zero keep-alive unloads them.
    fn set_loaded(&self, name: &str, loaded: bool) {
        let mut set = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        if loaded {
            set.insert(name.to_string());
        } else {
            set.remove(name);
        }
    }

    fn loaded(&self) -> Vec<FakeModel> {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        self.models()
            .into_iter()
            .filter(|model| loaded.contains(&model.name))
            .collect()
    }
}

/// The fake's routes, for serving on any listener.
pub fn router(state: FakeState) -> axum::Router {
    routes::router(state)
}

/// A fake Ollama running on a loopback port, stopped when dropped.
#[derive(Debug)]
pub struct FakeOllama {
    addr: SocketAddr,
    state: FakeState,
    /// None once killed.
    server: Option<JoinHandle<()>>,
}

impl FakeOllama {
    /// Starts a fake with the default models on a free loopback port.
    pub async fn start(behavior: Behavior) -> std::io::Result<Self> {
        Self::start_with(default_models(), behavior).await
    }

    pub async fn start_with(models: Vec<FakeModel>, behavior: Behavior) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, FakeState::new(models, behavior))
    }

    /// Serves on an already bound listener.
    pub fn serve(listener: TcpListener, state: FakeState) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let server = Some(spawn_server(listener, router(state.clone())));
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    /// Stops the way a crashed server does: the port closes and every
    /// connection is cut, answers mid-stream and idle pooled ones alike.
    pub async fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            // Done once the task has dropped its listener and connections.
            let _ = server.await;
        }
    }

    /// Serves again at the same address, with the same models, behaviour
    /// and event log (a server coming back after [`FakeOllama::kill`]).
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.kill().await;
        let listener = TcpListener::bind(self.addr).await?;
        self.server = Some(spawn_server(listener, router(self.state.clone())));
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn events(&self) -> &EventLog {
        self.state.events()
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        self.state.set_behavior(behavior);
    }
}

/// Accepts and serves connections until aborted. The connections are this
/// task's own (not detached as `axum::serve` leaves them), so aborting it
/// cuts them all: a test can kill an upstream mid-answer.
fn spawn_server(listener: TcpListener, app: axum::Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(%error, "fake-ollama cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Like Ollama (Go sets TCP_NODELAY by default): lines go out at once.
            let _ = stream.set_nodelay(true);
            while connections.try_join_next().is_some() {}
            let service = TowerToHyperService::new(app.clone());
            connections.spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}
