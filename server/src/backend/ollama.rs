//! The Ollama backend: an HTTP client of one Ollama server (`/api/tags`,
//! `/api/version`, `/api/generate`, `/api/chat`), decoding its NDJSON
//! answers into a token stream. Its wire types are in [`wire`].
//!
//! Answers are always requested as streams, even for a non-streaming
//! client: only connect and time-to-headers are bounded, so an answer may
//! take as long as it takes (the Go API cut every answer at 30 s).

mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use app::api::ModelInfo;
use futures_util::StreamExt;
use url::Url;

use self::wire::{
    EmbedBody, EmbedResponse, ErrorBody, Line, ProcessList, Request, TagList, Version,
};
use super::ndjson::LineBuffer;
use super::{
    Backend, BackendError, BackendHealth, BackendKind, BoxFuture, ConnectFailure, Forwarded,
    LoadedModel, Manage, ModelCard, StreamEvent, TokenStream,
};
use crate::inference::{EmbedRequest, Embeddings, InferenceRequest, Input};

/// How to reach an Ollama server.
#[derive(Debug, Clone)]
pub struct OllamaSettings {
    /// The instance's name (`ollama` when there is one).
    pub name: String,
    pub url: Url,
    /// Bounds connecting, and separately the wait for response headers.
    pub timeout: Duration,
    pub tcp_keep_alive: Duration,
    pub idle_timeout: Duration,
}

