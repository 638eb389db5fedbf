//! The fake as an OpenAI-compatible server (vLLM, llama.cpp server): the
//! same models and behaviour as its Ollama side, spoken in OpenAI's
//! dialect under `/v1`, with `/health` beside it. Its faults are the ones
//! those servers really show: an error status with OpenAI's error body,
//! `/health` answering 503 while a model loads (llama.cpp server), and an
//! error frame inside a 200 stream, even before any text (vLLM).

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};

use crate::FakeState;
use crate::behavior::{Behavior, Fault};
use crate::embed::{DIMENSIONS, vector};
use crate::events::AnswerGuard;

/// OpenAI's error body with a status.
fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {
        "message": message.into(), "type": kind, "param": null, "code": status.as_u16(),
    }});
    (status, Json(body)).into_response()
}

/// With a key configured, the refusal of a request that does not carry it.
fn key_refusal(behavior: &Behavior, headers: &HeaderMap) -> Option<Response> {
    let key = behavior.api_key.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    (given != Some(key.as_str())).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Incorrect API key provided",
        )
    })
}

pub async fn health(State(state): State<FakeState>) -> Response {
    match state.behavior().health_status {
        Some(code) if code != 200 => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            error(status, "unavailable_error", "Loading model")
        }
        _ => Json(json!({"status": "ok"})).into_response(),
    }
}

pub async fn list_models(State(state): State<FakeState>, headers: HeaderMap) -> Response {
    if let Some(refused) = key_refusal(&state.behavior(), &headers) {
        return refused;
    }
    let data: Vec<Value> = state
        .models()
        .iter()
        .map(|model| json!({"id": model.name, "object": "model", "created": 1_733_000_000, "owned_by": "fake"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// Which of the two answering endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Text => "/v1/completions",
        }
    }
}

pub async fn chat(state: State<FakeState>, headers: HeaderMap, body: Bytes) -> Response {
    answer(state, headers, body, Kind::Chat).await
}

pub async fn completions(state: State<FakeState>, headers: HeaderMap, body: Bytes) -> Response {
    answer(state, headers, body, Kind::Text).await
}

async fn answer(
    State(state): State<FakeState>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request @ Value::Object(_)) => request,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the body must be a JSON object",
            );
        }
    };
    let id = state.events.request(kind.path(), request.clone());
    let behavior = state.behavior();
    if let Some(refused) = key_refusal(&behavior, &headers) {
        return refused;
    }
    let model = request["model"].as_str().unwrap_or_default().to_string();
    if state.find_model(&model).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            format!("The model `{model}` does not exist."),
        );
    }
    let mut guard = state.events.answer(id, kind.path());
    if behavior.hang_before_headers {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(behavior.headers_delay()).await;
    if let Some(code) = behavior.status_before_body {
        guard.finish();
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "server_error", behavior.error_message);
    }
    let mut tokens = behavior.answer_tokens();
    let limit = request["max_tokens"].as_u64().map(|limit| limit as usize);
    let cut_by_limit = limit.is_some_and(|limit| limit < tokens.len());
    if let Some(limit) = limit {
        tokens.truncate(limit);
    }
    let prompt_tokens = prompt_words(&request);
    let answer = OpenAiAnswer {
        kind,
        model,
        thoughts: behavior.thinking_tokens(),
        tokens,
        finish_reason: if cut_by_limit { "length" } else { "stop" },
        prompt_tokens,
        behavior,
    };
    if request["stream"].as_bool() == Some(true) {
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            Body::from_stream(answer.stream(guard)),
        )
            .into_response()
    } else {
        answer.whole(guard).await
    }
}

struct OpenAiAnswer {
    kind: Kind,
    model: String,
    thoughts: Vec<String>,
    tokens: Vec<String>,
    finish_reason: &'static str,
    prompt_tokens: usize,
    behavior: Behavior,
}

