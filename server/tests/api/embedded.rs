//! The embedded backend with the real models `make setup` puts in place
//! (Gemma 3 270M, a base model, and SmolLM2 135M Instruct, which chats
//! through the ChatML template in its GGUF), and no Ollama.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_chat::backend::embedded::{EmbeddedBackend, EmbeddedSettings};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, dead_address, parse_frames, read_frames, spawn_app_over, streamed_text,
};

const MODEL: &str = "gemma3:270m";
const CHAT_MODEL: &str = "smollm2:135m";

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("LLM_CHAT_MODELS_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/llm-chat/models")
        },
        PathBuf::from,
    );
    for file in [
        "gemma-3-270m-q4_k_m.gguf",
        "smollm2-135m-instruct-q4_1.gguf",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} is missing from {}: run `make setup`",
            dir.display()
        );
    }
    dir
}

fn settings() -> EmbeddedSettings {
    EmbeddedSettings {
        models_dir: models_dir(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        parallel: 2,
        queue: 16,
        context_size: 2048,
        keep_alive: Some(Duration::from_secs(300)),
    }
}

/// The server with the embedded backend only (behind a dead Ollama, as on
/// a machine without one), and a handle on the backend.
async fn spawn_embedded(settings: EmbeddedSettings) -> (TestApp, Arc<EmbeddedBackend>) {
    let embedded = EmbeddedBackend::new(settings);
    let ollama =
        llm_chat::backend::ollama::OllamaBackend::new(llm_chat::backend::http::HttpSettings {
            name: "ollama".into(),
            url: format!("http://{}", dead_address().await).parse().unwrap(),
            timeout: Duration::from_secs(2),
            tcp_keep_alive: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        })
        .unwrap();
    let app = spawn_app_over(vec![Arc::new(ollama), embedded.clone()]).await;
    (app, embedded)
}

fn ask(question: &str, options: Value) -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": question}], "options": options})
}

async fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !condition() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

#[tokio::test]
async fn the_default_model_is_listed_with_its_gguf_details_then_its_checksum() {
    let (app, _) = spawn_embedded(settings()).await;

    let gemma = || async {
        let models: Value = app.get("/api/v1/models").await.json().await.unwrap();
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|model| model["name"] == MODEL)
            .unwrap_or_else(|| panic!("{MODEL} listed: {models}"))
            .clone()
    };
    let listed = gemma().await;
    assert_eq!(listed["backend"], "embedded");
    assert_eq!(listed["size"], 253_113_024);
    assert_eq!(
        listed["details"],
        json!({"format": "gguf", "family": "gemma3", "families": ["gemma3"],
               "parameter_size": "270M", "quantization_level": "Q4_K_M"})
    );
    // The checksum is computed off the request path; the list carries it
    // once it is known.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut digest = listed["digest"].clone();
    while digest == "" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        digest = gemma().await["digest"].clone();
    }
    assert_eq!(
        digest,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    );
}

#[tokio::test]
async fn a_chat_reply_is_real_text() {
    let (app, _) = spawn_embedded(settings()).await;

    let response = app
        .post_json(
            "/api/v1/chat",
            ask(
                "What is the capital of France?",
                json!({"temperature": 0, "num_predict": 32}),
            ),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let reply = body["message"]["content"].as_str().unwrap();
    assert!(reply.contains("Paris"), "a sensible answer: {reply:?}");
    assert_eq!(body["model"], MODEL);
    assert!(body["eval_count"].as_u64().unwrap() > 0);
    assert!(body["prompt_eval_count"].as_u64().unwrap() > 5);
    assert!(body["eval_duration"].as_u64().unwrap() > 0);
    assert!(["stop", "length"].contains(&body["done_reason"].as_str().unwrap()));
}

#[tokio::test]
async fn the_chat_model_answers_through_its_own_template_and_ends_by_itself() {
    let (app, _) = spawn_embedded(settings()).await;

    let models: Value = app.get("/api/v1/models").await.json().await.unwrap();
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["name"].as_str().unwrap())
        .collect();
    // The page picks the first model listed: the one that chats.
    assert_eq!(names, [CHAT_MODEL, MODEL], "{models}");

    let mut question = ask(
        "What is the capital of France?",
        json!({"temperature": 0, "num_predict": 128}),
    );
    question["model"] = json!(CHAT_MODEL);
    let response = app.post_json("/api/v1/chat", question).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let reply = body["message"]["content"].as_str().unwrap();
    assert!(reply.contains("Paris"), "a sensible answer: {reply:?}");
    // The template's end-of-turn token ended it, not the length limit, and
    // no template markup leaked into the text.
    assert_eq!(body["done_reason"], "stop", "{body}");
    assert!(!reply.contains("<|im_"), "{reply:?}");
}

