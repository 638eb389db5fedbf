//! Ollama's API at Ollama's own paths, over every backend: point
//! `OLLAMA_HOST` at `http://host:3000` and Open WebUI, ollama-python/js and
//! editor plugins work unchanged. The same token stream, cancellation and
//! limits as our own API; only the encoding differs (see
//! [`crate::dialect::ollama`]). Model management (pull, push, create,
//! copy, delete) goes on to the Ollama server that can do it.

use app::api::ErrorBody;
use axum::Json;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::Manage;
use crate::dialect::ollama::wire::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, GenerateRequest, GenerateResponse,
    ManageTarget, ProcessList, ShowRequest, ShowResponse, TagList, Version,
};
use crate::dialect::ollama::{self, API_VERSION, Endpoint};
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::stream;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(list_tags))
        .routes(routes!(list_loaded))
        .routes(routes!(show))
        .routes(routes!(generate))
        .routes(routes!(chat))
        .routes(routes!(embed))
        .routes(routes!(pull))
        .routes(routes!(push))
        .routes(routes!(create))
        .routes(routes!(copy))
        .routes(routes!(delete_model))
        // Unknown paths under /api answer Ollama's JSON error, not the page.
        .route("/api/{*rest}", any(not_found))
}

/// The Ollama API version llm-chat speaks.
#[utoipa::path(
    get,
    path = "/api/version",
    operation_id = "ollama_version",
    tag = "ollama",
    responses((status = 200, description = "The Ollama API version served", body = Version))
)]
pub async fn version() -> Json<Version> {
    Json(Version {
        version: API_VERSION,
    })
}

/// Every backend's models, as Ollama lists its own (the embedded ones with
/// their GGUF details).
#[utoipa::path(
    get,
    path = "/api/tags",
    operation_id = "ollama_list_tags",
    tag = "ollama",
    responses(
        (status = 200, description = "Every model", body = TagList),
        (status = 502, description = "No backend could list its models", body = ErrorBody),
    )
)]
pub async fn list_tags(State(state): State<AppState>) -> Result<Json<TagList>, AppError> {
    let models = state.registry.list_models().await?;
    Ok(Json(ollama::tags(models)))
}

/// The models loaded in memory now, on every backend.
#[utoipa::path(
    get,
    path = "/api/ps",
    operation_id = "ollama_list_loaded",
    tag = "ollama",
    responses((status = 200, description = "Loaded models and when each unloads", body = ProcessList))
)]
pub async fn list_loaded(State(state): State<AppState>) -> Json<ProcessList> {
    Json(ollama::processes(state.registry.loaded().await))
}

/// One model's card: details, template, license, GGUF metadata.
#[utoipa::path(
    post,
    path = "/api/show",
    operation_id = "ollama_show",
    tag = "ollama",
    request_body = ShowRequest,
    responses(
        (status = 200, description = "The model described", body = ShowResponse),
        (status = 400, description = "No model named", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ShowRequest>,
) -> Result<Json<ShowResponse>, AppError> {
    let model = ollama::named_model(request.model, request.name)?;
    let card = state.registry.describe(&model).await?;
    Ok(Json(ollama::show(card)))
}

/// Completes a prompt: NDJSON lines (one per token, the counters last), or
/// one JSON object with `stream: false`. An empty prompt loads the model.
#[utoipa::path(
    post,
    path = "/api/generate",
    operation_id = "ollama_generate",
    tag = "ollama",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "The answer, as `application/x-ndjson` lines unless `stream: false`", body = GenerateResponse),
        (status = 400, description = "A missing or unsupported field", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<Response, AppError> {
    let (request, streamed) = ollama::generate_request(request)?;
    let model = request.model.clone();
    let tokens = state.registry.infer(request).await?;
    if streamed {
        return Ok(ollama::stream_answer(
            tokens,
            Endpoint::Generate,
            model,
            &state.streams,
        ));
    }
    let answer = stream::collect(tokens).await?;
    Ok(Json(ollama::generate_response(model, answer)).into_response())
}

/// Answers a conversation: NDJSON lines, or one JSON object with
/// `stream: false`. No messages loads the model.
#[utoipa::path(
    post,
    path = "/api/chat",
    operation_id = "ollama_chat",
    tag = "ollama",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer, as `application/x-ndjson` lines unless `stream: false`", body = ChatResponse),
        (status = 400, description = "A missing or unsupported field", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
        (status = 504, description = "The backend did not answer in time", body = ErrorBody),
    )
)]
pub async fn chat(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Response, AppError> {
    let (request, streamed) = ollama::chat_request(request)?;
    let model = request.model.clone();
    let tokens = state.registry.infer(request).await?;
    if streamed {
        return Ok(ollama::stream_answer(
            tokens,
            Endpoint::Chat,
            model,
            &state.streams,
        ));
    }
    let answer = stream::collect(tokens).await?;
    Ok(Json(ollama::chat_response(model, answer)).into_response())
}

/// Turns text into vectors: a string or an array of strings, one unit
/// vector per input; an input too long is cut unless `truncate: false`.
#[utoipa::path(
    post,
    path = "/api/embed",
    operation_id = "ollama_embed",
    tag = "ollama",
    request_body = EmbedRequest,
    responses(
        (status = 200, description = "One vector per input, in order", body = EmbedResponse),
        (status = 400, description = "A missing field, or an input too long with `truncate: false`", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 502, description = "The backend is unreachable or failed", body = ErrorBody),
        (status = 503, description = "The backend is busy", body = ErrorBody),
    )
)]
pub async fn embed(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<EmbedRequest>,
) -> Result<Json<EmbedResponse>, AppError> {
    let request = ollama::embed_request(request)?;
    let model = request.model.clone();
    let embeddings = state.registry.embed(request).await?;
    Ok(Json(ollama::embed_response(model, embeddings)))
}

