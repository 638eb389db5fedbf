//! Conversations kept on the server, over loopback HTTP with a real SQLite
//! file: the REST contract and its errors, the branch the model gets, and
//! answers that are saved whoever reads them, however they end.

use std::time::Duration;

use fake_ollama::{Behavior, FakeEvent};
use serde_json::{Value, json};

use crate::helpers::{
    TempDir, TestApp, parse_frames, read_frames, spawn_app, spawn_app_on, streamed_text,
};

fn slow(tokens: usize, delay_ms: u64) -> Behavior {
    Behavior {
        tokens,
        token_delay_ms: delay_ms,
        ..Behavior::default()
    }
}

async fn create(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/api/v1/conversations", body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn conversation(app: &TestApp, id: &str) -> Value {
    let response = app.get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn post(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.post_json(&format!("/api/v1/conversations/{id}/messages"), body)
        .await
}

/// Posts a question and returns the answer to it.
async fn ask(app: &TestApp, id: &str, body: Value) -> Value {
    let response = post(app, id, body).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.unwrap()
}

fn message<'a>(conversation: &'a Value, id: &str) -> &'a Value {
    conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|message| message["id"] == id)
        .unwrap_or_else(|| panic!("message {id} in {conversation}"))
}

/// Waits until the message has left `streaming`; returns the conversation.
async fn settled(app: &TestApp, id: &str, message_id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let conversation = conversation(app, id).await;
        if message(&conversation, message_id)["status"] != "streaming" {
            return conversation;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still streaming: {conversation}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn error_of(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_new_conversation_has_its_settings_and_a_placeholder_title() {
    let app = spawn_app(Behavior::default()).await;

    let created = create(
        &app,
        json!({"model": "llama3.2", "system": "Be brief.", "options": {"temperature": 0.2, "num_ctx": 2048}}),
    )
    .await;

    assert_eq!(created["title"], "New chat");
    assert_eq!(created["model"], "llama3.2");
    assert_eq!(created["system"], "Be brief.");
    assert_eq!(
        created["options"],
        json!({"temperature": 0.2, "num_ctx": 2048})
    );
    assert_eq!(created["messages"], json!([]));
    assert_eq!(created["current_id"], Value::Null);
    assert_eq!(
        conversation(&app, created["id"].as_str().unwrap()).await,
        created
    );
}

#[tokio::test]
async fn an_answer_is_saved_with_its_stats_and_named_after_the_first_question() {
    let app = spawn_app(Behavior {
        reply: Some("Blue, because of Rayleigh scattering.".into()),
        ..Behavior::default()
    })
    .await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let posted = ask(
        &app,
        &id,
        json!({"content": "Why is the sky blue?\nDetails please."}),
    )
    .await;

    let question = &posted["message"];
    assert_eq!(question["role"], "user");
    assert_eq!(question["parent_id"], Value::Null);
    assert_eq!(question["status"], "complete");
    let reply_id = posted["reply"]["id"].as_str().unwrap();
    let generation = posted["reply"]["generation"]["id"].as_str().unwrap();
    assert_eq!(
        posted["reply"]["generation"]["events_url"],
        format!("/api/v1/generations/{generation}/events")
    );
    let saved = settled(&app, &id, reply_id).await;
    assert_eq!(saved["title"], "Why is the sky blue?");
    assert_eq!(saved["current_id"], reply_id);
    let reply = message(&saved, reply_id);
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["parent_id"], question["id"]);
    assert_eq!(reply["content"], "Blue, because of Rayleigh scattering.");
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["model"], "llama3.2");
    assert_eq!(reply["generation_id"], Value::Null);
    assert_eq!(reply["stats"]["tokens"], 5);
    assert_eq!(reply["stats"]["eval_count"], 5);
    assert!(reply["stats"]["tokens_per_second"].as_f64().unwrap() > 0.0);
    assert!(reply["stats"]["time_to_first_token"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_answer_streams_through_its_generation_with_ids() {
    let app = spawn_app(Behavior {
        reply: Some("Hello there".into()),
        ..Behavior::default()
    })
    .await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let posted = ask(&app, &id, json!({"content": "Hi"})).await;

    let events_url = posted["reply"]["generation"]["events_url"]
        .as_str()
        .unwrap();
    let body = app.get(events_url).await.text().await.unwrap();
    assert!(
        body.starts_with("retry: 1000\n\nid: 1\ndata: {\"response\":\"Hello\",\"done\":false}\n\n"),
        "{body}"
    );
    assert_eq!(streamed_text(&parse_frames(&body)), "Hello there");
}

/// The model sees the system prompt and the branch down to the question;
/// nothing from a sibling branch.
#[tokio::test]
async fn the_model_gets_the_system_prompt_and_only_the_branch_asked_from() {
    let app = spawn_app(Behavior {
        reply: Some("Answer.".into()),
        ..Behavior::default()
    })
    .await;
    let id = create(&app, json!({"model": "llama3.2", "system": "Be brief."})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = ask(&app, &id, json!({"content": "First question"})).await;
    settled(&app, &id, first["reply"]["id"].as_str().unwrap()).await;
    // An edit of the first question: a new first message, its own branch.
    let edited = ask(
        &app,
        &id,
        json!({"content": "Edited question", "parent_id": null}),
    )
    .await;
    settled(&app, &id, edited["reply"]["id"].as_str().unwrap()).await;
    // Continue the edited branch (current_id is its answer now).
    let follow_up = ask(&app, &id, json!({"content": "Follow-up"})).await;
    settled(&app, &id, follow_up["reply"]["id"].as_str().unwrap()).await;

    let sent = app.fake().events().request_bodies("/api/chat");
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[2]["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Edited question"},
            {"role": "assistant", "content": "Answer."},
            {"role": "user", "content": "Follow-up"},
        ])
    );
    assert_eq!(sent[2]["model"], "llama3.2");
    // The two first questions are siblings at the root.
    let saved = conversation(&app, &id).await;
    assert_eq!(
        message(&saved, first["message"]["id"].as_str().unwrap())["parent_id"],
        Value::Null
    );
    assert_eq!(
        message(&saved, edited["message"]["id"].as_str().unwrap())["parent_id"],
        Value::Null
    );
    assert_eq!(saved["messages"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn a_message_options_and_model_override_the_conversations() {
    let app = spawn_app(Behavior::default()).await;
    let id = create(
        &app,
        json!({"model": "llama3.2", "options": {"temperature": 0.2, "seed": 7}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let posted = ask(
        &app,
        &id,
        json!({"content": "Hi", "model": "qwen2.5:0.5b", "options": {"temperature": 0.9}}),
    )
    .await;
    settled(&app, &id, posted["reply"]["id"].as_str().unwrap()).await;

    let sent = &app.fake().events().request_bodies("/api/chat")[0];
    assert_eq!(sent["model"], "qwen2.5:0.5b");
    assert_eq!(sent["options"], json!({"temperature": 0.9, "seed": 7}));
}

#[tokio::test]
async fn regenerate_adds_a_sibling_answer_to_the_same_question() {
    let app = spawn_app(Behavior {
        reply: Some("One answer.".into()),
        ..Behavior::default()
    })
    .await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let posted = ask(&app, &id, json!({"content": "Tell me"})).await;
    let first_answer = posted["reply"]["id"].as_str().unwrap().to_string();
    settled(&app, &id, &first_answer).await;

    let response = app
        .post_json(
            &format!("/api/v1/conversations/{id}/messages/{first_answer}/regenerate"),
            json!({}),
        )
        .await;

    assert_eq!(response.status(), 201);
    let regenerated: Value = response.json().await.unwrap();
    let second_answer = regenerated["reply"]["id"].as_str().unwrap();
    let saved = settled(&app, &id, second_answer).await;
    assert_eq!(
        message(&saved, second_answer)["parent_id"],
        posted["message"]["id"]
    );
    assert_eq!(message(&saved, &first_answer)["content"], "One answer.");
    assert_eq!(saved["current_id"], second_answer);
    let sent = app.fake().events().request_bodies("/api/chat");
    assert_eq!(
        sent[1]["messages"],
        json!([{"role": "user", "content": "Tell me"}])
    );
}

#[tokio::test]
async fn patch_renames_changes_settings_and_switches_branch() {
    let app = spawn_app(Behavior::default()).await;
    let id = create(&app, json!({"model": "llama3.2", "system": "Terse."})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let posted = ask(&app, &id, json!({"content": "Hi"})).await;
    settled(&app, &id, posted["reply"]["id"].as_str().unwrap()).await;
    let question = posted["message"]["id"].as_str().unwrap();

    let response = app
        .client
        .patch(app.url(&format!("/api/v1/conversations/{id}")))
        .json(
            &json!({"title": "Greetings", "model": null, "options": {"top_k": 5},
                      "current_id": question}),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["title"], "Greetings");
    assert_eq!(patched["model"], Value::Null);
    assert_eq!(patched["system"], "Terse.");
    assert_eq!(patched["options"], json!({"top_k": 5}));
    assert_eq!(patched["current_id"], question);
    // A renamed conversation keeps its name.
    let again = ask(
        &app,
        &id,
        json!({"content": "Another", "model": "llama3.2"}),
    )
    .await;
    let saved = settled(&app, &id, again["reply"]["id"].as_str().unwrap()).await;
    assert_eq!(saved["title"], "Greetings");
    // The new question continued the branch shown: under the first question.
    assert_eq!(
        message(&saved, again["message"]["id"].as_str().unwrap())["parent_id"],
        question
    );
}

#[tokio::test]
async fn the_list_is_newest_first_paged_and_searchable() {
    let app = spawn_app(Behavior {
        reply: Some("Paris is the capital.".into()),
        ..Behavior::default()
    })
    .await;
    let mut ids = Vec::new();
    for title in ["Alpha", "Beta", "Gamma"] {
        ids.push(
            create(&app, json!({"title": title, "model": "llama3.2"})).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let asked = ask(&app, &ids[0], json!({"content": "What about France?"})).await;
    settled(&app, &ids[0], asked["reply"]["id"].as_str().unwrap()).await;

    let titles = |list: &Value| -> Vec<String> {
        list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_string())
            .collect()
    };
    let all: Value = app.get("/api/v1/conversations").await.json().await.unwrap();
    // Alpha was updated last, by its message.
    assert_eq!(titles(&all), ["Alpha", "Gamma", "Beta"]);
    assert_eq!(all["next"], Value::Null);
    assert_eq!(
        all["conversations"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["id", "title", "model", "created_at", "updated_at"]
    );

    let first: Value = app
        .get("/api/v1/conversations?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles(&first), ["Alpha", "Gamma"]);
    let next = first["next"].as_str().unwrap();
    let second: Value = app
        .get(&format!("/api/v1/conversations?limit=2&before={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles(&second), ["Beta"]);
    assert_eq!(second["next"], Value::Null);

    // Titles and message text, whatever the case.
    let by_text: Value = app
        .get("/api/v1/conversations?q=paris")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles(&by_text), ["Alpha"]);
    let by_title: Value = app
        .get("/api/v1/conversations?q=gam")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles(&by_title), ["Gamma"]);
    let literal: Value = app
        .get("/api/v1/conversations?q=%25")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles(&literal), Vec::<String>::new());
}

#[tokio::test]
async fn every_refusal_is_json_with_its_status() {
    let app = spawn_app(Behavior::default()).await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere = ask(&app, &other, json!({"content": "Hi"})).await;
    let foreign = elsewhere["message"]["id"].as_str().unwrap();

    let message = error_of(post(&app, &id, json!({"content": "  "})).await, 400).await;
    assert_eq!(message, "field `content` is required and must not be empty");
    let message = error_of(
        post(&app, &id, json!({"content": "Hi", "parent_id": foreign})).await,
        400,
    )
    .await;
    assert!(
        message.contains("not a message of this conversation"),
        "{message}"
    );
    let message = error_of(
        post(&app, &id, json!({"content": "Hi", "parent_id": "nope"})).await,
        400,
    )
    .await;
    assert!(
        message.contains("not a message of this conversation"),
        "{message}"
    );
    let message = error_of(
        post(&app, "no-such-id", json!({"content": "Hi"})).await,
        404,
    )
    .await;
    assert_eq!(message, "no conversation with id \"no-such-id\"");
    assert_eq!(
        app.get("/api/v1/conversations/no-such-id").await.status(),
        404
    );
    let untitled = create(&app, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let message = error_of(post(&app, &untitled, json!({"content": "Hi"})).await, 400).await;
    assert!(message.starts_with("no model"), "{message}");
    let bad_json = app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            "{\"content\":",
        )
        .await;
    assert!(
        error_of(bad_json, 400)
            .await
            .starts_with("invalid JSON body")
    );

    let patch = |body: Value| {
        app.client
            .patch(app.url(&format!("/api/v1/conversations/{id}")))
            .json(&body)
            .send()
    };
    assert_eq!(
        error_of(patch(json!({"title": " "})).await.unwrap(), 400).await,
        "`title` must not be empty"
    );
    let message = error_of(patch(json!({"current_id": foreign})).await.unwrap(), 400).await;
    assert!(message.contains("in this conversation"), "{message}");

    for (query, says) in [
        ("limit=0", "`limit`"),
        ("limit=1000", "`limit`"),
        ("limit=many", "limit"),
        ("before=1.zz", "`before`"),
    ] {
        let response = app.get(&format!("/api/v1/conversations?{query}")).await;
        let message = error_of(response, 400).await;
        assert!(message.contains(says), "{query}: {message}");
    }

    let app = &app;
    let regenerate = |message: &str| {
        let path = format!("/api/v1/conversations/{other}/messages/{message}/regenerate");
        async move { app.post_json(&path, json!({})).await }
    };
    assert!(
        error_of(regenerate("nope").await, 404)
            .await
            .contains("nope")
    );
    let message = error_of(regenerate(foreign).await, 400).await;
    assert!(
        message.starts_with("only an answer can be regenerated"),
        "{message}"
    );

    let response = app
        .client
        .delete(app.url("/api/v1/conversations/no-such-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response, 404).await,
        "no conversation with id \"no-such-id\""
    );
}

#[tokio::test]
async fn the_answer_runs_to_its_end_with_nobody_reading_it() {
    let app = crate::helpers::spawn_app_with(slow(30, 20), |config| {
        config.generation_grace = Duration::from_millis(100);
    })
    .await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let posted = ask(&app, &id, json!({"content": "Tell me a story"})).await;

    let saved = settled(&app, &id, posted["reply"]["id"].as_str().unwrap()).await;
    let reply = message(&saved, posted["reply"]["id"].as_str().unwrap());
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["content"].as_str().unwrap().split(' ').count(), 30);
}

#[tokio::test]
async fn text_reaches_the_database_while_it_streams() {
    let app = spawn_app(slow(60, 50)).await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let posted = ask(&app, &id, json!({"content": "Go on"})).await;
    let reply_id = posted["reply"]["id"].as_str().unwrap();

    tokio::time::sleep(Duration::from_millis(1600)).await;

    let saved = conversation(&app, &id).await;
    let reply = message(&saved, reply_id);
    assert_eq!(reply["status"], "streaming");
    assert_eq!(reply["generation_id"], posted["reply"]["generation"]["id"]);
    assert!(
        reply["content"].as_str().unwrap().starts_with("The quick"),
        "flushed within a second: {reply}"
    );
}

#[tokio::test]
async fn a_stopped_answer_keeps_its_text() {
    let app = spawn_app(slow(200, 30)).await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let posted = ask(&app, &id, json!({"content": "Go on"})).await;
    let events_url = posted["reply"]["generation"]["events_url"]
        .as_str()
        .unwrap();
    let mut reader = app.get(events_url).await;
    let seen = read_frames(&mut reader, 4).await;

    let generation = posted["reply"]["generation"]["id"].as_str().unwrap();
    let stopped = app
        .client
        .delete(app.url(&format!("/api/v1/generations/{generation}")))
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);

    let reply_id = posted["reply"]["id"].as_str().unwrap();
    let saved = settled(&app, &id, reply_id).await;
    let reply = message(&saved, reply_id);
    assert_eq!(reply["status"], "stopped");
    let text = reply["content"].as_str().unwrap();
    assert!(text.starts_with(&streamed_text(&seen)), "{text:?}");
    assert!(text.split(' ').count() < 200);
}

#[tokio::test]
async fn a_failed_answer_keeps_its_text_and_the_error() {
    let app = spawn_app(Behavior {
        fail_after: Some(3),
        error_message: "out of memory".into(),
        ..Behavior::default()
    })
    .await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let posted = ask(&app, &id, json!({"content": "Go on"})).await;

    let reply_id = posted["reply"]["id"].as_str().unwrap();
    let saved = settled(&app, &id, reply_id).await;
    let reply = message(&saved, reply_id);
    assert_eq!(reply["status"], "failed");
    assert_eq!(reply["content"], "The quick brown");
    assert_eq!(reply["error"], "out of memory");
}

#[tokio::test]
async fn an_answer_that_cannot_start_is_saved_as_failed_and_answered_as_an_error() {
    let app = spawn_app(Behavior {
        status_before_body: Some(500),
        error_message: "llama runner process has terminated".into(),
        ..Behavior::default()
    })
    .await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let message = error_of(post(&app, &id, json!({"content": "Hi"})).await, 502).await;

    assert_eq!(
        message,
        "ollama answered 500: llama runner process has terminated"
    );
    let saved = conversation(&app, &id).await;
    let messages = saved["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{saved}");
    assert_eq!(messages[1]["status"], "failed");
    assert_eq!(messages[1]["error"], message);
    assert_eq!(saved["current_id"], messages[1]["id"]);
}

#[tokio::test]
async fn two_questions_posted_to_one_parent_at_once_both_land_as_siblings() {
    let app = spawn_app(Behavior::default()).await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = ask(&app, &id, json!({"content": "Root"})).await;
    let parent = first["reply"]["id"].as_str().unwrap().to_string();
    settled(&app, &id, &parent).await;

    let (a, b) = tokio::join!(
        post(&app, &id, json!({"content": "One", "parent_id": parent})),
        post(&app, &id, json!({"content": "Two", "parent_id": parent})),
    );

    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    settled(&app, &id, a["reply"]["id"].as_str().unwrap()).await;
    let saved = settled(&app, &id, b["reply"]["id"].as_str().unwrap()).await;
    for posted in [&a, &b] {
        assert_eq!(
            message(&saved, posted["message"]["id"].as_str().unwrap())["parent_id"],
            parent.as_str()
        );
    }
    assert_eq!(saved["messages"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn delete_removes_it_and_cancels_its_running_answer() {
    let app = spawn_app(slow(500, 20)).await;
    let id = create(&app, json!({"model": "llama3.2"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ask(&app, &id, json!({"content": "Talk"})).await;
    app.fake()
        .events()
        .wait_for(Duration::from_secs(5), |events| {
            events
                .iter()
                .any(|e| matches!(e, FakeEvent::Request { .. }))
        })
        .await
        .expect("the answer started");

    let response = app
        .client
        .delete(app.url(&format!("/api/v1/conversations/{id}")))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    let dropped = app
        .fake()
        .events()
        .wait_for(Duration::from_secs(2), |events| {
            events
                .iter()
                .any(|e| matches!(e, FakeEvent::Disconnected { .. }))
        })
        .await;
    assert!(dropped.is_some(), "the upstream saw the answer cancelled");
    assert_eq!(
        app.get(&format!("/api/v1/conversations/{id}"))
            .await
            .status(),
        404
    );
    let list: Value = app.get("/api/v1/conversations").await.json().await.unwrap();
    assert_eq!(list["conversations"], json!([]));
}

/// A restart keeps everything, and an answer the old server was writing
/// comes back `interrupted` with what was saved.
#[tokio::test]
async fn a_restart_keeps_every_conversation() {
    let database = TempDir::new();
    let app = spawn_app_on(Behavior::default(), database).await;
    let id = create(&app, json!({"model": "llama3.2", "system": "Kept."})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = ask(&app, &id, json!({"content": "Short"})).await;
    settled(&app, &id, done["reply"]["id"].as_str().unwrap()).await;
    app.fake().set_behavior(slow(400, 20));
    let running = ask(&app, &id, json!({"content": "Long"})).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let before = conversation(&app, &id).await;

    let TestApp {
        state,
        server,
        database,
        ..
    } = app;
    state.shutdown.trigger();
    server.await.unwrap().unwrap();
    let app = spawn_app_on(Behavior::default(), database).await;

    let after = conversation(&app, &id).await;
    assert_eq!(after["title"], before["title"]);
    assert_eq!(after["system"], "Kept.");
    assert_eq!(after["messages"].as_array().unwrap().len(), 4);
    let reply = message(&after, running["reply"]["id"].as_str().unwrap());
    assert_eq!(reply["status"], "interrupted");
    assert!(!reply["content"].as_str().unwrap().is_empty(), "{reply}");
    assert_eq!(reply["generation_id"], Value::Null);
    assert_eq!(
        message(&after, done["reply"]["id"].as_str().unwrap()),
        message(&before, done["reply"]["id"].as_str().unwrap())
    );
}