/// Why an Ollama client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the Ollama URL must be http:// or https:// (got {0})")]
    Scheme(Url),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A client of one Ollama server. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct OllamaBackend {
    name: Arc<str>,
    base: Url,
    /// The API's URLs, resolved once rather than per request.
    urls: Arc<Urls>,
    http: reqwest::Client,
    timeout: Duration,
    /// Answers being streamed from Ollama right now.
    open_streams: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Urls {
    tags: Url,
    version: Url,
    generate: Url,
    chat: Url,
    show: Url,
    ps: Url,
    embed: Url,
}

impl OllamaBackend {
    pub fn new(settings: OllamaSettings) -> Result<Self, SetupError> {
        let mut base = settings.url;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(SetupError::Scheme(base));
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
            .build()?;
        let join = |path: &str| base.join(path).expect("API paths are valid relative URLs");
        let urls = Arc::new(Urls {
            tags: join("api/tags"),
            version: join("api/version"),
            generate: join("api/generate"),
            chat: join("api/chat"),
            show: join("api/show"),
            ps: join("api/ps"),
            embed: join("api/embed"),
        });
        Ok(Self {
            name: settings.name.into(),
            base,
            urls,
            http,
            timeout: settings.timeout,
            open_streams: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Where it is, for operators (`/readyz`, logs).
    fn location(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// Sends a request and waits, within the timeout, for a 2xx status;
    /// any other status becomes the matching [`BackendError`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, BackendError> {
        let response = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(error)) => return Err(self.unreachable(&error)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.refusal(response).await)
        }
    }

    fn timed_out(&self) -> BackendError {
        BackendError::Timeout {
            backend: self.name.clone(),
            after: self.timeout,
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> BackendError {
        BackendError::Unreachable {
            backend: self.name.clone(),
            reason: connect_failure(error),
            detail: format!("{}: {}", self.location(), root_cause(error)),
        }
    }

    /// Turns a non-2xx answer into an error. Ollama's own message (a JSON
    /// `{"error"}`) is kept for the client; any other body is not repeated
    /// (a proxy's HTML page may say things about the network).
    async fn refusal(&self, response: reqwest::Response) -> BackendError {
        let status = response.status();
        let body = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|body| body.error)
            .filter(|message| !message.trim().is_empty());
        if message.is_none() && !body.is_empty() {
            tracing::debug!(
                backend = %self.name,
                status = status.as_u16(),
                body = %String::from_utf8_lossy(&body[..body.len().min(200)]),
                "error answer without a JSON message"
            );
        }
        let plain = || status.canonical_reason().unwrap_or("error").to_lowercase();
        match status.as_u16() {
            404 => BackendError::ModelNotFound {
                message: message.unwrap_or_else(plain),
            },
            429 | 503 => BackendError::Busy {
                backend: self.name.clone(),
                message: message
                    .unwrap_or_else(|| format!("{} is busy; try again shortly", self.name)),
            },
            code @ 400..=499 => BackendError::Rejected {
                status: code,
                message: message.unwrap_or_else(plain),
            },
            code => BackendError::Status {
                backend: self.name.clone(),
                status: code,
                message,
            },
        }
    }

    /// Reads a JSON answer within the timeout.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(self.timeout, response.json())
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|error| BackendError::Malformed {
                backend: self.name.clone(),
                detail: format!("unreadable {what}: {error}"),
            })
    }

    /// Forwards a management call. Its answer may take as long as the work
    /// (a pull with `stream: false` answers when the download is done), so
    /// only connecting is bounded.
    async fn forward(&self, call: Manage, body: bytes::Bytes) -> Result<Forwarded, BackendError> {
        let url = self
            .base
            .join(call.path())
            .expect("API paths are valid relative URLs");
        let method = match call {
            Manage::Delete => reqwest::Method::DELETE,
            _ => reqwest::Method::POST,
        };
        let response = self
            .http
            .request(method, url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let backend = self.name.clone();
        Ok(Forwarded {
            status: response.status().as_u16(),
            content_type,
            body: Box::pin(response.bytes_stream().map(move |chunk| {
                chunk.map_err(|error| BackendError::Broken {
                    backend: backend.clone(),
                    detail: root_cause(&error),
                })
            })),
        })
    }

    async fn stream(&self, request: InferenceRequest) -> Result<TokenStream, BackendError> {
        let url = match request.input {
            Input::Completion { .. } | Input::Load => &self.urls.generate,
            Input::Chat(_) => &self.urls.chat,
        };
        let body = self.http.post(url.clone()).json(&Request::new(&request));
        let response = self.send(body).await?;
        Ok(TokenStream::new(
            self.name.clone(),
            decode(
                self.name.clone(),
                response,
                OpenStream::new(&self.open_streams),
            ),
        ))
    }
}

impl Backend for OllamaBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Ollama
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
        Box::pin(async move {
            let response = self.send(self.http.get(self.urls.tags.clone())).await?;
            let tags: TagList = self.json(response, "model list").await?;
            Ok(tags
                .models
                .into_iter()
                .map(|tag| tag.into_model_info(&self.name))
                .collect())
        })
    }

    fn infer(&self, request: InferenceRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(self.stream(request))
    }

    fn embed(&self, request: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>> {
        Box::pin(async move {
            let body = EmbedBody::new(&request);
            let response = self
                .send(self.http.post(self.urls.embed.clone()).json(&body))
                .await?;
            let answer: EmbedResponse = self.json(response, "embeddings").await?;
            Ok(answer.into_embeddings(request.model))
        })
    }

    fn describe(&self, model: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
        let body = serde_json::json!({ "model": model });
        Box::pin(async move {
            let response = self
                .send(self.http.post(self.urls.show.clone()).json(&body))
                .await?;
            self.json(response, "model description").await
        })
    }

    fn loaded(&self) -> BoxFuture<'_, Result<Vec<LoadedModel>, BackendError>> {
        Box::pin(async move {
            let response = self.send(self.http.get(self.urls.ps.clone())).await?;
            let list: ProcessList = self.json(response, "list of loaded models").await?;
            Ok(list
                .models
                .into_iter()
                .map(|process| process.into_loaded_model(&self.name))
                .collect())
        })
    }

    fn manage(
        &self,
        call: Manage,
        body: bytes::Bytes,
    ) -> BoxFuture<'_, Result<Forwarded, BackendError>> {
        Box::pin(self.forward(call, body))
    }

    fn active_sequences(&self) -> usize {
        self.open_streams.load(Ordering::Relaxed)
    }

    fn serves_unlisted_models(&self) -> bool {
        true
    }

    fn health(&self) -> BoxFuture<'_, BackendHealth> {
        Box::pin(async move {
            let checked = async {
                let response = self.send(self.http.get(self.urls.version.clone())).await?;
                let version: Version = self.json(response, "version").await?;
                Ok::<_, BackendError>(version.version)
            };
            let (ready, version, error) = match checked.await {
                Ok(version) => (true, Some(version), None),
                Err(error) => (false, None, Some(error.to_string())),
            };
            BackendHealth {
                kind: BackendKind::Ollama,
                ready,
                location: self.location(),
                version,
                error,
            }
        })
    }
}

