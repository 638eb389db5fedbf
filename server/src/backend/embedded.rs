//! The embedded backend: GGUF models run inside the server with llama.cpp
//! (through `llama-cpp-2`), so llm-chat answers on a machine with no Ollama.
//!
//! Every `.gguf` in the models directory is a model. A model is loaded on
//! its first request and unloaded after its keep-alive (Ollama's
//! semantics); up to `parallel` answers decode together, more wait in a
//! bounded queue, and past it the answer is 503 "server busy".

mod catalog;
mod engine;
mod gguf;
mod prompt;
mod sampling;
mod text;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use app::api::{
    BackendKind, ChatMessage, ChatRequest, GenerateRequest, KeepAlive, ModelInfo, ModelOptions,
    Role,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::catalog::{Catalog, ModelFile};
use self::engine::{Engine, EngineSettings, Job, Reservation};
use self::sampling::Sampling;
use super::{Backend, BackendError, BackendHealth, BoxFuture, TokenStream};

pub use self::engine::llama_backend;

/// How the embedded backend runs.
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    pub models_dir: PathBuf,
    /// Threads llama.cpp uses (never more than the cores).
    pub threads: u32,
    /// Answers decoded together.
    pub parallel: u32,
    /// Answers that may wait for a slot; past that, 503.
    pub queue: usize,
    /// Context window of each answer, in tokens (also the most `num_ctx` can ask).
    pub context_size: u32,
    /// How long an idle model stays loaded by default; `None` is forever.
    pub keep_alive: Option<Duration>,
}

type Engines = Mutex<HashMap<PathBuf, Arc<Engine>>>;

pub struct EmbeddedBackend {
    catalog: Arc<Catalog>,
    settings: EmbeddedSettings,
    engines: Arc<Engines>,
    /// One model load at a time.
    loading: tokio::sync::Mutex<()>,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// Sequences decoding right now, across models.
    live: Arc<AtomicUsize>,
}

