//! The Ollama backend: a typed HTTP client for `/api/tags`, `/api/version`,
//! `/api/generate` and `/api/chat`, decoding Ollama's NDJSON streams.
//!
//! Generations are always requested as streams, even for a non-streaming
//! client: only connect and time-to-headers are bounded, so an answer may
//! take as long as it takes (the Go API cut every answer at 30 s).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use app::api::{BackendKind, ChatRequest, GenerateRequest, ModelDetails, ModelInfo};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use url::Url;

use super::ndjson::LineBuffer;
use super::{
    Backend, BackendError, BackendHealth, BoxFuture, Completion, StreamEvent, TokenStream,
};

const NAME: &str = "ollama";

/// How to reach Ollama.
#[derive(Debug, Clone)]
pub struct OllamaSettings {
    pub url: Url,
    /// Bounds connecting, and separately the wait for response headers.
    pub timeout: Duration,
    pub tcp_keep_alive: Duration,
    pub idle_timeout: Duration,
}

/// A client of one Ollama server. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct OllamaBackend {
    base: Url,
    /// The API's URLs, resolved once rather than per request.
    urls: Arc<Urls>,
    http: reqwest::Client,
    timeout: Duration,
    /// Answers being streamed from Ollama right now.
    open_streams: Arc<AtomicUsize>,
}

impl OllamaBackend {
    pub fn new(settings: OllamaSettings) -> Result<Self, String> {
        let mut base = settings.url;
        if base.scheme() != "http" {
            return Err(format!(
                "OLLAMA_URL must be an http:// URL (got {base}); put a TLS-terminating proxy \
                 on the same host in front of a remote Ollama"
            ));
        }
        // `join` replaces the last path segment unless the base ends in '/'.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .tcp_keepalive(settings.tcp_keep_alive)
            .pool_idle_timeout(settings.idle_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|error| format!("cannot build the Ollama HTTP client: {error}"))?;
        let urls = Arc::new(Urls {
            tags: join(&base, "api/tags"),
            version: join(&base, "api/version"),
            generate: join(&base, "api/generate"),
            chat: join(&base, "api/chat"),
        });
        Ok(Self {
            base,
            urls,
            http,
            timeout: settings.timeout,
            open_streams: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Sends a request and waits, within the timeout, for a 2xx status;
    /// any other status becomes the matching [`BackendError`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, BackendError> {
        let response = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => {
                return Err(BackendError::Timeout {
                    backend: NAME,
                    after: self.timeout,
                });
            }
            Ok(Err(error)) => return Err(self.unreachable(&error)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.refusal(response).await)
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> BackendError {
        BackendError::Unreachable {
            backend: NAME,
            url: self.base.as_str().trim_end_matches('/').to_string(),
            reason: root_cause(error),
        }
    }

    /// Turns a non-2xx answer into an error that keeps Ollama's message.
    async fn refusal(&self, response: reqwest::Response) -> BackendError {
        let status = response.status();
        let body = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let message = serde_json::from_slice::<ErrorLine>(&body)
            .map(|line| line.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        let message = if message.is_empty() {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        } else {
            message
        };
        match status.as_u16() {
            404 => BackendError::ModelNotFound(message),
            code @ 400..=499 => BackendError::Rejected {
                status: code,
                message,
            },
            code => BackendError::Failed(format!("ollama answered {code}: {message}")),
        }
    }

    async fn stream(&self, url: &Url, body: impl Serialize) -> Result<TokenStream, BackendError> {
        let request = self.http.post(url.clone()).json(&body);
        let response = self.send(request).await?;
        Ok(decode(response, OpenStream::new(&self.open_streams)))
    }
}

impl Backend for OllamaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Ollama
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
        Box::pin(async move {
            let response = self.send(self.http.get(self.urls.tags.clone())).await?;
            let tags: TagList = tokio::time::timeout(self.timeout, response.json())
                .await
                .map_err(|_| BackendError::Timeout {
                    backend: NAME,
                    after: self.timeout,
                })?
                .map_err(|error| {
                    BackendError::Failed(format!("ollama sent an unreadable model list: {error}"))
                })?;
            Ok(tags.models.into_iter().map(Tag::into_model_info).collect())
        })
    }

    fn generate(
        &self,
        request: GenerateRequest,
    ) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(async move {
            self.stream(&self.urls.generate, Streamed::new(&request))
                .await
        })
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(async move { self.stream(&self.urls.chat, Streamed::new(&request)).await })
    }

    fn active_sequences(&self) -> usize {
        self.open_streams.load(Ordering::Relaxed)
    }

    fn health(&self) -> BoxFuture<'_, BackendHealth> {
        Box::pin(async move {
            let location = self.base.as_str().trim_end_matches('/').to_string();
            let checked = async {
                let response = self.send(self.http.get(self.urls.version.clone())).await?;
                let version: Version = tokio::time::timeout(self.timeout, response.json())
                    .await
                    .map_err(|_| BackendError::Failed("version body timed out".into()))?
                    .map_err(|error| BackendError::Failed(error.to_string()))?;
                Ok::<_, BackendError>(version.version)
            };
            match checked.await {
                Ok(version) => BackendHealth {
                    backend: BackendKind::Ollama,
                    ready: true,
                    location,
                    version: Some(version),
                    error: None,
                },
                Err(error) => BackendHealth {
                    backend: BackendKind::Ollama,
                    ready: false,
                    location,
                    version: None,
                    error: Some(error.to_string()),
                },
            }
        })
    }
}

