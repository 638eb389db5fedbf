//! Generations as resources. A generation runs on its own task and keeps
//! every token it produced, so any number of subscribers can read it from
//! any point: a browser's `EventSource` that lost its connection comes back
//! with `Last-Event-ID: n` and gets token n+1 onwards, nothing lost and
//! nothing repeated.
//!
//! Lifetimes: a generation nobody listens to for `grace` is cancelled (its
//! upstream request dropped); a finished one is kept for `ttl` so a late
//! reconnect can still replay it; the store holds at most `max_generations`,
//! evicting the oldest finished one first, and answers 503 when all are running.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use app::api::{DoneChunk, GenerationState, GenerationStatus};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backend::{Completion, StreamEvent, TokenStream};

/// The limits of the store.
#[derive(Debug, Clone, Copy)]
pub struct GenerationSettings {
    /// How long a generation may run with no subscriber.
    pub grace: Duration,
    /// How long a finished generation stays readable.
    pub ttl: Duration,
    /// Most generations held at once, running or finished.
    pub max_generations: usize,
    /// Most bytes of text one generation may keep.
    pub max_bytes: usize,
}

/// Why the store cannot take a new generation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreFull(String);

/// All generations, by id.
pub struct Generations {
    settings: GenerationSettings,
    entries: Mutex<HashMap<String, Arc<Generation>>>,
    /// Cancelled when the server shuts down: every generation stops.
    shutdown: CancellationToken,
    /// Generations not finished yet (a counter: the store can hold thousands).
    running: Arc<AtomicUsize>,
    /// Handed to generation tasks so they can remove themselves.
    this: Weak<Generations>,
}

impl Generations {
    pub fn new(settings: GenerationSettings, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            settings,
            entries: Mutex::new(HashMap::new()),
            shutdown,
            running: Arc::new(AtomicUsize::new(0)),
            this: this.clone(),
        })
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Arc<Generation>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a generation over an accepted backend stream and starts
    /// driving it on its own task.
    pub fn start(&self, model: String, tokens: TokenStream) -> Result<Arc<Generation>, StoreFull> {
        let generation = Arc::new(Generation::new(model));
        {
            let mut entries = self.entries();
            if entries.len() >= self.settings.max_generations {
                let oldest_finished = entries
                    .values()
                    .filter_map(|g| g.finished_at().map(|at| (at, g.id.clone())))
                    .min()
                    .map(|(_, id)| id);
                match oldest_finished {
                    Some(id) => {
                        entries.remove(&id);
                    }
                    None => return Err(Self::full(entries.len())),
                }
            }
            entries.insert(generation.id.clone(), generation.clone());
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(run(
            self.running.clone(),
            self.this.clone(),
            generation.clone(),
            tokens,
            self.settings,
            self.shutdown.clone(),
        ));
        Ok(generation)
    }

    /// Whether a new generation would fit (see [`Generations::start`]).
    pub fn check_room(&self) -> Result<(), StoreFull> {
        let held = self.entries().len();
        if held >= self.settings.max_generations && self.running() >= held {
            return Err(Self::full(held));
        }
        Ok(())
    }

    fn full(running: usize) -> StoreFull {
        StoreFull(format!(
            "server busy: {running} generations are running; try again shortly"
        ))
    }

    pub fn get(&self, id: &str) -> Option<Arc<Generation>> {
        self.entries().get(id).cloned()
    }

    /// Generations still producing tokens.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    fn remove(&self, generation: &Arc<Generation>) {
        let mut entries = self.entries();
        // Only this generation: an evicted id is never reused, but be exact.
        if entries
            .get(&generation.id)
            .is_some_and(|held| Arc::ptr_eq(held, generation))
        {
            entries.remove(&generation.id);
        }
    }
}

/// Drives one generation to its end, then keeps it readable for the TTL.
async fn run(
    running: Arc<AtomicUsize>,
    store: Weak<Generations>,
    generation: Arc<Generation>,
    tokens: TokenStream,
    settings: GenerationSettings,
    shutdown: CancellationToken,
) {
    let ending = tokio::select! {
        biased;
        () = generation.cancel.cancelled() => Ending::Cancelled("the generation was cancelled".into()),
        () = shutdown.cancelled() => Ending::Failed("server shutting down".into()),
        () = orphaned(generation.subscribers.subscribe(), settings.grace) => Ending::Cancelled(format!(
            "cancelled: no client listened for {}",
            humantime::format_duration(settings.grace)
        )),
        ending = drive(&generation, tokens, settings.max_bytes) => ending,
    };
    // Whichever branch won, the token stream is dropped by now, and with it
    // the upstream request: the backend stops generating.
    generation.finish(ending);
    running.fetch_sub(1, Ordering::Relaxed);
    tokio::select! {
        () = tokio::time::sleep(settings.ttl) => {}
        () = shutdown.cancelled() => {}
    }
    if let Some(store) = store.upgrade() {
        store.remove(&generation);
    }
}

