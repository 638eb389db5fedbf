//! One generate or chat answer: its tokens, and the NDJSON lines Ollama
//! would send for them, streamed or whole.

use std::convert::Infallible;
use std::io::Write as _;

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
    /// The model name as a JSON string, ready to paste into every line.
    model_json: String,
    /// Reasoning, streamed before the answer's tokens.
    thoughts: Vec<String>,
    tokens: Vec<String>,
    /// Whether `num_predict` cut the answer short.
    hit_length_limit: bool,
    prompt_eval_count: usize,
    context: Vec<i64>,
}

impl Answer {
    pub fn new(endpoint: Endpoint, model: String, behavior: Behavior, request: &Value) -> Self {
        let mut tokens = behavior.answer_tokens();
        let thoughts = if request["think"] == json!(false) {
            Vec::new()
        } else {
            behavior.thinking_tokens()
        };
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
            model_json: serde_json::to_string(&model).expect("strings serialise"),
            model,
            behavior,
            thoughts,
            tokens,
            hit_length_limit,
            prompt_eval_count,
            context,
        }
    }

    fn created_at() -> String {
        humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
    }

    /// Appends one token's NDJSON line, written field by field (the same
    /// bytes `serde_json` would give for Ollama's chunk, without building a
    /// JSON value per token, so the fake is never the bottleneck).
    fn push_token_line(&self, token: &str, out: &mut Vec<u8>) {
        self.push_line_start(out);
        match self.endpoint {
            Endpoint::Generate => {
                out.extend_from_slice(b"\",\"response\":");
                serde_json::to_writer(&mut *out, token).expect("strings serialise");
                out.extend_from_slice(b",\"done\":false}\n");
            }
            Endpoint::Chat => {
                out.extend_from_slice(b"\",\"message\":{\"role\":\"assistant\",\"content\":");
                serde_json::to_writer(&mut *out, token).expect("strings serialise");
                out.extend_from_slice(b"},\"done\":false}\n");
            }
        }
    }

    /// Appends one line of reasoning, as Ollama sends a thinking model's.
    fn push_thought_line(&self, thought: &str, out: &mut Vec<u8>) {
        self.push_line_start(out);
        match self.endpoint {
            Endpoint::Generate => {
                out.extend_from_slice(b"\",\"response\":\"\",\"thinking\":");
                serde_json::to_writer(&mut *out, thought).expect("strings serialise");
                out.extend_from_slice(b",\"done\":false}\n");
            }
            Endpoint::Chat => {
                out.extend_from_slice(
                    b"\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":",
                );
                serde_json::to_writer(&mut *out, thought).expect("strings serialise");
                out.extend_from_slice(b"},\"done\":false}\n");
            }
        }
    }

    /// `{"model":…,"created_at":"…`: how every line starts.
    fn push_line_start(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"model\":");
        out.extend_from_slice(self.model_json.as_bytes());
        out.extend_from_slice(b",\"created_at\":\"");
        let _ = write!(
            out,
            "{}",
            humantime::format_rfc3339_nanos(std::time::SystemTime::now())
        );
    }

    /// The `done: true` object; `text` is the text it carries (usually empty).
    /// Its durations are synthetic but consistent (derived from the token
    /// counts and pacing), so tests can compare answers byte for byte.
    fn done_object(&self, text: &str) -> Value {
        const MS: u64 = 1_000_000;
        let eval_count = (self.thoughts.len() + self.tokens.len()) as u64;
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
        let added = (self.prompt_eval_count + self.thoughts.len() + self.tokens.len()) as i64;
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
        for _ in &self.thoughts {
            tokio::time::sleep(self.behavior.token_delay()).await;
        }
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
        let mut done = self.done_object(&text);
        if !self.thoughts.is_empty() {
            let thinking = json!(self.thoughts.concat());
            match self.endpoint {
                Endpoint::Generate => done["thinking"] = thinking,
                Endpoint::Chat => done["message"]["thinking"] = thinking,
            }
        }
        Ok(done)
    }

    /// The answer as Ollama's NDJSON stream: one line per token, each its
    /// own body chunk, flushed as produced. With no delay (the benchmark's
    /// saturation runs) there is no timer either: lines are produced as fast
    /// as the connection takes them.
    pub fn stream(self, mut guard: AnswerGuard) -> impl Stream<Item = Result<Bytes, Infallible>> {
        async_stream::stream! {
            let cut = self.behavior.fault();
            let paced = !self.behavior.token_delay().is_zero();
            let last = self.tokens.len().saturating_sub(1);
            let mut final_text = "";
            let mut pending = Vec::new();
            for thought in &self.thoughts {
                if paced {
                    tokio::time::sleep(self.behavior.token_delay()).await;
                }
                self.push_thought_line(thought, &mut pending);
                yield Ok(Bytes::from(std::mem::take(&mut pending)));
            }
            for (index, token) in self.tokens.iter().enumerate() {
                if let Some((after, fault)) = cut && index == after {
                    match fault {
                        Fault::ErrorLine => {
                            pending.extend_from_slice(&line(&json!({ "error": self.behavior.error_message })));
                        }
                        Fault::MalformedLine => pending.extend_from_slice(b"{\"model\": oops\n"),
                        Fault::Truncate => {}
                    }
                    if !pending.is_empty() {
                        yield Ok(Bytes::from(std::mem::take(&mut pending)));
                    }
                    guard.finish();
                    return;
                }
                if paced {
                    tokio::time::sleep(self.behavior.token_delay()).await;
                }
                if index == last && self.behavior.text_in_final_chunk {
                    final_text = token;
                    guard.token_sent();
                    break;
                }
                self.push_token_line(token, &mut pending);
                guard.token_sent();
                yield Ok(Bytes::from(std::mem::take(&mut pending)));
            }
            pending.extend_from_slice(&line(&self.done_object(final_text)));
            yield Ok(Bytes::from(pending));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written line is byte for byte what serde_json writes for the
    /// same chunk (created_at aside, which is the time of writing).
    #[test]
    fn token_lines_match_serde_json() {
        for endpoint in [Endpoint::Generate, Endpoint::Chat] {
            let answer = Answer::new(endpoint, "m\"odel".into(), Behavior::default(), &json!({}));
            let token = "a \"quoted\"\n<tag> é";
            let mut line = Vec::new();
            answer.push_token_line(token, &mut line);
            let parsed: Value = serde_json::from_slice(&line).unwrap();
            let expected = match endpoint {
                Endpoint::Generate => {
                    json!({"model": "m\"odel", "created_at": parsed["created_at"], "response": token, "done": false})
                }
                Endpoint::Chat => json!({"model": "m\"odel", "created_at": parsed["created_at"],
                                         "message": {"role": "assistant", "content": token}, "done": false}),
            };
            let mut expected_line = serde_json::to_vec(&expected).unwrap();
            expected_line.push(b'\n');
            assert_eq!(
                String::from_utf8(line).unwrap(),
                String::from_utf8(expected_line).unwrap()
            );
        }
    }

    #[test]
    fn thought_lines_match_serde_json() {
        for endpoint in [Endpoint::Generate, Endpoint::Chat] {
            let answer = Answer::new(endpoint, "m".into(), Behavior::default(), &json!({}));
            let thought = "hm \"é\"\n";
            let mut line = Vec::new();
            answer.push_thought_line(thought, &mut line);
            let parsed: Value = serde_json::from_slice(&line).unwrap();
            let expected = match endpoint {
                Endpoint::Generate => json!({"model": "m", "created_at": parsed["created_at"],
                                             "response": "", "thinking": thought, "done": false}),
                Endpoint::Chat => json!({"model": "m", "created_at": parsed["created_at"],
                                         "message": {"role": "assistant", "content": "", "thinking": thought},
                                         "done": false}),
            };
            let mut expected_line = serde_json::to_vec(&expected).unwrap();
            expected_line.push(b'\n');
            assert_eq!(line, expected_line);
        }
    }
}