#[tokio::test]
async fn the_stream_yields_many_frames() {
    let (app, _) = spawn_embedded(settings()).await;

    let body = app
        .post_json(
            "/api/v1/chat/stream",
            ask(
                "Write a short story about a cat.",
                json!({"num_predict": 40, "seed": 7}),
            ),
        )
        .await
        .text()
        .await
        .unwrap();

    let frames = parse_frames(&body);
    let done = frames.last().unwrap();
    assert_eq!(done.event.as_deref(), Some("done"), "{body}");
    let tokens = frames.iter().filter(|frame| frame.event.is_none()).count();
    assert!(tokens >= 10, "{tokens} frames: {body}");
    assert!(!streamed_text(&frames).trim().is_empty());
    assert!(done.json()["eval_count"].as_u64().unwrap() >= tokens as u64);
}

#[tokio::test]
async fn a_fixed_seed_gives_the_same_text_twice() {
    let (app, _) = spawn_embedded(settings()).await;
    let request = ask(
        "Tell me about the sea.",
        json!({"temperature": 0.9, "seed": 42, "num_predict": 30}),
    );

    let first: Value = app
        .post_json("/api/v1/chat", request.clone())
        .await
        .json()
        .await
        .unwrap();
    let second: Value = app
        .post_json("/api/v1/chat", request)
        .await
        .json()
        .await
        .unwrap();

    let text = first["message"]["content"].as_str().unwrap();
    assert!(!text.is_empty());
    assert_eq!(text, second["message"]["content"].as_str().unwrap());
}

