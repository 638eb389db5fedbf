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
//!
//! Two tasks serve a running generation. The driver reads the backend's
//! tokens and wakes on every chunk the upstream sends, so it does nothing
//! else: it only checks an abort flag. A cancel aborts it directly; the
//! supervisor sleeps until the grace period runs out or the server shuts
//! down, and then aborts it with that reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use app::api::{DoneChunk, GenerationState, GenerationStatus};
use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Notify, oneshot, watch};

use crate::backend::{Completion, StreamEvent, TokenStream};
use crate::shutdown::Shutdown;
use crate::sse::BURST_WINDOW;

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
    /// Triggered when the server shuts down: every generation stops.
    shutdown: Shutdown,
    /// Generations not finished yet (a counter: the store can hold thousands).
    running: Arc<AtomicUsize>,
    /// Handed to generation tasks so they can remove themselves.
    this: Weak<Generations>,
}

impl Generations {
    pub fn new(settings: GenerationSettings, shutdown: Shutdown) -> Arc<Self> {
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
        let (generation, abort) = Generation::new(model);
        let generation = Arc::new(generation);
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
        let (finished, driver_gone) = oneshot::channel();
        tokio::spawn(supervise(
            generation.clone(),
            self.settings.grace,
            self.shutdown.clone(),
            driver_gone,
        ));
        tokio::spawn(run(
            self.running.clone(),
            self.this.clone(),
            generation.clone(),
            Abortable::new(
                drive(generation.clone(), tokens, self.settings.max_bytes),
                abort,
            ),
            finished,
            self.settings.ttl,
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
    driver: Abortable<impl Future<Output = Ending>>,
    finished: oneshot::Sender<()>,
    ttl: Duration,
    shutdown: Shutdown,
) {
    // Aborted or not, the driver (and its token stream, and with it the
    // upstream request) is dropped once this await returns: the backend
    // stops generating.
    let ending = driver.await.unwrap_or_else(|_| generation.stop_reason());
    drop(finished);
    generation.finish(ending);
    running.fetch_sub(1, Ordering::Relaxed);
    tokio::select! {
        () = tokio::time::sleep(ttl) => {}
        () = shutdown.triggered() => {}
    }
    if let Some(store) = store.upgrade() {
        store.remove(&generation);
    }
}

/// Ends a running generation early when nobody has listened to it for
/// `grace`, or when the server shuts down; returns as soon as the driver is
/// gone.
async fn supervise(
    generation: Arc<Generation>,
    grace: Duration,
    shutdown: Shutdown,
    driver_gone: oneshot::Receiver<()>,
) {
    let reason = tokio::select! {
        biased;
        _ = driver_gone => return,
        () = shutdown.triggered() => Ending::Failed("server shutting down".into()),
        () = orphaned(generation.subscribers.subscribe(), grace) => Ending::Cancelled(format!(
            "cancelled: no client listened for {}",
            humantime::format_duration(grace)
        )),
    };
    generation.stop(reason);
}

/// Reads the backend's tokens into the generation until it ends.
///
/// Subscribers wake once per append, and waking a task on another thread
/// costs far more than a token. So tokens are appended in bursts, by the
/// rule the SSE body writes by: a token is appended at once unless the last
/// append was less than [`BURST_WINDOW`] ago (faster than any model's pace),
/// in which case the tokens arriving until the window ends go with it. The
/// first token, and tokens at a model's pace, are never held.
async fn drive(generation: Arc<Generation>, mut tokens: TokenStream, max_bytes: usize) -> Ending {
    let mut burst: Vec<String> = Vec::new();
    // When the current window ends; none before the first append.
    let mut window_end: Option<Instant> = None;
    loop {
        let window_over = window_end.is_none_or(|end| Instant::now() >= end);
        if !burst.is_empty() && window_over {
            if !generation.append(&burst, max_bytes) {
                return too_long(max_bytes);
            }
            burst.clear();
            window_end = Some(Instant::now() + BURST_WINDOW);
        }
        let next = match (burst.is_empty(), window_end) {
            (false, Some(end)) => match tokens.next().now_or_never() {
                Some(next) => next,
                // Nothing ready: wait for more until the window ends.
                None => match tokio::time::timeout_at(end.into(), tokens.next()).await {
                    Ok(next) => next,
                    Err(_) => continue,
                },
            },
            _ => tokens.next().await,
        };
        let ending = match next {
            Some(Ok(StreamEvent::Token(text))) => {
                burst.push(text);
                continue;
            }
            Some(Ok(StreamEvent::Done(completion))) => Ending::Done(completion),
            Some(Err(error)) => Ending::Failed(error.to_string()),
            None => Ending::Failed("the backend ended the stream before it was done".into()),
        };
        if !burst.is_empty() && !generation.append(&burst, max_bytes) {
            return too_long(max_bytes);
        }
        return ending;
    }
}

fn too_long(max_bytes: usize) -> Ending {
    Ending::Failed(format!(
        "the answer grew past the limit of {max_bytes} bytes"
    ))
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
    /// Wakes readers after every change (see [`Generation::changes`]).
    changes: Notify,
    /// How many clients are reading the events right now.
    subscribers: watch::Sender<usize>,
    /// Stops the driver; see [`Generation::stop`].
    abort: AbortHandle,
    /// Why the driver was stopped; the first reason wins.
    stop_reason: Mutex<Option<Ending>>,
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
    pub tokens: TokenRun,
    pub end: Option<End>,
}

/// Consecutive tokens of a generation, copied out of its log in one piece
/// (two allocations however many tokens a reader catches up on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenRun {
    /// The sequence number of the first token (tokens count from 1).
    pub first: u64,
    /// The tokens' text, back to back.
    pub text: String,
    /// Where each token ends in `text`.
    pub ends: Vec<usize>,
}

impl TokenRun {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The sequence number of the last token, if any.
    pub fn last(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.first + self.ends.len() as u64 - 1)
    }

    /// `(sequence number, text)` of each token.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str)> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.ends
            .iter()
            .zip(starts)
            .enumerate()
            .map(|(offset, (&end, start))| (self.first + offset as u64, &self.text[start..end]))
    }
}

