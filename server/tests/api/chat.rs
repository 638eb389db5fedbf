//! `POST /api/v1/chat` and `/chat/stream`: Ollama's chat, our frames.

use fake_ollama::Behavior;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn conversation() -> Value {
    json!({
        "model": "qwen2.5:0.5b",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a colour"},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another"}
        ]
    })
}

#[tokio::test]
async fn chat_answers_the_assistants_whole_message_byte_for_byte() {
    let app = spawn_app(Behavior {
        reply: Some("Green, then red.".into()),
        ..Behavior::default()
    })
    .await;

    let response = app.post_json("/api/v1/chat", conversation()).await;

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let created_at = serde_json::from_str::<Value>(&body).unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_string();
    // 8 words of messages, 3 tokens.
    let expected = format!(
        concat!(
            r#"{{"model":"qwen2.5:0.5b","created_at":"{}","#,
            r#""message":{{"role":"assistant","content":"Green, then red."}},"done":true,"#,
            r#""done_reason":"stop","total_duration":36000000,"load_duration":2000000,"#,
            r#""prompt_eval_count":8,"prompt_eval_duration":4000000,"eval_count":3,"#,
            r#""eval_duration":30000000}}"#
        ),
        created_at
    );
    assert_eq!(body, expected);
}

#[tokio::test]
async fn the_whole_conversation_reaches_ollama() {
    let app = spawn_app(Behavior::default()).await;

    app.post_json("/api/v1/chat", conversation()).await;

    let mut expected = conversation();
    expected["stream"] = json!(true);
    assert_eq!(app.fake().events().request_bodies("/api/chat"), [expected]);
}

#[tokio::test]
async fn chat_stream_uses_the_same_frames_as_generate() {
    let app = spawn_app(Behavior {
        reply: Some("Red and\nblue".into()),
        ..Behavior::default()
    })
    .await;

    let response = app.post_json("/api/v1/chat/stream", conversation()).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        response.text().await.unwrap(),
        concat!(
            "data: {\"response\":\"Red\",\"done\":false}\n\n",
            "data: {\"response\":\" and\",\"done\":false}\n\n",
            "data: {\"response\":\"\\nblue\",\"done\":false}\n\n",
            "event: done\n",
            "data: {\"done\":true,\"done_reason\":\"stop\",\"total_duration\":36000000,",
            "\"load_duration\":2000000,\"prompt_eval_count\":8,\"prompt_eval_duration\":4000000,",
            "\"eval_count\":3,\"eval_duration\":30000000}\n\n",
        )
    );
}