impl EmbeddedBackend {
    /// Creates the backend and its unloader task; needs a Tokio runtime.
    pub fn new(settings: EmbeddedSettings) -> Arc<Self> {
        let backend = Arc::new(Self {
            catalog: Arc::new(Catalog::new(settings.models_dir.clone())),
            slots: Arc::new(Semaphore::new(settings.parallel as usize)),
            settings,
            engines: Arc::new(Mutex::new(HashMap::new())),
            loading: tokio::sync::Mutex::new(()),
            waiting: Arc::new(AtomicUsize::new(0)),
            live: Arc::new(AtomicUsize::new(0)),
        });
        tokio::spawn(unload_idle(Arc::downgrade(&backend.engines)));
        // Describe (and checksum) the models now, not on the first request.
        let catalog = backend.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.scan());
        backend
    }

    /// Sequences decoding right now (0 when every answer has ended).
    pub fn live_sequences(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Models loaded in memory.
    pub fn loaded_models(&self) -> usize {
        self.engines.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    async fn scan(&self) -> Result<Vec<ModelFile>, BackendError> {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.scan())
            .await
            .map_err(|error| BackendError::Failed(format!("model scan failed: {error}")))?
            .map_err(BackendError::Failed)
    }

    /// Waits for a parallel slot, unless the queue is full.
    async fn acquire_slot(&self) -> Result<OwnedSemaphorePermit, BackendError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = Queued::join(&self.waiting);
        if queued.position > self.settings.queue {
            return Err(BackendError::Busy(format!(
                "server busy: {} answers running and {} waiting; try again shortly",
                self.settings.parallel, self.settings.queue
            )));
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BackendError::Failed("the embedded backend is shutting down".into()))
    }

    /// The engine of a model file, loading it if needed, reserved for one
    /// job so the unloader leaves it alone; and how long loading took.
    async fn reserve_engine(
        &self,
        file: &ModelFile,
    ) -> Result<(Reservation, Duration), BackendError> {
        if let Some(reservation) = self.reserve_loaded(file) {
            return Ok((reservation, Duration::ZERO));
        }
        let _loading = self.loading.lock().await;
        if let Some(reservation) = self.reserve_loaded(file) {
            return Ok((reservation, Duration::ZERO));
        }
        let started = Instant::now();
        let path = file.path.clone();
        let settings = self.engine_settings();
        let keep_alive = self.settings.keep_alive;
        let live = self.live.clone();
        let engine =
            tokio::task::spawn_blocking(move || Engine::load(&path, settings, keep_alive, live))
                .await
                .map_err(|error| BackendError::Failed(format!("model load failed: {error}")))?
                .map_err(BackendError::Failed)?;
        let load_duration = started.elapsed();
        tracing::info!(
            model = %file.info.name,
            load_ms = load_duration.as_millis() as u64,
            "model loaded"
        );
        let engine = Arc::new(engine);
        let reservation = engine.reserve();
        self.engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(file.path.clone(), engine);
        Ok((reservation, load_duration))
    }

    fn reserve_loaded(&self, file: &ModelFile) -> Option<Reservation> {
        let engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        engines.get(&file.path).map(|engine| engine.reserve())
    }

    fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            threads: self.settings.threads as i32,
            parallel: self.settings.parallel,
            context_size: self.settings.context_size,
            batch_size: 512,
        }
    }

    async fn start(&self, request: Request) -> Result<TokenStream, BackendError> {
        let received = Instant::now();
        let keep_alive = keep_alive_of(request.keep_alive.as_ref())?;
        let file = self
            .scan()
            .await?
            .into_iter()
            .find(|file| file.answers_to(&request.model))
            .ok_or_else(|| {
                BackendError::ModelNotFound(format!(
                    "model \"{}\" not found: the embedded models are the .gguf files in {}",
                    request.model,
                    self.catalog.dir().display()
                ))
            })?;
        let permit = self.acquire_slot().await?;
        let (reservation, load_duration) = self.reserve_engine(&file).await?;

        let options = request.options.unwrap_or_default();
        let context_size = self.settings.context_size;
        let window = options
            .num_ctx
            .map_or(context_size, |n| n.clamp(16, context_size));
        let engine = reservation.engine().clone();
        let messages = request.messages;
        let context = request.context;
        let stops = options.stop.clone().unwrap_or_default();
        let prompt = tokio::task::spawn_blocking(move || {
            prompt::build(
                &engine.model,
                engine.template.as_ref(),
                &messages,
                &context,
                &stops,
            )
        })
        .await
        .map_err(|error| BackendError::Failed(format!("prompt building failed: {error}")))?;
        if prompt.tokens.len() as u32 >= window {
            return Err(BackendError::Rejected {
                status: 400,
                message: format!(
                    "the prompt is {} tokens, which does not fit the context window of {window} \
                     tokens (options.num_ctx can ask for up to {context_size})",
                    prompt.tokens.len()
                ),
            });
        }
        let (events, tokens) = tokio::sync::mpsc::unbounded_channel();
        let max_tokens = options
            .num_predict
            .and_then(|n| u32::try_from(n).ok())
            .or(prompt.default_max_tokens);
        let job = Job {
            prompt,
            sampling: Sampling::from_options(Some(&options)),
            max_tokens,
            window,
            model_name: file.info.name.clone(),
            want_context: request.want_context,
            load_duration,
            received,
            events,
            _slot: permit,
        };
        reservation.run(job, keep_alive.unwrap_or(self.settings.keep_alive))?;
        Ok(Box::pin(futures_util::stream::unfold(
            tokens,
            |mut tokens| async move { tokens.recv().await.map(|event| (event, tokens)) },
        )))
    }
}

/// What the embedded backend needs from a generate or chat request.
struct Request {
    model: String,
    messages: Vec<ChatMessage>,
    context: Vec<i64>,
    options: Option<ModelOptions>,
    keep_alive: Option<KeepAlive>,
    want_context: bool,
}

/// Counts a request waiting for a slot, until dropped (also when the client
/// gives up while waiting).
struct Queued {
    waiting: Arc<AtomicUsize>,
    position: usize,
}

