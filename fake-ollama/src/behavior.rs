//! How the fake answers: the knobs a test turns (reply, pacing, faults).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The fake's behaviour for generate and chat requests. Set at start, and
/// replaced at run time with `POST /_fake/behavior`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behavior {
    /// Tokens per answer when `reply` is not set (words of a fixed text).
    pub tokens: usize,
    /// The exact answer; split into tokens at word boundaries.
    pub reply: Option<String>,
    /// Reasoning streamed before the answer, as Ollama streams a thinking
    /// model's (`thinking` chunks), unless the request says `think: false`.
    pub thinking: Option<String>,
    /// Pause before each token, in milliseconds.
    pub token_delay_ms: u64,
    /// Pause before the response headers, in milliseconds.
    pub headers_delay_ms: u64,
    /// Never send response headers (until the client gives up).
    pub hang_before_headers: bool,
    /// Answer with this status and Ollama's error body (`error_message`)
    /// instead of a stream, as Ollama does when a model fails to load.
    pub status_before_body: Option<u16>,
    /// After this many tokens, send Ollama's `{"error": …}` line and end.
    pub fail_after: Option<usize>,
    /// After this many tokens, send a line that is not JSON and end.
    pub malformed_after: Option<usize>,
    /// After this many tokens, end the stream without a `done` chunk.
    pub truncate_after: Option<usize>,
    /// Put the last token's text in the `done: true` chunk, as Ollama
    /// sometimes does (the Go API dropped that text).
    pub text_in_final_chunk: bool,
    /// The message of `fail_after`'s error line and `status_before_body`'s body.
    pub error_message: String,
    /// Progress lines a pull sends for its one layer.
    pub pull_steps: usize,
    /// Pause before each progress line of a pull, in milliseconds.
    pub pull_step_ms: u64,
    /// The bearer key the OpenAI side (`/v1/*`) requires; none: any.
    pub api_key: Option<String>,
    /// What the OpenAI side's `/health` answers (llama.cpp server says 503
    /// while its model loads); none: 200.
    pub health_status: Option<u16>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            tokens: 8,
            reply: None,
            thinking: None,
            token_delay_ms: 0,
            headers_delay_ms: 0,
            hang_before_headers: false,
            status_before_body: None,
            fail_after: None,
            malformed_after: None,
            truncate_after: None,
            text_in_final_chunk: false,
            error_message: "model runner has unexpectedly stopped".to_string(),
            pull_steps: 4,
            pull_step_ms: 0,
            api_key: None,
            health_status: None,
        }
    }
}

/// Words the default answer cycles through.
const FILLER: &[&str] = &[
    "The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog.",
];

impl Behavior {
    /// The answer's tokens, each with its leading space, as a model streams them.
    pub fn answer_tokens(&self) -> Vec<String> {
        match &self.reply {
            Some(reply) => split_into_tokens(reply),
            None => (0..self.tokens)
                .map(|i| {
                    let word = FILLER[i % FILLER.len()];
                    if i == 0 {
                        word.to_string()
                    } else {
                        format!(" {word}")
                    }
                })
                .collect(),
        }
    }

    /// The reasoning's tokens, split as the answer's are.
    pub fn thinking_tokens(&self) -> Vec<String> {
        self.thinking
            .as_deref()
            .map(split_into_tokens)
            .unwrap_or_default()
    }

    pub fn token_delay(&self) -> Duration {
        Duration::from_millis(self.token_delay_ms)
    }

    pub fn headers_delay(&self) -> Duration {
        Duration::from_millis(self.headers_delay_ms)
    }

    /// The token count after which the stream stops short, and how.
    pub fn fault(&self) -> Option<(usize, Fault)> {
        [
            (self.fail_after, Fault::ErrorLine),
            (self.malformed_after, Fault::MalformedLine),
            (self.truncate_after, Fault::Truncate),
        ]
        .into_iter()
        .filter_map(|(after, fault)| after.map(|after| (after, fault)))
        .min_by_key(|(after, _)| *after)
    }
}

/// A way for a stream to go wrong part-way through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    ErrorLine,
    MalformedLine,
    Truncate,
}

/// Splits text so that concatenating the pieces gives it back exactly:
/// every piece but the first starts with the whitespace before its word.
fn split_into_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (index, ch) in text.char_indices() {
        if ch.is_whitespace() {
            if in_word {
                tokens.push(text[start..index].to_string());
                start = index;
                in_word = false;
            }
        } else {
            in_word = true;
        }
    }
    if start < text.len() {
        tokens.push(text[start..].to_string());
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_tokens_concatenate_to_the_reply() {
        let reply = "Hello,  world!\nIt's <b>me</b> ";
        let behavior = Behavior {
            reply: Some(reply.to_string()),
            ..Behavior::default()
        };
        let tokens = behavior.answer_tokens();
        assert_eq!(tokens.concat(), reply);
        assert_eq!(tokens[0], "Hello,");
        assert_eq!(tokens[1], "  world!");
    }

    #[test]
    fn filler_answer_has_the_requested_length() {
        let behavior = Behavior {
            tokens: 12,
            ..Behavior::default()
        };
        let tokens = behavior.answer_tokens();
        assert_eq!(tokens.len(), 12);
        assert_eq!(tokens[0], "The");
        assert_eq!(tokens[9], " The");
    }

    #[test]
    fn the_earliest_fault_wins() {
        let behavior = Behavior {
            fail_after: Some(5),
            truncate_after: Some(2),
            ..Behavior::default()
        };
        assert_eq!(behavior.fault(), Some((2, Fault::Truncate)));
    }
}
