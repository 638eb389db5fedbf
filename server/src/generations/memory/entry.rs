//! One generation held in memory: its token log, the readers waiting on it,
//! how many subscribers it has, and the switch that stops it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures_util::future::{AbortHandle, AbortRegistration};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::generations::{End, Snapshot, Status, TokenRun};
use crate::stream::StreamEvent;

/// How a generation's driver stopped, before it is recorded.
#[derive(Debug)]
pub enum Ending {
    Finished(End),
    /// Aborted: the reason comes from whoever stopped it.
    Aborted,
}

pub struct Generation {
    pub id: String,
    pub model: String,
    created_at: String,
    started: Instant,
    log: Mutex<Log>,
    /// Wakes readers after every change (see [`Generation::changes`]).
    changes: Notify,
    /// How many clients are reading the events right now.
    subscribers: watch::Sender<usize>,
    /// Stops the driver; see [`Generation::stop`].
    abort: AbortHandle,
    /// Why the driver was stopped; the first reason wins.
    stop_reason: Mutex<Option<End>>,
}

#[derive(Debug)]
struct Log {
    /// The reasoning, then the answer, back to back.
    text: String,
    /// Byte offset in `text` where each token ends.
    token_ends: Vec<usize>,
    /// How many of the first tokens are reasoning.
    reasoning_tokens: usize,
    first_token_after: Option<Duration>,
    end: Option<End>,
}

/// What a subscriber reads after its cursor: new tokens, and the end once
/// every token before it has been read.
#[derive(Debug, PartialEq)]
pub struct Update {
    pub tokens: TokenRun,
    pub end: Option<End>,
}

impl Log {
    /// Where the reasoning ends in `text`.
    fn reasoning_end(&self) -> usize {
        self.reasoning_tokens
            .checked_sub(1)
            .map_or(0, |last| self.token_ends[last])
    }
}

impl Generation {
    /// A new generation, and the registration that lets [`Generation::stop`]
    /// abort its driver.
    pub fn new(id: String, model: String) -> (Self, AbortRegistration) {
        let (abort, registration) = AbortHandle::new_pair();
        let generation = Self {
            id,
            model,
            created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            started: Instant::now(),
            log: Mutex::new(Log {
                text: String::new(),
                token_ends: Vec::new(),
                reasoning_tokens: 0,
                first_token_after: None,
                end: None,
            }),
            changes: Notify::new(),
            subscribers: watch::Sender::new(0),
            abort,
            stop_reason: Mutex::new(None),
        };
        (generation, registration)
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds tokens and reasoning (the end of an answer is not for the
    /// log: see [`Generation::finish`]); false when one would pass the size
    /// limit (those before it are kept).
    pub fn append<'a>(
        &self,
        events: impl Iterator<Item = &'a StreamEvent>,
        max_bytes: usize,
    ) -> bool {
        let mut fits = true;
        {
            let mut log = self.log();
            if log.first_token_after.is_none() {
                log.first_token_after = Some(self.started.elapsed());
            }
            for event in events {
                let (text, reasoning) = match event {
                    StreamEvent::Token(text) => (text, false),
                    StreamEvent::Thinking(text) => (text, true),
                    StreamEvent::Done(_) => continue,
                };
                if log.text.len() + text.len() > max_bytes {
                    fits = false;
                    break;
                }
                log.text.push_str(text);
                let end = log.text.len();
                log.token_ends.push(end);
                // Reasoning only ever leads (a token stream's promise).
                if reasoning && log.reasoning_tokens + 1 == log.token_ends.len() {
                    log.reasoning_tokens += 1;
                }
            }
        }
        self.changes.notify_waiters();
        fits
    }

    /// Records how it ended; readers wake to read it.
    pub fn finish(&self, ending: Ending) {
        let end = match ending {
            Ending::Finished(end) => end,
            Ending::Aborted => self.stop_reason(),
        };
        {
            let mut log = self.log();
            log.end = Some(match end {
                End::Done { completion, .. } => End::Done {
                    completion,
                    time_to_first_token: log.first_token_after,
                },
                other => other,
            });
        }
        self.changes.notify_waiters();
    }

    /// Stops the generation: its driver is aborted, and with it the
    /// answer upstream. Changes nothing once it has finished.
    pub fn cancel(&self) {
        self.stop(End::Cancelled("the generation was cancelled".into()));
    }

    /// Aborts the driver, saying why; the first reason given is kept.
    pub fn stop(&self, reason: End) {
        self.stop_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        self.abort.abort();
    }

    fn stop_reason(&self) -> End {
        self.stop_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| End::Cancelled("the generation was cancelled".into()))
    }

    pub fn is_running(&self) -> bool {
        self.log().end.is_none()
    }

