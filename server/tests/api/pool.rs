//! The router under load, over three stand-in upstreams on loopback (two
//! Ollama, one OpenAI-compatible): the share between equal upstreams,
//! `max_concurrent`, an upstream killed mid-run and brought back, busy and
//! overloaded upstreams, and one that hangs before its headers.

use std::time::{Duration, Instant};

use fake_ollama::{Behavior, FakeOllama};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{
    Frame, TestApp, parse_frames, read_frames, spawn_with_upstreams, streamed_text,
};

/// The fake's whole answer.
const ANSWER: &str = "The quick brown fox jumps over the lazy";

async fn fake(behavior: Behavior) -> FakeOllama {
    FakeOllama::start(behavior).await.expect("fake starts")
}

/// Tokens one at a time, `ms` apart: answers that stay in flight.
fn paced(ms: u64) -> Behavior {
    Behavior {
        token_delay_ms: ms,
        ..Behavior::default()
    }
}

/// Two Ollama upstreams `a` and `b` of equal weight serving every model,
/// and an OpenAI-compatible `vllm` serving only qwen2.5:0.5b; `extra` is
/// added to a's and b's entries.
fn three_upstreams(a: &FakeOllama, b: &FakeOllama, vllm: &FakeOllama, extra: &str) -> String {
    format!(
        "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"{}\"\n{extra}\n\
         [[upstream]]\nname = \"b\"\nkind = \"ollama\"\nurl = \"{}\"\n{extra}\n\
         [[upstream]]\nname = \"vllm\"\nkind = \"openai\"\nurl = \"{}/v1\"\n\
         models = [\"qwen2.5:0.5b\"]\n",
        a.url(),
        b.url(),
        vllm.url()
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]})
}

fn chats(fake: &FakeOllama, model: &str) -> usize {
    fake.events()
        .request_bodies("/api/chat")
        .iter()
        .filter(|body| body["model"] == model)
        .count()
}

/// A streamed chat, read to its end: its text and how it ended.
async fn streamed(app: &TestApp, model: &str) -> (String, Option<String>) {
    let response = app.post_json("/api/v1/chat/stream", chat(model)).await;
    assert_eq!(response.status(), 200);
    ended(parse_frames(&response.text().await.unwrap()))
}

fn ended(frames: Vec<Frame>) -> (String, Option<String>) {
    let end = frames.last().and_then(|frame| frame.event.clone());
    (streamed_text(&frames), end)
}

/// A streamed chat held open once its first token is in.
async fn started(app: &TestApp, model: &str) -> (Vec<Frame>, reqwest::Response) {
    let mut response = app.post_json("/api/v1/chat/stream", chat(model)).await;
    assert_eq!(response.status(), 200);
    let frames = read_frames(&mut response, 1).await;
    assert!(!streamed_text(&frames).is_empty(), "{frames:?}");
    (frames, response)
}

/// Reads the rest of a held stream: the whole text and how it ended.
async fn finish(first: Vec<Frame>, response: reqwest::Response) -> (String, Option<String>) {
    let mut frames = first;
    frames.extend(parse_frames(&response.text().await.unwrap_or_default()));
    ended(frames)
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

fn state_line(backend: &str, state: &str) -> String {
    format!("llm_chat_backend_state{{backend=\"{backend}\",state=\"{state}\"}} 1\n")
}

#[tokio::test]
async fn two_equal_upstreams_share_200_requests_within_a_fifth_and_each_model_stays_on_its_own() {
    let (a, b, vllm) = (
        fake(paced(1)).await,
        fake(paced(1)).await,
        fake(paced(1)).await,
    );
    let app = spawn_with_upstreams(&three_upstreams(&a, &b, &vllm, ""), |_| {}).await;

    let models: Value = app.get("/api/v1/models").await.json().await.unwrap();
    let served_by = |name: &str| {
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|model| model["name"] == name)
            .map(|model| model["backends"].clone())
    };
    assert_eq!(served_by("llama3.2:latest"), Some(json!(["a", "b"])));
    assert_eq!(served_by("qwen2.5:0.5b"), Some(json!(["a", "b", "vllm"])));

    // Eight at a time, as a busy team would send them.
    let answers: Vec<(String, Option<String>)> = futures_util::stream::iter(0..200)
        .map(|_| streamed(&app, "llama3.2:latest"))
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        answers
            .iter()
            .all(|(text, end)| text == ANSWER && end.as_deref() == Some("done"))
    );
    let shares = (chats(&a, "llama3.2:latest"), chats(&b, "llama3.2:latest"));
    assert_eq!(shares.0 + shares.1, 200, "{shares:?}");
    assert!(
        (80..=120).contains(&shares.0) && (80..=120).contains(&shares.1),
        "{shares:?}"
    );
    assert!(
        vllm.events()
            .request_bodies("/v1/chat/completions")
            .is_empty()
    );
}

