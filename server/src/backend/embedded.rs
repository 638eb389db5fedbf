//! The embedded backend: GGUF models run inside the server with llama.cpp
//! (through `llama-cpp-2`), so llm-chat answers on a machine with no Ollama.
//!
//! Every `.gguf` in the models directory is a model. A model is loaded on
//! its first request and unloaded after its keep-alive (Ollama's
//! semantics); up to `parallel` answers decode together, more wait in a
//! bounded queue, and past it the answer is 503 "server busy".

mod card;
mod catalog;
mod embedding;
mod engine;
mod gguf;
mod prompt;
mod sampling;
mod text;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use app::api::{Counters, ModelInfo};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::catalog::{Catalog, ModelFile};
use self::embedding::{EmbedError, EmbedSettings};
use self::engine::{Engine, EngineSettings, Job, Reservation, nanos};
use self::sampling::Sampling;
use super::{
    Backend, BackendError, BackendHealth, BackendKind, BoxFuture, Completion, Forwarded,
    LoadedModel, Manage, ModelCard, StreamEvent, TokenStream,
};
use crate::inference::{
    EmbedRequest, Embeddings, InferenceRequest, Input, KeepAlive, Lifetime, Message, Role,
};

/// The one embedded backend's name.
const NAME: &str = "embedded";

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
    name: Arc<str>,
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
            name: NAME.into(),
            catalog: Arc::new(Catalog::new(settings.models_dir.clone(), NAME)),
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

    /// A failure of this server's own machinery, logged in full.
    fn internal(&self, message: &str, detail: impl ToString) -> BackendError {
        BackendError::Internal {
            backend: self.name.clone(),
            message: message.to_string(),
            detail: detail.to_string(),
        }
    }

    async fn scan(&self) -> Result<Vec<ModelFile>, BackendError> {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.scan())
            .await
            .map_err(|error| self.internal("cannot list the embedded models", error))?
            .map_err(|error| self.internal("cannot list the embedded models", error))
    }

    /// The file of the model a request names.
    async fn find(&self, model: &str) -> Result<ModelFile, BackendError> {
        self.scan()
            .await?
            .into_iter()
            .find(|file| file.answers_to(model))
            .ok_or_else(|| BackendError::ModelNotFound {
                message: format!("model \"{model}\" not found"),
            })
    }

    async fn describe_model(&self, model: String) -> Result<ModelCard, BackendError> {
        let file = self.find(&model).await?;
        let cannot = "cannot read the model's metadata";
        tokio::task::spawn_blocking(move || card::read(&file))
            .await
            .map_err(|error| self.internal(cannot, error))?
            .map_err(|error| self.internal(cannot, error))
    }

    async fn loaded_models_now(&self) -> Result<Vec<LoadedModel>, BackendError> {
        let files = self.scan().await?;
        let engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        let (now, wall) = (Instant::now(), SystemTime::now());
        Ok(files
            .into_iter()
            .filter_map(|file| {
                let engine = engines.get(&file.path)?;
                let left = engine
                    .expires_at(now)
                    .map_or(FOREVER, |expires| expires.saturating_duration_since(now));
                Some(LoadedModel {
                    expires_at: humantime::format_rfc3339_seconds(wall + left).to_string(),
                    size_vram: 0,
                    context_length: Some(u64::from(self.settings.context_size)),
                    info: file.info,
                })
            })
            .collect())
    }

    /// Waits for a parallel slot, unless the queue is full.
    async fn acquire_slot(&self) -> Result<OwnedSemaphorePermit, BackendError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = Queued::join(&self.waiting);
        if queued.position > self.settings.queue {
            return Err(BackendError::Busy {
                backend: self.name.clone(),
                message: format!(
                    "server busy: {} answers running and {} waiting; try again shortly",
                    self.settings.parallel, self.settings.queue
                ),
            });
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|error| self.internal("the embedded backend is shutting down", error))
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
        let cannot_load = format!("the model {} could not be loaded", file.info.name);
        let engine =
            tokio::task::spawn_blocking(move || Engine::load(&path, settings, keep_alive, live))
                .await
                .map_err(|error| self.internal(&cannot_load, error))?
                .map_err(|error| self.internal(&cannot_load, error))?;
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
            backend: self.name.clone(),
            threads: self.settings.threads as i32,
            parallel: self.settings.parallel,
            context_size: self.settings.context_size,
            batch_size: 512,
        }
    }

    /// Embeds the inputs with the model, loaded as for an answer; the work
    /// takes a parallel slot like an answer does (it uses the same cores).
    async fn embed_inputs(&self, request: EmbedRequest) -> Result<Embeddings, BackendError> {
        let received = Instant::now();
        let keep_alive = lifetime(request.keep_alive.as_ref())?;
        let file = self.find(&request.model).await?;
        let _slot = self.acquire_slot().await?;
        let (reservation, load_duration) = self.reserve_engine(&file).await?;
        let engine = reservation.engine().clone();
        let settings = EmbedSettings {
            threads: self.settings.threads as i32,
            window: request
                .options
                .context_window
                .map_or(self.settings.context_size, |n| {
                    n.clamp(16, self.settings.context_size)
                }),
        };
        let EmbedRequest {
            input,
            truncate,
            dimensions,
            ..
        } = request;
        let cannot = "the embeddings could not be computed";
        let embedded = tokio::task::spawn_blocking(move || {
            embedding::embed(&engine.model, &input, truncate, dimensions, settings)
        })
        .await
        .map_err(|error| self.internal(cannot, error))?;
        reservation
            .engine()
            .set_keep_alive(self.keep_alive(keep_alive));
        let (vectors, prompt_tokens) = embedded.map_err(|error| match error {
            EmbedError::TooLong { .. } => BackendError::Rejected {
                status: 400,
                message: error.to_string(),
            },
            EmbedError::Llama(detail) => self.internal(cannot, detail),
        })?;
        Ok(Embeddings {
            model: file.info.name,
            vectors,
            prompt_tokens,
            total_duration: nanos(received.elapsed()),
            load_duration: nanos(load_duration),
        })
    }

    /// The keep-alive a request asked for, or the default.
    fn keep_alive(&self, asked: Option<Lifetime>) -> Option<Duration> {
        match asked {
            None => self.settings.keep_alive,
            Some(Lifetime::For(duration)) => Some(duration),
            Some(Lifetime::Forever) => None,
        }
    }

    /// Loads a model without answering (or, asked to keep it zero seconds,
    /// unloads it), as Ollama does for an empty prompt.
    async fn preload(
        &self,
        file: &ModelFile,
        keep_alive: Option<Lifetime>,
        received: Instant,
    ) -> Result<TokenStream, BackendError> {
        let unload = keep_alive == Some(Lifetime::For(Duration::ZERO));
        let load_duration = if unload {
            let stopped = {
                let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
                match engines.get(&file.path) {
                    Some(engine) if engine.active() == 0 => engines.remove(&file.path),
                    // Answers still running: it goes once they end.
                    Some(engine) => {
                        engine.set_keep_alive(Some(Duration::ZERO));
                        None
                    }
                    None => None,
                }
            };
            if let Some(engine) = stopped {
                tracing::info!(model = %file.info.name, "model unloaded on request");
                engine.stop();
            }
            Duration::ZERO
        } else {
            let (reservation, load_duration) = self.reserve_engine(file).await?;
            reservation
                .engine()
                .set_keep_alive(self.keep_alive(keep_alive));
            load_duration
        };
        let completion = Completion {
            model: file.info.name.clone(),
            created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            done_reason: Some(if unload { "unload" } else { "load" }.into()),
            context: None,
            counters: Counters {
                total_duration: nanos(received.elapsed()),
                load_duration: nanos(load_duration),
                ..Counters::default()
            },
        };
        Ok(TokenStream::new(
            self.name.clone(),
            futures_util::stream::iter([Ok(StreamEvent::Done(Box::new(completion)))]),
        ))
    }

    async fn start(&self, request: InferenceRequest) -> Result<TokenStream, BackendError> {
        let received = Instant::now();
        if request.format.is_some() {
            return Err(BackendError::Rejected {
                status: 400,
                message: "the embedded models cannot constrain an answer to JSON; \
                          use a model on Ollama for that"
                    .into(),
            });
        }
        let keep_alive = lifetime(request.keep_alive.as_ref())?;
        let file = self.find(&request.model).await?;
        let text = match request.input {
            Input::Load => return self.preload(&file, keep_alive, received).await,
            Input::Chat(messages) => PromptText::Chat(messages),
            Input::Completion {
                prompt,
                system,
                context,
                raw,
            } => {
                let context = context.unwrap_or_default();
                if raw {
                    PromptText::Raw { prompt, context }
                } else {
                    PromptText::Continued {
                        messages: completion_messages(prompt, system),
                        context,
                    }
                }
            }
        };
        let permit = self.acquire_slot().await?;
        let (reservation, load_duration) = self.reserve_engine(&file).await?;

        let options = request.options;
        let context_size = self.settings.context_size;
        let window = options
            .context_window
            .map_or(context_size, |n| n.clamp(16, context_size));
        let engine = reservation.engine().clone();
        let want_context = text.wants_context();
        let stops = options.stop.clone().unwrap_or_default();
        let prompt = tokio::task::spawn_blocking(move || match text {
            PromptText::Raw { prompt, context } => {
                prompt::raw(&engine.model, &prompt, &context, &stops)
            }
            PromptText::Chat(messages) => prompt::build(
                &engine.model,
                engine.template.as_ref(),
                &messages,
                &[],
                &stops,
            ),
            PromptText::Continued { messages, context } => prompt::build(
                &engine.model,
                engine.template.as_ref(),
                &messages,
                &context,
                &stops,
            ),
        })
        .await
        .map_err(|error| self.internal("the prompt could not be prepared", error))?;
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
            .max_tokens
            .and_then(|n| u32::try_from(n).ok())
            .or(prompt.default_max_tokens);
        let job = Job {
            prompt,
            sampling: Sampling::from_options(&options),
            max_tokens,
            window,
            model_name: file.info.name.clone(),
            want_context,
            load_duration,
            received,
            events,
            _slot: permit,
        };
        reservation.run(job, self.keep_alive(keep_alive))?;
        Ok(TokenStream::new(
            self.name.clone(),
            futures_util::stream::unfold(tokens, |mut tokens| async move {
                tokens.recv().await.map(|event| (event, tokens))
            }),
        ))
    }
}

