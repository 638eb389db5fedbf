//! The chat page: wires the picker, history and composer to the session
//! (the conversation and its transport), and remembers the user's choices.

mod composer;
// Parts of the conversation are only driven in the browser.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod conversation;
mod message_list;
mod model_picker;
mod preferences;
mod session;
#[cfg(feature = "hydrate")]
mod transport;

use leptos::prelude::*;

use self::composer::Composer;
use self::message_list::MessageList;
use self::model_picker::{ModelPicker, current_model};
use self::session::Session;
use crate::api::ModelList;
use crate::models::load_models;

#[component]
pub fn ChatPage() -> impl IntoView {
    // Blocking: the model list is part of the first HTML, so the picker is
    // filled before the WASM bundle loads, and with JavaScript off.
    let models = Resource::new_blocking(|| (), |_| load_models());
    let session = Session::new();
    let chosen = RwSignal::new(String::new());
    let input = RwSignal::new(String::new());
    let hydrated = RwSignal::new(false);

    // Effects run only in the browser: the page is live from here on.
    Effect::new(move |_| {
        if let Some(model) = preferences::load_model() {
            chosen.set(model);
        }
        if let Some(enabled) = preferences::load_stream() {
            session.stream.set(enabled);
        }
        hydrated.set(true);
    });

    let model = current_model(models, chosen);
    let answering = Memo::new(move |_| session.answering());
    let can_send = Signal::derive(move || {
        hydrated.get()
            && !input.with(|text| text.trim().is_empty())
            && !model.with(String::is_empty)
    });
    let send = Callback::new(move |()| {
        let text = input.get_untracked().trim().to_string();
        let model = model.get_untracked();
        if text.is_empty() || model.is_empty() || answering.get_untracked() {
            return;
        }
        input.set(String::new());
        session.send(model, text);
    });
    let stop = Callback::new(move |()| session.stop());
    let pick_model = Callback::new(move |name: String| {
        preferences::save_model(&name);
        chosen.set(name);
    });

    view! {
        // `data-hydrated` tells tests (and curious people) the page is live.
        <div class="chat" data-hydrated=move || hydrated.get().then_some("true")>
            <header class="toolbar">
                <h1>"llm-chat"</h1>
                <ModelPicker models current=model on_pick=pick_model />
                <StreamToggle session />
                <ClearButton session />
            </header>
            <ModelsProblem models />
            <MessageList turns=session.turns />
            <Composer input answering can_send on_send=send on_stop=stop />
        </div>
    }
}

/// Streamed (token by token) or whole answers; remembered.
#[component]
fn StreamToggle(session: Session) -> impl IntoView {
    let toggle = move |event| {
        let enabled = event_target_checked(&event);
        preferences::save_stream(enabled);
        session.stream.set(enabled);
    };
    view! {
        <label class="toggle">
            <input
                type="checkbox"
                data-testid="stream-toggle"
                prop:checked=move || session.stream.get()
                on:change=toggle
            />
            <span class="label-text">"Stream response"</span>
        </label>
    }
}

#[component]
fn ClearButton(session: Session) -> impl IntoView {
    view! {
        <button
            type="button"
            class="icon-button"
            data-testid="clear-button"
            aria-label="Clear chat"
            title="Clear chat"
            on:click=move |_| session.clear()
            disabled=move || session.turns.with(Vec::is_empty)
        >
            <TrashIcon />
        </button>
    }
}

/// A banner when there is no model to chat with, saying why.
#[component]
fn ModelsProblem(models: Resource<Result<ModelList, String>>) -> impl IntoView {
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match models.await {
                    Ok(list) if list.models.is_empty() => Some(view! {
                        <p class="banner" role="alert" data-testid="error">
                            "No models are available. Start Ollama (make run-ollama) or set OLLAMA_URL, then reload."
                        </p>
                    }.into_any()),
                    Ok(_) => None,
                    Err(error) => Some(view! {
                        <p class="banner" role="alert" data-testid="error">
                            "Could not list models: " {error}
                        </p>
                    }.into_any()),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TrashIcon() -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path
                fill="currentColor"
                d="M9 3h6l1 2h4v2H4V5h4l1-2zm-3 6h12l-1 12H7L6 9zm4 2v8h2v-8h-2zm4 0v8h2v-8h-2z"
            />
        </svg>
    }
}
