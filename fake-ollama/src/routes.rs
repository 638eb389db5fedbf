//! The fake's HTTP surface: Ollama's endpoints plus `/_fake/*` controls.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::answer::{Answer, Endpoint};
use crate::behavior::Behavior;
use crate::{FakeState, embed, manage, openai};

pub fn router(state: FakeState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/api/version", get(version))
        .route("/api/tags", get(list_tags))
        .route("/api/ps", get(manage::list_loaded))
        .route("/api/show", post(show_model))
        .route("/api/pull", post(manage::pull))
        .route("/api/delete", delete(manage::delete))
        .route("/api/copy", post(manage::copy))
        .route("/api/create", post(manage::create))
        .route("/api/generate", post(generate))
        .route("/api/chat", post(chat))
        .route("/api/embed", post(embed::embed))
        .route("/health", get(openai::health))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/_fake/events", get(list_events).delete(clear_events))
        .route("/_fake/stats", get(stats))
        .route("/_fake/behavior", get(get_behavior).post(set_behavior))
        .with_state(state)
}

/// Ollama's error body with a status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn root() -> &'static str {
    "Ollama is running"
}

async fn version() -> Json<Value> {
    Json(json!({ "version": "0.12.6" }))
}

async fn list_tags(State(state): State<FakeState>) -> Json<Value> {
    let models: Vec<Value> = state
        .models()
        .iter()
        .map(|model| model.tag_entry())
        .collect();
    Json(json!({ "models": models }))
}

async fn show_model(State(state): State<FakeState>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(parse_error) => return error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    };
    state.events.request("/api/show", request.clone());
    // Ollama accepts the model under either key.
    let requested = request["model"]
        .as_str()
        .or_else(|| request["name"].as_str())
        .unwrap_or_default();
    match state.find_model(requested) {
        Some(model) => Json(model.show()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("model '{requested}' not found"),
        ),
    }
}

async fn generate(State(state): State<FakeState>, body: Bytes) -> Response {
    answer(state, Endpoint::Generate, body).await
}

async fn chat(State(state): State<FakeState>, body: Bytes) -> Response {
    answer(state, Endpoint::Chat, body).await
}

async fn answer(state: FakeState, endpoint: Endpoint, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request @ Value::Object(_)) => request,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "request body must be a JSON object",
            );
        }
        Err(parse_error) => return error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    };
    let id = state.events.request(endpoint.path(), request.clone());
    let model = match request["model"].as_str() {
        Some(model) if !model.is_empty() => model.to_string(),
        _ => return error(StatusCode::BAD_REQUEST, "model is required"),
    };
    let Some(found) = state.find_model(&model) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("model \"{model}\" not found, try pulling it first"),
        );
    };
    if nothing_to_answer(endpoint, &request) {
        return manage::load(&state, id, endpoint, &model, &found, &request);
    }
    state.set_loaded(&found.name, true);

    let behavior = state.behavior();
    // Created before any waiting, so a client that gives up while the fake
    // hangs is recorded as a disconnect too.
    let mut guard = state.events.answer(id, endpoint.path());
    if behavior.hang_before_headers {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(behavior.headers_delay()).await;
    if let Some(code) = behavior.status_before_body {
        // A deliberate end, not a client that left.
        guard.finish();
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, behavior.error_message);
    }

    let answer = Answer::new(endpoint, model, behavior, &request);
    if request["stream"].as_bool() == Some(false) {
        match answer.whole(&mut guard).await {
            Ok(whole) => Json(whole).into_response(),
            Err(failure) => (StatusCode::INTERNAL_SERVER_ERROR, Json(failure)).into_response(),
        }
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            Body::from_stream(answer.stream(guard)),
        )
            .into_response()
    }
}

/// An empty prompt (or no messages) asks Ollama to load the model only.
fn nothing_to_answer(endpoint: Endpoint, request: &Value) -> bool {
    match endpoint {
        Endpoint::Generate => request["prompt"].as_str().is_none_or(str::is_empty),
        Endpoint::Chat => request["messages"]
            .as_array()
            .is_none_or(|messages| messages.is_empty()),
    }
}

async fn list_events(State(state): State<FakeState>) -> Json<Value> {
    Json(json!({
        "events": state.events.snapshot(),
        "open_streams": state.events.open_streams(),
    }))
}

/// Counters only: cheap to poll while thousands of answers are open.
async fn stats(State(state): State<FakeState>) -> Json<Value> {
    Json(json!({
        "open_streams": state.events.open_streams(),
        "events": state.events.len(),
    }))
}

async fn clear_events(State(state): State<FakeState>) -> StatusCode {
    state.events.clear();
    StatusCode::NO_CONTENT
}

async fn get_behavior(State(state): State<FakeState>) -> Json<Behavior> {
    Json(state.behavior())
}

async fn set_behavior(State(state): State<FakeState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Behavior>(&body) {
        Ok(behavior) => {
            state.set_behavior(behavior.clone());
            Json(behavior).into_response()
        }
        Err(parse_error) => error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    }
}
