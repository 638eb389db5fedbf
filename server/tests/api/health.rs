//! `/healthz`, `/readyz` and `/metrics`.

use fake_ollama::Behavior;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_without_ollama};

#[tokio::test]
async fn healthz_answers_without_asking_any_backend() {
    let app = spawn_app_without_ollama().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn readyz_reports_each_backend() {
    let app = spawn_app(Behavior::default()).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["backends"]["ollama"]["ready"], true);
    assert_eq!(body["backends"]["ollama"]["version"], "0.12.6");
    assert_eq!(body["backends"]["ollama"]["location"], app.fake().url());
}

#[tokio::test]
async fn readyz_is_503_with_the_reason_when_ollama_is_down() {
    let app = spawn_app_without_ollama().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    let error = body["backends"]["ollama"]["error"].as_str().unwrap();
    assert!(error.contains("unreachable"), "{error}");
}

#[tokio::test]
async fn metrics_count_streams_and_tokens() {
    let app = spawn_app(Behavior::default()).await;
    app.post_json(
        "/api/v1/generate/stream",
        serde_json::json!({"model": "llama3.2", "prompt": "Hi"}),
    )
    .await
    .text()
    .await
    .unwrap();
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("llm_chat_active_streams 0\n"), "{text}");
    assert!(text.contains("llm_chat_streams_total 1\n"), "{text}");
    assert!(text.contains("llm_chat_tokens_relayed_total 8\n"), "{text}");
}