/// Reads the backend's tokens into the generation until it ends. Tokens
/// already waiting are appended together, so subscribers wake once per
/// burst rather than once per token.
async fn drive(generation: &Generation, mut tokens: TokenStream, max_bytes: usize) -> Ending {
    let mut burst: Vec<String> = Vec::new();
    let mut next = tokens.next().await;
    loop {
        let ending = match next {
            Some(Ok(StreamEvent::Token(text))) => {
                burst.push(text);
                None
            }
            Some(Ok(StreamEvent::Done(completion))) => Some(Ending::Done(completion)),
            Some(Err(error)) => Some(Ending::Failed(error.to_string())),
            None => Some(Ending::Failed(
                "the backend ended the stream before it was done".into(),
            )),
        };
        let more = if ending.is_none() {
            tokens.next().now_or_never()
        } else {
            None
        };
        if more.is_none() && !burst.is_empty() {
            if !generation.append(&burst, max_bytes) {
                return Ending::Failed(format!(
                    "the answer grew past the limit of {max_bytes} bytes"
                ));
            }
            burst.clear();
        }
        if let Some(ending) = ending {
            return ending;
        }
        next = match more {
            Some(event) => event,
            None => tokens.next().await,
        };
    }
}

/// Resolves once the subscriber count has stayed at zero for `grace`.
async fn orphaned(mut subscribers: watch::Receiver<usize>, grace: Duration) {
    loop {
        while *subscribers.borrow_and_update() > 0 {
            if subscribers.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(grace) => return,
            changed = subscribers.changed() => {
                if changed.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// How a generation ended.
#[derive(Debug)]
enum Ending {
    Done(Completion),
    Failed(String),
    Cancelled(String),
}

/// One generation: its text so far, how it ended, who is reading it.
pub struct Generation {
    pub id: String,
    pub model: String,
    created_at: String,
    started: Instant,
    progress: Mutex<Progress>,
    /// Bumped on every change; subscribers wait on it.
    version: watch::Sender<u64>,
    /// How many clients are reading the events right now.
    subscribers: watch::Sender<usize>,
    cancel: CancellationToken,
}

#[derive(Debug)]
struct Progress {
    text: String,
    /// Byte offset in `text` where each token ends.
    token_ends: Vec<usize>,
    status: GenerationStatus,
    error: Option<String>,
    stats: Option<DoneChunk>,
    first_token_after: Option<Duration>,
    finished_at: Option<Instant>,
}

/// What a subscriber reads after its cursor: new tokens, and the end once
/// every token before it has been read.
#[derive(Debug, PartialEq)]
pub struct Update {
    /// `(sequence number, text)` of each token after the cursor.
    pub tokens: Vec<(u64, String)>,
    pub end: Option<End>,
}

/// The final event of a generation.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    Done(DoneChunk),
    Failed(String),
    Cancelled(String),
}

impl Generation {
    fn new(model: String) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            model,
            created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            started: Instant::now(),
            progress: Mutex::new(Progress {
                text: String::new(),
                token_ends: Vec::new(),
                status: GenerationStatus::Running,
                error: None,
                stats: None,
                first_token_after: None,
                finished_at: None,
            }),
            version: watch::Sender::new(0),
            subscribers: watch::Sender::new(0),
            cancel: CancellationToken::new(),
        }
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.version.send_modify(|version| *version += 1);
    }

    /// Adds tokens; false when one would pass the size limit (those
    /// before it are kept).
    fn append(&self, tokens: &[String], max_bytes: usize) -> bool {
        let mut fits = true;
        {
            let mut progress = self.progress();
            if progress.first_token_after.is_none() {
                progress.first_token_after = Some(self.started.elapsed());
            }
            for token in tokens {
                if progress.text.len() + token.len() > max_bytes {
                    fits = false;
                    break;
                }
                progress.text.push_str(token);
                let end = progress.text.len();
                progress.token_ends.push(end);
            }
        }
        self.bump();
        fits
    }

    fn finish(&self, ending: Ending) {
        {
            let mut progress = self.progress();
            progress.finished_at = Some(Instant::now());
            match ending {
                Ending::Done(completion) => {
                    let mut stats = DoneChunk::from(&completion);
                    stats.time_to_first_token = progress
                        .first_token_after
                        .map(|after| after.as_nanos() as u64);
                    progress.status = GenerationStatus::Done;
                    progress.stats = Some(stats);
                }
                Ending::Failed(error) => {
                    progress.status = GenerationStatus::Failed;
                    progress.error = Some(error);
                }
                Ending::Cancelled(reason) => {
                    progress.status = GenerationStatus::Cancelled;
                    progress.error = Some(reason);
                }
            }
        }
        self.bump();
    }

    /// Asks the generation to stop; its task aborts the upstream request.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn status(&self) -> GenerationStatus {
        self.progress().status
    }

    fn finished_at(&self) -> Option<Instant> {
        self.progress().finished_at
    }

    pub fn state(&self) -> GenerationState {
        let progress = self.progress();
        GenerationState {
            id: self.id.clone(),
            model: self.model.clone(),
            status: progress.status,
            created_at: self.created_at.clone(),
            text: progress.text.clone(),
            tokens: progress.token_ends.len() as u64,
            error: progress.error.clone(),
            stats: progress.stats.clone(),
        }
    }

    /// Tokens after sequence number `after` (tokens count from 1), and the
    /// end if the generation has finished.
    pub fn read_after(&self, after: u64) -> Update {
        let progress = self.progress();
        let first = (after as usize).min(progress.token_ends.len());
        let mut start = if first == 0 {
            0
        } else {
            progress.token_ends[first - 1]
        };
        let tokens = progress.token_ends[first..]
            .iter()
            .enumerate()
            .map(|(offset, &end)| {
                let token = progress.text[start..end].to_string();
                start = end;
                ((first + offset + 1) as u64, token)
            })
            .collect();
        let end = match progress.status {
            GenerationStatus::Running => None,
            GenerationStatus::Done => progress.stats.clone().map(End::Done),
            GenerationStatus::Failed => {
                Some(End::Failed(progress.error.clone().unwrap_or_default()))
            }
            GenerationStatus::Cancelled => {
                Some(End::Cancelled(progress.error.clone().unwrap_or_default()))
            }
        };
        Update { tokens, end }
    }

    /// A receiver that wakes on every change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Counts a subscriber until the guard is dropped.
    pub fn subscribe(self: &Arc<Self>) -> SubscriberGuard {
        self.subscribers.send_modify(|count| *count += 1);
        SubscriberGuard {
            generation: self.clone(),
        }
    }
}

