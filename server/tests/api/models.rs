//! `GET /api/v1/models`.

use fake_ollama::Behavior;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_without_ollama};

#[tokio::test]
async fn models_are_ollamas_tags_plus_their_backend_byte_for_byte() {
    let app = spawn_app(Behavior::default()).await;
    let tags: Value = reqwest::get(format!("{}/api/tags", app.fake().url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = |i: usize| tags["models"][i]["digest"].as_str().unwrap().to_string();

    let response = app.get("/api/v1/models").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let expected = format!(
        concat!(
            r#"{{"models":["#,
            r#"{{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-01-15T10:20:30.123456789Z","#,
            r#""size":2019393189,"digest":"{}","details":{{"format":"gguf","family":"llama","families":["llama"],"#,
            r#""parameter_size":"3.2B","quantization_level":"Q4_K_M"}},"backend":"ollama"}},"#,
            r#"{{"name":"qwen2.5:0.5b","model":"qwen2.5:0.5b","modified_at":"2025-01-15T10:20:30.123456789Z","#,
            r#""size":397821319,"digest":"{}","details":{{"format":"gguf","family":"qwen","families":["qwen"],"#,
            r#""parameter_size":"494.03M","quantization_level":"Q4_K_M"}},"backend":"ollama"}}"#,
            r#"]}}"#
        ),
        digest(0),
        digest(1)
    );
    assert_eq!(response.text().await.unwrap(), expected);
}

#[tokio::test]
async fn a_dead_ollama_is_a_502_that_says_where_it_looked() {
    let app = spawn_app_without_ollama().await;

    let response = app.get("/api/v1/models").await;

    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("ollama is unreachable at http://127.0.0.1:"),
        "{error}"
    );
    assert!(error.contains("refused"), "{error}");
}