#[tokio::test]
async fn max_concurrent_is_honoured_and_the_overflow_is_a_clean_503() {
    let (a, b, vllm) = (
        fake(paced(100)).await,
        fake(paced(100)).await,
        fake(Behavior::default()).await,
    );
    let app = spawn_with_upstreams(
        &three_upstreams(&a, &b, &vllm, "max_concurrent = 1\n"),
        |_| {},
    )
    .await;

    let first = started(&app, "llama3.2:latest").await;
    let second = started(&app, "llama3.2:latest").await;
    assert_eq!(
        (a.events().open_streams(), b.events().open_streams()),
        (1, 1)
    );

    // Both are full: the third is refused before any stream starts.
    let refused = app
        .post_json("/api/v1/chat/stream", chat("llama3.2:latest"))
        .await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("at its limit"), "{message}");
    assert!(!message.contains("127.0.0.1"), "{message}");
    assert_eq!(
        chats(&a, "llama3.2:latest") + chats(&b, "llama3.2:latest"),
        2
    );

    for (frames, response) in [first, second] {
        assert_eq!(
            finish(frames, response).await,
            (ANSWER.to_string(), Some("done".into()))
        );
    }
    // A place is free again.
    assert_eq!(
        streamed(&app, "llama3.2:latest").await,
        (ANSWER.to_string(), Some("done".into()))
    );
}