#[derive(Debug)]
struct Urls {
    tags: Url,
    version: Url,
    generate: Url,
    chat: Url,
}

fn join(base: &Url, path: &str) -> Url {
    base.join(path).expect("API paths are valid relative URLs")
}

/// A request body with `"stream": true` added.
#[derive(Serialize)]
struct Streamed<'a, T> {
    #[serde(flatten)]
    request: &'a T,
    stream: bool,
}

impl<'a, T> Streamed<'a, T> {
    fn new(request: &'a T) -> Self {
        Self {
            request,
            stream: true,
        }
    }
}

/// The innermost cause of a reqwest error, which says what really happened
/// ("Connection refused (os error 111)") where the outer one only names the URL.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if error.is_connect() && error.is_timeout() {
        return "connection timed out".to_string();
    }
    cause.to_string()
}

/// Counts one answer streaming from Ollama until dropped.
struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decodes Ollama's NDJSON answer into tokens and a final completion.
fn decode(response: reqwest::Response, open: OpenStream) -> TokenStream {
    Box::pin(async_stream::stream! {
        let _open = open;
        let mut body = response.bytes_stream();
        let mut lines = LineBuffer::default();
        let mut body_ended = false;
        loop {
            let line = if let Some(line) = lines.next_line() {
                line
            } else if body_ended {
                match lines.finish() {
                    Some(line) => line,
                    None => {
                        yield Err(BackendError::Failed(
                            "ollama ended the stream before it was done".to_string(),
                        ));
                        return;
                    }
                }
            } else {
                match body.next().await {
                    Some(Ok(chunk)) => lines.push(chunk),
                    Some(Err(error)) => {
                        yield Err(BackendError::Failed(format!(
                            "the stream from ollama broke: {}",
                            root_cause(&error)
                        )));
                        return;
                    }
                    None => body_ended = true,
                }
                continue;
            };
            match parse_line(&line) {
                Ok(Line::Token(text)) => yield Ok(StreamEvent::Token(text)),
                Ok(Line::Skip) => {}
                Ok(Line::Done { text, completion }) => {
                    // The final chunk can carry text of its own (the Go API dropped it).
                    if let Some(text) = text {
                        yield Ok(StreamEvent::Token(text));
                    }
                    yield Ok(StreamEvent::Done(completion));
                    return;
                }
                Err(error) => {
                    yield Err(error);
                    return;
                }
            }
        }
    })
}

/// What one NDJSON line means.
#[derive(Debug, PartialEq)]
enum Line {
    Token(String),
    /// A chunk with no text (e.g. a model's special token): nothing to relay.
    Skip,
    Done {
        text: Option<String>,
        completion: Completion,
    },
}

