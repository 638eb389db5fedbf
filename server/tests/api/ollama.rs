//! Ollama's dialect at Ollama's own paths, byte by byte over loopback HTTP
//! in front of fake-ollama: the NDJSON lines and the whole answers, model
//! listings, loading with an empty prompt, management calls passed on,
//! errors in Ollama's shape, `/` answering as Ollama does for non-browsers,
//! and a client that leaves stopping the model.

use std::time::Duration;

use fake_ollama::{Behavior, FakeEvent};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn reply(text: &str) -> Behavior {
    Behavior {
        reply: Some(text.into()),
        ..Behavior::default()
    }
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// The lines of an NDJSON body, parsed, with each `created_at` checked to
/// be a time and then blanked (it is the one field that changes per run).
fn lines(body: &str) -> Vec<Value> {
    assert!(
        body.ends_with('\n'),
        "every line ends with a newline: {body:?}"
    );
    body.lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            if let Some(time) = value.get("created_at") {
                let time = time.as_str().unwrap();
                assert!(
                    humantime::parse_rfc3339(time).is_ok(),
                    "an RFC 3339 time: {time}"
                );
                value["created_at"] = json!("T");
            }
            value
        })
        .collect()
}

async fn error_of(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    body["error"].as_str().unwrap().to_string()
}

async fn tags(app: &TestApp) -> Vec<String> {
    let list: Value = app.get("/api/tags").await.json().await.unwrap();
    list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn version_and_tags_answer_as_ollama_does() {
    let app = spawn_app(Behavior::default()).await;

    let version: Value = app.get("/api/version").await.json().await.unwrap();
    assert_eq!(version, json!({"version": "0.12.6"}));

    let list: Value = app.get("/api/tags").await.json().await.unwrap();
    let first = &list["models"][0];
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["name", "model", "modified_at", "size", "digest", "details"]
    );
    assert_eq!(first["name"], "llama3.2:latest");
    assert_eq!(
        first["details"],
        json!({"parent_model": "", "format": "gguf", "family": "llama",
               "families": ["llama"], "parameter_size": "3.2B",
               "quantization_level": "Q4_K_M"})
    );
}

#[tokio::test]
async fn a_streamed_chat_is_ollamas_ndjson_uncompressed() {
    let app = spawn_app(reply("Hello there.")).await;

    let response = app
        .client
        .post(app.url("/api/chat"))
        .header("accept-encoding", "gzip, br")
        .json(&chat(json!({})))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert!(response.headers().get("content-encoding").is_none());
    let body = lines(&response.text().await.unwrap());
    assert_eq!(
        body[..2],
        [
            json!({"model": "llama3.2", "created_at": "T",
                   "message": {"role": "assistant", "content": "Hello"}, "done": false}),
            json!({"model": "llama3.2", "created_at": "T",
                   "message": {"role": "assistant", "content": " there."}, "done": false}),
        ]
    );
    let last = &body[2];
    assert_eq!(last["message"], json!({"role": "assistant", "content": ""}));
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], 2);
    assert!(last["total_duration"].as_u64().unwrap() > 0, "{last}");
    assert_eq!(body.len(), 3);
}

#[tokio::test]
async fn a_whole_generate_answer_carries_its_context() {
    let app = spawn_app(reply("Once upon a time")).await;

    let response = app
        .post_json(
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "Tell me a story", "stream": false,
                   "options": {"temperature": 0, "num_predict": 8}, "keep_alive": "1m"}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(body["response"], "Once upon a time");
    assert_eq!(body["done"], true);
    assert!(
        body["context"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty()),
        "{body}"
    );
    // What went upstream: Ollama's own options, as the client wrote them.
    let sent = app.fake().events().request_bodies("/api/generate");
    assert_eq!(
        sent[0]["options"],
        json!({"temperature": 0.0, "num_predict": 8})
    );
    assert_eq!(sent[0]["keep_alive"], "1m");
}

