//! The sidebar: New chat, search, and the conversations newest first, each
//! a link to its own address, renamed in place or deleted after a
//! confirmation. It folds away at phone width.

use leptos::prelude::*;

use super::location;
use crate::api::{ConversationList, ConversationSummary};

/// What the address says to open: a new chat, or a conversation. `visit`
/// changes on every navigation, so opening the same place again reloads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    pub visit: u64,
    pub conversation: Option<String>,
}

impl Route {
    pub fn next(&self, conversation: Option<String>) -> Self {
        Self {
            visit: self.visit + 1,
            conversation,
        }
    }
}

/// Opens a place: shows it and records it in the history.
pub fn open(route: RwSignal<Route>, conversation: Option<String>) {
    #[cfg(feature = "hydrate")]
    location::push(&match &conversation {
        Some(id) => location::conversation_path(id),
        None => "/".to_string(),
    });
    route.update(|route| *route = route.next(conversation));
}

#[component]
pub fn Sidebar(
    conversations: Resource<Result<ConversationList, String>>,
    search: RwSignal<String>,
    route: RwSignal<Route>,
    /// The conversation the page shows now, if it is saved.
    shown: Signal<Option<String>>,
    list_changed: RwSignal<u64>,
) -> impl IntoView {
    view! {
        <nav class="sidebar" aria-label="Conversations">
            <button
                type="button"
                class="new-chat"
                data-testid="new-chat-button"
                on:click=move |_| open(route, None)
            >
                "New chat"
            </button>
            <label class="search">
                <span class="visually-hidden">"Search conversations"</span>
                <input
                    type="search"
                    data-testid="conversation-search"
                    placeholder="Search"
                    prop:value=move || search.get()
                    on:input=move |event| search.set(event_target_value(&event))
                />
            </label>
            <Transition fallback=|| view! { <p class="sidebar-note">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match conversations.await {
                        Ok(list) if list.conversations.is_empty() => view! {
                            <p class="sidebar-note" data-testid="conversation-list">
                                {move || if search.with(String::is_empty) {
                                    "No conversations yet."
                                } else {
                                    "Nothing matches."
                                }}
                            </p>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="conversation-list" data-testid="conversation-list">
                                {list.conversations.into_iter().map(|summary| view! {
                                    <Item summary route shown list_changed />
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(error) => view! {
                            <p class="sidebar-note" role="alert">"Could not list conversations: " {error}</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </nav>
    }
}

/// One conversation in the list.
#[component]
fn Item(
    summary: ConversationSummary,
    route: RwSignal<Route>,
    shown: Signal<Option<String>>,
    list_changed: RwSignal<u64>,
) -> impl IntoView {
    let id = StoredValue::new(summary.id.clone());
    let title = RwSignal::new(summary.title.clone());
    let renaming = RwSignal::new(false);
    let rename_input = NodeRef::<leptos::html::Input>::new();
    // The name field takes the focus as it appears.
    Effect::new(move |_| {
        if renaming.get()
            && let Some(input) = rename_input.get()
        {
            let _ = input.focus();
            input.select();
        }
    });
    let is_shown = move || shown.with(|shown| shown.as_deref() == Some(&id.get_value()));
    let href = location::conversation_path(&summary.id);
    let follow = move |event: leptos::ev::MouseEvent| {
        // A plain click opens it in place; a click meant for a new tab stays a link.
        if event.ctrl_key() || event.meta_key() || event.shift_key() || event.button() != 0 {
            return;
        }
        event.prevent_default();
        open(route, Some(id.get_value()));
    };
    let rename = move |name: String| {
        renaming.set(false);
        let name = name.trim().to_string();
        if name.is_empty() || name == title.get_untracked() {
            return;
        }
        title.set(name.clone());
        #[cfg(feature = "hydrate")]
        crate::client::fire(async move {
            let url = format!("/api/v1/conversations/{}", id.get_value());
            let body = crate::api::UpdateConversationRequest {
                title: Some(name),
                ..Default::default()
            };
            crate::client::patch_json::<_, crate::api::Conversation>(&url, &body).await?;
            list_changed.update(|changes| *changes += 1);
            Ok(())
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (name, list_changed);
    };
    let delete = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let question = format!("Delete “{}”? This cannot be undone.", title.get_untracked());
            let confirmed = web_sys::window()
                .and_then(|window| window.confirm_with_message(&question).ok())
                .unwrap_or(false);
            if !confirmed {
                return;
            }
            let was_shown = is_shown();
            crate::client::fire(async move {
                crate::client::delete(&format!("/api/v1/conversations/{}", id.get_value())).await?;
                list_changed.update(|changes| *changes += 1);
                if was_shown {
                    open(route, None);
                }
                Ok(())
            });
        }
    };

    view! {
        <li class="conversation-item" class:shown=is_shown data-testid="conversation-item">
            {move || {
                if renaming.get() {
                    view! {
                        <input
                            class="rename"
                            data-testid="rename-input"
                            aria-label="New name"
                            node_ref=rename_input
                            prop:value=move || title.get_untracked()
                            on:keydown=move |event: leptos::ev::KeyboardEvent| match event.key().as_str() {
                                "Enter" => rename(event_target_value(&event)),
                                "Escape" => renaming.set(false),
                                _ => {}
                            }
                            on:blur=move |event| rename(event_target_value(&event))
                        />
                    }
                    .into_any()
                } else {
                    view! {
                        <a
                            href=href.clone()
                            class="conversation-link"
                            aria-current=move || is_shown().then_some("page")
                            on:click=follow
                        >
                            {move || title.get()}
                        </a>
                        <button
                            type="button"
                            class="icon-button small"
                            data-testid="rename-button"
                            aria-label="Rename"
                            title="Rename"
                            on:click=move |_| renaming.set(true)
                        >
                            "✎"
                        </button>
                        <button
                            type="button"
                            class="icon-button small"
                            data-testid="delete-button"
                            aria-label="Delete"
                            title="Delete"
                            on:click=delete
                        >
                            "×"
                        </button>
                    }
                    .into_any()
                }
            }}
        </li>
    }
}
