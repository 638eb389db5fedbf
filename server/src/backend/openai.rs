//! The OpenAI-compatible backend: a client of any server that speaks
//! OpenAI's API (vLLM, llama.cpp server, SGLang, LM Studio, a hosted API).
//! `/v1/models` lists, `/v1/chat/completions` answers a chat and
//! `/v1/completions` a prompt (both streamed as SSE, usage included),
//! `/v1/embeddings` embeds; a bearer key goes with every request. Its wire
//! types are in [`wire`].
//!
//! The URL is the API's base as its users write it (`http://host:8000/v1`);
//! health is the server's `/health` beside its `/v1` where there is one (vLLM,
//! llama.cpp server, SGLang), else the model list.

mod wire;

use std::time::Instant;

use app::api::ModelInfo;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use url::Url;

use self::wire::{ChatBody, CompletionBody, Data, EmbedBody, EmbedResponse, ModelList, Usage};
use super::http::answer::AnswerBody;
use super::http::{HttpSettings, HttpUpstream, OpenStream, SetupError};
use super::ndjson::LineBuffer;
use super::{
    Backend, BackendError, BackendHealth, BackendKind, BoxFuture, Completion, ModelCard,
    StreamEvent, TokenStream,
};
use crate::inference::{EmbedRequest, Embeddings, InferenceRequest, Input};

/// A client of one OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    upstream: HttpUpstream,
    models: Url,
    chat: Url,
    completions: Url,
    embeddings: Url,
    /// `health` beside the API's `/v1` ([`health_url`]).
    health: Url,
}

impl OpenAiBackend {
    /// `api_key`, when given, is sent as `Authorization: Bearer`.
    pub fn new(settings: HttpSettings, api_key: Option<&str>) -> Result<Self, SetupError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key.filter(|key| !key.is_empty()) {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| SetupError::Key {
                    name: settings.name.clone(),
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let upstream = HttpUpstream::new(settings, headers)?;
        let health = health_url(&upstream.base);
        Ok(Self {
            models: upstream.join("models"),
            chat: upstream.join("chat/completions"),
            completions: upstream.join("completions"),
            embeddings: upstream.join("embeddings"),
            health,
            upstream,
        })
    }

    async fn stream(&self, request: InferenceRequest) -> Result<TokenStream, BackendError> {
        let started = Instant::now();
        let body = match &request.input {
            Input::Chat(messages) => {
                self.upstream
                    .post_answer(&self.chat, &ChatBody::new(&request, messages))
                    .await?
            }
            Input::Completion {
                prompt,
                system,
                context,
                raw: _,
            } => {
                // The dialect has no place for either: refused, not dropped.
                if system.is_some() || context.is_some() {
                    return Err(BackendError::Rejected {
                        status: 400,
                        message: format!(
                            "{} takes a completion's prompt only: send a system prompt as a \
                             chat, and no context",
                            self.upstream.name
                        ),
                    });
                }
                self.upstream
                    .post_answer(&self.completions, &CompletionBody::new(&request, prompt))
                    .await?
            }
            // An OpenAI server loads its models itself: nothing to ask.
            Input::Load => {
                let done = Completion {
                    model: request.model.clone(),
                    done_reason: Some("load".into()),
                    ..Completion::default()
                };
                return Ok(TokenStream::new(
                    self.upstream.name.clone(),
                    futures_util::stream::iter([Ok(StreamEvent::Done(Box::new(done)))]),
                ));
            }
        };
        Ok(TokenStream::new(
            self.upstream.name.clone(),
            decode(
                self.upstream.clone(),
                body,
                request.model,
                started,
                self.upstream.open_stream(),
            ),
        ))
    }

    async fn check(&self) -> Result<Option<String>, BackendError> {
        let response = tokio::time::timeout(
            self.upstream.timeout,
            self.upstream.http.get(self.health.clone()).send(),
        )
        .await
        .map_err(|_| self.upstream.timed_out())?
        .map_err(|error| self.upstream.unreachable(&error))?;
        match response.status().as_u16() {
            200..=299 => Ok(None),
            // No health endpoint (a hosted API): the model list must answer.
            404 | 405 | 401 | 403 => {
                self.upstream
                    .send(self.upstream.http.get(self.models.clone()))
                    .await?;
                Ok(None)
            }
            // llama.cpp server answers 503 while its model loads.
            _ => Err(self.upstream.refusal(response).await),
        }
    }
}

impl Backend for OpenAiBackend {
    fn name(&self) -> &str {
        &self.upstream.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Openai
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
        Box::pin(async move {
            let list: ModelList = self.upstream.get_json(&self.models, "model list").await?;
            Ok(list
                .data
                .into_iter()
                .map(|entry| entry.into_model_info(&self.upstream.name))
                .collect())
        })
    }

    fn infer(&self, request: InferenceRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(self.stream(request))
    }