/// What kind of connection failure a reqwest error is, for the client.
fn connect_failure(error: &reqwest::Error) -> ConnectFailure {
    if error.is_timeout() {
        return ConnectFailure::TimedOut;
    }
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return ConnectFailure::Refused,
                std::io::ErrorKind::TimedOut => return ConnectFailure::TimedOut,
                _ => {}
            }
        }
        let text = current.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return ConnectFailure::NameNotResolved;
        }
        if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
            return ConnectFailure::Tls;
        }
        cause = current.source();
    }
    ConnectFailure::Other
}

/// The innermost cause of a reqwest error, which says what really happened
/// ("Connection refused (os error 111)") where the outer one only names the
/// URL. For the logs.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
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

/// Decodes Ollama's NDJSON answer into tokens and a final completion. An
/// answer cut short simply ends: [`TokenStream`] says so.
fn decode(
    backend: Arc<str>,
    response: reqwest::Response,
    open: OpenStream,
) -> impl futures_util::Stream<Item = Result<StreamEvent, BackendError>> + Send {
    async_stream::stream! {
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
                    None => return,
                }
            } else {
                match body.next().await {
                    Some(Ok(chunk)) => lines.push(chunk),
                    Some(Err(error)) => {
                        yield Err(BackendError::Broken {
                            backend: backend.clone(),
                            detail: root_cause(&error),
                        });
                        return;
                    }
                    None => body_ended = true,
                }
                continue;
            };
            match wire::parse_line(&line) {
                Ok(Line::Token(text)) => yield Ok(StreamEvent::Token(text)),
                Ok(Line::Thinking { thinking, then }) => {
                    yield Ok(StreamEvent::Thinking(thinking));
                    if let Some(text) = then {
                        yield Ok(StreamEvent::Token(text));
                    }
                }
                Ok(Line::Skip) => {}
                Ok(Line::Done { text, completion }) => {
                    // The final chunk can carry text of its own (the Go API dropped it).
                    if let Some(text) = text {
                        yield Ok(StreamEvent::Token(text));
                    }
                    yield Ok(StreamEvent::Done(completion));
                    return;
                }
                Ok(Line::Error(message)) => {
                    yield Err(BackendError::Failed { backend: backend.clone(), message });
                    return;
                }
                Err(error) => {
                    yield Err(BackendError::Malformed {
                        backend: backend.clone(),
                        detail: format!(
                            "{error}: {}",
                            String::from_utf8_lossy(&line[..line.len().min(120)])
                        ),
                    });
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> OllamaSettings {
        OllamaSettings {
            name: "ollama".into(),
            url: Url::parse(url).unwrap(),
            timeout: Duration::from_secs(1),
            tcp_keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn http_and_https_urls_are_accepted_under_a_path_prefix() {
        assert!(OllamaBackend::new(settings("ftp://example.com")).is_err());
        assert!(OllamaBackend::new(settings("https://ollama.example.com")).is_ok());
        let backend = OllamaBackend::new(settings("http://host:1/prefix")).unwrap();
        assert_eq!(backend.urls.tags.as_str(), "http://host:1/prefix/api/tags");
    }

    #[tokio::test]
    async fn a_refused_connection_names_no_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let backend = OllamaBackend::new(settings(&format!("http://{addr}"))).unwrap();
        let error = backend.list_models().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "ollama is unreachable: connection refused"
        );
        assert!(error.detail().unwrap().contains(&addr.to_string()));
    }
}
