//! One loaded model and the thread that runs it. The thread owns a single
//! llama.cpp context with one KV-cache sequence per parallel slot, and each
//! step decodes every active sequence in one batch (continuous batching):
//! two answers at once cost little more than one, and the thread count never
//! exceeds the cores however many answers run.
//!
//! Cancellation is checked every step: when a client goes away (its channel
//! closes) its sequence is dropped and its KV cache freed within one token.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use app::api::Counters;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedSender;

use super::prompt::Prompt;
use super::sampling::Sampling;
use super::text::{StopFilter, Utf8Assembler};
use crate::backend::{BackendError, Completion, StreamEvent};

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("llama.cpp could not start: {0}")]
    Backend(String),
    #[error("llama.cpp cannot load {}: {source}", .path.display())]
    Model {
        path: std::path::PathBuf,
        source: llama_cpp_2::LlamaModelLoadError,
    },
    #[error("cannot create a llama.cpp context: {0}")]
    Context(llama_cpp_2::LlamaContextLoadError),
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
    #[error("the engine thread died while starting")]
    Died,
}

/// llama.cpp's process-wide state, initialised once. Its error is kept as
/// text: the binding's error type cannot be shared across calls.
pub fn llama_backend() -> Result<&'static LlamaBackend, LoadError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(|error| LoadError::Backend(error.clone()))
}

/// llama-cpp-2 says creating contexts concurrently from one model is
/// unsound, so every creation holds this lock.
pub(super) static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

/// Only one decode runs at a time in the whole process, whatever the number
/// of loaded models: each uses every core, and oversubscribed threads
/// collapse llama.cpp's speed.
pub(super) static DECODE: Mutex<()> = Mutex::new(());

/// How each engine is sized.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The backend's name, for the errors its answers end with.
    pub backend: Arc<str>,
    pub threads: i32,
    /// Sequences decoded together.
    pub parallel: u32,
    /// Context window of each sequence, in tokens.
    pub context_size: u32,
    /// Most tokens decoded per step (long prompts take several steps).
    pub batch_size: u32,
}

/// One generation for the engine to run.
pub struct Job {
    pub prompt: Prompt,
    pub sampling: Sampling,
    /// `num_predict`: most tokens to generate.
    pub max_tokens: Option<u32>,
    /// This sequence's context window (prompt + answer), ≤ the engine's.
    pub window: u32,
    pub model_name: String,
    /// Whether to return the token ids (`/generate`'s `context`).
    pub want_context: bool,
    pub load_duration: Duration,
    /// When the request arrived, for `total_duration`.
    pub received: Instant,
    pub events: UnboundedSender<Result<StreamEvent, BackendError>>,
    /// Holds a parallel slot until the sequence ends (released on drop).
    pub _slot: OwnedSemaphorePermit,
}

enum Command {
    Run(Box<Job>),
    /// Finish what runs, then exit (unload).
    Stop,
}

/// A loaded model, with its engine thread.
pub struct Engine {
    backend: Arc<str>,
    pub model: Arc<LlamaModel>,
    pub template: Option<LlamaChatTemplate>,
    commands: Mutex<Sender<Command>>,
    active: Arc<AtomicUsize>,
    /// When the last sequence ended (or the model loaded).
    idle_since: Arc<Mutex<Instant>>,
    /// How long to stay loaded once idle; `None` is forever.
    keep_alive: Mutex<Option<Duration>>,
}

