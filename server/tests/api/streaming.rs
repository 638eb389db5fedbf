//! The streaming rules: frames flushed uncompressed, failures after the
//! first byte as `event: error`, cancellation reaching the upstream.

use std::time::Duration;

use fake_ollama::{Behavior, FakeEvent};
use serde_json::json;

use crate::helpers::{
    TestApp, parse_frames, read_frames, spawn_app, spawn_app_with, streamed_text,
};

fn slow(tokens: usize, delay_ms: u64) -> Behavior {
    Behavior {
        tokens,
        token_delay_ms: delay_ms,
        ..Behavior::default()
    }
}

/// A GET from a client that takes gzip.
async fn get_taking_gzip(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap()
}

/// A prompt POSTed by a client that takes gzip.
async fn post_taking_gzip(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("accept-encoding", "gzip")
        .body(json!({"model": "llama3.2", "prompt": "Hi"}).to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sse_is_never_compressed_while_json_is() {
    let app = spawn_app(Behavior {
        tokens: 200,
        ..Behavior::default()
    })
    .await;

    let stream = post_taking_gzip(&app, "/api/v1/generate/stream").await;
    let models = get_taking_gzip(&app, "/api/v1/models").await;
    let whole = post_taking_gzip(&app, "/api/v1/generate").await;

    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert!(stream.headers().get("content-encoding").is_none());
    assert!(
        stream
            .text()
            .await
            .unwrap()
            .starts_with("data: {\"response\":\"The\"")
    );
    assert_eq!(models.headers()["content-encoding"], "gzip");
    assert_eq!(whole.headers()["content-encoding"], "gzip");

    // The page is compressed too; a generation's events never are.
    let page = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.headers()["content-encoding"], "gzip");
    let created: serde_json::Value = app
        .post_json(
            "/api/v1/generations",
            json!({"model": "llama3.2", "prompt": "Hi"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let events = get_taking_gzip(&app, created["events_url"].as_str().unwrap()).await;
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert!(events.headers().get("content-encoding").is_none());
    assert!(
        events
            .text()
            .await
            .unwrap()
            .starts_with("retry: 1000\n\nid: 1\n")
    );
}

#[tokio::test]
async fn frames_arrive_as_they_are_produced() {
    let app = spawn_app(slow(5, 200)).await;
    let started = std::time::Instant::now();

    let mut response = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "Hi"}),
        )
        .await;
    let first = read_frames(&mut response, 1).await;

    // The first token is sent at 200 ms, the last at 1 s.
    assert_eq!(first[0].json()["response"], "The");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_upstream_at_once() {
    let app = spawn_app(slow(100, 50)).await;

    let mut response = app
        .post_json("/api/v1/chat/stream", json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Tell me a long story"}]}))
        .await;
    read_frames(&mut response, 3).await;
    assert_eq!(app.state.metrics.active_streams(), 1);
    drop(response);

    let seen = app
        .fake()
        .events()
        .wait_for(Duration::from_secs(1), |events| {
            events
                .iter()
                .any(|event| matches!(event, FakeEvent::Disconnected { .. }))
        })
        .await
        .expect("the fake saw the disconnect within 1 s");
    let tokens_sent = seen
        .iter()
        .find_map(|event| match event {
            FakeEvent::Disconnected { tokens_sent, .. } => Some(*tokens_sent),
            _ => None,
        })
        .unwrap();
    assert!(
        tokens_sent < 10,
        "the upstream stopped early, at {tokens_sent} tokens"
    );
    assert!(
        app.streams_drain(Duration::from_secs(1)).await,
        "stream count back to 0"
    );
    assert_eq!(app.fake().events().open_streams(), 0);
}

#[tokio::test]
async fn an_error_line_mid_stream_ends_it_with_that_message() {
    let app = spawn_app(Behavior {
        fail_after: Some(2),
        error_message: "model runner has unexpectedly stopped".into(),
        ..Behavior::default()
    })
    .await;

    let response = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "Hi"}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert_eq!(
        body,
        concat!(
            "data: {\"response\":\"The\",\"done\":false}\n\n",
            "data: {\"response\":\" quick\",\"done\":false}\n\n",
            "event: error\n",
            "data: {\"error\":\"model runner has unexpectedly stopped\"}\n\n",
        )
    );
    assert!(app.streams_drain(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_malformed_line_or_a_stream_without_done_ends_with_an_error_event() {
    for (behavior, expected) in [
        (
            Behavior {
                malformed_after: Some(1),
                ..Behavior::default()
            },
            "ollama sent a malformed line",
        ),
        (
            Behavior {
                truncate_after: Some(3),
                ..Behavior::default()
            },
            "ollama ended the stream before it was done",
        ),
    ] {
        let app = spawn_app(behavior).await;
        let body = app
            .post_json(
                "/api/v1/chat/stream",
                json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}),
            )
            .await
            .text()
            .await
            .unwrap();
        let frames = parse_frames(&body);
        let last = frames.last().unwrap();
        assert_eq!(last.event.as_deref(), Some("error"), "{body}");
        let message = last.json()["error"].as_str().unwrap().to_string();
        assert!(message.starts_with(expected), "{message}");
        // The text before the failure was delivered.
        assert!(!streamed_text(&frames).is_empty() || expected.contains("malformed"));
    }
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let app = spawn_app_with(slow(2, 700), |config| {
        config.sse_keep_alive = Duration::from_millis(200);
    })
    .await;

    let body = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "Hi"}),
        )
        .await
        .text()
        .await
        .unwrap();

    assert!(
        body.contains(":\n\n"),
        "a keep-alive comment while waiting: {body:?}"
    );
    assert_eq!(streamed_text(&parse_frames(&body)), "The quick");
}

#[tokio::test]
async fn a_request_id_is_kept_or_made() {
    let app = spawn_app(Behavior::default()).await;

    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    let made = app.get("/healthz").await;

    assert_eq!(given.headers()["x-request-id"], "trace-me-123");
    let made = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(made.len(), 36, "a UUID: {made}");
}