    fn embed(&self, request: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>> {
        Box::pin(async move {
            let started = Instant::now();
            let response = self
                .upstream
                .send(
                    self.upstream
                        .http
                        .post(self.embeddings.clone())
                        .json(&EmbedBody::new(&request)),
                )
                .await?;
            let answer: EmbedResponse = self.upstream.json(response, "embeddings").await?;
            Ok(answer.into_embeddings(request.model, nanos(started)))
        })
    }

    /// The dialect describes a model by its name only; what the list said
    /// is all there is to tell.
    fn describe(&self, model: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
        let model = model.to_string();
        Box::pin(async move {
            let listed = self.list_models().await?;
            let info = listed
                .into_iter()
                .find(|info| info.name == model)
                .ok_or_else(|| BackendError::ModelNotFound {
                    message: format!("model \"{model}\" not found"),
                })?;
            Ok(ModelCard {
                details: info.details,
                modified_at: info.modified_at,
                capabilities: vec!["completion".into()],
                ..ModelCard::default()
            })
        })
    }

    fn active_sequences(&self) -> usize {
        self.upstream.open_streams()
    }

    fn health(&self) -> BoxFuture<'_, BackendHealth> {
        Box::pin(async move {
            let (ready, error) = match self.check().await {
                Ok(_) => (true, None),
                Err(error) => (false, Some(error.to_string())),
            };
            BackendHealth {
                kind: BackendKind::Openai,
                ready,
                location: self.upstream.location(),
                version: None,
                error,
            }
        })
    }
}

/// Where the server's `/health` is: beside the API's `/v1` (vLLM's and
/// llama.cpp server's `http://host:8000/health` for `http://host:8000/v1`),
/// under the same prefix for an API mounted below one, so a probe never
/// asks whatever else answers at the host's root.
fn health_url(base: &Url) -> Url {
    let path = base.path().trim_end_matches('/');
    let prefix = path.strip_suffix("/v1").unwrap_or(path);
    let mut url = base.clone();
    url.set_path(&format!("{prefix}/health"));
    url.set_query(None);
    url
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Decodes an SSE answer into tokens and a final completion. The answer is
/// over at `[DONE]`, or when the body ends after a `finish_reason` (not
/// every server sends `[DONE]`); a body that ends before either simply
/// ends, and [`TokenStream`] says it ended early.
fn decode(
    upstream: HttpUpstream,
    mut body: AnswerBody,
    model: String,
    started: Instant,
    open: OpenStream,
) -> impl futures_util::Stream<Item = Result<StreamEvent, BackendError>> + Send {
    async_stream::stream! {
        let _open = open;
        let backend = upstream.name.clone();
        let mut lines = LineBuffer::default();
        let mut body_ended = false;
        let mut finish: Option<&'static str> = None;
        let mut usage = Usage::default();
        let mut answered_by = model;
        let mut first_token: Option<Instant> = None;
        let done = |finish: Option<&'static str>, usage: Usage, model: String, first: Option<Instant>| {
            let first = first.unwrap_or_else(Instant::now);
            let waited = u64::try_from((first - started).as_nanos()).unwrap_or(u64::MAX);
            StreamEvent::Done(Box::new(Completion {
                model,
                done_reason: Some(finish.unwrap_or("stop").to_string()),
                counters: wire::counters(usage, waited, nanos(first)),
                ..Completion::default()
            }))
        };
        loop {
            let line = if let Some(line) = lines.next_line() {
                line
            } else if body_ended {
                match lines.finish() {
                    Some(line) => line,
                    None => {
                        if finish.is_some() {
                            yield Ok(done(finish, usage, answered_by, first_token));
                        }
                        return;
                    }
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
            // Only `data:` lines carry the answer; comments, `event:` and
            // `id:` lines are the transport's.
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            match wire::parse_data(data) {
                Ok(Data::Done) => {
                    // Nothing more is read: the connection may be kept.
                    body.release();
                    yield Ok(done(finish, usage, answered_by, first_token));
                    return;
                }
                Ok(Data::Chunk(chunk)) => {
                    if let Some(reported) = chunk.usage {
                        usage = reported;
                    }
                    if let Some(name) = chunk.model.filter(|name| **name != *answered_by) {
                        answered_by = name.into_owned();
                    }
                    if let Some(thinking) = chunk.thinking {
                        first_token.get_or_insert_with(Instant::now);
                        yield Ok(StreamEvent::Thinking(thinking.into_owned()));
                    }
                    if let Some(text) = chunk.text {
                        first_token.get_or_insert_with(Instant::now);
                        yield Ok(StreamEvent::Token(text.into_owned()));
                    }
                    if let Some(reason) = chunk.finish_reason {
                        finish = Some(wire::done_reason(&reason));
                    }
                }
                // The request's own fault (a prompt too long for the
                // model): no other upstream would take it either.
                Ok(Data::Error { message, status: Some(status @ 400..=499) }) => {
                    yield Err(BackendError::Rejected { status, message });
                    return;
                }
                Ok(Data::Error { message, .. }) => {
                    yield Err(BackendError::Failed { backend: backend.clone(), message });
                    return;
                }
                Err(error) => {
                    yield Err(BackendError::Malformed {
                        backend: backend.clone(),
                        detail: format!(
                            "{error}: {}",
                            String::from_utf8_lossy(&data[..data.len().min(120)])
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

    #[test]
    fn health_is_read_beside_the_api_never_at_an_unrelated_root() {
        let health = |base: &str| health_url(&Url::parse(base).unwrap()).to_string();
        assert_eq!(health("http://vllm:8000/v1"), "http://vllm:8000/health");
        assert_eq!(health("http://vllm:8000/v1/"), "http://vllm:8000/health");
        assert_eq!(health("http://llama:8080/"), "http://llama:8080/health");
        assert_eq!(
            health("https://gateway.example/openai/v1/"),
            "https://gateway.example/openai/health"
        );
        assert_eq!(
            health("https://gateway.example/team-a?x=1"),
            "https://gateway.example/team-a/health"
        );
    }
}
