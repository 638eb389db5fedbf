//! Embeddings in both dialects, over loopback HTTP in front of fake-ollama:
//! OpenAI's `/v1/embeddings` (floats and base64, the SDKs' default) and
//! Ollama's `/api/embed`, one vector per input in order, usage, and errors
//! in each dialect's shape.

use base64::Engine;
use fake_ollama::Behavior;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
async fn openai_embeddings_are_one_unit_vector_per_input_in_order() {
    let app = spawn_app(Behavior::default()).await;

    let response = app
        .post_json(
            "/v1/embeddings",
            json!({"model": "llama3.2", "input": ["the red fox", "a blue sky today"]}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 7, "total_tokens": 7})
    );
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        let vector = floats(&item["embedding"]);
        assert_eq!(vector.len(), 8);
        assert!((norm(&vector) - 1.0).abs() < 1e-5, "{vector:?}");
    }
    // What went upstream: both inputs in one call, never cut.
    let sent = app.fake().events().request_bodies("/api/embed");
    assert_eq!(
        sent,
        [
            json!({"model": "llama3.2", "input": ["the red fox", "a blue sky today"], "truncate": false})
        ]
    );
}

#[tokio::test]
async fn base64_holds_the_same_floats_as_little_endian_bytes() {
    let app = spawn_app(Behavior::default()).await;
    let ask = |encoding: &str| {
        json!({"model": "llama3.2", "input": "the red fox", "encoding_format": encoding,
               "dimensions": 4})
    };

    let float: Value = app
        .post_json("/v1/embeddings", ask("float"))
        .await
        .json()
        .await
        .unwrap();
    let base64: Value = app
        .post_json("/v1/embeddings", ask("base64"))
        .await
        .json()
        .await
        .unwrap();

    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let (words, rest) = bytes.as_chunks::<4>();
    assert!(rest.is_empty());
    let decoded: Vec<f32> = words.iter().map(|word| f32::from_le_bytes(*word)).collect();
    assert_eq!(decoded, floats(&float["data"][0]["embedding"]));
    assert_eq!(decoded.len(), 4);
}

#[tokio::test]
async fn ollamas_embed_gives_the_same_vectors_in_its_own_shape() {
    let app = spawn_app(Behavior::default()).await;

    let ollama: Value = app
        .post_json(
            "/api/embed",
            json!({"model": "llama3.2", "input": "the red fox", "keep_alive": "1m"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let openai: Value = app
        .post_json(
            "/v1/embeddings",
            json!({"model": "llama3.2", "input": "the red fox"}),
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(ollama["model"], "llama3.2");
    assert_eq!(ollama["prompt_eval_count"], 3);
    assert!(ollama["total_duration"].as_u64().unwrap() > 0);
    assert_eq!(
        floats(&ollama["embeddings"][0]),
        floats(&openai["data"][0]["embedding"])
    );
    let sent = app.fake().events().request_bodies("/api/embed");
    assert_eq!(
        sent[0],
        json!({"model": "llama3.2", "input": ["the red fox"], "truncate": true, "keep_alive": "1m"})
    );
}

#[tokio::test]
async fn embedding_errors_are_each_dialects_own() {
    let app = spawn_app(Behavior::default()).await;

    let missing = app
        .post_json("/v1/embeddings", json!({"model": "nope", "input": "x"}))
        .await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "model \"nope\" not found, try pulling it first"
    );

    let tokens = app
        .post_json(
            "/v1/embeddings",
            json!({"model": "llama3.2", "input": [[1, 2, 3]]}),
        )
        .await;
    assert_eq!(tokens.status(), 400);
    let body: Value = tokens.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_parameter");
    assert_eq!(body["error"]["param"], "input");

    let ollama = app
        .post_json("/api/embed", json!({"model": "nope", "input": "x"}))
        .await;
    assert_eq!(ollama.status(), 404);
    assert_eq!(
        ollama.json::<Value>().await.unwrap(),
        json!({"error": "model \"nope\" not found, try pulling it first"})
    );
    let no_model = app.post_json("/api/embed", json!({"input": "x"})).await;
    assert_eq!(no_model.status(), 400);
}

#[tokio::test]
async fn a_failing_upstream_is_a_502_in_both_dialects() {
    let app = spawn_app(Behavior {
        status_before_body: Some(500),
        ..Behavior::default()
    })
    .await;

    for path in ["/v1/embeddings", "/api/embed"] {
        let response = app
            .post_json(path, json!({"model": "llama3.2", "input": "x"}))
            .await;
        assert_eq!(response.status(), 502, "{path}");
        assert!(!response.text().await.unwrap().contains("127.0.0.1"));
    }
}
