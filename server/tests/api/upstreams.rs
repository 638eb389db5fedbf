//! Many upstreams over real HTTP: the OpenAI-compatible backend (against the
//! fake speaking OpenAI's dialect), Ollama lists, the config file with keys,
//! aliases and weights, routing, and failover before the first token only.

use std::time::Duration;

use fake_ollama::{Behavior, FakeOllama};
use llm_chat::Application;
use serde_json::{Value, json};

use crate::helpers::{
    TempDir, TestApp, dead_address, parse_frames, run_app, spawn_with_upstreams, streamed_text,
    test_config,
};

async fn spawn_with_file(toml: &str) -> TestApp {
    spawn_with_upstreams(toml, |_| {}).await
}

async fn fake(behavior: Behavior) -> FakeOllama {
    FakeOllama::start(behavior).await.expect("fake starts")
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]})
}

/// The text of a streamed chat and its last frame's event.
async fn streamed(app: &TestApp, model: &str) -> (String, Option<String>) {
    let response = app.post_json("/api/v1/chat/stream", chat(model)).await;
    assert_eq!(response.status(), 200);
    let frames = parse_frames(&response.text().await.unwrap());
    let end = frames.last().and_then(|frame| frame.event.clone());
    (streamed_text(&frames), end)
}

fn requests(fake: &FakeOllama, path: &str) -> Vec<Value> {
    fake.events().request_bodies(path)
}

#[tokio::test]
async fn an_openai_upstream_answers_chats_completions_and_embeddings_with_its_key() {
    let upstream = fake(Behavior {
        api_key: Some("sk-test".into()),
        ..Behavior::default()
    })
    .await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"vllm\"\nkind = \"openai\"\nurl = \"{}/v1\"\napi_key = \"sk-test\"\n",
        upstream.url()
    ))
    .await;

    let models: Value = app.get("/api/v1/models").await.json().await.unwrap();
    let listed = &models["models"][0];
    assert_eq!(listed["name"], "llama3.2:latest");
    assert_eq!(listed["backend"], "vllm");
    assert_eq!(listed["backends"], json!(["vllm"]));

    let (text, end) = streamed(&app, "llama3.2:latest").await;
    assert_eq!(text, "The quick brown fox jumps over the lazy");
    assert_eq!(end.as_deref(), Some("done"));
    let sent = &requests(&upstream, "/v1/chat/completions")[0];
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "hi there"}])
    );

    // The Go API's generate: a prompt, through /v1/completions, whole.
    let response = app
        .post_json(
            "/api/v1/generate",
            json!({"model": "llama3.2:latest", "prompt": "Once", "options": {"num_predict": 3}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["response"], "The quick brown");
    assert_eq!(answer["done_reason"], "length");
    assert_eq!(answer["eval_count"], 3);
    assert_eq!(requests(&upstream, "/v1/completions")[0]["max_tokens"], 3);

    let response = app
        .post_json(
            "/v1/embeddings",
            json!({"model": "llama3.2:latest", "input": ["a b", "c"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let embeddings: Value = response.json().await.unwrap();
    assert_eq!(embeddings["data"].as_array().unwrap().len(), 2);
    assert_eq!(embeddings["usage"]["prompt_tokens"], 3);
}

#[tokio::test]
async fn a_refused_key_is_a_bad_gateway_that_says_so() {
    let upstream = fake(Behavior {
        api_key: Some("sk-right".into()),
        ..Behavior::default()
    })
    .await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"hosted\"\nkind = \"openai\"\nurl = \"{}/v1\"\napi_key = \"sk-wrong\"\n",
        upstream.url()
    ))
    .await;
    let response = app.post_json("/api/v1/chat", chat("llama3.2:latest")).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("API key was refused"), "{message}");
    assert!(!message.contains("127.0.0.1"), "{message}");
}

#[tokio::test]
async fn a_model_on_two_ollamas_is_one_model_and_both_take_a_share() {
    let first = fake(Behavior::default()).await;
    let second = fake(Behavior::default()).await;
    let database = TempDir::new();
    let config = test_config(&format!("{}, {}", first.url(), second.url()), &database);
    let app = run_app(Application::build(config).await.unwrap(), database);

    let models: Value = app.get("/api/v1/models").await.json().await.unwrap();
    let llama = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "llama3.2:latest")
        .unwrap()
        .clone();
    assert_eq!(llama["backends"], json!(["ollama-1", "ollama-2"]));

    // Both take a share while both are up.
    for _ in 0..4 {
        assert_eq!(
            streamed(&app, "llama3.2:latest").await.1.as_deref(),
            Some("done")
        );
    }
    assert_eq!(requests(&first, "/api/chat").len(), 2);
    assert_eq!(requests(&second, "/api/chat").len(), 2);

    // A model only one of them holds in memory (the probe reads /api/ps):
    // requests go there rather than pay a load on the other.
    let qwen = |fake: &FakeOllama| {
        requests(fake, "/api/chat")
            .iter()
            .filter(|body| body["model"] == "qwen2.5:0.5b")
            .count()
    };
    assert_eq!(
        streamed(&app, "qwen2.5:0.5b").await.1.as_deref(),
        Some("done")
    );
    app.state.registry.probe_all().await;
    for _ in 0..3 {
        assert_eq!(
            streamed(&app, "qwen2.5:0.5b").await.1.as_deref(),
            Some("done")
        );
    }
    let counts = (qwen(&first), qwen(&second));
    assert!(counts == (4, 0) || counts == (0, 4), "{counts:?}");
}

#[tokio::test]
async fn an_error_before_any_text_moves_to_the_next_upstream_and_the_client_sees_one_answer() {
    // vLLM's way of failing: a 200, then an error frame before any token.
    let failing = fake(Behavior {
        fail_after: Some(0),
        error_message: "CUDA out of memory".into(),
        ..Behavior::default()
    })
    .await;
    let healthy = fake(Behavior::default()).await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"vllm\"\nkind = \"openai\"\nurl = \"{}/v1\"\nweight = 10\n\n\
         [[upstream]]\nname = \"ollama\"\nkind = \"ollama\"\nurl = \"{}\"\n",
        failing.url(),
        healthy.url()
    ))
    .await;
    let (text, end) = streamed(&app, "llama3.2:latest").await;
    assert_eq!(end.as_deref(), Some("done"));
    assert_eq!(text, "The quick brown fox jumps over the lazy");
    assert_eq!(requests(&failing, "/v1/chat/completions").len(), 1);
    assert_eq!(requests(&healthy, "/api/chat").len(), 1);
}

