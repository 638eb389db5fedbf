//! The messages the page shows: turns with their own reactive text, so a
//! token touches one bubble, never the whole history.

use leptos::prelude::*;

use crate::api::{ConversationMessage, DoneChunk, MessageStats, MessageStatus, Role};

/// Where a turn stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnStatus {
    /// A user's message, sent.
    Sent,
    /// Asked; nothing back yet.
    Waiting,
    /// Tokens are arriving.
    Streaming,
    /// The stream dropped; the browser is reconnecting and will resume.
    Reconnecting,
    Done,
    /// The user pressed Stop (or the generation was cancelled elsewhere).
    Stopped,
    Failed,
    /// The server stopped while writing it; what was saved is kept.
    Interrupted,
}

impl TurnStatus {
    /// Whether the answer is still coming.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Waiting | Self::Streaming | Self::Reconnecting)
    }
}

/// The figures shown under an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerStats {
    pub tokens: u64,
    pub tokens_per_second: Option<f64>,
    /// From Send to the first token on screen (streamed answers).
    pub first_token_ms: Option<f64>,
    /// From Send to the whole answer on screen (whole answers).
    pub total_ms: Option<f64>,
}

impl AnswerStats {
    fn rate(tokens: u64, eval_duration_ns: u64) -> Option<f64> {
        (eval_duration_ns > 0).then(|| tokens as f64 / (eval_duration_ns as f64 / 1e9))
    }

    pub fn from_stream(done: &DoneChunk, first_token_ms: Option<f64>) -> Self {
        Self {
            tokens: done.counters.eval_count,
            tokens_per_second: Self::rate(done.counters.eval_count, done.counters.eval_duration),
            first_token_ms,
            total_ms: None,
        }
    }

    /// A whole answer (not streamed): its counters, and how long the reader waited.
    pub fn from_whole(done: &DoneChunk, total_ms: f64) -> Self {
        Self {
            tokens: done.counters.eval_count,
            tokens_per_second: Self::rate(done.counters.eval_count, done.counters.eval_duration),
            first_token_ms: None,
            total_ms: Some(total_ms),
        }
    }

    /// A saved answer's figures.
    pub fn from_saved(stats: &MessageStats) -> Self {
        Self {
            tokens: stats.tokens,
            tokens_per_second: stats.tokens_per_second,
            first_token_ms: stats.time_to_first_token.map(|ns| ns as f64 / 1e6),
            total_ms: None,
        }
    }

    /// `42 tokens · 51.3 tokens/s · first token 120 ms`
    pub fn summary(&self) -> String {
        let mut parts = vec![format!(
            "{} token{}",
            self.tokens,
            if self.tokens == 1 { "" } else { "s" }
        )];
        if let Some(rate) = self.tokens_per_second {
            parts.push(format!("{rate:.1} tokens/s"));
        }
        if let Some(ms) = self.first_token_ms {
            parts.push(format!("first token {}", milliseconds(ms)));
        }
        if let Some(ms) = self.total_ms {
            parts.push(format!("answered in {}", milliseconds(ms)));
        }
        parts.join(" · ")
    }
}

fn milliseconds(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// One message in the history. Its parts are separate signals so that the
/// growing answer re-renders only its own text.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The page's own key for it, for as long as the page shows it.
    pub id: u64,
    pub role: Role,
    /// The server's id, once saved.
    pub saved_as: ArcRwSignal<Option<String>>,
    /// The generation writing it, while it is written.
    pub generation: ArcRwSignal<Option<String>>,
    pub text: ArcRwSignal<String>,
    /// A reasoning model's thoughts before the answer.
    pub thinking: ArcRwSignal<String>,
    pub status: ArcRwSignal<TurnStatus>,
    pub error: ArcRwSignal<Option<String>>,
    pub stats: ArcRwSignal<Option<AnswerStats>>,
}

/// Turns are the same turn when they have the same key.
impl PartialEq for Turn {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Turn {
    pub fn new(id: u64, role: Role, text: String, status: TurnStatus) -> Self {
        Self {
            id,
            role,
            saved_as: ArcRwSignal::new(None),
            generation: ArcRwSignal::new(None),
            text: ArcRwSignal::new(text),
            thinking: ArcRwSignal::new(String::new()),
            status: ArcRwSignal::new(status),
            error: ArcRwSignal::new(None),
            stats: ArcRwSignal::new(None),
        }
    }

    /// A message as the server keeps it.
    pub fn saved(id: u64, message: &ConversationMessage) -> Self {
        let status = match (message.role, message.status) {
            (Role::User, _) => TurnStatus::Sent,
            (_, MessageStatus::Streaming) => TurnStatus::Streaming,
            (_, MessageStatus::Complete) => TurnStatus::Done,
            (_, MessageStatus::Stopped) => TurnStatus::Stopped,
            (_, MessageStatus::Failed) => TurnStatus::Failed,
            (_, MessageStatus::Interrupted) => TurnStatus::Interrupted,
        };
        let turn = Self::new(id, message.role, message.content.clone(), status);
        turn.saved_as.set(Some(message.id.clone()));
        turn.thinking
            .set(message.thinking.clone().unwrap_or_default());
        turn.generation.set(message.generation_id.clone());
        turn.error.set(message.error.clone());
        turn.stats
            .set(message.stats.as_ref().map(AnswerStats::from_saved));
        turn
    }

    /// Ends the answer with an error; the text so far stays.
    pub fn fail(&self, message: impl Into<String>) {
        self.error.set(Some(message.into()));
        self.status.set(TurnStatus::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_answer_reads_as_the_server_left_it() {
        let message = ConversationMessage {
            id: "m1".into(),
            parent_id: Some("q1".into()),
            role: Role::Assistant,
            content: "Half an ans".into(),
            thinking: Some("Hm.".into()),
            model: Some("llama3.2".into()),
            status: MessageStatus::Interrupted,
            error: Some("the server stopped".into()),
            stats: None,
            generation_id: None,
            created_at: String::new(),
        };
        let turn = Turn::saved(7, &message);
        assert_eq!(turn.status.get_untracked(), TurnStatus::Interrupted);
        assert_eq!(turn.saved_as.get_untracked().as_deref(), Some("m1"));
        assert_eq!(turn.text.get_untracked(), "Half an ans");
        assert_eq!(turn.thinking.get_untracked(), "Hm.");
        assert_eq!(
            turn.error.get_untracked().as_deref(),
            Some("the server stopped")
        );
    }

    #[test]
    fn stats_read_like_a_person_would_say_them() {
        let done = DoneChunk {
            counters: crate::api::Counters {
                eval_count: 42,
                eval_duration: 2_000_000_000,
                ..Default::default()
            },
            ..DoneChunk::default()
        };
        let stats = AnswerStats::from_stream(&done, Some(120.4));
        assert_eq!(
            stats.summary(),
            "42 tokens · 21.0 tokens/s · first token 120 ms"
        );
    }
}
