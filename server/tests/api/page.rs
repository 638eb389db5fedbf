//! The server-rendered page at `/`.

use fake_ollama::Behavior;

use crate::helpers::{spawn_app, spawn_app_without_ollama};

#[tokio::test]
async fn the_page_lists_the_models_in_its_first_html() {
    let app = spawn_app(Behavior::default()).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>llm-chat</title>"), "{html}");
    assert!(html.contains("llama3.2:latest"), "{html}");
    assert!(html.contains("qwen2.5:0.5b"), "{html}");
    assert!(
        html.contains("/pkg/llm-chat.js"),
        "the hydration script: {html}"
    );
}

#[tokio::test]
async fn the_page_says_plainly_when_ollama_is_down() {
    let app = spawn_app_without_ollama().await;
    let html = app.get("/").await.text().await.unwrap();
    assert!(html.contains("Could not list models"), "{html}");
    assert!(html.contains("unreachable"), "{html}");
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page() {
    let app = spawn_app(Behavior::default()).await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Not found"));
}
