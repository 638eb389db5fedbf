//! Generations as resources: create, stream with ids, resume with
//! Last-Event-ID, several subscribers, state, cancel, grace, TTL, limits.

use std::time::Duration;

use fake_ollama::{Behavior, FakeEvent};
use serde_json::{Value, json};

use crate::helpers::{
    Frame, TestApp, parse_frames, read_frames, spawn_app, spawn_app_with, spawn_app_without_ollama,
    streamed_text,
};

fn slow(tokens: usize, delay_ms: u64) -> Behavior {
    Behavior {
        tokens,
        token_delay_ms: delay_ms,
        ..Behavior::default()
    }
}

fn chat_body() -> Value {
    json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Tell me"}]})
}

/// Creates a generation and returns its id and events URL.
async fn create(app: &TestApp, body: Value) -> (String, String) {
    let response = app.post_json("/api/v1/generations", body).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/generations/{id}"));
    assert_eq!(created["events_url"], format!("{location}/events"));
    (id, created["events_url"].as_str().unwrap().to_string())
}

async fn events(app: &TestApp, url: &str, last_event_id: Option<u64>) -> reqwest::Response {
    let mut request = app.client.get(app.url(url));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    request.send().await.unwrap()
}

/// The generation's state, as `GET /api/v1/generations/{id}` answers it.
async fn state(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/generations/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// Whether the fake upstream saw a client go away within `within`.
async fn upstream_disconnected(app: &TestApp, within: Duration) -> bool {
    app.fake()
        .events()
        .wait_for(within, |events| {
            events
                .iter()
                .any(|e| matches!(e, FakeEvent::Disconnected { .. }))
        })
        .await
        .is_some()
}

fn token_ids(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .filter(|frame| frame.event.is_none())
        .map(|frame| frame.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_generation_streams_numbered_tokens_then_done_with_its_stats() {
    let app = spawn_app(Behavior {
        reply: Some("Hello there".into()),
        ..Behavior::default()
    })
    .await;
    let (_, url) = create(&app, chat_body()).await;

    let response = events(&app, &url, None).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with(concat!(
            "retry: 1000\n\n",
            "id: 1\ndata: {\"response\":\"Hello\",\"done\":false}\n\n",
            "id: 2\ndata: {\"response\":\" there\",\"done\":false}\n\n",
            "event: done\ndata: {\"done\":true,\"done_reason\":\"stop\",\"total_duration\":",
        )),
        "{body}"
    );
    let done = parse_frames(&body).pop().unwrap().json();
    assert_eq!(done["eval_count"], 2);
    assert!(done["time_to_first_token"].as_u64().unwrap() > 0, "{done}");
}

#[tokio::test]
async fn last_event_id_replays_what_came_after_it_and_nothing_before() {
    let app = spawn_app(Behavior {
        tokens: 6,
        ..Behavior::default()
    })
    .await;
    let (_, url) = create(&app, chat_body()).await;
    let whole = events(&app, &url, None).await.text().await.unwrap();

    let rest = parse_frames(&events(&app, &url, Some(3)).await.text().await.unwrap());

    assert_eq!(token_ids(&rest), [4, 5, 6]);
    assert_eq!(streamed_text(&rest), " fox jumps over");
    assert_eq!(rest.last().unwrap().event.as_deref(), Some("done"));
    assert_eq!(
        streamed_text(&parse_frames(&whole)),
        "The quick brown fox jumps over"
    );
}

#[tokio::test]
async fn a_reconnect_mid_stream_resumes_with_nothing_lost_or_repeated() {
    let app = spawn_app(slow(12, 40)).await;
    let (_, url) = create(&app, chat_body()).await;

    let mut first = events(&app, &url, None).await;
    let before = read_frames(&mut first, 4).await;
    drop(first);
    let last_seen = *token_ids(&before).last().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let after = parse_frames(
        &events(&app, &url, Some(last_seen))
            .await
            .text()
            .await
            .unwrap(),
    );

    let text = streamed_text(&before) + &streamed_text(&after);
    assert_eq!(
        text,
        "The quick brown fox jumps over the lazy dog. The quick brown"
    );
    let mut ids = token_ids(&before);
    ids.extend(token_ids(&after));
    assert_eq!(ids, (1..=12).collect::<Vec<_>>());
}

#[tokio::test]
async fn several_subscribers_read_the_same_answer() {
    let app = spawn_app(slow(8, 30)).await;
    let (_, url) = create(&app, chat_body()).await;

    let (a, b, c) = tokio::join!(
        events(&app, &url, None),
        events(&app, &url, None),
        events(&app, &url, None)
    );
    let (a, b, c) = tokio::join!(a.text(), b.text(), c.text());

    let expected = "The quick brown fox jumps over the lazy";
    for body in [a, b, c] {
        assert_eq!(streamed_text(&parse_frames(&body.unwrap())), expected);
    }
    assert_eq!(
        app.fake().events().request_bodies("/api/chat").len(),
        1,
        "one upstream request"
    );
}

#[tokio::test]
async fn the_state_shows_progress_then_the_result() {
    let app = spawn_app(slow(5, 100)).await;
    let (id, url) = create(
        &app,
        json!({"model": "llama3.2", "prompt": "Go", "system": "Terse."}),
    )
    .await;

    let running: Value = state(&app, &id).await;
    events(&app, &url, None).await.text().await.unwrap();
    let done: Value = state(&app, &id).await;

    assert_eq!(running["status"], "running");
    assert_eq!(running["model"], "llama3.2");
    assert_eq!(done["status"], "done");
    assert_eq!(done["text"], "The quick brown fox jumps");
    assert_eq!(done["tokens"], 5);
    assert_eq!(done["stats"]["eval_count"], 5);
    assert_eq!(done["error"], Value::Null);
    // A prompt goes to /api/generate, with its system prompt.
    let sent = app.fake().events().request_bodies("/api/generate");
    assert_eq!(sent[0]["system"], "Terse.");
}

#[tokio::test]
async fn delete_cancels_upstream_and_tells_subscribers() {
    let app = spawn_app(slow(200, 30)).await;
    let (id, url) = create(&app, chat_body()).await;
    let mut subscriber = events(&app, &url, None).await;
    read_frames(&mut subscriber, 3).await;

    let cancelled = app
        .client
        .delete(app.url(&format!("/api/v1/generations/{id}")))
        .send()
        .await
        .unwrap();

    assert_eq!(cancelled.status(), 200);
    let state: Value = cancelled.json().await.unwrap();
    assert_eq!(state["status"], "cancelled");
    let rest = parse_frames(&subscriber.text().await.unwrap());
    let last = rest.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("cancelled"));
    assert_eq!(last.json()["error"], "the generation was cancelled");
    let seen = upstream_disconnected(&app, Duration::from_secs(1)).await;
    assert!(seen, "the upstream request was dropped within 1 s");
    assert_eq!(app.state.generations.running(), 0);
    assert!(app.streams_drain(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_generation_nobody_reads_is_cancelled_after_the_grace_period() {
    let app = spawn_app_with(slow(200, 20), |config| {
        config.generation_grace = Duration::from_millis(300);
    })
    .await;
    let (id, _) = create(&app, chat_body()).await;

    let seen = upstream_disconnected(&app, Duration::from_secs(2)).await;

    assert!(seen, "the orphan was cancelled upstream");
    let state: Value = state(&app, &id).await;
    assert_eq!(state["status"], "cancelled");
    assert!(
        state["error"]
            .as_str()
            .unwrap()
            .contains("no client listened"),
        "{state}"
    );
}

#[tokio::test]
async fn a_subscriber_keeps_a_generation_alive_past_the_grace_period() {
    let app = spawn_app_with(slow(20, 40), |config| {
        config.generation_grace = Duration::from_millis(200);
    })
    .await;
    let (_, url) = create(&app, chat_body()).await;

    let body = events(&app, &url, None).await.text().await.unwrap();

    assert_eq!(
        parse_frames(&body).last().unwrap().event.as_deref(),
        Some("done")
    );
}

#[tokio::test]
async fn a_finished_generation_expires_after_its_ttl() {
    let app = spawn_app_with(Behavior::default(), |config| {
        config.generation_ttl = Duration::from_millis(300);
    })
    .await;
    let (id, url) = create(&app, chat_body()).await;
    events(&app, &url, None).await.text().await.unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/generations/{id}")).await.status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(600)).await;

    let response = app.get(&format!("/api/v1/generations/{id}")).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("expired"));
    assert_eq!(events(&app, &url, None).await.status(), 404);
}

#[tokio::test]
async fn past_the_limit_of_running_generations_the_answer_is_503() {
    let app = spawn_app_with(slow(50, 20), |config| config.max_generations = 1).await;
    let (first, url) = create(&app, chat_body()).await;

    let refused = app.post_json("/api/v1/generations", chat_body()).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("server busy"),
        "{body}"
    );

    // Once the first has finished, it makes room for the next.
    events(&app, &url, None).await.text().await.unwrap();
    let (second, _) = create(&app, chat_body()).await;
    assert_ne!(first, second);
    assert_eq!(
        app.get(&format!("/api/v1/generations/{first}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn an_answer_past_the_byte_limit_fails_keeping_what_fit() {
    let app = spawn_app_with(Behavior::default(), |config| {
        config.generation_max_bytes = 12
    })
    .await;
    let (id, url) = create(&app, chat_body()).await;

    let frames = parse_frames(&events(&app, &url, None).await.text().await.unwrap());

    assert_eq!(streamed_text(&frames), "The quick");
    let last = frames.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(
        last.json()["error"],
        "the answer grew past the limit of 12 bytes"
    );
    let state: Value = state(&app, &id).await;
    assert_eq!(state["status"], "failed");
}

#[tokio::test]
async fn bad_requests_create_nothing() {
    let app = spawn_app(Behavior::default()).await;
    for (body, status, message) in [
        (
            json!({"model": "llama3.2"}),
            400,
            "field `messages` (or `prompt`) is required and must not be empty",
        ),
        (
            json!({"model": "llama3.2", "prompt": "a", "messages": [{"role": "user", "content": "b"}]}),
            400,
            "send either `messages` (a chat) or `prompt` (a completion), not both",
        ),
        (
            json!({"prompt": "a"}),
            400,
            "field `model` is required and must not be empty",
        ),
        (
            json!({"model": "nope", "messages": [{"role": "user", "content": "b"}]}),
            404,
            "model \"nope\" not found, try pulling it first",
        ),
    ] {
        let response = app.post_json("/api/v1/generations", body).await;
        assert_eq!(response.status(), status);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], message);
    }
    assert_eq!(app.state.generations.running(), 0);
}

#[tokio::test]
async fn a_dead_upstream_is_502_and_creates_nothing() {
    let app = spawn_app_without_ollama().await;
    let response = app.post_json("/api/v1/generations", chat_body()).await;
    assert_eq!(response.status(), 502);
    assert_eq!(app.state.generations.running(), 0);
}

#[tokio::test]
async fn unknown_ids_and_bad_cursors_are_json_errors() {
    let app = spawn_app(Behavior::default()).await;
    for response in [
        app.get("/api/v1/generations/abc").await,
        app.get("/api/v1/generations/abc/events").await,
        app.client
            .delete(app.url("/api/v1/generations/abc"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("\"abc\""));
    }
    let (_, url) = create(&app, chat_body()).await;
    let response = app
        .client
        .get(app.url(&url))
        .header("last-event-id", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn shutdown_ends_generation_streams_with_the_event() {
    let app = spawn_app(slow(100, 30)).await;
    let (_, url) = create(&app, chat_body()).await;
    let mut subscriber = events(&app, &url, None).await;
    read_frames(&mut subscriber, 2).await;

    app.state.shutdown.trigger();

    let rest = parse_frames(&subscriber.text().await.unwrap());
    assert_eq!(
        rest.last().unwrap().data,
        r#"{"error":"server shutting down"}"#
    );
}

#[tokio::test]
async fn the_state_holds_the_text_so_far_while_running() {
    let app = spawn_app(slow(50, 30)).await;
    let (id, url) = create(&app, chat_body()).await;
    let mut subscriber = events(&app, &url, None).await;
    let seen = read_frames(&mut subscriber, 4).await;

    let state: Value = state(&app, &id).await;

    assert_eq!(state["status"], "running");
    let text = state["text"].as_str().unwrap();
    // At least what the subscriber has read, and those tokens come first.
    assert!(text.starts_with(&streamed_text(&seen)), "{text:?}");
    assert!(state["tokens"].as_u64().unwrap() >= 3, "{state}");
    assert_eq!(state["stats"], Value::Null);
}

#[tokio::test]
async fn a_generation_whose_reader_left_is_cancelled_after_the_grace_period() {
    let app = spawn_app_with(slow(500, 20), |config| {
        config.generation_grace = Duration::from_millis(300);
    })
    .await;
    let (id, url) = create(&app, chat_body()).await;
    let mut subscriber = events(&app, &url, None).await;
    read_frames(&mut subscriber, 3).await;
    drop(subscriber);
    let left = std::time::Instant::now();

    let seen = upstream_disconnected(&app, Duration::from_secs(3)).await;

    let after = left.elapsed();
    assert!(seen, "the upstream request was dropped");
    assert!(
        after >= Duration::from_millis(250),
        "kept for the grace period first: {after:?}"
    );
    let state: Value = state(&app, &id).await;
    assert_eq!(state["status"], "cancelled");
    // The text read so far is kept for a reconnect within the TTL.
    assert!(!state["text"].as_str().unwrap().is_empty());
    assert_eq!(app.state.generations.running(), 0);
}
