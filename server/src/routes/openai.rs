//! OpenAI's API under `/v1`, over every backend: point `OPENAI_BASE_URL` at
//! `http://host:3000/v1` and the OpenAI SDKs work unchanged. The same
//! token stream, cancellation and limits as our own API; only the encoding
//! differs (see [`crate::dialect::openai`]).

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dialect::openai::embeddings::{embed_request, embedding_list};
use crate::dialect::openai::wire::{
    ChatCompletion, ChatCompletionRequest, CompletionRequest, EmbeddingList, EmbeddingRequest,
    ErrorBody, Model, ModelList, TextCompletion,
};
use crate::dialect::openai::{self, Dialect, OpenAiError};
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::stream;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(get_model))
        // Ollama names can hold a slash (`library/llama3`, `hf.co/…`).
        .route("/models/{owner}/{*rest}", get(get_nested_model))
        .routes(routes!(chat_completions))
        .routes(routes!(completions))
        .routes(routes!(embeddings))
        .fallback(not_found)
}

/// Lists every backend's models, OpenAI style.
#[utoipa::path(
    get,
    path = "/models",
    operation_id = "openai_list_models",
    tag = "openai",
    responses(
        (status = 200, description = "Every model; `owned_by` names its backend", body = ModelList),
        (status = 502, description = "No backend could list its models", body = ErrorBody),
    )
)]
pub async fn list_models(State(state): State<AppState>) -> Result<Json<ModelList>, OpenAiError> {
    let models = state.registry.list_models().await?;
    Ok(Json(ModelList {
        object: "list",
        data: models.into_iter().map(openai::model).collect(),
    }))
}

/// One model.
#[utoipa::path(
    get,
    path = "/models/{model}",
    tag = "openai",
    params(("model" = String, Path, description = "The model's name, e.g. `llama3.2:latest`")),
    responses(
        (status = 200, description = "The model", body = Model),
        (status = 404, description = "No backend has it (`code: model_not_found`)", body = ErrorBody),
    )
)]
pub async fn get_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<Json<Model>, OpenAiError> {
    find_model(&state, &model).await
}

async fn get_nested_model(
    State(state): State<AppState>,
    Path((owner, rest)): Path<(String, String)>,
) -> Result<Json<Model>, OpenAiError> {
    find_model(&state, &format!("{owner}/{rest}")).await
}

async fn find_model(state: &AppState, name: &str) -> Result<Json<Model>, OpenAiError> {
    let models = state.registry.list_models().await?;
    // As Ollama resolves them: a name without a tag means `latest`.
    let wanted = |candidate: &str| {
        candidate == name || (!name.contains(':') && candidate == format!("{name}:latest"))
    };
    models
        .into_iter()
        .find(|info| wanted(&info.name))
        .map(|info| Json(openai::model(info)))
        .ok_or_else(|| OpenAiError::model_not_found(name))
}

/// Answers a conversation, whole or streamed (`stream: true`).
///
/// Streamed, it is `chat.completion.chunk` events: the role first, a
/// `delta` per token (`reasoning_content` for a reasoning model's
/// thoughts), the `finish_reason`, the usage when
/// `stream_options.include_usage`, then `data: [DONE]`. Parameters that
/// cannot be honoured (`n` > 1, `logprobs`, `tools`…) are a 400 naming them.
#[utoipa::path(
    post,
    path = "/chat/completions",
    tag = "openai",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The answer (or, with `stream`, its chunks as SSE)", body = ChatCompletion),
        (status = 400, description = "A missing or unsupported parameter", body = ErrorBody),
        (status = 404, description = "Unknown model (`code: model_not_found`)", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    body: Result<ApiJson<ChatCompletionRequest>, AppError>,
) -> Result<Response, OpenAiError> {
    let ApiJson(request) = body?;
    let streamed = request.stream;
    let (request, answering) = openai::chat_request(request)?;
    let tokens = state.registry.infer(request).await?;
    if streamed {
        return Ok(openai::stream_answer(
            tokens,
            Dialect::Chat,
            answering,
            &state.streams,
        ));
    }
    let answer = stream::collect(tokens).await?;
    Ok(Json(openai::chat_completion(answering, answer)).into_response())
}

/// Completes a prompt (the legacy API), whole or streamed.
#[utoipa::path(
    post,
    path = "/completions",
    tag = "openai",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "The completion (or, with `stream`, its chunks as SSE)", body = TextCompletion),
        (status = 400, description = "A missing or unsupported parameter", body = ErrorBody),
        (status = 404, description = "Unknown model (`code: model_not_found`)", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn completions(
    State(state): State<AppState>,
    body: Result<ApiJson<CompletionRequest>, AppError>,
) -> Result<Response, OpenAiError> {
    let ApiJson(request) = body?;
    let streamed = request.stream;
    let (request, answering) = openai::completion_request(request)?;
    let tokens = state.registry.infer(request).await?;
    if streamed {
        return Ok(openai::stream_answer(
            tokens,
            Dialect::Text,
            answering,
            &state.streams,
        ));
    }
    let answer = stream::collect(tokens).await?;
    Ok(Json(openai::text_completion(answering, answer)).into_response())
}

/// Turns text into vectors: a string or an array of strings in, one unit
/// vector per input out, as floats or (`encoding_format: "base64"`) their
/// little-endian `f32` bytes.
#[utoipa::path(
    post,
    path = "/embeddings",
    tag = "openai",
    request_body = EmbeddingRequest,
    responses(
        (status = 200, description = "One vector per input, in order, with the tokens read", body = EmbeddingList),
        (status = 400, description = "A missing or unsupported parameter, or an input longer than the model's window", body = ErrorBody),
        (status = 404, description = "Unknown model (`code: model_not_found`)", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn embeddings(
    State(state): State<AppState>,
    body: Result<ApiJson<EmbeddingRequest>, AppError>,
) -> Result<Json<EmbeddingList>, OpenAiError> {
    let ApiJson(request) = body?;
    let (request, encoding) = embed_request(request)?;
    let model = request.model.clone();
    let embeddings = state.registry.embed(request).await?;
    Ok(Json(embedding_list(model, embeddings, encoding)))
}

async fn not_found(OriginalUri(uri): OriginalUri) -> OpenAiError {
    AppError::NotFound(format!("no such endpoint: {}", uri.path())).into()
}
