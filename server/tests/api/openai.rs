//! OpenAI's dialect under `/v1`, byte by byte over loopback HTTP in front
//! of fake-ollama: the objects, the chunk stream and `[DONE]`, the error
//! shape and statuses, and a client that leaves stopping the model.

use std::time::Duration;

use fake_ollama::{Behavior, FakeEvent};
use serde_json::{Value, json};

use crate::helpers::{TestApp, parse_frames, read_frames, spawn_app};

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

/// The SSE `data:` payloads of a body, in order.
fn data(body: &str) -> Vec<String> {
    parse_frames(body)
        .into_iter()
        .map(|frame| frame.data)
        .collect()
}

async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

#[tokio::test]
async fn models_are_listed_the_openai_way() {
    let app = spawn_app(Behavior::default()).await;

    let list: Value = app.get("/v1/models").await.json().await.unwrap();

    assert_eq!(list["object"], "list");
    let first = &list["data"][0];
    assert_eq!(first["object"], "model");
    assert_eq!(first["owned_by"], "ollama");
    assert!(
        first["created"].as_u64().unwrap() > 1_600_000_000,
        "{first}"
    );
    let id = first["id"].as_str().unwrap();
    let one: Value = app
        .get(&format!("/v1/models/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&one, first);
    let missing = error_of(app.get("/v1/models/no-such-model").await, 404).await;
    assert_eq!(missing["code"], "model_not_found");
}

#[tokio::test]
async fn a_whole_chat_answer_is_a_chat_completion() {
    let app = spawn_app(reply("Hello there.")).await;

    let response = app.post_json("/v1/chat/completions", chat(json!({}))).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"), "{id}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(
        body["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Hello there."},
                "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
    );
}

#[tokio::test]
async fn a_streamed_chat_answer_is_openais_chunks_then_done() {
    let app = spawn_app(reply("Hello there.")).await;

    let response = app
        .post_json(
            "/v1/chat/completions",
            chat(json!({"stream": true, "stream_options": {"include_usage": true}})),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(response.headers().get("content-encoding").is_none());
    let body = response.text().await.unwrap();
    let chunks = data(&body);
    assert_eq!(chunks.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = chunks[..chunks.len() - 1]
        .iter()
        .map(|chunk| serde_json::from_str(chunk).unwrap())
        .collect();
    let id = chunks[0]["id"].clone();
    let created = chunks[0]["created"].clone();
    let start = format!(
        r#"data: {{"id":{id},"object":"chat.completion.chunk","created":{created},"model":"llama3.2","choices":["#
    );
    let expected = [
        r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"index":0,"delta":{"content":" there."},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        r#"],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
    ]
    .iter()
    .map(|chunk| format!("{start}{chunk}\n\n"))
    .collect::<String>()
        + "data: [DONE]\n\n";
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_legacy_completion_works_whole_and_streamed() {
    let app = spawn_app(reply("Upon a time")).await;
    let request = json!({"model": "llama3.2", "prompt": "Once", "max_tokens": 2});

    let whole: Value = app
        .post_json("/v1/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["object"], "text_completion");
    assert_eq!(whole["choices"][0]["text"], "Upon a");
    assert_eq!(whole["choices"][0]["finish_reason"], "length");
    // num_predict reached Ollama.
    assert_eq!(
        app.fake().events().request_bodies("/api/generate")[0]["options"]["num_predict"],
        2
    );

    let mut streamed = request;
    streamed["stream"] = json!(true);
    let body = app
        .post_json("/v1/completions", streamed)
        .await
        .text()
        .await
        .unwrap();
    let chunks = data(&body);
    let texts: Vec<String> = chunks[..chunks.len() - 1]
        .iter()
        .map(|chunk| {
            serde_json::from_str::<Value>(chunk).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["Upon", " a", ""]);
    assert_eq!(chunks.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn refusals_are_openais_errors_with_the_right_status() {
    let app = spawn_app(Behavior::default()).await;
    let refuse = |body: Value| app.post_json("/v1/chat/completions", body);

    let n = error_of(refuse(chat(json!({"n": 3}))).await, 400).await;
    assert_eq!(
        n,
        json!({"message": "`n` is not supported: one choice per request",
               "type": "invalid_request_error", "param": "n", "code": "unsupported_parameter"})
    );
    let missing = error_of(refuse(json!({"model": "llama3.2"})).await, 400).await;
    assert_eq!(missing["param"], "messages");
    let unknown = error_of(
        refuse(json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}))
            .await,
        404,
    )
    .await;
    assert_eq!(unknown["code"], "model_not_found");
    assert_eq!(unknown["type"], "invalid_request_error");
    let bad_json = error_of(app.post("/v1/chat/completions", "{nope").await, 400).await;
    assert_eq!(bad_json["type"], "invalid_request_error");
    let no_such = error_of(app.get("/v1/assistants").await, 404).await;
    assert_eq!(no_such["type"], "not_found_error");
}

#[tokio::test]
async fn a_dead_upstream_is_a_502_that_names_no_address() {
    let app = spawn_app(Behavior {
        status_before_body: Some(500),
        ..Behavior::default()
    })
    .await;

    let error = error_of(
        app.post_json("/v1/chat/completions", chat(json!({}))).await,
        502,
    )
    .await;

    assert_eq!(error["type"], "server_error");
    assert!(
        !error["message"].as_str().unwrap().contains("127.0.0.1"),
        "{error}"
    );
}

#[tokio::test]
async fn a_failure_mid_stream_ends_with_openais_streamed_error() {
    let app = spawn_app(Behavior {
        fail_after: Some(2),
        ..Behavior::default()
    })
    .await;

    let body = app
        .post_json("/v1/chat/completions", chat(json!({"stream": true})))
        .await
        .text()
        .await
        .unwrap();

    let chunks = data(&body);
    let last: Value = serde_json::from_str(chunks.last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"error": {"message": "model runner has unexpectedly stopped",
                         "type": "server_error", "param": null, "code": null}})
    );
    assert!(!body.contains("[DONE]"));
}

#[tokio::test]
async fn a_client_that_leaves_stops_the_model() {
    let app: TestApp = spawn_app(Behavior {
        tokens: 500,
        token_delay_ms: 20,
        ..Behavior::default()
    })
    .await;

    let mut response = app
        .post_json("/v1/chat/completions", chat(json!({"stream": true})))
        .await;
    read_frames(&mut response, 3).await;
    drop(response);

    let seen = app
        .fake()
        .events()
        .wait_for(Duration::from_secs(1), |events| {
            events
                .iter()
                .any(|e| matches!(e, FakeEvent::Disconnected { .. }))
        })
        .await;
    assert!(
        seen.is_some(),
        "the upstream request was dropped within 1 s"
    );
}