impl OpenAiAnswer {
    fn chunk(&self, choice: Value) -> Value {
        let object = match self.kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Text => "text_completion",
        };
        json!({"id": "cmpl-fake", "object": object, "created": 1_733_000_000,
               "model": self.model, "choices": [choice]})
    }

    fn text_choice(&self, text: &str, finish: Option<&str>) -> Value {
        match self.kind {
            Kind::Chat => {
                json!({"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": finish})
            }
            Kind::Text => {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
            }
        }
    }

    fn usage(&self) -> Value {
        let completion = self.thoughts.len() + self.tokens.len();
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
               "total_tokens": self.prompt_tokens + completion})
    }

    fn stream(self, mut guard: AnswerGuard) -> impl Stream<Item = Result<Bytes, Infallible>> {
        async_stream::stream! {
            let cut = self.behavior.fault();
            if self.kind == Kind::Chat {
                let role = json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null});
                yield Ok(frame(&self.chunk(role)));
            }
            for thought in &self.thoughts {
                tokio::time::sleep(self.behavior.token_delay()).await;
                let choice = json!({"index": 0, "delta": {"reasoning_content": thought}, "finish_reason": null});
                yield Ok(frame(&self.chunk(choice)));
            }
            for (index, token) in self.tokens.iter().enumerate() {
                if let Some((after, fault)) = cut && index == after {
                    match fault {
                        Fault::ErrorLine => {
                            let body = json!({"error": {"message": self.behavior.error_message,
                                                        "type": "server_error", "code": 500}});
                            yield Ok(frame(&body));
                        }
                        Fault::MalformedLine => yield Ok(Bytes::from_static(b"data: {\"choices\": oops\n\n")),
                        Fault::Truncate => {}
                    }
                    guard.finish();
                    return;
                }
                tokio::time::sleep(self.behavior.token_delay()).await;
                guard.token_sent();
                yield Ok(frame(&self.chunk(self.text_choice(token, None))));
            }
            let end = match self.kind {
                Kind::Chat => json!({"index": 0, "delta": {}, "finish_reason": self.finish_reason}),
                Kind::Text => self.text_choice("", Some(self.finish_reason)),
            };
            let mut tail = frame(&self.chunk(end)).to_vec();
            let mut usage = self.chunk(Value::Null);
            usage["choices"] = json!([]);
            usage["usage"] = self.usage();
            tail.extend_from_slice(&frame(&usage));
            tail.extend_from_slice(b"data: [DONE]\n\n");
            guard.finish();
            yield Ok(Bytes::from(tail));
        }
    }

    async fn whole(self, mut guard: AnswerGuard) -> Response {
        let mut text = String::new();
        for (index, token) in self.tokens.iter().enumerate() {
            if self
                .behavior
                .fault()
                .is_some_and(|(after, _)| after == index)
            {
                guard.finish();
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    self.behavior.error_message.clone(),
                );
            }
            tokio::time::sleep(self.behavior.token_delay()).await;
            guard.token_sent();
            text.push_str(token);
        }
        guard.finish();
        let choice = match self.kind {
            Kind::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text},
                                 "logprobs": null, "finish_reason": self.finish_reason}),
            Kind::Text => json!({"index": 0, "text": text, "logprobs": null,
                                 "finish_reason": self.finish_reason}),
        };
        let object = match self.kind {
            Kind::Chat => "chat.completion",
            Kind::Text => "text_completion",
        };
        Json(
            json!({"id": "cmpl-fake", "object": object, "created": 1_733_000_000,
                    "model": self.model, "choices": [choice], "usage": self.usage()}),
        )
        .into_response()
    }
}

fn frame(value: &Value) -> Bytes {
    let mut bytes = b"data: ".to_vec();
    serde_json::to_writer(&mut bytes, value).expect("JSON values serialise");
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}

/// A rough prompt token count: the words the model was given.
fn prompt_words(request: &Value) -> usize {
    let count = |text: &Value| {
        text.as_str()
            .map_or(0, |text| text.split_whitespace().count())
    };
    match request["messages"].as_array() {
        Some(messages) => messages.iter().map(|m| count(&m["content"])).sum(),
        None => count(&request["prompt"]),
    }
}

pub async fn embeddings(
    State(state): State<FakeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the body must be JSON",
        );
    };
    state.events.request("/v1/embeddings", request.clone());
    if let Some(refused) = key_refusal(&state.behavior(), &headers) {
        return refused;
    }
    let model = request["model"].as_str().unwrap_or_default().to_string();
    if state.find_model(&model).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            format!("The model `{model}` does not exist."),
        );
    }
    let inputs: Vec<String> = match &request["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let dimensions = request["dimensions"]
        .as_u64()
        .map_or(DIMENSIONS, |n| (n as usize).clamp(1, DIMENSIONS));
    let words: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": vector(text, dimensions)}))
        .collect();
    Json(json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": words, "total_tokens": words}}))
    .into_response()
}