/// The keep-alive a request asked for, read; a bad one is the client's 400.
fn lifetime(keep_alive: Option<&KeepAlive>) -> Result<Option<Lifetime>, BackendError> {
    keep_alive
        .map(|keep_alive| {
            keep_alive
                .lifetime()
                .map_err(|error| BackendError::Rejected {
                    status: 400,
                    message: error.to_string(),
                })
        })
        .transpose()
}

/// What the model is prompted with.
enum PromptText {
    /// Messages, shaped by the model's template (or a transcript).
    Chat(Vec<Message>),
    /// A completion: messages after the token ids of an earlier exchange
    /// (none, the first time).
    Continued {
        messages: Vec<Message>,
        context: Vec<i64>,
    },
    /// Text already in the model's format.
    Raw { prompt: String, context: Vec<i64> },
}

impl PromptText {
    /// Completions hand back their token ids, so a client can continue them
    /// (as Ollama's `/api/generate` does); a chat and a raw prompt do not.
    fn wants_context(&self) -> bool {
        matches!(self, Self::Continued { .. })
    }
}

/// A completion is one user message under its system prompt.
fn completion_messages(prompt: String, system: Option<String>) -> Vec<Message> {
    let mut messages = Vec::new();
    if let Some(system) = system.filter(|system| !system.trim().is_empty()) {
        messages.push(Message::new(Role::System, system));
    }
    messages.push(Message::new(Role::User, prompt));
    messages
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
    fn name(&self) -> &str {
        &self.name
    }

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

    fn infer(&self, request: InferenceRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(self.start(request))
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
                Err(error) => (
                    false,
                    Some(format!("{error}: {}", error.detail().unwrap_or_default())),
                ),
            };
            BackendHealth {
                kind: BackendKind::Embedded,
                ready,
                location,
                version: Some(format!("llama.cpp via llama-cpp-2 {LLAMA_CPP_2_VERSION}")),
                error,
            }
        })
    }

    fn embed(&self, request: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>> {
        Box::pin(self.embed_inputs(request))
    }

    fn describe(&self, model: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
        Box::pin(self.describe_model(model.to_string()))
    }

    fn loaded(&self) -> BoxFuture<'_, Result<Vec<LoadedModel>, BackendError>> {
        Box::pin(self.loaded_models_now())
    }

    fn manage(
        &self,
        call: Manage,
        _body: bytes::Bytes,
    ) -> BoxFuture<'_, Result<Forwarded, BackendError>> {
        Box::pin(std::future::ready(Err(BackendError::Rejected {
            status: 400,
            message: format!(
                "embedded models are the .gguf files in the models directory; \
                 llm-chat does not {} them",
                call.verb()
            ),
        })))
    }

    fn active_sequences(&self) -> usize {
        self.live_sequences()
    }
}

/// When a model kept forever expires, as Ollama reports it: its longest
/// duration (about 292 years) from now.
const FOREVER: Duration = Duration::from_secs(i64::MAX as u64 / 1_000_000_000);

/// The binding's version, for `/readyz`.
const LLAMA_CPP_2_VERSION: &str = "0.1.160";
