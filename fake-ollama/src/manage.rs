//! Model management as Ollama answers it: `/api/ps`, loading with an empty
//! prompt, `/api/pull` (paced progress lines, a streamed error for a name
//! the registry does not have), `/api/delete`, `/api/copy`, `/api/create`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answer::Endpoint;
use crate::routes::error;
use crate::{FakeModel, FakeState};

/// Size of the one layer a fake pull downloads.
const LAYER_BYTES: u64 = 1_321_098_329;

/// A name the fake registry does not have: pulling it fails as Ollama's does.
const MISSING_PREFIX: &str = "missing";

pub async fn list_loaded(State(state): State<FakeState>) -> Json<Value> {
    let models: Vec<Value> = state.loaded().iter().map(FakeModel::ps_entry).collect();
    Json(json!({ "models": models }))
}

/// The answer to an empty prompt: the model loaded (or, with a zero
/// keep-alive, unloaded), and nothing said.
pub fn load(
    state: &FakeState,
    id: u64,
    endpoint: Endpoint,
    model: &str,
    found: &FakeModel,
    request: &Value,
) -> Response {
    let unload = request["keep_alive"].as_f64() == Some(0.0)
        || request["keep_alive"]
            .as_str()
            .is_some_and(|text| text == "0");
    state.set_loaded(&found.name, !unload);
    let mut done = json!({
        "model": model,
        "created_at": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
    });
    match endpoint {
        Endpoint::Generate => done["response"] = json!(""),
        Endpoint::Chat => done["message"] = json!({"role": "assistant", "content": ""}),
    }
    done["done"] = json!(true);
    done["done_reason"] = json!(if unload { "unload" } else { "load" });
    state.events.answer(id, endpoint.path()).finish();
    if request["stream"].as_bool() == Some(false) {
        return Json(done).into_response();
    }
    ndjson(Body::from(line(&done)))
}

/// Pulls a model: progress lines paced by the behaviour, then `success`
/// and the model is listed. A client that leaves stops the pull (recorded
/// as a disconnect).
pub async fn pull(State(state): State<FakeState>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(request) => request,
        Err(parse_error) => return error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    };
    let id = state.events.request("/api/pull", request.clone());
    let name = model_name(&request);
    if name.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    let behavior = state.behavior();
    let model = FakeModel::named(&name);
    let mut guard = state.events.answer(id, "/api/pull");
    let streamed = request["stream"].as_bool() != Some(false);
    let steps = behavior.pull_steps.max(1) as u64;
    let pause = Duration::from_millis(behavior.pull_step_ms);
    let lines = async_stream::stream! {
        yield Ok::<_, Infallible>(line(&json!({"status": "pulling manifest"})));
        if name.starts_with(MISSING_PREFIX) {
            guard.finish();
            yield Ok(line(&json!({"error": "pull model manifest: file does not exist"})));
            return;
        }
        let digest = format!("sha256:{}", model.digest());
        let status = format!("pulling {}", &model.digest()[..12]);
        for step in 1..=steps {
            tokio::time::sleep(pause).await;
            guard.token_sent();
            yield Ok(line(&json!({
                "status": status,
                "digest": digest,
                "total": LAYER_BYTES,
                "completed": LAYER_BYTES * step / steps,
            })));
        }
        yield Ok(line(&json!({"status": "verifying sha256 digest"})));
        yield Ok(line(&json!({"status": "writing manifest"})));
        {
            let mut models = state.edit_models();
            if !models.iter().any(|listed| listed.name == model.name) {
                models.push(model.clone());
            }
        }
        guard.finish();
        yield Ok(line(&json!({"status": "success"})));
    };
    if streamed {
        return ndjson(Body::from_stream(lines));
    }
    // One answer when it is all done: the last line says how it ended.
    let mut last = Value::Null;
    let mut lines = std::pin::pin!(lines);
    while let Some(Ok(bytes)) = futures_util::StreamExt::next(&mut lines).await {
        last = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    }
    match last.get("error") {
        Some(message) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            message.as_str().unwrap_or_default(),
        ),
        None => Json(last).into_response(),
    }
}

pub async fn delete(State(state): State<FakeState>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(request) => request,
        Err(parse_error) => return error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    };
    state.events.request("/api/delete", request.clone());
    let name = model_name(&request);
    let mut models = state.edit_models();
    match models.iter().position(|model| model.answers_to(&name)) {
        Some(index) => {
            let removed = models.remove(index);
            drop(models);
            state.set_loaded(&removed.name, false);
            StatusCode::OK.into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("model '{name}' not found")),
    }
}

pub async fn copy(State(state): State<FakeState>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(request) => request,
        Err(parse_error) => return error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    };
    state.events.request("/api/copy", request.clone());
    let source = request["source"].as_str().unwrap_or_default();
    let destination = request["destination"].as_str().unwrap_or_default();
    if destination.is_empty() {
        return error(StatusCode::BAD_REQUEST, "destination is required");
    }
    let Some(mut copy) = state.find_model(source) else {
        return error(StatusCode::NOT_FOUND, format!("model '{source}' not found"));
    };
    copy.name = FakeModel::named(destination).name;
    state.edit_models().push(copy);
    StatusCode::OK.into_response()
}

pub async fn create(State(state): State<FakeState>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(request) => request,
        Err(parse_error) => return error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    };
    state.events.request("/api/create", request.clone());
    let name = model_name(&request);
    if name.is_empty() {
        return error(StatusCode::BAD_REQUEST, "model is required");
    }
    state.edit_models().push(FakeModel::named(&name));
    let success = json!({"status": "success"});
    if request["stream"].as_bool() == Some(false) {
        return Json(success).into_response();
    }
    ndjson(Body::from(line(&success)))
}

/// `model`, or the older `name`.
fn model_name(request: &Value) -> String {
    request["model"]
        .as_str()
        .filter(|name| !name.is_empty())
        .or_else(|| request["name"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).expect("JSON values serialise");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn ndjson(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}