#[tokio::test]
async fn a_failure_after_the_first_token_is_never_retried_and_cools_the_upstream_down() {
    let failing = fake(Behavior {
        fail_after: Some(3),
        ..Behavior::default()
    })
    .await;
    let other = fake(Behavior::default()).await;
    let app = spawn_with_upstreams(
        &format!(
            "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"{}\"\nweight = 10\n\n\
         [[upstream]]\nname = \"b\"\nkind = \"ollama\"\nurl = \"{}\"\n",
            failing.url(),
            other.url()
        ),
        |config| config.probe_interval = Duration::from_secs(3600),
    )
    .await;
    let (text, end) = streamed(&app, "llama3.2:latest").await;
    assert_eq!(text, "The quick brown");
    assert_eq!(end.as_deref(), Some("error"));
    assert!(requests(&other, "/api/chat").is_empty());
    // The break is the upstream's failure: it cools down (until a probe,
    // far off here, finds it answering), and the next answers go to the
    // other despite its weight.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("llm_chat_backend_state{backend=\"a\",state=\"cooling_down\"} 1\n"),
        "{metrics}"
    );
    let (text, end) = streamed(&app, "llama3.2:latest").await;
    assert_eq!(text, "The quick brown fox jumps over the lazy");
    assert_eq!(end.as_deref(), Some("done"));
    assert_eq!(requests(&other, "/api/chat").len(), 1);
    assert_eq!(requests(&failing, "/api/chat").len(), 1);
}

