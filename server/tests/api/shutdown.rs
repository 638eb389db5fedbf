//! SIGINT/SIGTERM: streams end with an event, other requests finish, and
//! the server is gone within the grace period.

use std::time::{Duration, Instant};

use fake_ollama::Behavior;
use serde_json::{Value, json};

use crate::helpers::{parse_frames, read_frames, spawn_app, spawn_app_with};

#[tokio::test]
async fn shutdown_ends_streams_with_an_event_and_lets_requests_finish() {
    let app = spawn_app(Behavior {
        tokens: 100,
        token_delay_ms: 50,
        ..Behavior::default()
    })
    .await;
    let mut stream = app
        .post_json(
            "/api/v1/generate/stream",
            json!({"model": "llama3.2", "prompt": "Hi"}),
        )
        .await;
    let before = read_frames(&mut stream, 2).await;
    let whole = tokio::spawn(
        app.client
            .post(app.url("/api/v1/generate"))
            .body(
                json!({"model": "llama3.2", "prompt": "Hi", "options": {"num_predict": 10}})
                    .to_string(),
            )
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let stopping = Instant::now();
    app.state.shutdown.trigger();

    let rest = stream.text().await.unwrap();
    let frames = parse_frames(&rest);
    let last = frames.last().expect("a final frame");
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(last.data, r#"{"error":"server shutting down"}"#);
    assert!(
        before.len() + frames.len() < 100,
        "the stream was cut short"
    );

    let whole = whole
        .await
        .unwrap()
        .expect("the in-flight request finished");
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(whole["eval_count"], 10);

    let server = tokio::time::timeout(Duration::from_secs(3), app.server)
        .await
        .expect("the server stopped");
    server.unwrap().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(3));
    assert!(
        reqwest::get(format!("http://{}/healthz", app.addr))
            .await
            .is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_past_the_grace_period() {
    let app = spawn_app_with(
        Behavior {
            hang_before_headers: true,
            ..Behavior::default()
        },
        |config| {
            config.ollama_timeout = Duration::from_secs(60);
            config.shutdown_grace = Duration::from_millis(500);
        },
    )
    .await;
    let stuck = tokio::spawn(
        app.client
            .post(app.url("/api/v1/generate"))
            .body(json!({"model": "llama3.2", "prompt": "Hi"}).to_string())
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let stopping = Instant::now();
    app.state.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(3), app.server)
        .await
        .expect("the server stopped")
        .unwrap()
        .unwrap();

    let waited = stopping.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
    stuck.abort();
}

/// Each dialect's stream ends in its own words: Ollama's NDJSON with an
/// error line, OpenAI's SSE with its streamed error (and no `[DONE]`).
#[tokio::test]
async fn shutdown_ends_every_dialects_stream_in_its_own_shape() {
    let app = spawn_app(Behavior {
        tokens: 100,
        token_delay_ms: 50,
        ..Behavior::default()
    })
    .await;
    let question = json!([{"role": "user", "content": "Hi"}]);
    let mut ollama = app
        .post_json(
            "/api/chat",
            json!({"model": "llama3.2", "messages": question}),
        )
        .await;
    let mut openai = app
        .post_json(
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": question, "stream": true}),
        )
        .await;
    assert!(ollama.chunk().await.unwrap().is_some());
    assert!(openai.chunk().await.unwrap().is_some());

    app.state.shutdown.trigger();

    let ollama = ollama.text().await.unwrap();
    assert!(
        ollama.ends_with("{\"error\":\"server shutting down\"}\n"),
        "{ollama}"
    );
    let openai = openai.text().await.unwrap();
    assert!(
        openai.ends_with(
            "data: {\"error\":{\"message\":\"server shutting down\",\"type\":\"server_error\",\
             \"param\":null,\"code\":null}}\n\n"
        ),
        "{openai}"
    );
    assert!(!openai.contains("[DONE]"));
}
