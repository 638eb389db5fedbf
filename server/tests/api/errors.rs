//! Every error is JSON `{"error": …}` with the right status, decided before
//! any stream starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api::ModelInfo;
use fake_ollama::Behavior;
use llm_chat::backend::{
    Backend, BackendError, BackendHealth, BackendKind, BoxFuture, ModelCard, TokenStream,
};
use llm_chat::inference::{EmbedRequest, Embeddings, InferenceRequest};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_over, spawn_app_with, spawn_app_without_ollama};

/// Asserts a JSON error answer and returns its message.
async fn error_of(response: Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "application/json");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    body["error"]
        .as_str()
        .expect("an error message")
        .to_string()
}

#[tokio::test]
async fn bad_json_is_400() {
    let app = spawn_app(Behavior::default()).await;
    for path in [
        "/api/v1/generate",
        "/api/v1/generate/stream",
        "/api/v1/chat",
        "/api/v1/chat/stream",
    ] {
        let message = error_of(app.post(path, "{\"model\": ").await, 400).await;
        assert!(
            message.starts_with("invalid JSON body"),
            "{path}: {message}"
        );
        let message = error_of(app.post(path, "").await, 400).await;
        assert!(message.contains("empty"), "{path}: {message}");
    }
}

#[tokio::test]
async fn missing_or_empty_fields_are_400_naming_the_field() {
    let app = spawn_app(Behavior::default()).await;
    let cases = [
        ("/api/v1/generate", json!({"prompt": "Hi"}), "model"),
        (
            "/api/v1/generate/stream",
            json!({"model": "", "prompt": "Hi"}),
            "model",
        ),
        ("/api/v1/generate", json!({"model": "llama3.2"}), "prompt"),
        (
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "  "}),
            "prompt",
        ),
        (
            "/api/v1/chat",
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
            "model",
        ),
        (
            "/api/v1/chat/stream",
            json!({"model": "llama3.2"}),
            "messages",
        ),
        (
            "/api/v1/chat",
            json!({"model": "llama3.2", "messages": []}),
            "messages",
        ),
    ];
    for (path, body, field) in cases {
        let message = error_of(app.post_json(path, body).await, 400).await;
        assert_eq!(
            message,
            format!("field `{field}` is required and must not be empty"),
            "{path}"
        );
    }
    assert!(
        app.fake().events().snapshot().is_empty(),
        "nothing reached ollama"
    );
}

#[tokio::test]
async fn a_wrong_type_is_400_saying_what_was_expected() {
    let app = spawn_app(Behavior::default()).await;
    let message = error_of(
        app.post_json(
            "/api/v1/chat",
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
        )
        .await,
        400,
    )
    .await;
    assert!(message.contains("unknown variant `robot`"), "{message}");
}

#[tokio::test]
async fn an_unknown_model_is_404_with_ollamas_message_even_for_streams() {
    let app = spawn_app(Behavior::default()).await;
    for (path, body) in [
        ("/api/v1/generate", json!({"model": "nope", "prompt": "Hi"})),
        (
            "/api/v1/generate/stream",
            json!({"model": "nope", "prompt": "Hi"}),
        ),
        (
            "/api/v1/chat",
            json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        (
            "/api/v1/chat/stream",
            json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
        ),
    ] {
        let message = error_of(app.post_json(path, body).await, 404).await;
        assert_eq!(
            message, "model \"nope\" not found, try pulling it first",
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_json() {
    let app = spawn_app(Behavior::default()).await;
    let response = app.get("/api/v1/generate").await;
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(error_of(response, 405).await, "method not allowed");
    let response = app.post_json("/api/v1/models", json!({})).await;
    assert_eq!(error_of(response, 405).await, "method not allowed");
}

/// The OpenAPI document promises a JSON 405 on every path; PUT is a
/// method none of them takes.
#[tokio::test]
async fn every_documented_path_answers_a_wrong_method_with_405_json() {
    let app = spawn_app(Behavior::default()).await;
    let document: Value = serde_json::from_str(&llm_chat::openapi::document()).unwrap();
    for path in document["paths"].as_object().unwrap().keys() {
        let path = path
            .replace("{id}", "no-such-id")
            .replace("{mid}", "no-such-message");
        let response = app.client.put(app.url(&path)).send().await.unwrap();
        assert_eq!(
            error_of(response, 405).await,
            "method not allowed",
            "PUT {path}"
        );
    }
}

#[tokio::test]
async fn an_unknown_api_path_is_404_json() {
    let app = spawn_app(Behavior::default()).await;
    let message = error_of(app.get("/api/v1/nothing-here").await, 404).await;
    assert_eq!(message, "no such endpoint: /api/v1/nothing-here");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(Behavior::default(), |config| config.body_limit = 64 * 1024).await;
    let prompt = "x".repeat(100 * 1024);
    let response = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": prompt}),
        )
        .await;
    let message = error_of(response, 413).await;
    assert!(message.contains("larger than"), "{message}");
    // The same limit, in each dialect's shape.
    let big = json!({"model": "llama3.2", "prompt": prompt, "messages": [], "input": prompt});
    for path in ["/api/generate", "/api/chat", "/api/embed"] {
        let message = error_of(app.post_json(path, big.clone()).await, 413).await;
        assert!(message.contains("larger than"), "{path}: {message}");
    }
    for path in ["/v1/completions", "/v1/embeddings"] {
        let response = app.post_json(path, big.clone()).await;
        assert_eq!(response.status(), 413, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "request_too_large", "{path}");
    }
    // Just under the limit is fine.
    let prompt = "x".repeat(60 * 1024);
    let response = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": prompt}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_default_limit_is_one_mebibyte() {
    let app = spawn_app(Behavior::default()).await;
    let prompt = "x".repeat(1024 * 1024);
    let response = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": prompt}),
        )
        .await;
    error_of(response, 413).await;
}

/// A valid request to each endpoint that asks the upstream for an answer.
fn every_generating_request() -> [(&'static str, serde_json::Value); 5] {
    let prompt = json!({"model": "llama3.2", "prompt": "Hi"});
    let chat = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]});
    [
        ("/api/v1/generate", prompt.clone()),
        ("/api/v1/generate/stream", prompt.clone()),
        ("/api/v1/chat", chat.clone()),
        ("/api/v1/chat/stream", chat),
        ("/api/v1/generations", prompt),
    ]
}