/// Pulls a model on the Ollama upstream; its progress lines (`status`, `digest`, `total`, `completed`) stream back as Ollama writes them.
#[utoipa::path(
    post,
    path = "/api/pull",
    operation_id = "ollama_pull",
    tag = "ollama",
    request_body(content = Object, description = "Ollama's own body, passed on as it is"),
    responses(
        (status = 200, description = "Ollama's answer, passed on as it comes"),
        (status = 400, description = "No model named, an embedded model, or no Ollama to do it", body = ErrorBody),
        (status = 404, description = "Ollama does not have the model", body = ErrorBody),
        (status = 502, description = "The Ollama upstream is unreachable", body = ErrorBody),
    )
)]
pub async fn pull(
    state: State<AppState>,
    body: ApiJson<serde_json::Value>,
) -> Result<Response, AppError> {
    forward(state, Manage::Pull, body).await
}

/// Pushes a model from the Ollama upstream that holds it to a registry, its progress streamed back.
#[utoipa::path(
    post,
    path = "/api/push",
    operation_id = "ollama_push",
    tag = "ollama",
    request_body(content = Object, description = "Ollama's own body, passed on as it is"),
    responses(
        (status = 200, description = "Ollama's answer, passed on as it comes"),
        (status = 400, description = "No model named, an embedded model, or no Ollama to do it", body = ErrorBody),
        (status = 404, description = "Ollama does not have the model", body = ErrorBody),
        (status = 502, description = "The Ollama upstream is unreachable", body = ErrorBody),
    )
)]
pub async fn push(
    state: State<AppState>,
    body: ApiJson<serde_json::Value>,
) -> Result<Response, AppError> {
    forward(state, Manage::Push, body).await
}

/// Creates a model on the Ollama upstream, its progress streamed back.
#[utoipa::path(
    post,
    path = "/api/create",
    operation_id = "ollama_create",
    tag = "ollama",
    request_body(content = Object, description = "Ollama's own body, passed on as it is"),
    responses(
        (status = 200, description = "Ollama's answer, passed on as it comes"),
        (status = 400, description = "No model named, an embedded model, or no Ollama to do it", body = ErrorBody),
        (status = 404, description = "Ollama does not have the model", body = ErrorBody),
        (status = 502, description = "The Ollama upstream is unreachable", body = ErrorBody),
    )
)]
pub async fn create(
    state: State<AppState>,
    body: ApiJson<serde_json::Value>,
) -> Result<Response, AppError> {
    forward(state, Manage::Create, body).await
}

/// Copies a model (`source` to `destination`) on the Ollama upstream that holds it.
#[utoipa::path(
    post,
    path = "/api/copy",
    operation_id = "ollama_copy",
    tag = "ollama",
    request_body(content = Object, description = "Ollama's own body, passed on as it is"),
    responses(
        (status = 200, description = "Ollama's answer, passed on as it comes"),
        (status = 400, description = "No model named, an embedded model, or no Ollama to do it", body = ErrorBody),
        (status = 404, description = "Ollama does not have the model", body = ErrorBody),
        (status = 502, description = "The Ollama upstream is unreachable", body = ErrorBody),
    )
)]
pub async fn copy(
    state: State<AppState>,
    body: ApiJson<serde_json::Value>,
) -> Result<Response, AppError> {
    forward(state, Manage::Copy, body).await
}

/// Deletes a model from the Ollama upstream that holds it.
#[utoipa::path(
    delete,
    path = "/api/delete",
    operation_id = "ollama_delete",
    tag = "ollama",
    request_body(content = Object, description = "Ollama's own body, passed on as it is"),
    responses(
        (status = 200, description = "Ollama's answer, passed on as it comes"),
        (status = 400, description = "No model named, an embedded model, or no Ollama to do it", body = ErrorBody),
        (status = 404, description = "Ollama does not have the model", body = ErrorBody),
        (status = 502, description = "The Ollama upstream is unreachable", body = ErrorBody),
    )
)]
pub async fn delete_model(
    state: State<AppState>,
    body: ApiJson<serde_json::Value>,
) -> Result<Response, AppError> {
    forward(state, Manage::Delete, body).await
}

/// Sends a management call to the backend it concerns and passes its
/// answer back as it comes (a pull's progress lines as they are written).
/// A client that leaves drops the upstream request with it.
async fn forward(
    State(state): State<AppState>,
    call: Manage,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, AppError> {
    let target: ManageTarget = serde_json::from_value(body.clone())
        .map_err(|error| AppError::BadRequest(format!("invalid JSON body: {error}")))?;
    let model = match call {
        Manage::Copy if target.source.trim().is_empty() => {
            return Err(AppError::BadRequest("source is required".into()));
        }
        Manage::Copy => target.source,
        _ => ollama::named_model(target.model, target.name)?,
    };
    let backend = state.registry.manager(call, &model).await?;
    let body = Bytes::from(serde_json::to_vec(&body).expect("a JSON value serialises"));
    let forwarded = backend.manage(call, body).await?;
    let mut response = Response::new(Body::from_stream(forwarded.body));
    *response.status_mut() =
        StatusCode::from_u16(forwarded.status).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(content_type) = forwarded
        .content_type
        .and_then(|value| HeaderValue::from_str(&value).ok())
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}

async fn not_found(OriginalUri(uri): OriginalUri) -> AppError {
    AppError::NotFound(format!("no such endpoint: {}", uri.path()))
}
