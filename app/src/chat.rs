//! The chat page: owns the conversation and the user's choices, and wires
//! the picker, history and composer to the transport.

mod composer;
// Parts of the conversation are only driven in the browser.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod conversation;
mod message_list;
mod model_picker;
mod preferences;
#[cfg(feature = "hydrate")]
mod transport;

use leptos::prelude::*;

use self::composer::Composer;
use self::conversation::{Turn, TurnStatus, history};
use self::message_list::MessageList;
use self::model_picker::ModelPicker;
use crate::api::Role;
use crate::models::load_models;

#[component]
pub fn ChatPage() -> impl IntoView {
    // Blocking: the model list is part of the first HTML, so the picker is
    // filled before the WASM bundle loads, and with JavaScript off.
    let models = Resource::new_blocking(|| (), |_| load_models());
    let chosen = RwSignal::new(String::new());
    let stream = RwSignal::new(true);
    let turns = RwSignal::new(Vec::<Turn>::new());
    let input = RwSignal::new(String::new());
    let hydrated = RwSignal::new(false);
    let next_id = StoredValue::new(0_u64);
    #[cfg(feature = "hydrate")]
    let transport = StoredValue::new_local(transport::Transport::default());

    // Effects run only in the browser: the page is live from here on.
    Effect::new(move |_| {
        if let Some(model) = preferences::load_model() {
            chosen.set(model);
        }
        if let Some(enabled) = preferences::load_stream() {
            stream.set(enabled);
        }
        hydrated.set(true);
    });

    // The chosen model if the backends still offer it, else the first one.
    let current_model = Memo::new(move |_| {
        let chosen = chosen.get();
        models.with(|models| {
            let Some(Ok(list)) = models else {
                return String::new();
            };
            if list.models.iter().any(|model| model.name == chosen) {
                chosen
            } else {
                list.models
                    .first()
                    .map(|model| model.name.clone())
                    .unwrap_or_default()
            }
        })
    });
    let answering = Memo::new(move |_| {
        turns.with(|turns| {
            turns
                .last()
                .is_some_and(|turn| turn.status.get().is_pending())
        })
    });
    let can_send = Signal::derive(move || {
        hydrated.get()
            && !input.with(|text| text.trim().is_empty())
            && !current_model.with(String::is_empty)
    });

    let new_turn = move |role: Role, text: String, status: TurnStatus| {
        let id = next_id.get_value() + 1;
        next_id.set_value(id);
        Turn::new(id, role, text, status)
    };

    let send = Callback::new(move |()| {
        let text = input.get_untracked().trim().to_string();
        let model = current_model.get_untracked();
        if text.is_empty() || model.is_empty() || answering.get_untracked() {
            return;
        }
        let question = new_turn(Role::User, text, TurnStatus::Sent);
        let answer = new_turn(Role::Assistant, String::new(), TurnStatus::Waiting);
        turns.update(|turns| {
            turns.push(question);
            turns.push(answer.clone());
        });
        input.set(String::new());
        let messages = turns.with_untracked(|turns| history(turns));
        #[cfg(feature = "hydrate")]
        transport.with_value(|transport| {
            if stream.get_untracked() {
                transport.stream(
                    answer,
                    crate::api::CreateGenerationRequest {
                        model,
                        messages: Some(messages),
                        ..Default::default()
                    },
                );
            } else {
                transport.whole(
                    answer,
                    crate::api::ChatRequest {
                        model,
                        messages,
                        ..Default::default()
                    },
                );
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (answer, messages, model);
    });
    let stop = Callback::new(move |()| {
        #[cfg(feature = "hydrate")]
        transport.with_value(|transport| transport.stop());
    });
    let clear = move |_| {
        stop.run(());
        turns.set(Vec::new());
    };
    let pick_model = Callback::new(move |name: String| {
        preferences::save_model(&name);
        chosen.set(name);
    });
    let toggle_stream = move |event| {
        let enabled = event_target_checked(&event);
        preferences::save_stream(enabled);
        stream.set(enabled);
    };

    view! {
        // `data-hydrated` tells tests (and curious people) the page is live.
        <div class="chat" data-hydrated=move || hydrated.get().then_some("true")>
            <header class="toolbar">
                <h1>"llm-chat"</h1>
                <ModelPicker models current=current_model on_pick=pick_model />
                <label class="toggle">
                    <input
                        type="checkbox"
                        data-testid="stream-toggle"
                        prop:checked=move || stream.get()
                        on:change=toggle_stream
                    />
                    <span class="label-text">"Stream response"</span>
                </label>
                <button
                    type="button"
                    class="icon-button"
                    data-testid="clear-button"
                    aria-label="Clear chat"
                    title="Clear chat"
                    on:click=clear
                    disabled=move || turns.with(Vec::is_empty)
                >
                    <TrashIcon />
                </button>
            </header>
            <ModelsProblem models />
            <MessageList turns />
            <Composer input answering can_send on_send=send on_stop=stop />
        </div>
    }
}

/// A banner when there is no model to chat with, saying why.
#[component]
fn ModelsProblem(models: Resource<Result<crate::api::ModelList, String>>) -> impl IntoView {
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
