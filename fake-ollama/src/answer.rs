//! One generate or chat answer: its tokens, and the NDJSON lines Ollama
//! would send for them, streamed or whole.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Value, json};

use crate::behavior::{Behavior, Fault};
use crate::events::AnswerGuard;

/// Which Ollama endpoint is answering; they differ only in the chunk shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Generate,
    Chat,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Self::Generate => "/api/generate",
            Self::Chat => "/api/chat",
        }
    }
}

/// Everything needed to produce one answer.
#[derive(Debug)]
pub struct Answer {
    pub endpoint: Endpoint,
    /// The model name as the client wrote it (Ollama echoes it back).
    pub model: String,
    pub behavior: Behavior,
    tokens: Vec<String>,
    /// Whether `num_predict` cut the answer short.
    hit_length_limit: bool,
    prompt_eval_count: usize,
    context: Vec<i64>,
}

impl Answer {
    pub fn new(endpoint: Endpoint, model: String, behavior: Behavior, request: &Value) -> Self {
        let mut tokens = behavior.answer_tokens();
        let limit = request["options"]["num_predict"]
            .as_i64()
            .filter(|limit| *limit >= 0)
            .map(|limit| limit as usize);
        let hit_length_limit = limit.is_some_and(|limit| limit < tokens.len());
        if let Some(limit) = limit {
            tokens.truncate(limit);
        }
        let prompt_eval_count = prompt_words(endpoint, request);
        let context = request["context"]
            .as_array()
            .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        Self {
            endpoint,
            model,
            behavior,
            tokens,
            hit_length_limit,
            prompt_eval_count,
            context,
        }
    }

    fn created_at() -> String {
        humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
    }

    fn token_line(&self, token: &str) -> Bytes {
        let chunk = match self.endpoint {
            Endpoint::Generate => json!({
                "model": self.model,
                "created_at": Self::created_at(),
                "response": token,
                "done": false,
            }),
            Endpoint::Chat => json!({
                "model": self.model,
                "created_at": Self::created_at(),
                "message": {"role": "assistant", "content": token},
                "done": false,
            }),
        };
        line(&chunk)
    }

    /// The `done: true` object; `text` is the text it carries (usually empty).
    /// Its durations are synthetic but consistent (derived from the token
    /// counts and pacing), so tests can compare answers byte for byte.
    fn done_object(&self, text: &str) -> Value {
        const MS: u64 = 1_000_000;
        let eval_count = self.tokens.len() as u64;
        let prompt_eval_count = self.prompt_eval_count as u64;
        let load_duration = 2 * MS;
        let prompt_eval_duration = prompt_eval_count * MS / 2;
        let eval_duration = eval_count * self.behavior.token_delay_ms.max(10) * MS;
        let done_reason = if self.hit_length_limit {
            "length"
        } else {
            "stop"
        };
        let mut done = match self.endpoint {
            Endpoint::Generate => json!({
                "model": self.model,
                "created_at": Self::created_at(),
                "response": text,
                "done": true,
                "done_reason": done_reason,
                "context": self.context_after(),
            }),
            Endpoint::Chat => json!({
                "model": self.model,
                "created_at": Self::created_at(),
                "message": {"role": "assistant", "content": text},
                "done_reason": done_reason,
                "done": true,
            }),
        };
        let object = done.as_object_mut().expect("a JSON object");
        let mut set = |key: &str, value: u64| object.insert(key.into(), json!(value));
        set(
            "total_duration",
            load_duration + prompt_eval_duration + eval_duration,
        );
        set("load_duration", load_duration);
        set("prompt_eval_count", prompt_eval_count);
        set("prompt_eval_duration", prompt_eval_duration);
        set("eval_count", eval_count);
        set("eval_duration", eval_duration);
        done
    }

    /// The conversation's token ids after this answer, as Ollama returns them.
    fn context_after(&self) -> Vec<i64> {
        let start = self.context.len() as i64;
        let added = (self.prompt_eval_count + self.tokens.len()) as i64;
        self.context
            .iter()
            .copied()
            .chain(start + 1..=start + added)
            .collect()
    }

    /// The whole answer as one JSON (`"stream": false`), after pacing it as a
    /// stream would be paced. `Err` carries the error body of a failed answer.
    pub async fn whole(self, guard: &mut AnswerGuard) -> Result<Value, Value> {
        let cut = self.behavior.fault();
        let mut text = String::new();
        for (index, token) in self.tokens.iter().enumerate() {
            if let Some((after, fault)) = cut
                && index == after
            {
                guard.finish();
                return Err(json!({ "error": fault_message(&self.behavior, fault) }));
            }
            tokio::time::sleep(self.behavior.token_delay()).await;
            text.push_str(token);
            guard.token_sent();
        }
        guard.finish();
        Ok(self.done_object(&text))
    }

    /// The answer as Ollama's NDJSON stream, one line per token, each line
    /// its own body chunk so it is flushed as it is produced.
    pub fn stream(self, mut guard: AnswerGuard) -> impl Stream<Item = Result<Bytes, Infallible>> {
        async_stream::stream! {
            let cut = self.behavior.fault();
            let last = self.tokens.len().saturating_sub(1);
            let mut final_text = "";
            for (index, token) in self.tokens.iter().enumerate() {
                if let Some((after, fault)) = cut && index == after {
                    match fault {
                        Fault::ErrorLine => {
                            yield Ok(line(&json!({ "error": self.behavior.error_message })));
                        }
                        Fault::MalformedLine => yield Ok(Bytes::from_static(b"{\"model\": oops\n")),
                        Fault::Truncate => {}
                    }
                    guard.finish();
                    return;
                }
                tokio::time::sleep(self.behavior.token_delay()).await;
                if index == last && self.behavior.text_in_final_chunk {
                    final_text = token;
                    guard.token_sent();
                    break;
                }
                yield Ok(self.token_line(token));
                guard.token_sent();
            }
            yield Ok(line(&self.done_object(final_text)));
            guard.finish();
        }
    }
}

fn fault_message(behavior: &Behavior, fault: Fault) -> String {
    match fault {
        Fault::ErrorLine => behavior.error_message.clone(),
        Fault::MalformedLine => "malformed response".to_string(),
        Fault::Truncate => "connection closed".to_string(),
    }
}

fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).expect("JSON values serialise");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// A rough prompt token count: the words the model was given.
fn prompt_words(endpoint: Endpoint, request: &Value) -> usize {
    let count = |text: &Value| {
        text.as_str()
            .map_or(0, |text| text.split_whitespace().count())
    };
    match endpoint {
        Endpoint::Generate => count(&request["system"]) + count(&request["prompt"]),
        Endpoint::Chat => request["messages"].as_array().map_or(0, |messages| {
            messages.iter().map(|m| count(&m["content"])).sum()
        }),
    }
}
