//! The paths a token can take to the client, and how to read each one's
//! wire format: Ollama's NDJSON (direct), llm-chat's SSE (generate stream
//! and generations), and OpenAI's SSE (llm-chat's `/v1` and LiteLLM).

use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::stats::StreamRecord;

/// Where a stream is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// fake-ollama's `/api/chat`: the limit, with no gateway.
    Direct,
    /// The direct path through a bare TCP forwarder: what one more process
    /// on the path costs here before any HTTP work, the floor of any relay.
    Forwarder,
    /// llm-chat `POST /api/v1/generate/stream`.
    GenerateStream,
    /// llm-chat `POST /api/v1/generations` then `GET …/events`.
    Generations,
    /// llm-chat `POST /api/v1/conversations/{id}/messages` then `GET …/events`
    /// (the conversation made beforehand, outside the timing).
    Conversation,
    /// llm-chat's OpenAI dialect, `/v1/chat/completions` with `stream: true`:
    /// the like-for-like comparison with LiteLLM.
    OpenAi,
    /// LiteLLM proxy `/v1/chat/completions` with `stream: true`.
    LiteLlm,
    /// llm-chat `POST /api/v1/generate/stream` routed over three upstreams
    /// (the router's cost: the same upstream, listed three times).
    Pool,
    /// LiteLLM's router over the same three: one model, three deployments.
    LiteLlmRouter,
}

impl PathKind {
    /// LiteLLM's paths: measured as the peer, their errors their own.
    pub fn is_litellm(self) -> bool {
        matches!(self, Self::LiteLlm | Self::LiteLlmRouter)
    }

    /// llm-chat's own paths (not the direct path, the forwarder or LiteLLM).
    pub fn is_ours(self) -> bool {
        !matches!(self, Self::Direct | Self::Forwarder) && !self.is_litellm()
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct (Ollama NDJSON)",
            Self::Forwarder => "bare TCP forwarder (no HTTP)",
            Self::GenerateStream => "llm-chat /generate/stream",
            Self::Generations => "llm-chat generations",
            Self::Conversation => "llm-chat conversation message",
            Self::OpenAi => "llm-chat /v1/chat/completions",
            Self::LiteLlm => "LiteLLM proxy",
            Self::Pool => "llm-chat /generate/stream, 3 upstreams",
            Self::LiteLlmRouter => "LiteLLM router, 3 deployments",
        }
    }

    fn format(self) -> Format {
        match self {
            Self::Direct | Self::Forwarder => Format::Ndjson,
            Self::GenerateStream | Self::Generations | Self::Conversation | Self::Pool => {
                Format::LlmChatSse
            }
            Self::OpenAi | Self::LiteLlm | Self::LiteLlmRouter => Format::OpenAiSse,
        }
    }
}

/// A path with its address.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: PathKind,
    pub base_url: String,
    pub model: String,
    /// LiteLLM's master key.
    pub api_key: Option<String>,
    /// The tokens the upstream sends per answer: a stream that ends with
    /// another count lost or invented some, and counts as an error.
    pub expected_tokens: Option<u64>,
}

impl Target {
    /// What a stream needs made before it is timed: a conversation to post
    /// into, for the conversation path.
    pub async fn prepare(&self, client: &reqwest::Client) -> Result<Option<String>, String> {
        if self.kind != PathKind::Conversation {
            return Ok(None);
        }
        let created = client
            .post(format!("{}/api/v1/conversations", self.base_url))
            .json(&json!({"model": self.model}))
            .send()
            .await
            .map_err(|error| format!("create: {error}"))?;
        if created.status() != 201 {
            return Err(format!("create: HTTP {}", created.status()));
        }
        let created: Value = created.json().await.map_err(|error| error.to_string())?;
        Ok(created["id"].as_str().map(str::to_string))
    }

