//! A reasoning model's thoughts, apart from its answer on every path:
//! Ollama's `thinking` chunks and `<think>` tags in the text alike, in the
//! streamed frames, the whole answers, a generation's replay and the
//! conversation kept on the server.

use std::time::Duration;

use fake_ollama::Behavior;
use serde_json::{Value, json};

use crate::helpers::{TestApp, parse_frames, spawn_app};

fn thinking(thoughts: &str, reply: &str) -> Behavior {
    Behavior {
        thinking: Some(thoughts.into()),
        reply: Some(reply.into()),
        ..Behavior::default()
    }
}

fn chat_body() -> Value {
    json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Capital of France?"}]})
}

/// The token frames' `(thinking, response)` pairs.
fn pieces(body: &str) -> Vec<(Option<String>, String)> {
    parse_frames(body)
        .iter()
        .filter(|frame| frame.event.is_none())
        .map(|frame| {
            let data = frame.json();
            (
                data["thinking"].as_str().map(String::from),
                data["response"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn thoughts_stream_first_in_their_own_frames() {
    let app = spawn_app(thinking("Hmm, France.", "Paris.")).await;

    let response = app.post_json("/api/v1/chat/stream", chat_body()).await;

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with(concat!(
            "data: {\"response\":\"\",\"thinking\":\"Hmm,\",\"done\":false}\n\n",
            "data: {\"response\":\"\",\"thinking\":\" France.\",\"done\":false}\n\n",
            "data: {\"response\":\"Paris.\",\"done\":false}\n\n",
            "event: done\n"
        )),
        "{body}"
    );
}

#[tokio::test]
async fn whole_answers_carry_the_thoughts_as_ollama_does() {
    let app = spawn_app(thinking("Hmm, France.", "Paris.")).await;

    let chat: Value = app
        .post_json("/api/v1/chat", chat_body())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        chat["message"],
        json!({"role": "assistant", "content": "Paris.", "thinking": "Hmm, France."})
    );

    let generate: Value = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2", "prompt": "Capital of France?"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(generate["response"], "Paris.");
    assert_eq!(generate["thinking"], "Hmm, France.");
}

#[tokio::test]
async fn think_false_reaches_ollama_and_nothing_is_thought() {
    let app = spawn_app(thinking("Hmm.", "Paris.")).await;
    let mut body = chat_body();
    body["think"] = json!(false);

    let answer: Value = app
        .post_json("/api/v1/chat", body)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        app.fake().events().request_bodies("/api/chat")[0]["think"],
        false
    );
    assert_eq!(answer["message"]["content"], "Paris.");
    assert_eq!(answer["message"].get("thinking"), None);
}

#[tokio::test]
async fn think_tags_in_the_text_become_thoughts() {
    let app = spawn_app(Behavior {
        reply: Some("<think>France? Paris.</think>\n\nParis.".into()),
        ..Behavior::default()
    })
    .await;

    let response = app.post_json("/api/v1/chat/stream", chat_body()).await;
    let pieces = pieces(&response.text().await.unwrap());

    let thoughts: String = pieces.iter().filter_map(|(t, _)| t.clone()).collect();
    let answer: String = pieces.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(thoughts, "France? Paris.");
    assert_eq!(answer, "Paris.");
    // A frame is one or the other, never both.
    assert!(
        pieces
            .iter()
            .all(|(t, text)| t.is_none() != text.is_empty())
    );
}

async fn generation(app: &TestApp) -> (String, String) {
    let response = app.post_json("/api/v1/generations", chat_body()).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_string(),
        created["events_url"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_generation_numbers_thoughts_and_tokens_as_one_sequence() {
    let app = spawn_app(thinking("One two three", "Paris.")).await;
    let (id, events_url) = generation(&app).await;

    let all = app.get(&events_url).await.text().await.unwrap();
    assert!(
        all.contains(concat!(
            "id: 3\ndata: {\"response\":\"\",\"thinking\":\" three\",\"done\":false}\n\n",
            "id: 4\ndata: {\"response\":\"Paris.\",\"done\":false}\n\n"
        )),
        "{all}"
    );
    // Resuming inside the thoughts gives the rest of them, then the answer.
    let resumed = app
        .client
        .get(app.url(&events_url))
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        pieces(&resumed),
        [
            (Some(" two".to_string()), String::new()),
            (Some(" three".to_string()), String::new()),
            (None, "Paris.".to_string())
        ]
    );
    let state: Value = app
        .get(&format!("/api/v1/generations/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["text"], "Paris.");
    assert_eq!(state["thinking"], "One two three");
    assert_eq!(state["tokens"], 4);
}

#[tokio::test]
async fn a_conversation_keeps_the_thoughts_apart_from_the_answer() {
    let app = spawn_app(thinking("Hmm, France.", "Paris.")).await;
    let created: Value = app
        .post_json("/api/v1/conversations", json!({"model": "llama3.2"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();

    let posted: Value = app
        .post_json(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"content": "Capital of France?"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let reply_id = posted["reply"]["id"].as_str().unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let conversation: Value = app
            .get(&format!("/api/v1/conversations/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let reply = conversation["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|message| message["id"] == reply_id)
            .unwrap()
            .clone();
        if reply["status"] != "streaming" {
            break reply;
        }
        assert!(std::time::Instant::now() < deadline, "still streaming");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(reply["content"], "Paris.");
    assert_eq!(reply["thinking"], "Hmm, France.");
    // The model is not shown its own thoughts again: only answers go back.
    app.post_json(
        &format!("/api/v1/conversations/{id}/messages"),
        json!({"content": "And Spain?", "parent_id": reply_id}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.fake().events().request_bodies("/api/chat").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "second question not asked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = &app.fake().events().request_bodies("/api/chat")[1]["messages"];
    assert_eq!(sent[1], json!({"role": "assistant", "content": "Paris."}));
}
