//! Where the page gets the model list: the server's registry during SSR,
//! `GET /api/v1/models` in the browser.

#[cfg(feature = "ssr")]
use leptos::prelude::*;

use crate::api::ModelList;

/// What the server gives the page during SSR so it can list models without
/// calling itself over HTTP. The server crate implements it over its backend
/// registry and provides it as context.
#[cfg(feature = "ssr")]
pub trait ModelCatalog: Send + Sync + 'static {
    fn list_models(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<ModelList, String>> + Send + '_>>;
}

/// The context value the server provides to every render.
#[cfg(feature = "ssr")]
pub type SharedModelCatalog = std::sync::Arc<dyn ModelCatalog>;

/// Loads the model list from wherever this side of the app can reach it.
pub(crate) fn load_models() -> impl Future<Output = Result<ModelList, String>> + Send + 'static {
    #[cfg(feature = "ssr")]
    {
        let catalog = use_context::<SharedModelCatalog>();
        async move {
            match catalog {
                Some(catalog) => catalog.list_models().await,
                None => Err("the server provided no model catalog".to_string()),
            }
        }
    }
    #[cfg(not(feature = "ssr"))]
    {
        fetch_models()
    }
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn fetch_models() -> impl Future<Output = Result<ModelList, String>> + Send + 'static {
    // The browser has one thread, so the !Send fetch future may be wrapped.
    send_wrapper::SendWrapper::new(async {
        let response = gloo_net::http::Request::get("/api/v1/models")
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if !response.ok() {
            let body = response
                .json::<crate::api::ErrorBody>()
                .await
                .map(|body| body.error)
                .unwrap_or_else(|_| format!("HTTP {}", response.status()));
            return Err(body);
        }
        response
            .json::<ModelList>()
            .await
            .map_err(|error| error.to_string())
    })
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn fetch_models() -> impl Future<Output = Result<ModelList, String>> + Send + 'static {
    async { Err("built without the ssr or hydrate feature".to_string()) }
}