/// The final event of a generation.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    Done(DoneChunk),
    Failed(String),
    Cancelled(String),
}

impl Generation {
    /// A new generation, and the registration that lets [`Generation::stop`]
    /// abort its driver.
    fn new(model: String) -> (Self, AbortRegistration) {
        let (abort, registration) = AbortHandle::new_pair();
        let generation = Self {
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
            changes: Notify::new(),
            subscribers: watch::Sender::new(0),
            abort,
            stop_reason: Mutex::new(None),
        };
        (generation, registration)
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changes.notify_waiters();
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

    /// Stops the generation: its driver is aborted, and with it the
    /// upstream request. Changes nothing once it has finished.
    pub fn cancel(&self) {
        self.stop(Ending::Cancelled("the generation was cancelled".into()));
    }

    /// Aborts the driver, saying why; the first reason given is kept.
    fn stop(&self, reason: Ending) {
        self.stop_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        self.abort.abort();
    }

    fn stop_reason(&self) -> Ending {
        self.stop_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| Ending::Cancelled("the generation was cancelled".into()))
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
        let start = if first == 0 {
            0
        } else {
            progress.token_ends[first - 1]
        };
        let tokens = TokenRun {
            first: first as u64 + 1,
            text: progress.text[start..].to_string(),
            ends: progress.token_ends[first..]
                .iter()
                .map(|end| end - start)
                .collect(),
        };
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

    /// Resolves at the next change of the generation. Enable it (pinned)
    /// before reading, so a change made in between is not missed.
    pub fn changes(&self) -> tokio::sync::futures::Notified<'_> {
        self.changes.notified()
    }

