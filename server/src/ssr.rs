//! The server-rendered page: Leptos renders the app for `/` (a new chat;
//! a client that does not ask for HTML gets Ollama's "Ollama is running")
//! and `/c/{id}` (a conversation), with the server's own state as its data
//! source; built assets come from the site root.
//!
//! The page is rendered whole before it is sent (Leptos's async mode), not
//! streamed out of order: with out-of-order streaming, data slower than the
//! first flush goes out as a placeholder that only JavaScript can swap, and
//! the page must work with JavaScript off.

use std::sync::Arc;

use app::api::{Conversation, ConversationList, ModelList};
use app::{BoxFuture, PageHead, RequestedConversation, ServerData, SharedServerData, shell};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::provide_context;
use tower_http::services::ServeDir;

use crate::assets::{self, Assets};
use crate::conversations::replies::Replies;
use crate::conversations::{ListQuery, StoreError};
use crate::registry::Registry;
use crate::state::AppState;

/// How many conversations the first HTML lists.
const LISTED: usize = 50;

/// The page's data, from the registry and the conversation store.
struct Data {
    registry: Arc<Registry>,
    conversations: Replies,
}

impl ServerData for Data {
    fn list_models(&self) -> BoxFuture<'_, Result<ModelList, String>> {
        Box::pin(async move {
            self.registry
                .catalog()
                .await
                .map_err(|error| error.to_string())
        })
    }

    fn list_conversations(
        &self,
        search: Option<String>,
    ) -> BoxFuture<'_, Result<ConversationList, String>> {
        Box::pin(async move {
            self.conversations
                .store
                .list(ListQuery {
                    search,
                    limit: LISTED,
                    before: None,
                })
                .await
                .map_err(|error| error.to_string())
        })
    }

    fn conversation(&self, id: String) -> BoxFuture<'_, Result<Option<Conversation>, String>> {
        Box::pin(async move {
            match self.conversations.store.get(&id).await {
                Ok(conversation) => Ok(Some(conversation)),
                Err(StoreError::NoConversation(_)) => Ok(None),
                Err(error) => Err(error.to_string()),
            }
        })
    }
}

pub fn router(state: &AppState) -> Router<AppState> {
    // Resources spawn their loaders on Leptos's executor; an error only means
    // another router in this process set it up already.
    let _ = any_spawner::Executor::init_tokio();
    let assets = ServeDir::new(&*state.leptos_options.site_root)
        .precompressed_gzip()
        .precompressed_br()
        .not_found_service(axum::routing::any(not_found_page));
    Router::new()
        .route("/", get(new_chat))
        .route("/c/{id}", get(conversation_page))
        .fallback_service(assets)
        .layer(middleware::from_fn_with_state(
            state.assets.clone(),
            cache_control,
        ))
}

/// Hashed bundle files are kept for a year; pages and everything else are
/// asked for again (cheaply: a 304 when unchanged).
async fn cache_control(
    State(assets): State<Arc<Assets>>,
    request: Request,
    next: Next,
) -> Response {
    let policy = assets.cache_control(request.uri().path());
    let mut response = next.run(request).await;
    let status = response.status();
    let policy = if status.is_success() || status == StatusCode::NOT_MODIFIED {
        policy
    } else {
        assets::REVALIDATE
    };
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(policy);
    response
}

/// A new chat for a browser; for anything that does not ask for HTML,
/// Ollama's greeting, which Ollama's clients probe `/` for.
async fn new_chat(State(state): State<AppState>, request: Request) -> Response {
    let mut response = if wants_html(&request) {
        render(&state, None, request).await
    } else {
        (
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Ollama is running",
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("accept"));
    response
}

/// Whether the request's `Accept` names HTML (every browser's does; curl's
/// `*/*` and Ollama clients' do not).
fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("text/html"))
}

/// A conversation's own address; 404 (the page says so) when there is none.
async fn conversation_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let exists = match state.conversations.store.get(&id).await {
        Ok(_) => true,
        Err(StoreError::NoConversation(_)) => false,
        // The page itself says what failed.
        Err(_) => true,
    };
    let mut response = render(&state, Some(id), request).await;
    if !exists {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
}

async fn render(state: &AppState, conversation: Option<String>, request: Request) -> Response {
    let data: SharedServerData = Arc::new(Data {
        registry: state.registry.clone(),
        conversations: state.conversations.clone(),
    });
    let options = state.leptos_options.clone();
    let head = PageHead {
        stylesheet: state.assets.stylesheet().to_string(),
        highlighter: state.assets.highlighter().map(str::to_string),
    };
    let handler = leptos_axum::render_app_async_with_context(
        move || {
            provide_context(data.clone());
            provide_context(RequestedConversation(conversation.clone()));
        },
        move || shell(options.clone(), head.clone()),
    );
    handler(request).await.into_response()
}

async fn not_found_page() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Not found · llm-chat</title></head><body>\
             <h1>Not found</h1><p>There is no page here. <a href=\"/\">Back to llm-chat</a></p>\
             </body></html>",
        ),
    )
}
