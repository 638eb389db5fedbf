//! The server-rendered page: Leptos renders the app for `/`, with the model
//! registry as its data source; built assets come from the site root.
//!
//! The page is rendered whole before it is sent (Leptos's async mode), not
//! streamed out of order: with out-of-order streaming a model list slower
//! than the first flush goes out as a "Loading models…" placeholder that only
//! JavaScript can swap, and the page must work with JavaScript off.

use std::sync::Arc;

use app::api::ModelList;
use app::{ModelCatalog, SharedModelCatalog, shell};
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use leptos::prelude::provide_context;
use tower_http::services::ServeDir;

use crate::registry::Registry;
use crate::state::AppState;

/// Lets the page list models straight from the registry during SSR.
struct RegistryCatalog(Arc<Registry>);

impl ModelCatalog for RegistryCatalog {
    fn list_models(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<ModelList, String>> + Send + '_>> {
        Box::pin(async move {
            self.0
                .list_models()
                .await
                .map(|models| ModelList { models })
                .map_err(|error| error.to_string())
        })
    }
}

pub fn router(state: &AppState) -> Router<AppState> {
    // Resources spawn their loaders on Leptos's executor; an error only means
    // another router in this process set it up already.
    let _ = any_spawner::Executor::init_tokio();
    let catalog: SharedModelCatalog = Arc::new(RegistryCatalog(state.registry.clone()));
    let options = state.leptos_options.clone();
    let assets = ServeDir::new(&*state.leptos_options.site_root)
        .precompressed_gzip()
        .precompressed_br()
        .not_found_service(axum::routing::any(not_found_page));
    let render = leptos_axum::render_app_async_with_context(
        move || provide_context(catalog.clone()),
        move || shell(options.clone()),
    );
    Router::new()
        .route("/", get(move |request: Request| render(request)))
        .fallback_service(assets)
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
