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
            r#"],"backends":[{{"name":"ollama","kind":"ollama","manages_models":true}}]}}"#
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

mod managed {
    //! Pulling and deleting from the page's API: Ollama's progress as our
    //! SSE, the end said once, a cancelled pull reaching Ollama.

    use std::time::Duration;

    use fake_ollama::{Behavior, FakeEvent};
    use serde_json::{Value, json};

    use crate::helpers::{TestApp, parse_frames, read_frames, spawn_app};

    async fn listed(app: &TestApp) -> Vec<String> {
        let models: Value = app.get("/api/v1/models").await.json().await.unwrap();
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|model| model["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_pull_streams_progress_then_done_and_the_model_is_listed() {
        let app = spawn_app(Behavior {
            pull_steps: 3,
            ..Behavior::default()
        })
        .await;
        let response = app
            .post_json("/api/v1/models/pull", json!({"model": "qwen3:0.6b"}))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let frames = parse_frames(&response.text().await.unwrap());
        assert_eq!(frames[0].json(), json!({"status": "pulling manifest"}));
        let completed: Vec<u64> = frames
            .iter()
            .filter_map(|frame| frame.json()["completed"].as_u64())
            .collect();
        assert_eq!(completed.len(), 3);
        assert!(completed.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(frames[1].json()["total"], frames[3].json()["completed"]);
        assert!(
            frames[1].json()["digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        let last = frames.last().unwrap();
        assert_eq!(last.event.as_deref(), Some("done"));
        assert_eq!(
            last.json(),
            json!({"status": "success", "model": "qwen3:0.6b"})
        );
        assert!(listed(&app).await.contains(&"qwen3:0.6b".to_string()));
    }

    #[tokio::test]
    async fn a_failed_pull_ends_with_ollamas_reason() {
        let app = spawn_app(Behavior::default()).await;
        let response = app
            .post_json("/api/v1/models/pull", json!({"model": "missing-model"}))
            .await;
        let frames = parse_frames(&response.text().await.unwrap());
        let last = frames.last().unwrap();
        assert_eq!(last.event.as_deref(), Some("error"));
        assert_eq!(
            last.json(),
            json!({"error": "pull model manifest: file does not exist"})
        );
        let response = app
            .post_json("/api/v1/models/pull", json!({"model": " "}))
            .await;
        assert_eq!(response.status(), 400);
        let response = app
            .post_json(
                "/api/v1/models/pull",
                json!({"model": "x", "upstream": "nowhere"}),
            )
            .await;
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "no upstream named \"nowhere\"");
    }

    #[tokio::test]
    async fn closing_a_pull_cancels_it_at_ollama() {
        let app = spawn_app(Behavior {
            pull_steps: 50,
            pull_step_ms: 100,
            ..Behavior::default()
        })
        .await;
        let mut response = app
            .post_json("/api/v1/models/pull", json!({"model": "qwen3:0.6b"}))
            .await;
        read_frames(&mut response, 2).await;
        drop(response);
        let cancelled = app
            .fake()
            .events()
            .wait_for(Duration::from_secs(1), |events| {
                events.iter().any(|event| {
                    matches!(event, FakeEvent::Disconnected { path, .. } if path == "/api/pull")
                })
            })
            .await;
        assert!(cancelled.is_some(), "the pull went on at Ollama");
        assert!(!listed(&app).await.contains(&"qwen3:0.6b".to_string()));
    }

    #[tokio::test]
    async fn delete_removes_a_model_from_its_ollama_and_says_what_went_wrong() {
        let app = spawn_app(Behavior::default()).await;
        let response = app
            .client
            .delete(app.url("/api/v1/models/qwen2.5:0.5b"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        assert!(!listed(&app).await.contains(&"qwen2.5:0.5b".to_string()));
        let response = app
            .client
            .delete(app.url("/api/v1/models/qwen2.5:0.5b"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("not found"),
            "{body}"
        );
    }
}