fn parse_line(line: &[u8]) -> Result<Line, BackendError> {
    let chunk: Chunk<'_> = serde_json::from_slice(line).map_err(|error| {
        BackendError::Failed(format!(
            "ollama sent a malformed line ({error}): {}",
            String::from_utf8_lossy(&line[..line.len().min(120)])
        ))
    })?;
    if let Some(message) = chunk.error {
        return Err(BackendError::Failed(message));
    }
    let text = match chunk.message {
        Some(message) => message.content,
        None => chunk.response,
    };
    if !chunk.done {
        return Ok(if text.is_empty() {
            Line::Skip
        } else {
            Line::Token(text.into_owned())
        });
    }
    Ok(Line::Done {
        text: (!text.is_empty()).then(|| text.into_owned()),
        completion: Completion {
            model: chunk.model.into_owned(),
            created_at: chunk.created_at.into_owned(),
            done_reason: chunk.done_reason,
            context: chunk.context,
            total_duration: chunk.total_duration,
            load_duration: chunk.load_duration,
            prompt_eval_count: chunk.prompt_eval_count,
            prompt_eval_duration: chunk.prompt_eval_duration,
            eval_count: chunk.eval_count,
            eval_duration: chunk.eval_duration,
        },
    })
}

/// One line of `/api/generate` or `/api/chat`; text borrowed where possible.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow)]
    created_at: Cow<'a, str>,
    #[serde(default, borrow)]
    response: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<ChunkMessage<'a>>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    context: Option<Vec<i64>>,
    #[serde(default)]
    total_duration: u64,
    #[serde(default)]
    load_duration: u64,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    prompt_eval_duration: u64,
    #[serde(default)]
    eval_count: u64,
    #[serde(default)]
    eval_duration: u64,
}

#[derive(Deserialize)]
struct ChunkMessage<'a> {
    #[serde(default, borrow)]
    content: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ErrorLine {
    error: String,
}

#[derive(Deserialize)]
struct Version {
    version: String,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    modified_at: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    details: ModelDetails,
}

impl Tag {
    fn into_model_info(self) -> ModelInfo {
        ModelInfo {
            model: if self.model.is_empty() {
                self.name.clone()
            } else {
                self.model
            },
            name: self.name,
            modified_at: self.modified_at,
            size: self.size,
            digest: self.digest,
            details: self.details,
            backend: BackendKind::Ollama,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_line_of_either_endpoint_gives_its_text() {
        let generate = br#"{"model":"m","created_at":"t","response":"Hel","done":false}"#;
        let chat = br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"lo\n"},"done":false}"#;
        assert_eq!(parse_line(generate), Ok(Line::Token("Hel".into())));
        assert_eq!(parse_line(chat), Ok(Line::Token("lo\n".into())));
    }

    #[test]
    fn the_done_line_keeps_its_text_and_counters() {
        let line = br#"{"model":"m","created_at":"t","response":"!","done":true,"done_reason":"stop","context":[1,2],"total_duration":10,"load_duration":1,"prompt_eval_count":3,"prompt_eval_duration":2,"eval_count":4,"eval_duration":5}"#;
        let Ok(Line::Done { text, completion }) = parse_line(line) else {
            panic!("not a done line");
        };
        assert_eq!(text.as_deref(), Some("!"));
        assert_eq!(completion.done_reason.as_deref(), Some("stop"));
        assert_eq!(completion.context, Some(vec![1, 2]));
        assert_eq!((completion.eval_count, completion.total_duration), (4, 10));
    }

    #[test]
    fn an_error_line_carries_ollamas_message() {
        let line = br#"{"error":"model runner has unexpectedly stopped"}"#;
        assert_eq!(
            parse_line(line),
            Err(BackendError::Failed(
                "model runner has unexpectedly stopped".into()
            ))
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_that_quotes_it() {
        let Err(BackendError::Failed(message)) = parse_line(b"{\"model\": oops") else {
            panic!("malformed line accepted");
        };
        assert!(message.contains("malformed"), "{message}");
        assert!(message.contains("oops"), "{message}");
    }

    #[test]
    fn only_http_urls_are_accepted() {
        let settings = |url: &str| OllamaSettings {
            url: Url::parse(url).unwrap(),
            timeout: Duration::from_secs(1),
            tcp_keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        };
        assert!(OllamaBackend::new(settings("https://example.com")).is_err());
        let backend = OllamaBackend::new(settings("http://host:1/prefix")).unwrap();
        assert_eq!(backend.urls.tags.as_str(), "http://host:1/prefix/api/tags");
    }
}