    /// Resolves once the generation has ended: done, failed or cancelled.
    pub async fn ended(&self) {
        loop {
            let changed = self.changes();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.status() != GenerationStatus::Running {
                return;
            }
            changed.await;
        }
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
        let (generation, _) = Generation::new("m".into());
        let tokens: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        assert!(generation.append(&tokens, 1024));
        generation
    }

    #[test]
    fn reading_after_a_cursor_gives_each_later_token_once() {
        let generation = generation_with(&["Hel", "lo", " wörld"]);
        let tokens_after = |cursor| -> Vec<(u64, String)> {
            let update = generation.read_after(cursor);
            update
                .tokens
                .iter()
                .map(|(n, text)| (n, text.to_string()))
                .collect()
        };
        assert_eq!(
            tokens_after(0),
            [
                (1, "Hel".to_string()),
                (2, "lo".to_string()),
                (3, " wörld".to_string())
            ]
        );
        assert_eq!(generation.read_after(0).end, None);
        assert_eq!(generation.read_after(0).tokens.last(), Some(3));
        assert_eq!(tokens_after(2), [(3, " wörld".to_string())]);
        assert_eq!(generation.read_after(2).tokens.last(), Some(3));
        assert!(generation.read_after(3).tokens.is_empty());
        assert_eq!(generation.read_after(3).tokens.last(), None);
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
        let (generation, _) = Generation::new("m".into());
        assert!(generation.append(&["12345".to_string()], 8));
        assert!(!generation.append(&["6789".to_string()], 8));
        assert_eq!(generation.state().text, "12345");
    }

    #[test]
    fn the_first_stop_reason_is_the_one_kept() {
        let (generation, _) = Generation::new("m".into());
        generation.stop(Ending::Failed("server shutting down".into()));
        generation.stop(Ending::Cancelled("late".into()));
        assert!(matches!(
            generation.stop_reason(),
            Ending::Failed(reason) if reason == "server shutting down"
        ));
    }

    /// A store whose generations read tokens sent on the returned channel.
    fn store_with_channel() -> (
        Arc<Generations>,
        Arc<Generation>,
        tokio::sync::mpsc::UnboundedSender<StreamEvent>,
    ) {
        let store = Generations::new(
            GenerationSettings {
                grace: Duration::from_secs(60),
                ttl: Duration::from_secs(60),
                max_generations: 4,
                max_bytes: 1 << 20,
            },
            Shutdown::default(),
        );
        let (send, mut receive) = tokio::sync::mpsc::unbounded_channel();
        let tokens: TokenStream = Box::pin(async_stream::stream! {
            while let Some(event) = receive.recv().await {
                yield Ok(event);
            }
        });
        let generation = store.start("m".into(), tokens).unwrap();
        (store, generation, send)
    }

    fn text_of(generation: &Generation) -> Vec<String> {
        let update = generation.read_after(0);
        update.tokens.iter().map(|(_, t)| t.to_string()).collect()
    }

    #[tokio::test]
    async fn tokens_at_a_models_pace_are_readable_at_once() {
        let (_store, generation, send) = store_with_channel();
        for (i, token) in ["One", " two", " three"].into_iter().enumerate() {
            send.send(StreamEvent::Token(token.into())).unwrap();
            // Let the driver run: far less than the burst window passes.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert_eq!(text_of(&generation).len(), i + 1, "token {i} was held back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_flood_of_tokens_arrives_whole_and_in_order_before_the_end() {
        let (_store, generation, send) = store_with_channel();
        let tokens: Vec<String> = (0..1000).map(|i| format!(" {i}")).collect();
        for token in &tokens {
            send.send(StreamEvent::Token(token.clone())).unwrap();
        }
        send.send(StreamEvent::Done(Completion::default())).unwrap();
        generation.ended().await;
        assert_eq!(generation.status(), GenerationStatus::Done);
        assert_eq!(text_of(&generation), tokens);
    }
}