    /// Sends the request(s) that open a stream; the response's body is the stream.
    pub async fn open(
        &self,
        client: &reqwest::Client,
        prompt: &str,
        prepared: Option<&str>,
    ) -> Result<reqwest::Response, String> {
        let messages = json!([{"role": "user", "content": prompt}]);
        let request = match self.kind {
            PathKind::Direct | PathKind::Forwarder => client
                .post(format!("{}/api/chat", self.base_url))
                .json(&json!({"model": self.model, "messages": messages})),
            PathKind::GenerateStream | PathKind::Pool => client
                .post(format!("{}/api/v1/generate/stream", self.base_url))
                .json(&json!({"model": self.model, "prompt": prompt})),
            PathKind::Generations => {
                let created = client
                    .post(format!("{}/api/v1/generations", self.base_url))
                    .json(&json!({"model": self.model, "messages": messages}))
                    .send()
                    .await
                    .map_err(|error| format!("create: {error}"))?;
                if created.status() != 201 {
                    return Err(format!(
                        "create: HTTP {}: {}",
                        created.status(),
                        created.text().await.unwrap_or_default()
                    ));
                }
                let created: Value = created.json().await.map_err(|error| error.to_string())?;
                let url = created["events_url"].as_str().ok_or("no events_url")?;
                client.get(format!("{}{url}", self.base_url))
            }
            PathKind::Conversation => {
                let id = prepared.ok_or("no conversation to post into")?;
                let posted = client
                    .post(format!(
                        "{}/api/v1/conversations/{id}/messages",
                        self.base_url
                    ))
                    .json(&json!({"content": prompt}))
                    .send()
                    .await
                    .map_err(|error| format!("post: {error}"))?;
                if posted.status() != 201 {
                    return Err(format!(
                        "post: HTTP {}: {}",
                        posted.status(),
                        posted.text().await.unwrap_or_default()
                    ));
                }
                let posted: Value = posted.json().await.map_err(|error| error.to_string())?;
                let url = posted["reply"]["generation"]["events_url"]
                    .as_str()
                    .ok_or("no events_url")?;
                client.get(format!("{}{url}", self.base_url))
            }
            PathKind::OpenAi => client
                .post(format!("{}/v1/chat/completions", self.base_url))
                .json(&json!({"model": self.model, "messages": messages, "stream": true})),
            PathKind::LiteLlm | PathKind::LiteLlmRouter => client
                .post(format!("{}/v1/chat/completions", self.base_url))
                .bearer_auth(self.api_key.as_deref().unwrap_or_default())
                .json(&json!({"model": self.model, "messages": messages, "stream": true})),
        };
        let response = request.send().await.map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            ));
        }
        Ok(response)
    }

    /// Opens a stream and reads it to its end, timing every token.
    pub async fn measure(&self, client: &reqwest::Client, prompt: &str) -> StreamRecord {
        let mut record = StreamRecord::default();
        let prepared = match self.prepare(client).await {
            Ok(prepared) => prepared,
            Err(error) => {
                record.error = Some(error);
                return record;
            }
        };
        let sent = Instant::now();
        let response = match self.open(client, prompt, prepared.as_deref()).await {
            Ok(response) => response,
            Err(error) => {
                record.error = Some(error);
                return record;
            }
        };
        let mut reader = TokenReader::new(self.kind.format());
        let mut last = None;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk: Bytes = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    record.error = Some(format!("body: {error}"));
                    return record;
                }
            };
            let read = reader.push(&chunk);
            if read.tokens > 0 {
                let now = Instant::now();
                match last {
                    None => record.ttft = Some(now - sent),
                    Some(previous) => record.gaps.push(now - previous),
                }
                // Tokens that arrived in one read have no gap between them.
                record.gaps.extend(std::iter::repeat_n(
                    std::time::Duration::ZERO,
                    read.tokens as usize - 1,
                ));
                last = Some(now);
                record.tokens += read.tokens;
            }
            if let Some(error) = read.error {
                record.error = Some(error);
                return record;
            }
            if read.done {
                if let Some(expected) = self.expected_tokens
                    && record.tokens != expected
                {
                    record.error = Some(format!(
                        "{} tokens arrived of the {expected} sent",
                        record.tokens
                    ));
                }
                return record;
            }
        }
        record.error = Some("the stream ended before its end marker".into());
        record
    }
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Ndjson,
    LlmChatSse,
    OpenAiSse,
}

/// What one body chunk held.
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub tokens: u64,
    pub done: bool,
    pub error: Option<String>,
}

/// Counts tokens in a body as it arrives, reading just enough of each line
/// to tell tokens from the end: the load generator shares the cores with
/// what it measures, so it must stay cheap.
pub struct TokenReader {
    format: Format,
    pending: Vec<u8>,
    /// The SSE event name of the frame being read.
    event: Option<String>,
}

impl TokenReader {
    fn new(format: Format) -> Self {
        Self {
            format,
            pending: Vec::new(),
            event: None,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Read {
        self.pending.extend_from_slice(chunk);
        let mut read = Read::default();
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + offset];
            start += offset + 1;
            let line = std::str::from_utf8(line)
                .unwrap_or_default()
                .trim_end_matches('\r');
            match self.format {
                Format::Ndjson => ndjson_line(line, &mut read),
                Format::LlmChatSse => {
                    if let Some(name) = line.strip_prefix("event: ") {
                        self.event = Some(name.to_string());
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        match self.event.as_deref() {
                            None if data.starts_with("{\"response\":") => read.tokens += 1,
                            Some("done") => read.done = true,
                            Some(_) => read.error = Some(data.to_string()),
                            None => {}
                        }
                    } else if line.is_empty() {
                        self.event = None;
                    }
                }
                Format::OpenAiSse => {
                    if let Some(data) = line.strip_prefix("data: ") {
                        openai_data(data, &mut read);
                    }
                }
            }
            if read.done || read.error.is_some() {
                break;
            }
        }
        self.pending.drain(..start);
        read
    }
}