    pub fn snapshot(&self) -> Snapshot {
        let log = self.log();
        Snapshot {
            id: self.id.clone(),
            model: self.model.clone(),
            status: match &log.end {
                None => Status::Running,
                Some(End::Done { .. }) => Status::Done,
                Some(End::Failed(_)) => Status::Failed,
                Some(End::Cancelled(_)) => Status::Cancelled,
            },
            created_at: self.created_at.clone(),
            text: log.text[log.reasoning_end()..].to_string(),
            reasoning: log.text[..log.reasoning_end()].to_string(),
            tokens: log.token_ends.len() as u64,
            end: log.end.clone(),
        }
    }

    /// Tokens after number `after` (tokens count from 1), and the end if the
    /// generation has finished.
    pub fn read_after(&self, after: u64) -> Update {
        let log = self.log();
        let first = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(log.token_ends.len());
        let start = if first == 0 {
            0
        } else {
            log.token_ends[first - 1]
        };
        Update {
            tokens: TokenRun {
                first: first as u64 + 1,
                text: log.text[start..].to_string(),
                ends: log.token_ends[first..]
                    .iter()
                    .map(|end| end - start)
                    .collect(),
                reasoning: log.reasoning_tokens.saturating_sub(first),
            },
            end: log.end.clone(),
        }
    }

    /// Resolves at the next change. Enable it (pinned) before reading, so a
    /// change made in between is not missed.
    pub fn changes(&self) -> tokio::sync::futures::Notified<'_> {
        self.changes.notified()
    }

    /// Resolves once the generation has ended.
    pub async fn ended(&self) {
        loop {
            let changed = self.changes();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if !self.is_running() {
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

    /// Watches the subscriber count (for the grace period).
    pub fn subscribers(&self) -> watch::Receiver<usize> {
        self.subscribers.subscribe()
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
    use crate::stream::Completion;

    fn tokens(texts: &[&str]) -> Vec<StreamEvent> {
        texts
            .iter()
            .map(|text| StreamEvent::Token(text.to_string()))
            .collect()
    }

    fn generation_with(texts: &[&str]) -> Generation {
        let (generation, _) = Generation::new("g".into(), "m".into());
        assert!(generation.append(tokens(texts).iter(), 1024));
        generation
    }

    #[test]
    fn reasoning_leads_the_log_and_the_snapshot_keeps_it_apart() {
        let (generation, _) = Generation::new("g".into(), "m".into());
        let events = [
            StreamEvent::Thinking("Hm".into()),
            StreamEvent::Thinking("m.".into()),
            StreamEvent::Token("Paris".into()),
        ];
        assert!(generation.append(events.iter(), 1024));
        let snapshot = generation.snapshot();
        assert_eq!(
            (snapshot.reasoning.as_str(), snapshot.text.as_str()),
            ("Hmm.", "Paris")
        );
        assert_eq!(snapshot.tokens, 3);
        let from_start = generation.read_after(0).tokens;
        assert_eq!(from_start.reasoning, 2);
        assert_eq!(from_start.reasoning_text(), "Hmm.");
        assert_eq!(from_start.answer_text(), "Paris");
        assert!(from_start.is_reasoning(2) && !from_start.is_reasoning(3));
        let resumed = generation.read_after(1).tokens;
        assert_eq!((resumed.reasoning, resumed.reasoning_text()), (1, "m."));
        let answer_only = generation.read_after(2).tokens;
        assert_eq!(
            (answer_only.reasoning, answer_only.answer_text()),
            (0, "Paris")
        );
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
        assert!(generation.read_after(3).tokens.is_empty());
        assert_eq!(generation.read_after(3).tokens.last(), None);
        assert!(generation.read_after(u64::MAX).tokens.is_empty());
    }

    #[tokio::test]
    async fn the_end_comes_with_the_time_to_first_token() {
        let generation = generation_with(&["a"]);
        generation.finish(Ending::Finished(End::Done {
            completion: Completion {
                done_reason: Some("stop".into()),
                ..Completion::default()
            },
            time_to_first_token: None,
        }));
        let Some(End::Done {
            time_to_first_token,
            ..
        }) = generation.read_after(1).end
        else {
            panic!("not done");
        };
        assert!(time_to_first_token.is_some());
        let snapshot = generation.snapshot();
        assert_eq!(snapshot.status, Status::Done);
        assert_eq!(snapshot.text, "a");
    }

    #[test]
    fn the_size_limit_refuses_a_token_that_would_pass_it() {
        let (generation, _) = Generation::new("g".into(), "m".into());
        assert!(generation.append(tokens(&["12345"]).iter(), 8));
        assert!(!generation.append(tokens(&["6789"]).iter(), 8));
        assert_eq!(generation.snapshot().text, "12345");
    }

    #[test]
    fn the_first_stop_reason_is_the_one_kept() {
        let (generation, _) = Generation::new("g".into(), "m".into());
        generation.stop(End::Failed("server shutting down".into()));
        generation.stop(End::Cancelled("late".into()));
        generation.finish(Ending::Aborted);
        assert_eq!(
            generation.snapshot().end,
            Some(End::Failed("server shutting down".into()))
        );
    }
}
