//! `POST /api/v1/generate` and `/generate/stream`: the Go API's wire format.

use fake_ollama::Behavior;
use serde_json::{Value, json};

use crate::helpers::{parse_frames, spawn_app, spawn_app_with, streamed_text};

fn reply(text: &str) -> Behavior {
    Behavior {
        reply: Some(text.to_string()),
        ..Behavior::default()
    }
}

#[tokio::test]
async fn generate_answers_one_json_with_the_go_apis_fields_in_order() {
    let app = spawn_app(reply("Hello there, friend.")).await;

    let response = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": "Say hello", "context": [7, 8]}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let created_at = serde_json::from_str::<Value>(&body).unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_string();
    // 2 prompt words, 3 tokens: durations are the fake's synthetic ones.
    let expected = format!(
        concat!(
            r#"{{"model":"llama3.2","created_at":"{}","response":"Hello there, friend.","done":true,"#,
            r#""done_reason":"stop","context":[7,8,3,4,5,6,7],"total_duration":33000000,"#,
            r#""load_duration":2000000,"prompt_eval_count":2,"prompt_eval_duration":1000000,"#,
            r#""eval_count":3,"eval_duration":30000000}}"#
        ),
        created_at
    );
    assert_eq!(body, expected);
}

#[tokio::test]
async fn the_upstream_is_always_asked_for_a_stream_with_the_clients_fields() {
    let app = spawn_app(Behavior::default()).await;

    app.post_json(
        "/api/v1/generate",
        json!({"model": "llama3.2", "prompt": "Hi", "system": "Be brief.",
               "options": {"temperature": 0.2, "mirostat": 2}, "keep_alive": "10m"}),
    )
    .await;

    let sent = app.fake().events().request_bodies("/api/generate");
    assert_eq!(
        sent,
        [
            json!({"model": "llama3.2", "prompt": "Hi", "system": "Be brief.",
                "options": {"temperature": 0.2, "mirostat": 2}, "keep_alive": "10m",
                "stream": true})
        ]
    );
}

#[tokio::test]
async fn generate_stream_frames_are_byte_exact() {
    let app = spawn_app(reply("Hello there")).await;

    let response = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "Hi"}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let body = response.text().await.unwrap();
    assert_eq!(
        body,
        concat!(
            "data: {\"response\":\"Hello\",\"done\":false}\n\n",
            "data: {\"response\":\" there\",\"done\":false}\n\n",
            "event: done\n",
            "data: {\"done\":true,\"done_reason\":\"stop\",\"context\":[1,2,3],",
            "\"total_duration\":22500000,\"load_duration\":2000000,\"prompt_eval_count\":1,",
            "\"prompt_eval_duration\":500000,\"eval_count\":2,\"eval_duration\":20000000}\n\n",
        )
    );
}

#[tokio::test]
async fn the_final_chunks_own_text_is_forwarded() {
    let app = spawn_app(Behavior {
        text_in_final_chunk: true,
        ..reply("one two three")
    })
    .await;

    let stream = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "Count"}),
        )
        .await
        .text()
        .await
        .unwrap();
    let whole: Value = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": "Count"}),
        )
        .await
        .json()
        .await
        .unwrap();

    let frames = parse_frames(&stream);
    assert_eq!(streamed_text(&frames), "one two three");
    assert_eq!(frames.last().unwrap().event.as_deref(), Some("done"));
    assert_eq!(whole["response"], "one two three");
}

#[tokio::test]
async fn a_length_limited_answer_says_so() {
    let app = spawn_app(Behavior {
        tokens: 20,
        ..Behavior::default()
    })
    .await;

    let whole: Value = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": "Go on", "options": {"num_predict": 3}}),
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(whole["response"], "The quick brown");
    assert_eq!(whole["done_reason"], "length");
    assert_eq!(whole["eval_count"], 3);
}

#[tokio::test]
async fn an_answer_longer_than_the_client_timeout_is_not_cut() {
    // 12 tokens 150 ms apart: 1.8 s of streaming behind a 0.5 s timeout.
    let behavior = Behavior {
        tokens: 12,
        token_delay_ms: 150,
        ..Behavior::default()
    };
    let app = spawn_app_with(behavior, |config| {
        config.ollama_timeout = std::time::Duration::from_millis(500);
    })
    .await;

    let stream = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "Slowly"}),
        )
        .await
        .text()
        .await
        .unwrap();
    let whole = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": "Slowly"}),
        )
        .await;

    let frames = parse_frames(&stream);
    assert_eq!(frames.len(), 13, "{stream}");
    assert_eq!(frames[12].event.as_deref(), Some("done"));
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(whole["eval_count"], 12);
}