impl Engine {
    /// Loads the model and starts its thread. Blocking (about a second).
    pub fn load(
        path: &Path,
        settings: EngineSettings,
        keep_alive: Option<Duration>,
        live: Arc<AtomicUsize>,
    ) -> Result<Self, LoadError> {
        let name = settings.backend.clone();
        let backend = llama_backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|source| LoadError::Model {
                path: path.to_path_buf(),
                source,
            })?;
        let model = Arc::new(model);
        let template = model.chat_template(None).ok();
        let (commands, receiver) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        let active = Arc::new(AtomicUsize::new(0));
        let idle_since = Arc::new(Mutex::new(Instant::now()));
        {
            let model = model.clone();
            let worker = Worker {
                settings,
                active: active.clone(),
                live,
                idle_since: idle_since.clone(),
            };
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            std::thread::Builder::new()
                .name(format!("engine-{name}"))
                // Detached: it exits after a Stop (or when this handle is
                // dropped) and frees the model with its last reference.
                .spawn(move || worker.run(backend, &model, receiver, ready))
                .map_err(LoadError::Thread)?;
        }
        started.recv().map_err(|_| LoadError::Died)??;
        Ok(Self {
            backend: name,
            model,
            template,
            commands: Mutex::new(commands),
            active,
            idle_since,
            keep_alive: Mutex::new(keep_alive),
        })
    }

    /// Counts a job that is being prepared, so the engine is not unloaded
    /// under it; the job runs through the returned reservation.
    pub fn reserve(self: &Arc<Self>) -> Reservation {
        self.active.fetch_add(1, Ordering::SeqCst);
        Reservation {
            engine: self.clone(),
            consumed: false,
        }
    }

    fn became_idle(&self) {
        *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Sequences running (or handed over and about to).
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// How long the model stays loaded once idle from now on; `None` is forever.
    pub fn set_keep_alive(&self, keep_alive: Option<Duration>) {
        *self.keep_alive.lock().unwrap_or_else(|p| p.into_inner()) = keep_alive;
    }

    /// When the model will be unloaded if nothing else asks for it (an
    /// answer running now counts as ending now); `None` is never.
    pub fn expires_at(&self, now: Instant) -> Option<Instant> {
        let keep_alive = (*self.keep_alive.lock().unwrap_or_else(|p| p.into_inner()))?;
        let idle_since = if self.active() > 0 {
            now
        } else {
            *self.idle_since.lock().unwrap_or_else(|p| p.into_inner())
        };
        idle_since.checked_add(keep_alive)
    }

    /// Whether the engine has been idle past its keep-alive.
    pub fn expired(&self, now: Instant) -> bool {
        if self.active() > 0 {
            return false;
        }
        let keep_alive = *self.keep_alive.lock().unwrap_or_else(|p| p.into_inner());
        let idle_since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
        keep_alive.is_some_and(|keep_alive| now.duration_since(idle_since) >= keep_alive)
    }

    /// Asks the thread to finish and exit; the model is freed with the last
    /// reference to it.
    pub fn stop(&self) {
        let _ = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Command::Stop);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An engine held for one job in preparation; see [`Engine::reserve`].
pub struct Reservation {
    engine: Arc<Engine>,
    consumed: bool,
}

impl Reservation {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Hands the job to the engine thread; `keep_alive` becomes the model's.
    pub fn run(mut self, job: Job, keep_alive: Option<Duration>) -> Result<(), BackendError> {
        self.engine.set_keep_alive(keep_alive);
        let sent = self
            .engine
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Command::Run(Box::new(job)));
        // From here the engine thread owns the count (it releases it when the
        // sequence ends); if the send failed, Drop gives it back.
        self.consumed = sent.is_ok();
        let backend = self.engine.backend.clone();
        sent.map_err(|_| BackendError::Internal {
            backend,
            message: "the model's engine has stopped".into(),
            detail: "the engine thread is gone".into(),
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.consumed && self.engine.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.engine.became_idle();
        }
    }
}

/// What the engine thread shares with the rest of the backend.
struct Worker {
    settings: EngineSettings,
    active: Arc<AtomicUsize>,
    /// Sequences decoding in the whole backend (all models).
    live: Arc<AtomicUsize>,
    idle_since: Arc<Mutex<Instant>>,
}

/// One sequence in a slot of the engine's context.
struct Sequence {
    job: Box<Job>,
    sampler: LlamaSampler,
    /// Prompt tokens decoded so far.
    prompt_done: usize,
    /// Next position in this sequence's KV cache.
    position: i32,
    /// The token to feed next (the last one sampled).
    next_input: Option<LlamaToken>,
    /// Batch index of this sequence's logits in the current step.
    logits_at: Option<i32>,
    generated: Vec<LlamaToken>,
    utf8: Utf8Assembler,
    stops: StopFilter,
    /// Still dropping the answer's leading spaces.
    trimming: bool,
    admitted: Instant,
    first_sample: Option<Instant>,
}

impl Worker {
    fn run(
        self,
        backend: &LlamaBackend,
        model: &LlamaModel,
        commands: Receiver<Command>,
        ready: Sender<Result<(), LoadError>>,
    ) {
        let settings = self.settings.clone();
        let context = {
            let _creating = CONTEXT_CREATION.lock().unwrap_or_else(|p| p.into_inner());
            // One unified KV cache holds every slot's sequence.
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(settings.context_size * settings.parallel))
                .with_n_batch(settings.batch_size)
                .with_n_ubatch(settings.batch_size)
                .with_n_seq_max(settings.parallel)
                .with_kv_unified(true)
                .with_n_threads(settings.threads)
                .with_n_threads_batch(settings.threads);
            model.new_context(backend, params)
        };
        let mut context = match context {
            Ok(context) => {
                let _ = ready.send(Ok(()));
                context
            }
            Err(error) => {
                let _ = ready.send(Err(LoadError::Context(error)));
                return;
            }
        };
        self.serve(model, &mut context, &commands);
    }

    fn serve(
        &self,
        model: &LlamaModel,
        context: &mut LlamaContext<'_>,
        commands: &Receiver<Command>,
    ) {
        let parallel = self.settings.parallel as usize;
        let mut slots: Vec<Option<Sequence>> = (0..parallel).map(|_| None).collect();
        let mut batch = LlamaBatch::new(self.settings.batch_size as usize, parallel as i32);
        let mut stopping = false;
        loop {
            let busy = slots.iter().any(Option::is_some);
            if !busy {
                if stopping {
                    return;
                }
                // Idle: sleep until there is work.
                match commands.recv() {
                    Ok(command) => self.accept(command, model, &mut slots, &mut stopping),
                    Err(_) => return,
                }
            }
            while let Ok(command) = commands.try_recv() {
                self.accept(command, model, &mut slots, &mut stopping);
            }

            for index in 0..parallel {
                let gone = slots[index]
                    .as_ref()
                    .is_some_and(|sequence| sequence.job.events.is_closed());
                if gone {
                    self.release(context, &mut slots, index);
                }
            }

            self.fill(&mut batch, &mut slots);
            if batch.n_tokens() == 0 {
                continue;
            }
            let decoded = {
                let _decoding = DECODE.lock().unwrap_or_else(|p| p.into_inner());
                context.decode(&mut batch)
            };
            if let Err(error) = decoded {
                // The batch held tokens of every active sequence: fail them all.
                for index in 0..parallel {
                    if let Some(sequence) = &slots[index] {
                        let _ = sequence.job.events.send(Err(BackendError::Internal {
                            backend: self.settings.backend.clone(),
                            message: "the model failed while answering".into(),
                            detail: format!("llama.cpp could not decode: {error}"),
                        }));
                    }
                    self.release(context, &mut slots, index);
                }
                continue;
            }
            for index in 0..parallel {
                if let Some(ending) = self.sample(model, context, &mut slots, index) {
                    self.finish(context, &mut slots, index, ending);
                }
            }
        }
    }

    fn accept(
        &self,
        command: Command,
        model: &LlamaModel,
        slots: &mut [Option<Sequence>],
        stopping: &mut bool,
    ) {
        let job = match command {
            Command::Run(job) => job,
            Command::Stop => {
                *stopping = true;
                return;
            }
        };
        // The backend holds a parallel permit per job, so a slot is free.
        let Some(slot) = slots.iter_mut().find(|slot| slot.is_none()) else {
            let _ = job.events.send(Err(BackendError::Busy {
                backend: self.settings.backend.clone(),
                message: "server busy: no free slot".into(),
            }));
            self.active.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        self.live.fetch_add(1, Ordering::SeqCst);
        let sampler = job.sampling.sampler(model.n_vocab());
        let stops = StopFilter::new(job.prompt.stops.clone());
        let trimming = job.prompt.trim_start;
        *slot = Some(Sequence {
            job,
            sampler,
            prompt_done: 0,
            position: 0,
            next_input: None,
            logits_at: None,
            generated: Vec::new(),
            utf8: Utf8Assembler::default(),
            stops,
            trimming,
            admitted: Instant::now(),
            first_sample: None,
        });
    }

    /// Puts this step's tokens in the batch: prompt chunks for new
    /// sequences, the last sampled token for the others.
    fn fill(&self, batch: &mut LlamaBatch, slots: &mut [Option<Sequence>]) {
        batch.clear();
        let mut budget = self.settings.batch_size as usize;
        for (index, slot) in slots.iter_mut().enumerate() {
            let Some(sequence) = slot else { continue };
            sequence.logits_at = None;
            if budget == 0 {
                continue;
            }
            let seq_id = [index as i32];
            let prompt = &sequence.job.prompt.tokens;
            if sequence.prompt_done < prompt.len() {
                let take = budget.min(prompt.len() - sequence.prompt_done);
                for offset in 0..take {
                    let at = sequence.prompt_done + offset;
                    let last = at + 1 == prompt.len();
                    // Never fails: the batch holds batch_size tokens and we add at most that.
                    let _ = batch.add(prompt[at], sequence.position, &seq_id, last);
                    sequence.position += 1;
                }
                sequence.prompt_done += take;
                budget -= take;
                if sequence.prompt_done == prompt.len() {
                    sequence.logits_at = Some(batch.n_tokens() - 1);
                }
            } else if let Some(token) = sequence.next_input.take() {
                let _ = batch.add(token, sequence.position, &seq_id, true);
                sequence.position += 1;
                budget -= 1;
                sequence.logits_at = Some(batch.n_tokens() - 1);
            }
        }
    }

    /// Samples the next token of a sequence whose logits this step produced;
    /// returns how it ended, if it did.
    fn sample(
        &self,
        model: &LlamaModel,
        context: &LlamaContext<'_>,
        slots: &mut [Option<Sequence>],
        index: usize,
    ) -> Option<&'static str> {
        let sequence = slots[index].as_mut()?;
        let at = sequence.logits_at.take()?;
        if sequence.first_sample.is_none() {
            sequence.first_sample = Some(Instant::now());
        }
        let token = sequence.sampler.sample(context, at);
        let vocab = model.vocab();
        if vocab.is_eog(token) {
            return Some("stop");
        }
        sequence.generated.push(token);
        let piece = vocab.token_to_piece(token, false, None);
        let mut text = sequence.utf8.push(&piece);
        if sequence.trimming {
            let trimmed = text.trim_start();
            if !trimmed.is_empty() {
                sequence.trimming = false;
            }
            text = trimmed.to_string();
        }
        let filtered = sequence.stops.push(&text);
        if !filtered.text.is_empty()
            && sequence
                .job
                .events
                .send(Ok(StreamEvent::Token(filtered.text)))
                .is_err()
        {
            // The client left; the next step frees the slot.
            return None;
        }
        if filtered.stopped {
            return Some("stop");
        }
        let generated = sequence.generated.len() as u32;
        if sequence.job.max_tokens.is_some_and(|max| generated >= max)
            || sequence.position as u32 >= sequence.job.window
        {
            return Some("length");
        }
        sequence.next_input = Some(token);
        None
    }

    /// Sends the rest of the text and the final counters, then frees the slot.
    fn finish(
        &self,
        context: &mut LlamaContext<'_>,
        slots: &mut [Option<Sequence>],
        index: usize,
        done_reason: &str,
    ) {
        let Some(sequence) = slots[index].as_mut() else {
            return;
        };
        // Whatever the filters still hold is part of the answer (after a stop
        // sequence they hold nothing).
        let tail = sequence.utf8.finish();
        let mut rest = sequence.stops.push(&tail).text;
        rest.push_str(&sequence.stops.finish());
        if !rest.is_empty() {
            let _ = sequence.job.events.send(Ok(StreamEvent::Token(rest)));
        }
        let now = Instant::now();
        let first_sample = sequence.first_sample.unwrap_or(now);
        let job = &sequence.job;
        let context_ids = job.want_context.then(|| {
            job.prompt
                .tokens
                .iter()
                .chain(&sequence.generated)
                .map(|token| i64::from(token.0))
                .collect()
        });
        let completion = Completion {
            model: job.model_name.clone(),
            created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            done_reason: Some(done_reason.to_string()),
            context: context_ids,
            counters: Counters {
                total_duration: nanos(now.duration_since(job.received)),
                load_duration: nanos(job.load_duration),
                prompt_eval_count: job.prompt.tokens.len() as u64,
                prompt_eval_duration: nanos(first_sample.duration_since(sequence.admitted)),
                eval_count: sequence.generated.len() as u64,
                eval_duration: nanos(now.duration_since(first_sample)),
            },
        };
        let _ = job.events.send(Ok(StreamEvent::Done(Box::new(completion))));
        self.release(context, slots, index);
    }

    /// Frees a slot and its KV cache sequence.
    fn release(
        &self,
        context: &mut LlamaContext<'_>,
        slots: &mut [Option<Sequence>],
        index: usize,
    ) {
        if slots[index].take().is_none() {
            return;
        }
        let _ = context.clear_kv_cache_seq(Some(index as u32), None, None);
        self.live.fetch_sub(1, Ordering::SeqCst);
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
    }
}

pub fn nanos(duration: Duration) -> u64 {
    duration.as_nanos().try_into().unwrap_or(u64::MAX)
}
