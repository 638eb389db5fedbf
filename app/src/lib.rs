//! llm-chat's shared crate: the API's wire types (used by the server and the
//! browser alike) and the Leptos UI, rendered on the server (`ssr`) and
//! hydrated in the browser (`hydrate`).

pub mod api;
mod chat;
mod clipboard;
mod data;
mod markdown;

pub use chat::RequestedConversation;
#[cfg(feature = "ssr")]
pub use data::{BoxFuture, ServerData, SharedServerData};

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};

use crate::chat::ChatPage;

/// The HTML document around the app; the server renders it for every page
/// (it is not hydrated). `stylesheet`: where this build's CSS is (its name
/// carries a content hash in a release build).
pub fn shell(options: LeptosOptions, stylesheet: String) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="stylesheet" href=stylesheet />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The page at `/`.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Title text="llm-chat" />
        <main class="page">
            <ChatPage />
        </main>
    }
}