fn ndjson_line(line: &str, read: &mut Read) {
    if line.is_empty() {
        return;
    }
    if line.contains("\"done\":false") {
        read.tokens += 1;
    } else if line.contains("\"done\":true") {
        read.done = true;
    } else if line.starts_with("{\"error\"") {
        read.error = Some(line.to_string());
    }
}

/// Reads one OpenAI chunk without parsing it: the reader runs on the cores
/// it measures, and a JSON parse per chunk would make the client, not the
/// gateway, the bottleneck. A token is a non-empty top-level `"content"`
/// string (not `reasoning_content`, not the role chunk's empty one); the
/// scan allows the spaces Python's JSON puts after `,` and `:` (LiteLLM).
fn openai_data(data: &str, read: &mut Read) {
    if data == "[DONE]" {
        read.done = true;
        return;
    }
    if data.starts_with("{\"error\"") {
        read.error = Some(data.to_string());
        return;
    }
    if !data.starts_with('{') {
        read.error = Some(format!("unreadable chunk: {data}"));
        return;
    }
    if has_content(data) {
        read.tokens += 1;
    }
}

/// Whether a chunk holds `"content": "<something>"` as a key of its own.
fn has_content(data: &str) -> bool {
    const KEY: &str = "\"content\":";
    let bytes = data.as_bytes();
    let mut from = 0;
    while let Some(offset) = data[from..].find(KEY) {
        let at = from + offset;
        from = at + KEY.len();
        // A key starts an object or follows a comma; `_content` or an
        // escaped quote inside a string does not.
        let before = bytes[..at].iter().rev().find(|b| **b != b' ');
        if !matches!(before, Some(b'{' | b',')) {
            continue;
        }
        let rest = data[from..].trim_start_matches(' ').as_bytes();
        if rest.first() == Some(&b'"') && rest.get(1).is_some_and(|b| *b != b'"') {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_split_anywhere_are_counted_once() {
        let body = "retry: 1000\n\nid: 1\ndata: {\"response\":\"a\",\"done\":false}\n\ndata: {\"response\":\"b\",\"done\":false}\n\nevent: done\ndata: {\"done\":true}\n\n";
        let mut reader = TokenReader::new(Format::LlmChatSse);
        let mut total = Read::default();
        for piece in body.as_bytes().chunks(7) {
            let read = reader.push(piece);
            total.tokens += read.tokens;
            total.done |= read.done;
        }
        assert_eq!(total.tokens, 2);
        assert!(total.done);
    }

    #[test]
    fn an_error_event_is_an_error() {
        let mut reader = TokenReader::new(Format::LlmChatSse);
        let read = reader.push(b"event: error\ndata: {\"error\":\"boom\"}\n\n");
        assert_eq!(read.error.as_deref(), Some("{\"error\":\"boom\"}"));
    }

    #[test]
    fn ndjson_and_openai_streams_are_read() {
        let mut ndjson = TokenReader::new(Format::Ndjson);
        let read =
            ndjson.push(b"{\"message\":{\"content\":\"x\"},\"done\":false}\n{\"done\":true}\n");
        assert_eq!((read.tokens, read.done), (1, true));
        let mut openai = TokenReader::new(Format::OpenAiSse);
        let read = openai.push(
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n",
        );
        assert_eq!((read.tokens, read.done), (1, true));
    }

    #[test]
    fn openai_chunks_are_counted_without_parsing() {
        let count = |data: &str| {
            let mut read = Read::default();
            openai_data(data, &mut read);
            read
        };
        assert_eq!(
            count(r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#).tokens,
            1
        );
        // Python's spacing, as LiteLLM writes it.
        assert_eq!(
            count(r#"{"choices": [{"delta": {"role": "assistant", "content": "Hi"}}]}"#).tokens,
            1
        );
        assert_eq!(
            count(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#).tokens,
            0
        );
        assert_eq!(
            count(r#"{"choices":[{"delta":{"reasoning_content":"hm"}}]}"#).tokens,
            0
        );
        assert_eq!(
            count(r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#).tokens,
            0
        );
        // A quote inside the text is escaped: no key of its own.
        assert_eq!(
            count(r#"{"choices":[{"delta":{"content":"\",\"content\":\"x"}}]}"#).tokens,
            1
        );
        assert_eq!(
            count(r#"{"choices":[{"delta":{"refusal":"a \",\"content\": \"\""}}]}"#).tokens,
            0
        );
        assert!(count(r#"{"error": {"message": "boom"}}"#).error.is_some());
        assert!(count("[DONE]").done);
    }
}
