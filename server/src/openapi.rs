//! The OpenAPI document of the whole API: its frame here, its operations
//! from the routes that serve them (see [`crate::routes::documented`]).
//! Served at `/api/v1/openapi.json` with Swagger UI at `/swagger-ui`.

use app::api::{DoneChunk, ErrorBody, TokenChunk};
use axum::Router;
use utoipa::openapi::{Content, OpenApi as Document, PathItem, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "llm-chat",
        description = "A REST + Server-Sent Events API over LLM backends (Ollama, or a model \
                       run in-process). Compatible with the original Go API: list models, \
                       generate, generate over SSE; plus chat. Every error is JSON \
                       `{\"error\": \"…\"}`."
    ),
    components(schemas(TokenChunk, DoneChunk, ErrorBody)),
    tags(
        (name = "models", description = "What the backends can run"),
        (name = "generate", description = "Complete a prompt"),
        (name = "chat", description = "Answer a conversation"),
        (name = "generations", description = "Resumable generations for EventSource clients"),
        (name = "conversations", description = "Conversations kept on the server, with branches"),
        (name = "openai", description = "OpenAI's API under /v1, over every backend; errors in OpenAI's shape"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
struct ApiDoc;

/// The document before the routes add their operations.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// The routes' document, with what every operation shares.
pub fn finish(mut document: Document) -> Document {
    AnyRouteErrors.modify(&mut document);
    document
}

/// The document as the server serves it and `make openapi` writes it.
pub fn document() -> String {
    let (_, document) = routes::documented().split_for_parts();
    finish(document)
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}

pub fn router(document: Document) -> Router<AppState> {
    SwaggerUi::new("/swagger-ui")
        .url("/api/v1/openapi.json", document)
        .into()
}

/// Every route answers a wrong method with 405 and a caught panic with 500,
/// both as the error JSON: said once here instead of on each handler.
struct AnyRouteErrors;

impl Modify for AnyRouteErrors {
    fn modify(&self, openapi: &mut Document) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let responses = &mut operation.responses.responses;
                responses.insert("405".into(), error("Wrong method for this path").into());
                responses.insert(
                    "500".into(),
                    error("A bug in the server, caught; it keeps serving").into(),
                );
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}
