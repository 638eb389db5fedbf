//! Building and running the server: backends, state, router, listener and
//! graceful shutdown. Tests build it on port 0 and read `addr()`.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;

use crate::assets::Assets;
use crate::backend::Backend;
use crate::backend::embedded::{EmbeddedBackend, EmbeddedSettings};
use crate::backend::http::HttpSettings;
use crate::backend::ollama::OllamaBackend;
use crate::backend::openai::OpenAiBackend;
use crate::backend::scoped::Scoped;
use crate::config::Config;
use crate::conversations::ConversationStore;
use crate::conversations::replies::Replies;
use crate::conversations::sqlite::SqliteStore;
use crate::generations::memory::MemoryStore;
use crate::generations::{GenerationSettings, GenerationStore};
use crate::metrics::Metrics;
use crate::registry::{Failover, Member, Registry};
use crate::routes;
use crate::shutdown::Shutdown;
use crate::state::AppState;
use crate::stream::body::StreamContext;
use crate::upstreams::UpstreamKind;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open the conversations' database: {0}")]
    Database(#[from] crate::conversations::sqlite::OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    state: AppState,
    grace: Duration,
    probe_interval: Duration,
}

impl Application {
    /// Builds the server with the backends the configuration names: every
    /// upstream, then the embedded engine.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let config_error = |error: &dyn std::fmt::Display| StartError::Config(error.to_string());
        let mut members = Vec::new();
        for spec in config.upstreams().map_err(|e| config_error(&e))? {
            let settings = HttpSettings {
                name: spec.name.clone(),
                url: spec.url.clone(),
                timeout: config.ollama_timeout,
                tcp_keep_alive: config.ollama_keep_alive,
                idle_timeout: config.ollama_idle_timeout,
            };
            let backend: Arc<dyn Backend> = match spec.kind {
                UpstreamKind::Ollama => {
                    Arc::new(OllamaBackend::new(settings).map_err(|e| config_error(&e))?)
                }
                UpstreamKind::Openai => Arc::new(
                    OpenAiBackend::new(settings, spec.api_key.as_deref())
                        .map_err(|e| config_error(&e))?,
                ),
            };
            let backend: Arc<dyn Backend> = match spec.models {
                Some(models) => Arc::new(Scoped::new(backend, models)),
                None => backend,
            };
            members.push(Member::new(backend, spec.weight, spec.max_concurrent));
        }
        // Upstreams first: when both offer a model name, an upstream serves it.
        if config.embedded {
            let embedded = EmbeddedBackend::new(EmbeddedSettings {
                models_dir: config.models_dir(),
                threads: config.embedded_threads(),
                parallel: config.embedded_parallel(),
                queue: config.embedded_queue,
                context_size: config.embedded_context_size,
                keep_alive: config.embedded_keep_alive.0,
            });
            members.push(Member::new(embedded, 1, None));
        }
        if members.is_empty() {
            return Err(StartError::Config(
                "no backend: declare an upstream, set OLLAMA_URL, or enable the embedded engine"
                    .into(),
            ));
        }
        Self::build_with_members(config, members).await
    }

    /// Builds the server over the given backends, equally weighted (tests
    /// bring their own).
    pub async fn build_with_backends(
        config: Config,
        backends: Vec<Arc<dyn Backend>>,
    ) -> Result<Self, StartError> {
        let members = backends
            .into_iter()
            .map(|backend| Member::new(backend, 1, None))
            .collect();
        Self::build_with_members(config, members).await
    }

    async fn build_with_members(config: Config, members: Vec<Member>) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
        let shutdown = Shutdown::default();
        let generations = MemoryStore::new(
            GenerationSettings {
                grace: config.generation_grace,
                ttl: config.generation_ttl,
                max_generations: config.max_generations as usize,
                max_bytes: config.generation_max_bytes,
            },
            shutdown.clone(),
        );
        let generations: Arc<dyn GenerationStore> = Arc::new(generations);
        let conversations = SqliteStore::open(&config.database()).await?;
        let interrupted = conversations
            .interrupt_unfinished()
            .await
            .map_err(|error| StartError::Config(format!("the conversations' database: {error}")))?;
        if interrupted > 0 {
            tracing::warn!(
                answers = interrupted,
                "answers the server was writing when it stopped are marked interrupted, keeping their text"
            );
        }
        let failover = Failover {
            attempts: config.failover_attempts as usize,
            first_token: config.first_token_timeout,
        };
        let registry = Arc::new(Registry::with_members(members, failover));
        let metrics = Arc::new(Metrics::default());
        let hash_file = Assets::hash_file();
        let state = AppState {
            conversations: Replies {
                store: Arc::new(conversations),
                registry: registry.clone(),
                generations: generations.clone(),
            },
            registry,
            generations,
            streams: StreamContext {
                shutdown: shutdown.clone(),
                keep_alive: config.sse_keep_alive,
                metrics: metrics.clone(),
            },
            metrics,
            body_limit: config.body_limit,
            shutdown,
            leptos_options: leptos_options(&config, addr, hash_file.is_some()),
            assets: Arc::new(Assets::load(
                "llm-chat",
                hash_file.as_deref(),
                &config.site_root,
            )),
        };
        let router = routes::app(state.clone());
        Ok(Self {
            listener,
            addr,
            router,
            state,
            grace: config.shutdown_grace,
            probe_interval: config.probe_interval,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Logs which backends can serve (once, at start; off the start path).
    pub fn log_backends(&self) {
        let registry = self.state.registry.clone();
        tokio::spawn(async move { registry.log_backends().await });
    }

    /// Serves until `state().shutdown` is triggered, then stops accepting,
    /// ends open streams, lets other requests finish, and returns within
    /// the grace period whatever is still open.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = self.state.shutdown.clone();
        // Without TCP_NODELAY, a token frame written right after the headers
        // waits for the client's delayed ACK (~40 ms) under Nagle's algorithm.
        let listener = self.listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let server = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.triggered_owned());
        let probes = tokio::spawn(self.state.registry.clone().probe_every(self.probe_interval));
        let grace = self.grace;
        let grace_elapsed = async move {
            shutdown.triggered().await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = server.into_future() => result,
            () = grace_elapsed => {
                tracing::warn!(
                    grace_seconds = grace.as_secs_f64(),
                    "requests still open after the shutdown grace period; stopping anyway"
                );
                Ok(())
            }
        };
        probes.abort();
        result
    }
}

/// Leptos's settings, from our configuration rather than its own env
/// lookups, so one config source rules the process.
/// `hashed`: the build named its files by content (a release build by
/// `make build`); Leptos then reads the names from the same hash file.
fn leptos_options(config: &Config, addr: SocketAddr, hashed: bool) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("llm-chat")
        .site_root(config.site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .hash_files(hashed)
        .build()
}