/// Keeps one subscriber counted; see [`Generation::subscribe`].
pub struct SubscriberGuard {
    generation: Arc<Generation>,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.generation.subscribers.send_modify(|count| *count -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation_with(tokens: &[&str]) -> Generation {
        let generation = Generation::new("m".into());
        let tokens: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        assert!(generation.append(&tokens, 1024));
        generation
    }

    #[test]
    fn reading_after_a_cursor_gives_each_later_token_once() {
        let generation = generation_with(&["Hel", "lo", " wörld"]);
        let all = generation.read_after(0);
        assert_eq!(
            all.tokens,
            [
                (1, "Hel".to_string()),
                (2, "lo".to_string()),
                (3, " wörld".to_string())
            ]
        );
        assert_eq!(all.end, None);
        assert_eq!(generation.read_after(2).tokens, [(3, " wörld".to_string())]);
        assert!(generation.read_after(3).tokens.is_empty());
        assert!(generation.read_after(99).tokens.is_empty());
    }

    #[test]
    fn the_end_comes_with_the_stats_and_time_to_first_token() {
        let generation = generation_with(&["a"]);
        generation.finish(Ending::Done(Completion {
            done_reason: Some("stop".into()),
            eval_count: 1,
            ..Completion::default()
        }));
        let Some(End::Done(stats)) = generation.read_after(1).end else {
            panic!("not done");
        };
        assert_eq!(stats.eval_count, 1);
        assert!(stats.time_to_first_token.is_some());
        assert_eq!(generation.state().status, GenerationStatus::Done);
        assert_eq!(generation.state().text, "a");
    }

    #[test]
    fn the_size_limit_refuses_a_token_that_would_pass_it() {
        let generation = Generation::new("m".into());
        assert!(generation.append(&["12345".to_string()], 8));
        assert!(!generation.append(&["6789".to_string()], 8));
        assert_eq!(generation.state().text, "12345");
    }
}
