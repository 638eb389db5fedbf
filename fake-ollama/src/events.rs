//! What the fake saw: every request, and how each answer ended. Tests read
//! this to prove, for example, that a cancel reached the upstream.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// One thing that happened at the fake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FakeEvent {
    /// A request arrived (generate, chat or show), with its JSON body.
    Request {
        id: u64,
        path: String,
        body: serde_json::Value,
    },
    /// An answer was sent to the end.
    Completed {
        id: u64,
        path: String,
        tokens_sent: usize,
    },
    /// The client went away before the answer ended.
    Disconnected {
        id: u64,
        path: String,
        tokens_sent: usize,
    },
}

impl FakeEvent {
    pub fn id(&self) -> u64 {
        match self {
            Self::Request { id, .. }
            | Self::Completed { id, .. }
            | Self::Disconnected { id, .. } => *id,
        }
    }
}

/// The shared, append-only event log.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    events: Vec<FakeEvent>,
    next_id: u64,
    /// Answers whose body is still being sent.
    open_streams: usize,
}

impl EventLog {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the log inconsistent
        // (every update is a single push or counter change), so poison is moot.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records a request and returns its id.
    pub fn request(&self, path: &str, body: serde_json::Value) -> u64 {
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            let id = state.next_id;
            state.events.push(FakeEvent::Request {
                id,
                path: path.to_string(),
                body,
            });
            id
        };
        self.inner.changed.notify_waiters();
        id
    }

    fn push(&self, event: FakeEvent) {
        self.lock().events.push(event);
        self.inner.changed.notify_waiters();
    }

    pub fn snapshot(&self) -> Vec<FakeEvent> {
        self.lock().events.clone()
    }

    pub fn clear(&self) {
        self.lock().events.clear();
        self.inner.changed.notify_waiters();
    }

    /// How many events the log holds.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers whose body is being sent right now.
    pub fn open_streams(&self) -> usize {
        self.lock().open_streams
    }

    /// The JSON bodies of the requests made to `path`, oldest first.
    pub fn request_bodies(&self, path: &str) -> Vec<serde_json::Value> {
        self.lock()
            .events
            .iter()
            .filter_map(|event| match event {
                FakeEvent::Request { path: p, body, .. } if p == path => Some(body.clone()),
                _ => None,
            })
            .collect()
    }

    /// Waits until `predicate` holds for the log, or `timeout` passes.
    /// Returns the matching snapshot, or `None` on timeout.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl Fn(&[FakeEvent]) -> bool,
    ) -> Option<Vec<FakeEvent>> {
        let wait = async {
            loop {
                // Register for the next change before looking, so a change
                // between the look and the wait is not missed.
                let changed = self.inner.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let events = self.snapshot();
                if predicate(&events) {
                    return events;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }

    /// Tracks one answer body from its first byte until it ends or is
    /// dropped; dropping it unfinished records a disconnect.
    pub fn answer(&self, id: u64, path: &str) -> AnswerGuard {
        self.lock().open_streams += 1;
        AnswerGuard {
            log: self.clone(),
            id,
            path: path.to_string(),
            tokens_sent: 0,
            finished: false,
        }
    }
}

/// Lives as long as one answer; see [`EventLog::answer`].
#[derive(Debug)]
pub struct AnswerGuard {
    log: EventLog,
    id: u64,
    path: String,
    tokens_sent: usize,
    finished: bool,
}

impl AnswerGuard {
    pub fn token_sent(&mut self) {
        self.tokens_sent += 1;
    }

    pub fn tokens_sent(&self) -> usize {
        self.tokens_sent
    }

    /// The answer reached its end (a done chunk, or a deliberate fault).
    pub fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        let event = if self.finished {
            FakeEvent::Completed {
                id: self.id,
                path: std::mem::take(&mut self.path),
                tokens_sent: self.tokens_sent,
            }
        } else {
            FakeEvent::Disconnected {
                id: self.id,
                path: std::mem::take(&mut self.path),
                tokens_sent: self.tokens_sent,
            }
        };
        {
            let mut state = self.log.lock();
            state.open_streams -= 1;
        }
        self.log.push(event);
    }
}
