//! Where the page gets its data: straight from the server's own state
//! during SSR (the server provides a [`ServerData`] as context), over the
//! HTTP API in the browser. Both answer the same types.

#[cfg(feature = "ssr")]
use leptos::prelude::*;

use crate::api::{Conversation, ConversationList, ModelList};

/// What the server gives the page during SSR, so the first HTML holds the
/// models, the conversations and the one opened, without calling itself
/// over HTTP. Errors are the messages a reader sees.
#[cfg(feature = "ssr")]
pub trait ServerData: Send + Sync + 'static {
    fn list_models(&self) -> BoxFuture<'_, Result<ModelList, String>>;
    fn list_conversations(
        &self,
        search: Option<String>,
    ) -> BoxFuture<'_, Result<ConversationList, String>>;
    /// `Ok(None)`: there is no such conversation.
    fn conversation(&self, id: String) -> BoxFuture<'_, Result<Option<Conversation>, String>>;
}

#[cfg(feature = "ssr")]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The context value the server provides to every render.
#[cfg(feature = "ssr")]
pub type SharedServerData = std::sync::Arc<dyn ServerData>;

#[cfg(feature = "ssr")]
fn server_data() -> Result<SharedServerData, String> {
    use_context::<SharedServerData>().ok_or_else(|| "the server provided no data".to_string())
}

/// Every backend's models.
pub(crate) fn load_models() -> impl Future<Output = Result<ModelList, String>> + Send + 'static {
    #[cfg(feature = "ssr")]
    {
        let data = server_data();
        async move { data?.list_models().await }
    }
    #[cfg(not(feature = "ssr"))]
    {
        browser(get_json("/api/v1/models".to_string()))
    }
}

/// The conversations, newest first, matching `search` when given.
pub(crate) fn load_conversations(
    search: Option<String>,
) -> impl Future<Output = Result<ConversationList, String>> + Send + 'static {
    #[cfg(feature = "ssr")]
    {
        let data = server_data();
        async move { data?.list_conversations(search).await }
    }
    #[cfg(not(feature = "ssr"))]
    {
        let url = match search {
            Some(q) => format!("/api/v1/conversations?q={}", encode(&q)),
            None => "/api/v1/conversations".to_string(),
        };
        browser(get_json(url))
    }
}

/// One conversation with its messages; `Ok(None)` when there is none.
pub(crate) fn load_conversation(
    id: String,
) -> impl Future<Output = Result<Option<Conversation>, String>> + Send + 'static {
    #[cfg(feature = "ssr")]
    {
        let data = server_data();
        async move { data?.conversation(id).await }
    }
    #[cfg(not(feature = "ssr"))]
    {
        browser(async move {
            match get_json::<Conversation>(format!("/api/v1/conversations/{}", encode(&id))).await {
                Ok(conversation) => Ok(Some(conversation)),
                Err(error) if error == NOT_FOUND => Ok(None),
                Err(error) => Err(error),
            }
        })
    }
}

/// What [`get_json`] answers for a 404, so a missing conversation can be
/// told apart from a failure.
#[cfg(not(feature = "ssr"))]
const NOT_FOUND: &str = "not found";

/// The browser has one thread, so its `!Send` futures may be wrapped.
#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn browser<T: 'static>(
    future: impl Future<Output = T> + 'static,
) -> impl Future<Output = T> + Send + 'static {
    send_wrapper::SendWrapper::new(future)
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
async fn get_json<T: serde::de::DeserializeOwned>(url: String) -> Result<T, String> {
    let response = gloo_net::http::Request::get(&url)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    if response.status() == 404 {
        return Err(NOT_FOUND.to_string());
    }
    if !response.ok() {
        return Err(response
            .json::<crate::api::ErrorBody>()
            .await
            .map(|body| body.error)
            .unwrap_or_else(|_| format!("HTTP {}", response.status())));
    }
    response
        .json::<T>()
        .await
        .map_err(|error| error.to_string())
}

/// A query value, percent-encoded.
#[cfg(not(feature = "ssr"))]
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn browser<T: 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> + Send + 'static {
    future
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
async fn get_json<T>(_: String) -> Result<T, String> {
    Err("built without the ssr or hydrate feature".to_string())
}
