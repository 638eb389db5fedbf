//! The fake over real HTTP, as Ollama's clients (llm-chat, LiteLLM, the
//! browser tests) see it: Ollama's endpoints and bodies, its error bodies,
//! and the log of what it saw.

use std::time::Duration;

use fake_ollama::{Behavior, FakeEvent, FakeOllama};
use serde_json::{Value, json};

async fn post(fake: &FakeOllama, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", fake.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get_json(fake: &FakeOllama, path: &str) -> Value {
    reqwest::get(format!("{}{path}", fake.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn it_answers_the_probes_ollama_answers() {
    let fake = FakeOllama::start(Behavior::default()).await.unwrap();

    let root = reqwest::get(fake.url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(root, "Ollama is running");
    assert!(get_json(&fake, "/api/version").await["version"].is_string());
    let tags = get_json(&fake, "/api/tags").await;
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["llama3.2:latest", "qwen2.5:0.5b"]);
    assert_eq!(tags["models"][0]["details"]["family"], "llama");
}

#[tokio::test]
async fn show_takes_the_model_under_either_key() {
    let fake = FakeOllama::start(Behavior::default()).await.unwrap();

    for key in ["model", "name"] {
        let response = post(&fake, "/api/show", json!({ key: "llama3.2" })).await;
        assert_eq!(response.status(), 200);
        let shown: Value = response.json().await.unwrap();
        assert!(shown["details"].is_object(), "{shown}");
        assert!(shown["model_info"].is_object(), "{shown}");
    }
    let missing = post(&fake, "/api/show", json!({"model": "nope"})).await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "model 'nope' not found");
}

#[tokio::test]
async fn generate_streams_ndjson_by_default_and_one_object_without_streaming() {
    let fake = FakeOllama::start(Behavior {
        reply: Some("Hello there".into()),
        ..Behavior::default()
    })
    .await
    .unwrap();

    let streamed = post(
        &fake,
        "/api/generate",
        json!({"model": "llama3.2", "prompt": "Hi"}),
    )
    .await;
    assert_eq!(streamed.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = streamed
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["response"], "Hello");
    assert_eq!(lines[1]["response"], " there");
    assert_eq!(lines[2]["done"], true);
    assert_eq!(lines[2]["done_reason"], "stop");
    assert_eq!(lines[2]["eval_count"], 2);

    let whole: Value = post(
        &fake,
        "/api/generate",
        json!({"model": "llama3.2", "prompt": "Hi", "stream": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(whole["response"], "Hello there");
    assert_eq!(whole["done"], true);
}

#[tokio::test]
async fn chat_answers_with_messages_and_honours_num_predict() {
    let fake = FakeOllama::start(Behavior::default()).await.unwrap();

    let whole: Value = post(
        &fake,
        "/api/chat",
        json!({"model": "llama3.2", "stream": false, "options": {"num_predict": 3},
               "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await
    .json()
    .await
    .unwrap();

    assert_eq!(whole["message"]["role"], "assistant");
    assert_eq!(whole["message"]["content"], "The quick brown");
    assert_eq!(whole["done_reason"], "length");
}

#[tokio::test]
async fn errors_are_ollamas_json_bodies() {
    let fake = FakeOllama::start(Behavior::default()).await.unwrap();

    let unknown = post(
        &fake,
        "/api/generate",
        json!({"model": "nope", "prompt": "Hi"}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"],
        "model \"nope\" not found, try pulling it first"
    );
    let bad = reqwest::Client::new()
        .post(format!("{}/api/chat", fake.url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"].is_string());

    fake.set_behavior(Behavior {
        status_before_body: Some(500),
        error_message: "llama runner process has terminated".into(),
        ..Behavior::default()
    });
    let failed = post(
        &fake,
        "/api/generate",
        json!({"model": "llama3.2", "prompt": "Hi"}),
    )
    .await;
    assert_eq!(failed.status(), 500);
    assert_eq!(
        failed.json::<Value>().await.unwrap()["error"],
        "llama runner process has terminated"
    );
}

#[tokio::test]
async fn a_mid_stream_failure_is_an_error_line() {
    let fake = FakeOllama::start(Behavior {
        fail_after: Some(2),
        error_message: "out of memory".into(),
        ..Behavior::default()
    })
    .await
    .unwrap();

    let body = post(
        &fake,
        "/api/generate",
        json!({"model": "llama3.2", "prompt": "Hi"}),
    )
    .await
    .text()
    .await
    .unwrap();

    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 3, "{body}");
    assert_eq!(lines[2], r#"{"error":"out of memory"}"#);
}

#[tokio::test]
async fn the_log_records_requests_ends_and_clients_that_left() {
    let fake = FakeOllama::start(Behavior {
        tokens: 1000,
        token_delay_ms: 10,
        ..Behavior::default()
    })
    .await
    .unwrap();

    let mut left = post(
        &fake,
        "/api/chat",
        json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Talk"}]}),
    )
    .await;
    left.chunk().await.unwrap().unwrap();
    drop(left);
    let gone = fake
        .events()
        .wait_for(Duration::from_secs(2), |events| {
            events
                .iter()
                .any(|e| matches!(e, FakeEvent::Disconnected { .. }))
        })
        .await
        .expect("the disconnect is recorded");

    assert!(matches!(
        &gone[0],
        FakeEvent::Request { path, body, .. } if path == "/api/chat" && body["model"] == "llama3.2"
    ));
    let Some(FakeEvent::Disconnected { tokens_sent, .. }) = gone.last() else {
        panic!("{gone:?}");
    };
    assert!(*tokens_sent < 1000);
    // The same log over HTTP, for the browser tests.
    let logged = get_json(&fake, "/_fake/events").await;
    assert_eq!(logged["events"][1]["kind"], "disconnected");
    assert_eq!(logged["open_streams"], 0);
}

#[tokio::test]
async fn an_empty_prompt_loads_and_a_pull_adds_a_model_that_delete_removes() {
    let fake = FakeOllama::start(Behavior::default()).await.unwrap();

    let loaded = post(
        &fake,
        "/api/generate",
        json!({"model": "llama3.2", "stream": false}),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(loaded["done_reason"], "load");
    assert_eq!(
        get_json(&fake, "/api/ps").await["models"][0]["name"],
        "llama3.2:latest"
    );

    let pulled = post(&fake, "/api/pull", json!({"model": "phi3"}))
        .await
        .text()
        .await
        .unwrap();
    assert!(pulled.ends_with("{\"status\":\"success\"}\n"), "{pulled}");
    let names = |tags: Value| -> Vec<String> {
        tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|model| model["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names(get_json(&fake, "/api/tags").await).contains(&"phi3:latest".to_string()));

    let deleted = reqwest::Client::new()
        .delete(format!("{}/api/delete", fake.url()))
        .json(&json!({"model": "phi3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(!names(get_json(&fake, "/api/tags").await).contains(&"phi3:latest".to_string()));
}