impl Queued {
    fn join(waiting: &Arc<AtomicUsize>) -> Self {
        let position = waiting.fetch_add(1, Ordering::SeqCst) + 1;
        Self {
            waiting: waiting.clone(),
            position,
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request's `keep_alive` as Ollama reads it: a duration ("5m", "1h"),
/// or seconds; negative means forever, 0 unloads right after the answer.
/// `Ok(None)`: not given. `Ok(Some(None))`: forever.
fn keep_alive_of(keep_alive: Option<&KeepAlive>) -> Result<Option<Option<Duration>>, BackendError> {
    let seconds = |seconds: f64| {
        if seconds < 0.0 {
            None
        } else {
            Some(Duration::from_secs_f64(seconds))
        }
    };
    let Some(keep_alive) = keep_alive else {
        return Ok(None);
    };
    let parsed = match keep_alive {
        KeepAlive::Seconds(value) => seconds(*value),
        KeepAlive::Duration(text) => {
            let text = text.trim();
            if let Ok(value) = text.parse::<f64>() {
                seconds(value)
            } else if text.starts_with('-') {
                None
            } else {
                Some(
                    humantime::parse_duration(text).map_err(|error| BackendError::Rejected {
                        status: 400,
                        message: format!("keep_alive {text:?} is not a duration: {error}"),
                    })?,
                )
            }
        }
    };
    Ok(Some(parsed))
}

/// Every second, unloads the models idle past their keep-alive.
async fn unload_idle(engines: Weak<Engines>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(engines) = engines.upgrade() else {
            return;
        };
        let now = Instant::now();
        let expired: Vec<(PathBuf, Arc<Engine>)> = {
            let mut engines = engines.lock().unwrap_or_else(|p| p.into_inner());
            let paths: Vec<PathBuf> = engines
                .iter()
                .filter(|(_, engine)| engine.expired(now))
                .map(|(path, _)| path.clone())
                .collect();
            paths
                .into_iter()
                .filter_map(|path| engines.remove(&path).map(|engine| (path, engine)))
                .collect()
        };
        for (path, engine) in expired {
            tracing::info!(path = %path.display(), "unloading idle model");
            engine.stop();
        }
    }
}

impl Backend for EmbeddedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Embedded
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
        Box::pin(async move {
            Ok(self
                .scan()
                .await?
                .into_iter()
                .map(|file| file.info)
                .collect())
        })
    }

    fn generate(
        &self,
        request: GenerateRequest,
    ) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        let mut messages = Vec::new();
        if let Some(system) = request.system.filter(|system| !system.trim().is_empty()) {
            messages.push(ChatMessage::new(Role::System, system));
        }
        messages.push(ChatMessage::new(Role::User, request.prompt));
        Box::pin(self.start(Request {
            model: request.model,
            messages,
            context: request.context.unwrap_or_default(),
            options: request.options,
            keep_alive: request.keep_alive,
            want_context: true,
        }))
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(self.start(Request {
            model: request.model,
            messages: request.messages,
            context: Vec::new(),
            options: request.options,
            keep_alive: request.keep_alive,
            want_context: false,
        }))
    }

    fn health(&self) -> BoxFuture<'_, BackendHealth> {
        Box::pin(async move {
            let location = self.catalog.dir().display().to_string();
            let (ready, error) = match self.scan().await {
                Ok(files) if !files.is_empty() => (true, None),
                Ok(_) => (
                    false,
                    Some(format!(
                        "no .gguf models in {location} (make setup fetches Gemma 3 270M there)"
                    )),
                ),
                Err(error) => (false, Some(error.to_string())),
            };
            BackendHealth {
                backend: BackendKind::Embedded,
                ready,
                location,
                version: Some(format!("llama.cpp via llama-cpp-2 {LLAMA_CPP_2_VERSION}")),
                error,
            }
        })
    }

    fn active_sequences(&self) -> usize {
        self.live_sequences()
    }
}

/// The binding's version, for `/readyz`.
const LLAMA_CPP_2_VERSION: &str = "0.1.160";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_reads_like_ollama() {
        let parse = |k: KeepAlive| keep_alive_of(Some(&k)).unwrap().unwrap();
        assert_eq!(
            parse(KeepAlive::Duration("5m".into())),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse(KeepAlive::Duration("-1".into())), None);
        assert_eq!(parse(KeepAlive::Duration("-1m".into())), None);
        assert_eq!(parse(KeepAlive::Seconds(0.0)), Some(Duration::ZERO));
        assert_eq!(
            parse(KeepAlive::Duration("30".into())),
            Some(Duration::from_secs(30))
        );
        assert!(keep_alive_of(Some(&KeepAlive::Duration("soon".into()))).is_err());
        assert_eq!(keep_alive_of(None).unwrap(), None);
    }
}
