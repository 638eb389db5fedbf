//! The one request every backend serves, whatever dialect a client spoke:
//! a model, a conversation (or a prompt to complete), typed sampling
//! options, how long to keep the model loaded, and whether to reason first;
//! and beside it, the request for embeddings.
//! Dialects parse into it; each backend maps it into its own upstream
//! request. No public wire type reaches an upstream as it is.

use std::time::Duration;

/// What a client asked a model to do.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceRequest {
    pub model: String,
    pub input: Input,
    pub options: Options,
    pub keep_alive: Option<KeepAlive>,
    pub think: Option<Think>,
    /// The shape the answer must take, for backends that can constrain it.
    pub format: Option<Format>,
}

/// The text the model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Answer the last message of a conversation.
    Chat(Vec<Message>),
    /// Continue a prompt, optionally under a system prompt and after the
    /// token ids (`context`) of an earlier exchange. A `raw` prompt is
    /// already in the model's own format (a client applied the template, or
    /// wrote fill-in-the-middle tokens): it goes to the model as it is.
    Completion {
        prompt: String,
        system: Option<String>,
        context: Option<Vec<i64>>,
        raw: bool,
    },
    /// Nothing to answer: load the model (or, with a zero keep-alive,
    /// unload it), as Ollama does for an empty prompt. The answer is a
    /// `Done` whose `done_reason` is `load` or `unload`.
    Load,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }
}

/// Sampling and length settings. `None` leaves each to the backend's
/// default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub seed: Option<i64>,
    /// Most tokens to generate; negative means no limit (Ollama's `num_predict`).
    pub max_tokens: Option<i32>,
    /// Text that ends the answer (not included in it).
    pub stop: Option<Vec<String>>,
    pub repeat_penalty: Option<f32>,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: Option<i32>,
    /// Context window in tokens (Ollama's `num_ctx`).
    pub context_window: Option<u32>,
    /// Options only some backends know (Ollama's `mirostat`, `num_gpu`…),
    /// passed as given to the backends that take them, ignored by others.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// How long the backend keeps the model loaded after this request, as the
/// client wrote it: Ollama gets it back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum KeepAlive {
    Seconds(f64),
    /// A duration ("5m", "1h30m"), or a number of seconds as text.
    Text(String),
}

/// What a keep-alive asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Unload once idle this long (zero: right after the answer).
    For(Duration),
    Forever,
}

/// A keep-alive that is neither a number nor a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("keep_alive {text:?} is not a duration: {reason}")]
pub struct InvalidKeepAlive {
    text: String,
    reason: String,
}

impl KeepAlive {
    /// Reads it as Ollama does: negative means forever.
    pub fn lifetime(&self) -> Result<Lifetime, InvalidKeepAlive> {
        let seconds = |seconds: f64| {
            if seconds < 0.0 {
                Lifetime::Forever
            } else {
                Lifetime::For(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
            }
        };
        match self {
            Self::Seconds(value) => Ok(seconds(*value)),
            Self::Text(text) => {
                let text = text.trim();
                if let Ok(value) = text.parse::<f64>() {
                    Ok(seconds(value))
                } else if text.starts_with('-') {
                    Ok(Lifetime::Forever)
                } else {
                    humantime::parse_duration(text)
                        .map(Lifetime::For)
                        .map_err(|error| InvalidKeepAlive {
                            text: text.to_string(),
                            reason: error.to_string(),
                        })
                }
            }
        }
    }
}

/// A constraint on the answer's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// Any JSON value (Ollama's `format: "json"`).
    Json,
    /// JSON matching this JSON Schema.
    Schema(serde_json::Value),
}

/// Whether a reasoning model thinks before it answers: on or off, or a
/// level (`low`, `medium`, `high`) for models that take one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Think {
    Enabled(bool),
    Level(String),
}

/// Texts to turn into vectors: the other request a backend serves.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    pub model: String,
    /// One vector comes back per input, in order.
    pub input: Vec<String>,
    /// Cut an input longer than the context window rather than refuse it.
    pub truncate: bool,
    /// Keep only the first `dimensions` of each vector (scaled to unit
    /// length again), for models trained to allow it.
    pub dimensions: Option<usize>,
    pub options: Options,
    pub keep_alive: Option<KeepAlive>,
}

/// Unit-length vectors, one per input, and what making them took.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    /// The model, as the backend names it.
    pub model: String,
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, over every input.
    pub prompt_tokens: u64,
    /// Nanoseconds, from the request's arrival.
    pub total_duration: u64,
    /// Nanoseconds spent loading the model.
    pub load_duration: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_reads_like_ollama() {
        let lifetime = |keep_alive: KeepAlive| keep_alive.lifetime().unwrap();
        assert_eq!(
            lifetime(KeepAlive::Text("5m".into())),
            Lifetime::For(Duration::from_secs(300))
        );
        assert_eq!(lifetime(KeepAlive::Text("-1".into())), Lifetime::Forever);
        assert_eq!(lifetime(KeepAlive::Text("-1m".into())), Lifetime::Forever);
        assert_eq!(
            lifetime(KeepAlive::Seconds(0.0)),
            Lifetime::For(Duration::ZERO)
        );
        assert_eq!(
            lifetime(KeepAlive::Text("30".into())),
            Lifetime::For(Duration::from_secs(30))
        );
        assert!(KeepAlive::Text("soon".into()).lifetime().is_err());
    }
}
