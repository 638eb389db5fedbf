//! The Ollama backend: an HTTP client of one Ollama server (`/api/tags`,
//! `/api/version`, `/api/generate`, `/api/chat`), decoding its NDJSON
//! answers into a token stream. Its wire types are in [`wire`].
//!
//! Answers are always requested as streams, even for a non-streaming
//! client: only connect and time-to-headers are bounded, so an answer may
//! take as long as it takes (the Go API cut every answer at 30 s).

mod wire;

use std::sync::Arc;

use app::api::ModelInfo;
use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use url::Url;

use self::wire::{EmbedBody, EmbedResponse, Line, ProcessList, Request, TagList, Version};
use super::http::answer::AnswerBody;
use super::http::{HttpSettings, HttpUpstream, OpenStream, SetupError, root_cause};
use super::ndjson::LineBuffer;
use super::{
    Backend, BackendError, BackendHealth, BackendKind, BoxFuture, Forwarded, LoadedModel, Manage,
    ModelCard, StreamEvent, TokenStream,
};
use crate::inference::{EmbedRequest, Embeddings, InferenceRequest, Input};

/// A client of one Ollama server. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct OllamaBackend {
    upstream: HttpUpstream,
    /// The API's URLs, resolved once rather than per request.
    urls: Arc<Urls>,
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
    pub fn new(settings: HttpSettings) -> Result<Self, SetupError> {
        let upstream = HttpUpstream::new(settings, HeaderMap::new())?;
        let urls = Arc::new(Urls {
            tags: upstream.join("api/tags"),
            version: upstream.join("api/version"),
            generate: upstream.join("api/generate"),
            chat: upstream.join("api/chat"),
            show: upstream.join("api/show"),
            ps: upstream.join("api/ps"),
            embed: upstream.join("api/embed"),
        });
        Ok(Self { upstream, urls })
    }

    /// Forwards a management call. Its answer may take as long as the work
    /// (a pull with `stream: false` answers when the download is done), so
    /// only connecting is bounded.
    async fn forward(&self, call: Manage, body: bytes::Bytes) -> Result<Forwarded, BackendError> {
        let url = self.upstream.join(call.path());
        let method = match call {
            Manage::Delete => reqwest::Method::DELETE,
            _ => reqwest::Method::POST,
        };
        let response = self
            .upstream
            .http
            .request(method, url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| self.upstream.unreachable(&error))?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let backend = self.upstream.name.clone();
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
        let body = self
            .upstream
            .post_answer(url, &Request::new(&request))
            .await?;
        Ok(TokenStream::new(
            self.upstream.name.clone(),
            decode(self.upstream.clone(), body, self.upstream.open_stream()),
        ))
    }
}

impl Backend for OllamaBackend {
    fn name(&self) -> &str {
        &self.upstream.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Ollama
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
        Box::pin(async move {
            let tags: TagList = self
                .upstream
                .get_json(&self.urls.tags, "model list")
                .await?;
            Ok(tags
                .models
                .into_iter()
                .map(|tag| tag.into_model_info(&self.upstream.name))
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
                .upstream
                .send(self.upstream.http.post(self.urls.embed.clone()).json(&body))
                .await?;
            let answer: EmbedResponse = self.upstream.json(response, "embeddings").await?;
            Ok(answer.into_embeddings(request.model))
        })
    }

    fn describe(&self, model: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
        let body = serde_json::json!({ "model": model });
        Box::pin(async move {
            let response = self
                .upstream
                .send(self.upstream.http.post(self.urls.show.clone()).json(&body))
                .await?;
            self.upstream.json(response, "model description").await
        })
    }

    fn loaded(&self) -> BoxFuture<'_, Result<Vec<LoadedModel>, BackendError>> {
        Box::pin(async move {
            let list: ProcessList = self
                .upstream
                .get_json(&self.urls.ps, "list of loaded models")
                .await?;
            Ok(list
                .models
                .into_iter()
                .map(|process| process.into_loaded_model(&self.upstream.name))
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
        self.upstream.open_streams()
    }

    fn serves_unlisted_models(&self) -> bool {
        true
    }

    fn health(&self) -> BoxFuture<'_, BackendHealth> {
        Box::pin(async move {
            let checked = async {
                let version: Version = self
                    .upstream
                    .get_json(&self.urls.version, "version")
                    .await?;
                Ok::<_, BackendError>(version.version)
            };
            let (ready, version, error) = match checked.await {
                Ok(version) => (true, Some(version), None),
                Err(error) => (false, None, Some(error.to_string())),
            };
            BackendHealth {
                kind: BackendKind::Ollama,
                ready,
                location: self.upstream.location(),
                version,
                error,
            }
        })
    }
}

/// Decodes Ollama's NDJSON answer into tokens and a final completion. An
/// answer cut short simply ends: [`TokenStream`] says so.
fn decode(
    upstream: HttpUpstream,
    mut body: AnswerBody,
    open: OpenStream,
) -> impl futures_util::Stream<Item = Result<StreamEvent, BackendError>> + Send {
    async_stream::stream! {
        let _open = open;
        let backend = upstream.name.clone();
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
                    Some(Err(detail)) => {
                        yield Err(upstream.broken_with(detail));
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
                    // Nothing more is read: the connection may be kept.
                    body.release();
                    // The final chunk can carry text of its own (the Go API dropped it).
                    if let Some(text) = text {
                        yield Ok(StreamEvent::Token(text));
                    }
                    yield Ok(StreamEvent::Done(Box::new(completion)));
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
    use std::time::Duration;

    use super::*;

    fn settings(url: &str) -> HttpSettings {
        HttpSettings {
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