#[tokio::test]
async fn a_dead_upstream_is_502_before_any_stream() {
    let app = spawn_app_without_ollama().await;
    for (path, body) in every_generating_request() {
        let message = error_of(app.post_json(path, body).await, 502).await;
        assert!(message.contains("unreachable"), "{path}: {message}");
    }
}

#[tokio::test]
async fn an_upstream_that_sends_no_headers_is_504_within_the_timeout() {
    let behavior = Behavior {
        hang_before_headers: true,
        ..Behavior::default()
    };
    let app = spawn_app_with(behavior, |config| {
        config.ollama_timeout = Duration::from_millis(400);
    })
    .await;
    let requests = every_generating_request();
    let count = requests.len();
    for (path, body) in requests {
        let started = Instant::now();
        let response = app.post_json(path, body).await;
        let elapsed = started.elapsed();
        let message = error_of(response, 504).await;
        assert_eq!(message, "ollama did not answer within 400ms");
        assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
    // The abandoned upstream requests were dropped, not left hanging.
    let disconnects = app
        .fake()
        .events()
        .wait_for(Duration::from_secs(2), |events| {
            events
                .iter()
                .filter(|e| matches!(e, fake_ollama::FakeEvent::Disconnected { .. }))
                .count()
                == count
        })
        .await;
    assert!(disconnects.is_some(), "the fake saw every request dropped");
}

#[tokio::test]
async fn an_upstream_server_error_is_502_with_ollamas_message_on_every_endpoint() {
    let behavior = Behavior {
        status_before_body: Some(500),
        error_message: "llama runner process has terminated".into(),
        ..Behavior::default()
    };
    let app = spawn_app(behavior).await;
    for (path, body) in every_generating_request() {
        let message = error_of(app.post_json(path, body).await, 502).await;
        assert_eq!(
            message, "ollama answered 500: llama runner process has terminated",
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_failure_mid_answer_of_a_whole_request_is_502_with_ollamas_message() {
    let behavior = Behavior {
        fail_after: Some(0),
        error_message: "out of memory".into(),
        ..Behavior::default()
    };
    let app = spawn_app(behavior).await;
    // A mid-answer failure of a non-streaming request.
    let message = error_of(
        app.post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": "Hi"}),
        )
        .await,
        502,
    )
    .await;
    assert_eq!(message, "out of memory");
}

/// A backend with a bug: it panics when asked to generate.
struct PanickingBackend;

impl Backend for PanickingBackend {
    fn name(&self) -> &str {
        "panicking"
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Ollama
    }
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn infer(&self, _: InferenceRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(async { panic!("a bug in the backend") })
    }
    fn health(&self) -> BoxFuture<'_, BackendHealth> {
        Box::pin(async {
            BackendHealth {
                kind: BackendKind::Ollama,
                ready: true,
                location: "memory".into(),
                version: None,
                error: None,
            }
        })
    }
    fn describe(&self, _: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
        Box::pin(async { panic!("a bug in the backend") })
    }
    fn embed(&self, _: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>> {
        Box::pin(async { panic!("a bug in the backend") })
    }
}

#[tokio::test]
async fn a_panic_is_a_json_500_and_the_server_keeps_serving() {
    let app = spawn_app_over(vec![Arc::new(PanickingBackend)]).await;

    let response = app
        .post_json("/api/v1/generate", json!({"model": "m", "prompt": "Hi"}))
        .await;
    assert_eq!(error_of(response, 500).await, "internal server error");

    let response = app.get("/api/v1/models").await;
    assert_eq!(response.status(), 200);
    let response = app
        .post_json(
            "/api/v1/chat/stream",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(error_of(response, 500).await, "internal server error");
    assert_eq!(app.get("/healthz").await.status(), 200);
}