#[tokio::test]
async fn a_dead_upstream_serves_nothing_and_reads_as_down() {
    let live = fake(Behavior::default()).await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"dead\"\nkind = \"ollama\"\nurl = \"http://{}\"\nweight = 10\n\n\
         [[upstream]]\nname = \"live\"\nkind = \"ollama\"\nurl = \"{}\"\n",
        dead_address().await,
        live.url()
    ))
    .await;
    // It cannot list its models, so it serves none; /readyz probes it.
    for _ in 0..3 {
        let response = app.post_json("/api/v1/chat", chat("llama3.2:latest")).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(requests(&live, "/api/chat").len(), 3);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["backends"]["dead"]["ready"], false);
    assert_eq!(ready["backends"]["dead"]["state"], "down", "{ready}");
    assert_eq!(ready["backends"]["live"]["ready"], true);
    assert_eq!(ready["backends"]["live"]["state"], "healthy");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("llm_chat_backend_state{backend=\"dead\",state=\"healthy\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("llm_chat_backend_state{backend=\"live\",state=\"healthy\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("llm_chat_backend_in_flight{backend=\"live\"} 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn aliases_reach_the_upstream_under_its_own_name_and_nothing_else_is_served() {
    let upstream = fake(Behavior::default()).await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"gpu\"\nkind = \"ollama\"\nurl = \"{}\"\n\
         models = {{ fast = \"qwen2.5:0.5b\" }}\n",
        upstream.url()
    ))
    .await;
    let models: Value = app.get("/api/v1/models").await.json().await.unwrap();
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fast"]);
    let response = app.post_json("/api/v1/chat", chat("fast")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(requests(&upstream, "/api/chat")[0]["model"], "qwen2.5:0.5b");
    let response = app.post_json("/api/v1/chat", chat("llama3.2:latest")).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn models_are_managed_under_the_upstream_s_own_names_and_only_those_allowed() {
    let upstream = fake(Behavior::default()).await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"gpu\"\nkind = \"ollama\"\nurl = \"{}\"\n\
         models = {{ fast = \"qwen2.5:0.5b\", smol = \"smollm2:135m\" }}\n",
        upstream.url()
    ))
    .await;

    let response = app
        .post_json("/api/v1/models/pull", json!({"model": "smol"}))
        .await;
    assert_eq!(response.status(), 200);
    let frames = parse_frames(&response.text().await.unwrap());
    assert_eq!(
        frames.last().and_then(|frame| frame.event.as_deref()),
        Some("done")
    );
    assert_eq!(requests(&upstream, "/api/pull")[0]["model"], "smollm2:135m");

    let response = app
        .post_json("/api/v1/models/pull", json!({"model": "llama3.2:1b"}))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no Ollama upstream is configured to serve \"llama3.2:1b\""),
        "{body}"
    );
    let response = app
        .post_json(
            "/api/v1/models/pull",
            json!({"model": "llama3.2:1b", "upstream": "gpu"}),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        requests(&upstream, "/api/pull").len(),
        1,
        "refused pulls reach nobody"
    );

    let response = app
        .client
        .delete(app.url("/api/v1/models/fast"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        requests(&upstream, "/api/delete")[0]["model"],
        "qwen2.5:0.5b"
    );

    // The upstream's other models are out of reach, as they are unlisted.
    let response = app
        .client
        .delete(app.url("/api/delete"))
        .json(&json!({"model": "llama3.2:latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(requests(&upstream, "/api/delete").len(), 1);
}

#[tokio::test]
async fn a_bad_config_file_stops_the_start_with_its_line_and_reason() {
    let database = TempDir::new();
    let file = database.0.join("llm-chat.toml");
    std::fs::write(
        &file,
        "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"not a url\"\n",
    )
    .unwrap();
    let mut config = test_config("http://127.0.0.1:9", &database);
    config.config_file = Some(file);
    let Err(error) = Application::build(config).await else {
        panic!("a server over a bad file")
    };
    let message = error.to_string();
    assert!(message.contains("llm-chat.toml, line 4"), "{message}");
    assert!(
        message.contains("not an http:// or https:// URL"),
        "{message}"
    );
}

#[tokio::test]
async fn an_upstream_answering_5xx_is_failed_over_then_cooled_down() {
    let failing = fake(Behavior {
        status_before_body: Some(500),
        ..Behavior::default()
    })
    .await;
    let healthy = fake(Behavior::default()).await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"{}\"\nweight = 10\n\n\
         [[upstream]]\nname = \"b\"\nkind = \"ollama\"\nurl = \"{}\"\n",
        failing.url(),
        healthy.url()
    ))
    .await;
    for _ in 0..3 {
        let (text, end) = streamed(&app, "llama3.2:latest").await;
        assert_eq!(end.as_deref(), Some("done"));
        assert_eq!(text, "The quick brown fox jumps over the lazy");
    }
    // Tried first (it weighs more), failed, cooled down: then skipped.
    assert_eq!(requests(&failing, "/api/chat").len(), 1);
    assert_eq!(requests(&healthy, "/api/chat").len(), 3);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("llm_chat_backend_state{backend=\"a\",state=\"cooling_down\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("llm_chat_backend_failures_total{backend=\"a\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_no_ollama_a_pull_is_refused_with_the_reason() {
    let upstream = fake(Behavior::default()).await;
    let app = spawn_with_file(&format!(
        "[[upstream]]\nname = \"vllm\"\nkind = \"openai\"\nurl = \"{}/v1\"\n",
        upstream.url()
    ))
    .await;
    let response = app
        .post_json("/api/v1/models/pull", json!({"model": "llama3.2:1b"}))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("no Ollama server is configured to pull models"),
        "{body}"
    );
    let response = app
        .post_json(
            "/api/v1/models/pull",
            json!({"model": "llama3.2:1b", "upstream": "vllm"}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "the vllm backend cannot pull models");
}