#[tokio::test]
async fn an_upstream_killed_mid_run_ends_only_the_answers_it_had_started_then_comes_back() {
    let (mut a, b, vllm) = (
        fake(paced(150)).await,
        fake(paced(150)).await,
        fake(Behavior::default()).await,
    );
    let app = spawn_with_upstreams(&three_upstreams(&a, &b, &vllm, ""), |config| {
        config.probe_interval = Duration::from_millis(100);
    })
    .await;

    // Four answers under way, two on each.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(started(&app, "llama3.2:latest").await);
    }
    assert_eq!(
        (a.events().open_streams(), b.events().open_streams()),
        (2, 2)
    );
    a.kill().await;

    // The two a was writing end with an error, their text so far kept;
    // b's two finish. None is retried (that would repeat text).
    let mut endings = Vec::new();
    for (frames, response) in held {
        endings.push(finish(frames, response).await);
    }
    let cut: Vec<&String> = endings
        .iter()
        .filter(|(_, end)| end.as_deref() == Some("error"))
        .map(|(text, _)| text)
        .collect();
    assert_eq!(cut.len(), 2, "{endings:?}");
    for text in cut {
        assert!(
            !text.is_empty() && ANSWER.starts_with(text.as_str()) && text != ANSWER,
            "{text}"
        );
    }
    let done = endings
        .iter()
        .filter(|(text, end)| text == ANSWER && end.as_deref() == Some("done"))
        .count();
    assert_eq!(done, 2, "{endings:?}");
    assert_eq!(chats(&b, "llama3.2:latest"), 2);

    // Requests that had not started streaming do not fail: they go to b.
    let answers: Vec<(String, Option<String>)> = futures_util::stream::iter(0..6)
        .map(|_| streamed(&app, "llama3.2:latest"))
        .buffer_unordered(3)
        .collect()
        .await;
    assert!(
        answers
            .iter()
            .all(|(text, end)| text == ANSWER && end.as_deref() == Some("done")),
        "{answers:?}"
    );
    assert_eq!(chats(&b, "llama3.2:latest"), 8);
    let seen = metrics(&app).await;
    assert!(
        seen.contains(&state_line("a", "cooling_down")) || seen.contains(&state_line("a", "down")),
        "{seen}"
    );

    // Back at the same address: the probes notice, and it takes a share again.
    a.restart().await.expect("the fake restarts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics(&app).await.contains(&state_line("a", "healthy")) {
        assert!(Instant::now() < deadline, "a never read as healthy again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = chats(&a, "llama3.2:latest");
    for _ in 0..4 {
        assert_eq!(
            streamed(&app, "llama3.2:latest").await,
            (ANSWER.to_string(), Some("done".into()))
        );
    }
    assert_eq!(chats(&a, "llama3.2:latest") - before, 2);
}

#[tokio::test]
async fn busy_and_overloaded_upstreams_overflow_to_the_one_that_can_answer() {
    // Ollama past OLLAMA_MAX_QUEUE answers 503; vLLM and llama.cpp server
    // answer 429 or 503 in OpenAI's error shape when overloaded.
    let ollama_busy = fake(Behavior {
        status_before_body: Some(503),
        error_message: "server busy, please try again.  maximum pending requests exceeded".into(),
        ..Behavior::default()
    })
    .await;
    let vllm_overloaded = fake(Behavior {
        status_before_body: Some(429),
        error_message: "The server is overloaded".into(),
        ..Behavior::default()
    })
    .await;
    let healthy = fake(Behavior::default()).await;
    let file = format!(
        "[[upstream]]\nname = \"busy\"\nkind = \"ollama\"\nurl = \"{}\"\nweight = 10\n\n\
         [[upstream]]\nname = \"vllm\"\nkind = \"openai\"\nurl = \"{}/v1\"\nweight = 5\n\n\
         [[upstream]]\nname = \"spare\"\nkind = \"ollama\"\nurl = \"{}\"\n",
        ollama_busy.url(),
        vllm_overloaded.url(),
        healthy.url()
    );
    let app = spawn_with_upstreams(&file, |_| {}).await;
    for _ in 0..3 {
        assert_eq!(
            streamed(&app, "llama3.2:latest").await,
            (ANSWER.to_string(), Some("done".into()))
        );
    }
    assert_eq!(chats(&healthy, "llama3.2:latest"), 3);
    // Busy is not broken: each request tries the heavier ones first again,
    // and nobody is put in a cool-down.
    assert_eq!(chats(&ollama_busy, "llama3.2:latest"), 3);
    assert_eq!(
        vllm_overloaded
            .events()
            .request_bodies("/v1/chat/completions")
            .len(),
        3
    );
    let seen = metrics(&app).await;
    for backend in ["busy", "vllm", "spare"] {
        assert!(seen.contains(&state_line(backend, "healthy")), "{seen}");
    }

    // With every upstream busy, the client hears it: a 503, before any stream.
    healthy.set_behavior(Behavior {
        status_before_body: Some(503),
        error_message: "server busy".into(),
        ..Behavior::default()
    });
    let refused = app
        .post_json("/api/v1/chat/stream", chat("llama3.2:latest"))
        .await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert!(
        !body["error"].as_str().unwrap().contains("127.0.0.1"),
        "{body}"
    );
}

#[tokio::test]
async fn an_upstream_that_hangs_before_its_headers_is_skipped_within_the_timeout() {
    let hanging = fake(Behavior {
        hang_before_headers: true,
        ..Behavior::default()
    })
    .await;
    let (b, vllm) = (
        fake(Behavior::default()).await,
        fake(Behavior::default()).await,
    );
    let file = three_upstreams(&hanging, &b, &vllm, "").replacen(
        "kind = \"ollama\"\n",
        "kind = \"ollama\"\nweight = 10\n",
        1,
    );
    let app = spawn_with_upstreams(&file, |config| {
        config.ollama_timeout = Duration::from_millis(500);
    })
    .await;

    let started = Instant::now();
    assert_eq!(
        streamed(&app, "llama3.2:latest").await,
        (ANSWER.to_string(), Some("done".into()))
    );
    // It waited for the hung one's timeout, then b answered.
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(chats(&hanging, "llama3.2:latest"), 1);
    assert_eq!(chats(&b, "llama3.2:latest"), 1);

    // Timed out is failing: it cools down, and the next request goes
    // straight to b.
    assert_eq!(
        streamed(&app, "llama3.2:latest").await,
        (ANSWER.to_string(), Some("done".into()))
    );
    assert_eq!(chats(&hanging, "llama3.2:latest"), 1);
    assert_eq!(chats(&b, "llama3.2:latest"), 2);
}

#[tokio::test]
async fn a_model_deleted_from_one_upstream_since_the_listing_is_answered_by_the_other() {
    let (a, b, vllm) = (
        fake(Behavior::default()).await,
        fake(Behavior::default()).await,
        fake(Behavior::default()).await,
    );
    let app = spawn_with_upstreams(&three_upstreams(&a, &b, &vllm, ""), |_| {}).await;
    let listed: Value = app.get("/api/v1/models").await.json().await.unwrap();
    assert!(listed.to_string().contains("llama3.2:latest"));

    // Someone removes it on a, behind llm-chat's back.
    let removed = reqwest::Client::new()
        .delete(format!("{}/api/delete", a.url()))
        .json(&json!({"model": "llama3.2:latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    for _ in 0..4 {
        assert_eq!(
            streamed(&app, "llama3.2:latest").await,
            (ANSWER.to_string(), Some("done".into()))
        );
    }
    assert_eq!(chats(&b, "llama3.2:latest"), 4);
    // A missing model is not a broken upstream.
    assert!(metrics(&app).await.contains(&state_line("a", "healthy")));
}
