//! The conversation the page holds: turns with their own reactive text, so
//! a token touches one bubble, never the whole history.

use leptos::prelude::*;

use crate::api::{ChatMessage, ChatResponse, DoneChunk, Role};

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

    pub fn from_whole(response: &ChatResponse, total_ms: f64) -> Self {
        Self {
            tokens: response.counters.eval_count,
            tokens_per_second: Self::rate(
                response.counters.eval_count,
                response.counters.eval_duration,
            ),
            first_token_ms: None,
            total_ms: Some(total_ms),
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
    pub id: u64,
    pub role: Role,
    pub text: ArcRwSignal<String>,
    pub status: ArcRwSignal<TurnStatus>,
    pub error: ArcRwSignal<Option<String>>,
    pub stats: ArcRwSignal<Option<AnswerStats>>,
}

impl Turn {
    pub fn new(id: u64, role: Role, text: String, status: TurnStatus) -> Self {
        Self {
            id,
            role,
            text: ArcRwSignal::new(text),
            status: ArcRwSignal::new(status),
            error: ArcRwSignal::new(None),
            stats: ArcRwSignal::new(None),
        }
    }

    /// Ends the answer with an error; the text so far stays.
    pub fn fail(&self, message: impl Into<String>) {
        self.error.set(Some(message.into()));
        self.status.set(TurnStatus::Failed);
    }
}

/// The messages to send with the next request: every turn with text, in
/// order, so the model sees the whole conversation. An answer that failed
/// before any text is left out; a stopped one keeps what it said.
pub fn history(turns: &[Turn]) -> Vec<ChatMessage> {
    turns
        .iter()
        .filter_map(|turn| {
            let text = turn.text.get_untracked();
            (!text.is_empty()).then(|| ChatMessage::new(turn.role, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_order_and_skips_empty_answers() {
        let turns = [
            Turn::new(1, Role::User, "Hi".into(), TurnStatus::Sent),
            Turn::new(2, Role::Assistant, "Hello!".into(), TurnStatus::Done),
            Turn::new(3, Role::User, "More".into(), TurnStatus::Sent),
            Turn::new(4, Role::Assistant, String::new(), TurnStatus::Failed),
            Turn::new(5, Role::User, "Again".into(), TurnStatus::Sent),
        ];
        let messages = history(&turns);
        let roles: Vec<_> = messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User, Role::User]);
        assert_eq!(messages[1].content, "Hello!");
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