#[tokio::test]
async fn a_streamed_generate_has_response_lines() {
    let app = spawn_app(Behavior {
        reply: Some("Hi you".into()),
        thinking: Some("Greet back.".into()),
        ..Behavior::default()
    })
    .await;

    let body = app
        .post_json(
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "Hi", "think": true}),
        )
        .await
        .text()
        .await
        .unwrap();

    let body = lines(&body);
    assert_eq!(
        body[0],
        json!({"model": "llama3.2", "created_at": "T", "response": "",
               "thinking": "Greet", "done": false})
    );
    let answer: String = body
        .iter()
        .filter(|line| line["done"] == false)
        .map(|line| line["response"].as_str().unwrap())
        .collect();
    assert_eq!(answer, "Hi you");
    assert_eq!(body.last().unwrap()["done"], true);
}

#[tokio::test]
async fn an_empty_prompt_loads_the_model_and_ps_lists_it() {
    let app = spawn_app(Behavior::default()).await;

    let loaded: Value = app
        .post_json(
            "/api/generate",
            json!({"model": "llama3.2", "stream": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(loaded["done_reason"], "load");
    assert_eq!(loaded["response"], "");

    let ps: Value = app.get("/api/ps").await.json().await.unwrap();
    assert_eq!(ps["models"][0]["name"], "llama3.2:latest");
    assert!(ps["models"][0]["expires_at"].is_string(), "{ps}");

    let unloaded = lines(
        &app.post_json(
            "/api/chat",
            json!({"model": "llama3.2", "messages": [], "keep_alive": 0}),
        )
        .await
        .text()
        .await
        .unwrap(),
    );
    assert_eq!(unloaded.len(), 1);
    assert_eq!(unloaded[0]["done_reason"], "unload");
    let ps: Value = app.get("/api/ps").await.json().await.unwrap();
    assert_eq!(ps, json!({"models": []}));
}

#[tokio::test]
async fn show_describes_a_model_and_names_a_missing_one() {
    let app = spawn_app(Behavior::default()).await;

    let card: Value = app
        .post_json("/api/show", json!({"model": "llama3.2"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card["details"]["family"], "llama");
    assert_eq!(card["details"]["parent_model"], "");
    assert_eq!(card["model_info"]["general.architecture"], "llama");
    assert_eq!(card["capabilities"], json!(["completion"]));
    assert_eq!(card["license"], "fake license");

    let missing = error_of(
        app.post_json("/api/show", json!({"name": "nope"})).await,
        404,
    )
    .await;
    assert_eq!(missing, "model 'nope' not found");
}

#[tokio::test]
async fn refusals_are_ollamas_errors_with_the_right_status() {
    let app = spawn_app(Behavior::default()).await;

    let missing = error_of(
        app.post_json("/api/chat", chat(json!({"model": "nope"})))
            .await,
        404,
    )
    .await;
    assert_eq!(missing, "model \"nope\" not found, try pulling it first");
    let no_model = error_of(
        app.post_json("/api/generate", json!({"prompt": "x"})).await,
        400,
    )
    .await;
    assert_eq!(no_model, "model is required");
    let tools = error_of(
        app.post_json("/api/chat", chat(json!({"tools": [{"type": "function"}]})))
            .await,
        400,
    )
    .await;
    assert!(tools.contains("`tools`"), "{tools}");
    let bad_json = error_of(app.post("/api/chat", "{").await, 400).await;
    assert!(bad_json.starts_with("invalid JSON body"), "{bad_json}");
    let unknown = error_of(app.get("/api/nothing-here").await, 404).await;
    assert_eq!(unknown, "no such endpoint: /api/nothing-here");
}

#[tokio::test]
async fn a_dead_upstream_is_a_502_that_names_no_address() {
    let app = spawn_app(Behavior {
        status_before_body: Some(500),
        ..Behavior::default()
    })
    .await;

    let message = error_of(app.post_json("/api/chat", chat(json!({}))).await, 502).await;

    assert!(!message.contains("127.0.0.1"), "{message}");
}

#[tokio::test]
async fn a_failure_mid_stream_ends_with_an_error_line() {
    let app = spawn_app(Behavior {
        fail_after: Some(2),
        ..Behavior::default()
    })
    .await;

    let body = app
        .post_json("/api/chat", chat(json!({})))
        .await
        .text()
        .await
        .unwrap();

    let body = lines(&body);
    assert_eq!(body.len(), 3);
    assert_eq!(
        body[2],
        json!({"error": "model runner has unexpectedly stopped"})
    );
}

#[tokio::test]
async fn a_client_that_leaves_stops_the_model() {
    let app = spawn_app(Behavior {
        tokens: 500,
        token_delay_ms: 20,
        ..Behavior::default()
    })
    .await;

    let mut response = app.post_json("/api/chat", chat(json!({}))).await;
    let mut seen = 0;
    while seen < 3 {
        let chunk = response.chunk().await.unwrap().expect("more lines");
        seen += chunk.iter().filter(|&&byte| byte == b'\n').count();
    }
    drop(response);

    let left = app
        .fake()
        .events()
        .wait_for(Duration::from_secs(1), |events| {
            events
                .iter()
                .any(|e| matches!(e, FakeEvent::Disconnected { .. }))
        })
        .await;
    assert!(
        left.is_some(),
        "the upstream request was dropped within 1 s"
    );
}

#[tokio::test]
async fn a_pull_streams_ollamas_progress_and_the_model_is_then_listed() {
    let app = spawn_app(Behavior {
        pull_steps: 3,
        ..Behavior::default()
    })
    .await;

    let response = app
        .post_json("/api/pull", json!({"model": "qwen3:0.6b"}))
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = lines(&response.text().await.unwrap());
    assert_eq!(body[0], json!({"status": "pulling manifest"}));
    let completed: Vec<u64> = body
        .iter()
        .filter_map(|line| line["completed"].as_u64())
        .collect();
    assert_eq!(completed.len(), 3);
    assert!(completed.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(body[1]["total"], body[3]["completed"]);
    assert_eq!(body.last().unwrap(), &json!({"status": "success"}));
    assert!(tags(&app).await.contains(&"qwen3:0.6b".to_string()));

    let failed = lines(
        &app.post_json("/api/pull", json!({"model": "missing-model"}))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        failed.last().unwrap(),
        &json!({"error": "pull model manifest: file does not exist"})
    );
}

#[tokio::test]
async fn delete_and_copy_go_to_ollama_and_say_what_went_wrong() {
    let app = spawn_app(Behavior::default()).await;

    let copied = app
        .post_json(
            "/api/copy",
            json!({"source": "llama3.2", "destination": "mine:latest"}),
        )
        .await;
    assert_eq!(copied.status(), 200);
    assert!(tags(&app).await.contains(&"mine:latest".to_string()));

    let deleted = app
        .client
        .delete(app.url("/api/delete"))
        .json(&json!({"model": "mine:latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(!tags(&app).await.contains(&"mine:latest".to_string()));

    let again = app
        .client
        .delete(app.url("/api/delete"))
        .json(&json!({"model": "mine:latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again, 404).await, "model 'mine:latest' not found");
    let no_source = error_of(
        app.post_json("/api/copy", json!({"destination": "x"}))
            .await,
        400,
    )
    .await;
    assert_eq!(no_source, "source is required");
}

#[tokio::test]
async fn the_root_is_the_page_for_browsers_and_ollamas_greeting_for_clients() {
    let app = spawn_app(Behavior::default()).await;

    let client = app.get("/").await;
    assert_eq!(client.status(), 200);
    assert_eq!(
        client.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(client.headers()["vary"], "accept");
    assert_eq!(client.text().await.unwrap(), "Ollama is running");

    let head = app.client.head(app.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);

    let browser = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), 200);
    assert!(
        browser.text().await.unwrap().starts_with("<!DOCTYPE html>"),
        "the chat page"
    );
}
