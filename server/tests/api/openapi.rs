//! The OpenAPI document: served, complete, and the same as `doc/openapi.json`.

use fake_ollama::Behavior;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_served_document_covers_every_endpoint() {
    let app = spawn_app(Behavior::default()).await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/models",
        "/api/v1/generate",
        "/api/v1/generate/stream",
        "/api/v1/chat",
        "/api/v1/chat/stream",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    let stream = &paths["/api/v1/generate/stream"]["post"]["responses"]["200"]["content"];
    assert!(
        stream.get("text/event-stream").is_some(),
        "SSE documented: {stream}"
    );
}

#[test]
fn every_operation_documents_the_errors_any_route_can_give() {
    let document: Value = serde_json::from_str(&llm_chat::openapi::document()).unwrap();
    let error_body = serde_json::json!({ "$ref": "#/components/schemas/ErrorBody" });
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["405", "500"] {
                let schema =
                    &operation["responses"][status]["content"]["application/json"]["schema"];
                assert_eq!(schema, &error_body, "{method} {path} documents {status}");
            }
            operations += 1;
        }
    }
    assert!(operations >= 12, "{operations} operations");
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app(Behavior::default()).await;
    let response = app.get("/swagger-ui/").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("swagger-ui"));
}

#[test]
fn the_committed_document_is_current() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../doc/openapi.json"))
            .expect("doc/openapi.json exists (make openapi writes it)");
    let current = llm_chat::openapi::document();
    assert!(
        committed.trim_end() == current.trim_end(),
        "doc/openapi.json is stale: run `make openapi` and commit the result"
    );
}
