//! `/api/embed` as Ollama answers it: one unit vector per input. The fake's
//! vectors are made from the input's words (each word a fixed direction),
//! so texts sharing words are close and the same text always gives the
//! same vector.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::FakeState;
use crate::routes::error;

/// Length of the fake's vectors (unless `dimensions` asks for fewer).
pub const DIMENSIONS: usize = 8;

pub async fn embed(State(state): State<FakeState>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(parse_error) => return error(StatusCode::BAD_REQUEST, parse_error.to_string()),
    };
    state.events.request("/api/embed", request.clone());
    let model = request["model"].as_str().unwrap_or_default().to_string();
    if state.find_model(&model).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("model \"{model}\" not found, try pulling it first"),
        );
    }
    if let Some(code) = state.behavior().status_before_body {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, state.behavior().error_message);
    }
    let inputs: Vec<String> = match &request["input"] {
        Value::String(text) if !text.is_empty() => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let dimensions = request["dimensions"]
        .as_u64()
        .map_or(DIMENSIONS, |n| (n as usize).clamp(1, DIMENSIONS));
    let words: usize = inputs
        .iter()
        .map(|text| text.split_whitespace().count())
        .sum();
    let embeddings: Vec<Vec<f32>> = inputs.iter().map(|text| vector(text, dimensions)).collect();
    Json(json!({
        "model": model,
        "embeddings": embeddings,
        "total_duration": 1_200_000,
        "load_duration": 300_000,
        "prompt_eval_count": words,
    }))
    .into_response()
}

/// The sum of each word's direction, scaled to unit length.
pub fn vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut sum = vec![0.0_f64; dimensions];
    for word in text.split_whitespace() {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in word.to_lowercase().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        for (index, value) in sum.iter_mut().enumerate() {
            let bits = hash.rotate_left(index as u32 * 7) & 0xffff;
            *value += bits as f64 / 32_768.0 - 1.0;
        }
    }
    let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
    sum.iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}