#[tokio::test]
async fn a_client_that_leaves_stops_the_decode_loop() {
    let (app, embedded) = spawn_embedded(settings()).await;

    let mut response = app
        .post_json(
            "/api/v1/chat/stream",
            // Seeded: a base model sampled freely may end its turn early.
            ask(
                "Count to one thousand.",
                json!({"num_predict": 2000, "seed": 1}),
            ),
        )
        .await;
    read_frames(&mut response, 3).await;
    assert_eq!(embedded.live_sequences(), 1);
    drop(response);

    assert!(
        wait_until(Duration::from_secs(1), || embedded.live_sequences() == 0).await,
        "the sequence was freed"
    );
    assert!(app.streams_drain(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn two_concurrent_chats_both_finish() {
    let (app, _) = spawn_embedded(settings()).await;
    let request = |question: &str| ask(question, json!({"num_predict": 24, "seed": 1}));

    let (a, b) = tokio::join!(
        app.post_json("/api/v1/chat", request("Name a fruit.")),
        app.post_json("/api/v1/chat", request("Name a colour.")),
    );

    for response in [a, b] {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(
            !body["message"]["content"]
                .as_str()
                .unwrap()
                .trim()
                .is_empty(),
            "{body}"
        );
    }
}

/// With Ollama configured but down, a model only Ollama could hold is its
/// outage, not a 404: the embedded backend is not a fallback for names.
#[tokio::test]
async fn an_unknown_model_while_ollama_is_down_is_a_502_saying_so() {
    let (app, _) = spawn_embedded(settings()).await;

    let response = app
        .post_json(
            "/api/v1/chat",
            json!({"model": "llama3.2:1b", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;

    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "ollama is unreachable: connection refused");
}

#[tokio::test]
async fn an_unknown_model_is_404() {
    let embedded = EmbeddedBackend::new(settings());
    let app = spawn_app_over(vec![embedded]).await;

    let response = app
        .post_json(
            "/api/v1/chat",
            json!({"model": "nope:1b", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;

    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("model \"nope:1b\" not found"),
        "{body}"
    );
}

#[tokio::test]
async fn healthz_stays_fast_during_generation() {
    let (app, embedded) = spawn_embedded(settings()).await;
    let mut streams = Vec::new();
    for question in ["Write a long poem.", "Describe a long journey."] {
        let mut response = app
            .post_json(
                "/api/v1/chat/stream",
                ask(question, json!({"num_predict": 300, "seed": 1})),
            )
            .await;
        read_frames(&mut response, 1).await;
        streams.push(response);
    }
    assert_eq!(embedded.live_sequences(), 2);

    // Probe for as long as tokens are being decoded. How long that is
    // depends on where the base model chooses to end its answers (often
    // after a dozen tokens, a few hundred milliseconds), so the probes
    // follow the decoding rather than a fixed count.
    let mut slowest = Duration::ZERO;
    let mut during_generation = 0;
    while embedded.live_sequences() > 0 && during_generation < 40 {
        let started = Instant::now();
        assert_eq!(app.get("/healthz").await.status(), 200);
        slowest = slowest.max(started.elapsed());
        if embedded.live_sequences() > 0 {
            during_generation += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Decoding runs off the async runtime: the server answers at once.
    assert!(
        slowest < Duration::from_millis(200),
        "slowest /healthz: {slowest:?}"
    );
    assert!(
        during_generation >= 5,
        "only {during_generation} probes ran while tokens were decoded"
    );
}

#[tokio::test]
async fn past_the_queue_the_answer_is_503() {
    let (app, _) = spawn_embedded(EmbeddedSettings {
        parallel: 1,
        queue: 0,
        ..settings()
    })
    .await;
    let mut running = app
        .post_json(
            "/api/v1/chat/stream",
            ask("Talk at length.", json!({"num_predict": 500, "seed": 1})),
        )
        .await;
    read_frames(&mut running, 1).await;

    let refused = app
        .post_json("/api/v1/chat", ask("Me too?", json!({})))
        .await;

    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("server busy"),
        "{body}"
    );
}

#[tokio::test]
async fn keep_alive_zero_unloads_the_model_after_the_answer() {
    let (app, embedded) = spawn_embedded(settings()).await;

    let mut request = ask("Hi", json!({"num_predict": 4}));
    request["keep_alive"] = json!(0);
    let response = app.post_json("/api/v1/chat", request).await;
    assert_eq!(response.status(), 200);

    assert!(
        wait_until(Duration::from_secs(3), || embedded.loaded_models() == 0).await,
        "unloaded after the answer"
    );
    // And loaded again on demand.
    let again = app
        .post_json("/api/v1/chat", ask("Hi", json!({"num_predict": 4})))
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(embedded.loaded_models(), 1);
}

#[tokio::test]
async fn generate_returns_a_context_that_continues_the_conversation() {
    let (app, _) = spawn_embedded(settings()).await;

    let first: Value = app
        .post_json(
            "/api/v1/generate",
            json!({"model": MODEL, "prompt": "My name is Ada.", "options": {"num_predict": 8, "temperature": 0}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let context = first["context"].as_array().unwrap().clone();
    assert!(context.len() > first["prompt_eval_count"].as_u64().unwrap() as usize - 1);

    let second = app
        .post_json(
            "/api/v1/generate",
            json!({"model": MODEL, "prompt": "What is my name?", "context": context,
                   "options": {"num_predict": 8, "temperature": 0}}),
        )
        .await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert!(second["prompt_eval_count"].as_u64().unwrap() > context.len() as u64);
}

#[tokio::test]
async fn a_prompt_longer_than_the_window_is_400() {
    let (app, _) = spawn_embedded(settings()).await;
    let long = "word ".repeat(300);

    let response = app
        .post_json("/api/v1/chat", ask(&long, json!({"num_ctx": 64})))
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("context window of 64"),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_reports_the_embedded_backend_up_and_ollama_down() {
    let (app, _) = spawn_embedded(settings()).await;

    let response = app.get("/readyz").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["backends"]["embedded"]["ready"], true);
    assert_eq!(body["backends"]["ollama"]["ready"], false);
}

async fn reply(app: &TestApp, request: Value) -> String {
    let response = app.post_json("/api/v1/chat", request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["message"]["content"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_stop_sequence_ends_the_reply_before_it() {
    let (app, _) = spawn_embedded(settings()).await;
    let question = "Describe the sea in a few sentences.";
    let greedy = json!({"temperature": 0, "num_predict": 40});
    let full = reply(&app, ask(question, greedy.clone())).await;
    // A word from the middle of the greedy answer.
    let words: Vec<&str> = full.split_whitespace().collect();
    assert!(words.len() >= 6, "a long enough answer: {full:?}");
    let stop = words[words.len() / 2];

    let mut options = greedy;
    options["stop"] = json!([stop]);
    let cut = reply(&app, ask(question, options)).await;

    let expected = &full[..full.find(stop).unwrap()];
    assert_eq!(cut.trim_end(), expected.trim_end(), "full answer: {full:?}");
}

#[tokio::test]
async fn top_k_one_samples_what_greedy_decoding_picks() {
    let (app, _) = spawn_embedded(settings()).await;
    let question = "Name three colours.";
    let greedy = reply(
        &app,
        ask(question, json!({"temperature": 0, "num_predict": 24})),
    )
    .await;

    // However hot the temperature and whatever the seed, one candidate
    // leaves no choice (top_p is accepted alongside; the repeat penalty,
    // left at its default, applies to both).
    let sampled = reply(
        &app,
        ask(
            question,
            json!({"temperature": 1.5, "seed": 9, "top_k": 1, "top_p": 0.9, "num_predict": 24}),
        ),
    )
    .await;

    assert!(!greedy.is_empty());
    assert_eq!(sampled, greedy);
}

/// Ollama's dialect over the embedded engine: an empty prompt loads the
/// model, `/api/ps` lists it with its expiry, `/api/show` describes it from
/// its GGUF (naming no path), and a zero keep-alive unloads it at once.
#[tokio::test]
async fn ollamas_dialect_loads_lists_describes_and_unloads_an_embedded_model() {
    let (app, embedded) = spawn_embedded(settings()).await;

    let loaded: Value = app
        .post_json(
            "/api/generate",
            json!({"model": CHAT_MODEL, "stream": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(loaded["done_reason"], "load", "{loaded}");
    assert!(loaded["load_duration"].as_u64().unwrap() > 0, "{loaded}");
    assert_eq!(embedded.loaded_models(), 1);

    let ps: Value = app.get("/api/ps").await.json().await.unwrap();
    let listed = &ps["models"][0];
    assert_eq!(listed["name"], CHAT_MODEL, "{ps}");
    assert_eq!(listed["context_length"], 2048);
    assert_eq!(listed["size_vram"], 0);
    let expires = humantime::parse_rfc3339(listed["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires > std::time::SystemTime::now(), "{listed}");

    let card: Value = app
        .post_json("/api/show", json!({"model": CHAT_MODEL}))
        .await
        .json()
        .await
        .unwrap();
    assert!(card["template"].as_str().unwrap().contains("<|im_start|>"));
    assert_eq!(card["model_info"]["general.architecture"], "llama");
    assert_eq!(card["details"]["quantization_level"], "Q4_1");
    assert_eq!(card["modelfile"], "FROM smollm2-135m-instruct-q4_1.gguf\n");
    assert!(!card.to_string().contains(&*models_dir().to_string_lossy()));

    let unloaded: Value = app
        .post_json(
            "/api/chat",
            json!({"model": CHAT_MODEL, "messages": [], "keep_alive": 0, "stream": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unloaded["done_reason"], "unload", "{unloaded}");
    assert_eq!(embedded.loaded_models(), 0);
    let ps: Value = app.get("/api/ps").await.json().await.unwrap();
    assert_eq!(ps, json!({"models": []}));
}

/// `raw: true` sends the prompt as written, special tokens and all: the
/// client's own ChatML turn gets the chat model's answer.
#[tokio::test]
async fn a_raw_prompt_reaches_the_model_as_written() {
    let (app, _) = spawn_embedded(settings()).await;

    let answer: Value = app
        .post_json(
            "/api/generate",
            json!({"model": CHAT_MODEL, "raw": true, "stream": false,
                   "prompt": "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
                   "options": {"temperature": 0, "num_predict": 32}}),
        )
        .await
        .json()
        .await
        .unwrap();

    let text = answer["response"].as_str().unwrap();
    assert!(text.contains("Paris"), "{answer}");
    assert!(!text.contains("<|im_"), "{text:?}");
    // Ollama gives no context back for a raw prompt.
    assert!(answer.get("context").is_none(), "{answer}");
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn vectors(body: &Value) -> Vec<Vec<f32>> {
    body["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vector| {
            vector
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// llama.cpp's embedding mode on a GGUF that is no embedding model: mean
/// pooled, unit length, one vector per input, the same text giving the
/// same vector, and a paraphrase nearer than an unrelated sentence.
#[tokio::test]
async fn the_embedded_model_embeds_text_into_unit_vectors() {
    let (app, _) = spawn_embedded(settings()).await;

    let response = app
        .post_json(
            "/api/embed",
            json!({"model": CHAT_MODEL, "input": [
                "Paris is the capital of France.",
                "The capital city of France is Paris.",
                "Bananas are rich in potassium.",
                "Paris is the capital of France.",
            ]}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let vectors = vectors(&body);
    assert_eq!(vectors.len(), 4);
    for vector in &vectors {
        assert_eq!(vector.len(), 576, "SmolLM2 135M's width");
        assert!((cosine(vector, vector) - 1.0).abs() < 1e-4);
    }
    assert_eq!(vectors[0], vectors[3]);
    assert!(
        cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]),
        "paraphrase {} vs unrelated {}",
        cosine(&vectors[0], &vectors[1]),
        cosine(&vectors[0], &vectors[2])
    );
    assert!(body["prompt_eval_count"].as_u64().unwrap() > 20, "{body}");

    // Fewer dimensions, still unit length; OpenAI's dialect the same way.
    let short: Value = app
        .post_json(
            "/v1/embeddings",
            json!({"model": CHAT_MODEL, "input": "Paris", "dimensions": 64}),
        )
        .await
        .json()
        .await
        .unwrap();
    let vector: Vec<f32> = short["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(vector.len(), 64);
    assert!((cosine(&vector, &vector) - 1.0).abs() < 1e-4);
}

#[tokio::test]
async fn an_input_longer_than_the_window_is_cut_or_refused_as_asked() {
    let (app, _) = spawn_embedded(EmbeddedSettings {
        context_size: 64,
        ..settings()
    })
    .await;
    let long = "word ".repeat(200);

    let cut = app
        .post_json("/api/embed", json!({"model": CHAT_MODEL, "input": long}))
        .await;
    assert_eq!(cut.status(), 200);
    let body: Value = cut.json().await.unwrap();
    assert_eq!(body["prompt_eval_count"], 64);

    let refused = app
        .post_json(
            "/api/embed",
            json!({"model": CHAT_MODEL, "input": long, "truncate": false}),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let message = refused.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("longer than the context window of 64"),
        "{message}"
    );
}
