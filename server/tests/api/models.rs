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
            r#""parameter_size":"3.2B","quantization_level":"Q4_K_M"}},"backend":"ollama","backends":["ollama"]}},"#,
            r#"{{"name":"qwen2.5:0.5b","model":"qwen2.5:0.5b","modified_at":"2025-01-15T10:20:30.123456789Z","#,
            r#""size":397821319,"digest":"{}","details":{{"format":"gguf","family":"qwen","families":["qwen"],"#,
            r#""parameter_size":"494.03M","quantization_level":"Q4_K_M"}},"backend":"ollama","backends":["ollama"]}}"#,
            r#"]}}"#
        ),
        digest(0),
        digest(1)
    );
    assert_eq!(response.text().await.unwrap(), expected);
}

/// The reason is the client's to read; where Ollama lives is not (it is
/// in the server's log and `/readyz`).
#[tokio::test]
async fn a_dead_ollama_is_a_502_that_says_why_but_not_where() {
    let app = spawn_app_without_ollama().await;

    let response = app.get("/api/v1/models").await;

    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert_eq!(error, "ollama is unreachable: connection refused");
    assert!(!error.contains("127.0.0.1"), "{error}");
}

#[tokio::test]
async fn ollamas_models_appear_once_it_comes_up_without_a_restart() {
    use std::sync::Arc;
    use std::time::Duration;

    use fake_ollama::{FakeOllama, FakeState, default_models};
    use llm_chat::backend::embedded::{EmbeddedBackend, EmbeddedSettings};
    use llm_chat::backend::http::HttpSettings;
    use llm_chat::backend::ollama::OllamaBackend;

    // An address where nothing listens yet.
    let addr = crate::helpers::dead_address().await;
    let ollama = OllamaBackend::new(HttpSettings {
        name: "ollama".into(),
        url: format!("http://{addr}").parse().unwrap(),
        timeout: Duration::from_secs(2),
        tcp_keep_alive: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
    })
    .unwrap();
    // An embedded backend with an empty models directory: up, with no models.
    let empty = std::env::temp_dir().join(format!("llm-chat-no-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let embedded = EmbeddedBackend::new(EmbeddedSettings {
        models_dir: empty.clone(),
        threads: 1,
        parallel: 1,
        queue: 1,
        context_size: 512,
        keep_alive: None,
    });
    let app = crate::helpers::spawn_app_over(vec![Arc::new(ollama), embedded]).await;

    let before: Value = app.get("/api/v1/models").await.json().await.unwrap();
    assert_eq!(before["models"], serde_json::json!([]), "{before}");

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _fake = FakeOllama::serve(
        listener,
        FakeState::new(default_models(), Behavior::default()),
    )
    .unwrap();

    let after: Value = app.get("/api/v1/models").await.json().await.unwrap();
    let names: Vec<(&str, &str)> = after["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["backend"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("llama3.2:latest", "ollama"), ("qwen2.5:0.5b", "ollama")]
    );
    let answered = app
        .post_json(
            "/api/v1/chat",
            serde_json::json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(answered.status(), 200);
    let _ = std::fs::remove_dir(empty);
}
