//! The server-rendered page at `/`.

use fake_ollama::Behavior;

use crate::helpers::{TestApp, spawn_app, spawn_app_without_ollama};

/// `/` as a browser asks for it (anything else gets Ollama's greeting).
async fn page(app: &TestApp) -> reqwest::Response {
    app.client
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_lists_the_models_in_its_first_html() {
    let app = spawn_app(Behavior::default()).await;
    let response = page(&app).await;
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
    let html = page(&app).await.text().await.unwrap();
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

/// A conversation's own address shows it whole in the first HTML (no
/// script needed); one that does not exist is a 404 page saying so.
#[tokio::test]
async fn a_conversation_page_holds_the_conversation_in_its_first_html() {
    let app = spawn_app(Behavior {
        reply: Some("Rendered on the server.".into()),
        ..Behavior::default()
    })
    .await;
    let created: serde_json::Value = app
        .post_json(
            "/api/v1/conversations",
            serde_json::json!({"model": "llama3.2"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    app.post_json(
        &format!("/api/v1/conversations/{id}/messages"),
        serde_json::json!({"content": "Is <b>this</b> escaped?"}),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let html = loop {
        let html = app.get(&format!("/c/{id}")).await.text().await.unwrap();
        if html.contains("Rendered on the server.") || std::time::Instant::now() > deadline {
            break html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    assert!(html.contains("Rendered on the server."), "{html}");
    assert!(
        html.contains("Is &lt;b&gt;this&lt;/b&gt; escaped?"),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/c/{id}\"")),
        "listed: {html}"
    );
    let missing = app.get("/c/0123456789abcdef0123456789abcdef").await;
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("no such conversation")
    );
}
