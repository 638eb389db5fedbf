//! Generations as resources: an answer that runs on the server whoever
//! reads it, keeps every token it produced, and can be read by any number
//! of subscribers from any point. A browser's `EventSource` that lost its
//! connection comes back with `Last-Event-ID: n` and gets token n+1 onwards,
//! nothing lost and nothing repeated.
//!
//! [`GenerationStore`] is the interface; [`memory::MemoryStore`] keeps them
//! in this process. A store shared by several instances implements the same
//! trait.

pub mod memory;

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;

use crate::backend::BoxFuture;
use crate::stream::{Completion, TokenStream};

/// The limits of a store.
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

/// Where generations live.
pub trait GenerationStore: Send + Sync + 'static {
    /// Whether a new generation would fit: checked before a backend is
    /// asked for an answer nobody could keep.
    fn check_room(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Registers a generation over an accepted answer and runs it to its
    /// end (or its cancellation); `on_end` hears how it ended.
    fn start(
        &self,
        model: String,
        tokens: TokenStream,
        on_end: Option<OnEnd>,
    ) -> BoxFuture<'_, Result<String, StoreError>>;

    /// Where the generation stands now.
    fn state(&self, id: &str) -> BoxFuture<'_, Result<Snapshot, StoreError>>;

    /// The tokens after number `after` (tokens count from 1), as they come,
    /// then how the generation ended. The subscriber counts as a reader
    /// until the stream is dropped.
    fn subscribe(&self, id: &str, after: u64) -> BoxFuture<'_, Result<EventStream, StoreError>>;

    /// Stops a running generation (its answer upstream is dropped) and
    /// answers its state once it has settled; a finished one is unchanged.
    fn cancel(&self, id: &str) -> BoxFuture<'_, Result<Snapshot, StoreError>>;

    /// Generations this server is running right now.
    fn running(&self) -> usize;
}

/// Called once when a generation ends, with its final state (a stopped or
/// failed one keeps its partial text), e.g. to save it.
pub type OnEnd = Box<dyn FnOnce(Snapshot) -> BoxFuture<'static, ()> + Send>;

/// A subscriber's view of a generation.
pub type EventStream = Pin<Box<dyn Stream<Item = GenerationEvent> + Send>>;

/// What a subscriber reads.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    Tokens(TokenRun),
    /// The last event.
    End(End),
}

/// How a generation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    Done {
        completion: Completion,
        /// From the start of the generation to its first token.
        time_to_first_token: Option<Duration>,
    },
    Failed(String),
    Cancelled(String),
}

/// Where a generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Done,
    Failed,
    Cancelled,
}

/// A generation's state at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub model: String,
    pub status: Status,
    /// RFC 3339 time it started.
    pub created_at: String,
    /// The text so far (all of it, once finished).
    pub text: String,
    /// The reasoning before the text (empty when there was none).
    pub reasoning: String,
    /// Tokens so far, reasoning included.
    pub tokens: u64,
    /// How it ended, once it has.
    pub end: Option<End>,
}

/// Consecutive tokens of a generation, copied out of its log in one piece
/// (two allocations however many tokens a reader catches up on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenRun {
    /// The number of the first token (tokens count from 1).
    pub first: u64,
    /// The tokens' text, back to back.
    pub text: String,
    /// Where each token ends in `text`.
    pub ends: Vec<usize>,
    /// How many of the first tokens are reasoning (it comes before the
    /// answer, so the rest are the answer's).
    pub reasoning: usize,
}

impl TokenRun {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The number of the last token, if any.
    pub fn last(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.first + self.ends.len() as u64 - 1)
    }

    /// Whether token number `id` is reasoning.
    pub fn is_reasoning(&self, id: u64) -> bool {
        id < self.first + self.reasoning as u64
    }

    /// The text of the reasoning tokens.
    pub fn reasoning_text(&self) -> &str {
        &self.text[..self.reasoning_end()]
    }

    /// The text of the answer tokens.
    pub fn answer_text(&self) -> &str {
        &self.text[self.reasoning_end()..]
    }

    fn reasoning_end(&self) -> usize {
        self.reasoning
            .checked_sub(1)
            .map_or(0, |last| self.ends[last])
    }

    /// `(number, text)` of each token.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str)> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.ends
            .iter()
            .zip(starts)
            .enumerate()
            .map(|(offset, (&end, start))| (self.first + offset as u64, &self.text[start..end]))
    }
}

/// Why a store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no generation with id {id:?} (it may have expired)")]
    NotFound { id: String },
    #[error("server busy: {running} generations are running; try again shortly")]
    Full { running: usize },
}
