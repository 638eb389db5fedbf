//! llm-chat's shared crate: the API's wire types (used by the server and the
//! browser alike) and the Leptos UI, rendered on the server (`ssr`) and
//! hydrated in the browser (`hydrate`).

pub mod api;
mod chat;
#[cfg(feature = "hydrate")]
mod client;
mod clipboard;
mod data;
mod markdown;
mod models;

pub use chat::RequestedConversation;
#[cfg(feature = "ssr")]
pub use data::{BoxFuture, ServerData, SharedServerData};

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};

use crate::chat::ChatPage;

/// Where this build's files are (their names carry a content hash in a
/// release build).
#[derive(Debug, Clone, Default)]
pub struct PageHead {
    pub stylesheet: String,
    /// The syntax highlighter's module, imported on the first finished code
    /// block (never before: most pages need none).
    pub highlighter: Option<String>,
}

/// The HTML document around the app; the server renders it for every page
/// (it is not hydrated).
pub fn shell(options: LeptosOptions, head: PageHead) -> impl IntoView {
    let highlighter = head.highlighter.map(|url| {
        // Only defines the loader; `import()` runs on the first call.
        let script = format!(
            "window.llmChatHighlight=(code,language)=>import({}).then((m)=>m.highlight(code,language));",
            serde_json::to_string(&url).unwrap_or_default()
        );
        view! { <script type="module">{script}</script> }
    });
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="stylesheet" href=head.stylesheet />
                {highlighter}
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
