//! The chat page: the sidebar of conversations, and the one opened (or a
//! new chat) with its picker, settings, history and composer. What to open
//! comes from the address (`/` or `/c/{id}`); the server renders it whole in
//! the first HTML, and the browser opens others without reloading.

mod answer;
mod composer;
// Parts of the conversation are only driven in the browser.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod conversation;
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod location;
mod message_list;
mod model_picker;
mod panels;
mod preferences;
mod reasoning;
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod session;
mod settings;
mod sidebar;
#[cfg(feature = "hydrate")]
mod transport;
mod tree;

use leptos::prelude::*;

use self::composer::Composer;
use self::message_list::MessageList;
use self::model_picker::{ModelPicker, current_model};
use self::panels::{LazyModelsPanel, LazySettingsPanel};
use self::session::Session;
use self::sidebar::{Route, Sidebar, open};
use crate::api::{Conversation, ModelList};
use crate::data::{load_conversation, load_conversations, load_models};

/// The conversation the server was asked for, given to the render so the
/// first HTML shows it (the browser reads the same from its address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedConversation(pub Option<String>);

#[component]
pub fn ChatPage() -> impl IntoView {
    // Blocking: the models, the list and the conversation are part of the
    // first HTML, so the page is whole before the WASM bundle loads, and
    // with JavaScript off.
    let models = Resource::new_blocking(|| (), |_| load_models());
    let route = RwSignal::new(Route {
        visit: 0,
        conversation: requested_conversation(),
    });
    provide_context(route);
    let opened = Resource::new_blocking(
        move || route.get(),
        |route| async move {
            match route.conversation {
                Some(id) => load_conversation(id)
                    .await
                    .map(|found| found.ok_or(Missing)),
                None => Ok(Err(Missing)),
            }
        },
    );
    let search = RwSignal::new(String::new());
    let list_changed = RwSignal::new(0_u64);
    let conversations = Resource::new_blocking(
        move || (search.get(), list_changed.get()),
        |(search, _)| load_conversations(Some(search).filter(|q| !q.trim().is_empty())),
    );
    let stream = RwSignal::new(true);
    let chosen = RwSignal::new(String::new());
    let input = RwSignal::new(String::new());
    let hydrated = RwSignal::new(false);
    let renderer = answer::preload();
    let sidebar_open = RwSignal::new(false);
    let shown = RwSignal::new(None::<String>);

    // Effects run only in the browser: the page is live from here on.
    Effect::new(move |_| {
        if let Some(model) = preferences::load_model() {
            chosen.set(model);
        }
        if let Some(enabled) = preferences::load_stream() {
            stream.set(enabled);
        }
        follow_history(route);
        hydrated.set(true);
    });
    let model = current_model(models, chosen);
    let pick_model = Callback::new(move |name: String| {
        preferences::save_model(&name);
        chosen.set(name);
    });

    view! {
        // `data-hydrated` tells tests (and curious people) the page is live,
        // `data-renderer` that the answers' renderer has arrived too.
        <div
            class="chat"
            class:sidebar-open=move || sidebar_open.get()
            data-hydrated=move || hydrated.get().then_some("true")
            data-renderer=move || renderer.get().then_some("ready")
        >
            <Sidebar conversations search route shown=shown.into() list_changed />
            <div class="conversation">
                <Transition fallback=|| view! { <p class="empty-hint">"Opening…"</p> }>
                    {move || Suspend::new(async move {
                        let opened = opened.await;
                        let session = Session::new(
                            opened.as_ref().ok().and_then(|found| found.as_ref().ok()),
                            stream,
                            list_changed,
                        );
                        shown.set(session.conversation.get_untracked());
                        // The conversation id once a new chat is saved.
                        Effect::new(move |_| shown.set(session.conversation.get()));
                        let problem = match &opened {
                            Err(error) => Some(format!("Could not open this conversation: {error}")),
                            Ok(Err(Missing)) if route.get_untracked().conversation.is_some() => {
                                Some("There is no such conversation (it may have been deleted).".into())
                            }
                            Ok(_) => None,
                        };
                        if let Ok(Ok(conversation)) = &opened {
                            adopt_model(conversation, chosen);
                        }
                        // An answer still being written goes on streaming here.
                        Effect::new(move |_| session.resume());
                        view! {
                            <ChatColumn session models model pick_model input hydrated sidebar_open problem />
                        }
                    })}
                </Transition>
            </div>
        </div>
    }
}

/// Nothing to open: a new chat, or an id that names no conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Missing;

/// The conversation the address names: on the server, the request's; in
/// the browser, the location's.
fn requested_conversation() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        location::conversation_in(&location::current())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        use_context::<RequestedConversation>().and_then(|requested| requested.0)
    }
}

/// Back and Forward open what the address then says.
fn follow_history(route: RwSignal<Route>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let on_pop = Closure::<dyn FnMut()>::new(move || {
            let conversation = location::conversation_in(&location::current());
            route.update(|route| *route = route.next(conversation));
        });
        if let Some(window) = web_sys::window() {
            let _ = window
                .add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
        }
        // The page's own listener, for as long as the page lives.
        on_pop.forget();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = route;
}

/// Shows the model a conversation was using, in the picker.
fn adopt_model(conversation: &Conversation, chosen: RwSignal<String>) {
    if let Some(model) = &conversation.model {
        chosen.set(model.clone());
    }
}

#[component]
fn ChatColumn(
    session: Session,
    models: Resource<Result<ModelList, String>>,
    model: Memo<String>,
    pick_model: Callback<String>,
    input: RwSignal<String>,
    hydrated: RwSignal<bool>,
    sidebar_open: RwSignal<bool>,
    problem: Option<String>,
) -> impl IntoView {
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
    let settings_open = RwSignal::new(false);
    let models_open = RwSignal::new(false);
    let pick = Callback::new(move |name: String| {
        pick_model.run(name.clone());
        // The conversation remembers its model.
        #[cfg(feature = "hydrate")]
        if let Some(conversation) = session.conversation.get_untracked() {
            crate::client::fire(async move {
                let url = format!("/api/v1/conversations/{conversation}");
                let body = crate::api::UpdateConversationRequest {
                    model: Some(Some(name)),
                    ..Default::default()
                };
                crate::client::patch_json::<_, Conversation>(&url, &body)
                    .await
                    .map(drop)
            });
        }
    });

    view! {
        <header class="toolbar">
            <button
                type="button"
                class="icon-button sidebar-toggle"
                aria-label="Conversations"
                title="Conversations"
                aria-expanded=move || if sidebar_open.get() { "true" } else { "false" }
                on:click=move |_| sidebar_open.update(|open| *open = !*open)
            >
                <MenuIcon />
            </button>
            <h1>"llm-chat"</h1>
            <ModelPicker models current=model on_pick=pick />
            <StreamToggle session />
            <PanelToggle open=settings_open label="Conversation settings" test_id="settings-button">
                <SlidersIcon />
            </PanelToggle>
            <PanelToggle open=models_open label="Models" test_id="models-button">
                <BoxesIcon />
            </PanelToggle>
            <NewChatButton session />
        </header>
        // Plain `Option`s rather than `<Show>`: no view of the first load
        // uses it, and its code would add several KB to that load's WASM.
        {move || settings_open.get().then(|| view! { <LazySettingsPanel session open=settings_open /> })}
        {move || models_open.get().then(|| view! { <LazyModelsPanel models /> })}
        {problem.map(|problem| view! { <p class="banner" role="alert" data-testid="error">{problem}</p> })}
        <ModelsProblem models />
        <MessageList session model input />
        <EditingNote session input />
        <Composer input answering can_send on_send=send on_stop=stop />
    }
}

/// A toolbar button that opens and closes a panel under the toolbar.
#[component]
fn PanelToggle(
    open: RwSignal<bool>,
    label: &'static str,
    test_id: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <button
            type="button"
            class="icon-button"
            data-testid=test_id
            aria-label=label
            title=label
            aria-expanded=move || if open.get() { "true" } else { "false" }
            on:click=move |_| open.update(|open| *open = !*open)
        >
            {children()}
        </button>
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

/// Leaves this conversation (kept in the list) for a new chat.
#[component]
fn NewChatButton(session: Session) -> impl IntoView {
    let route = expect_context::<RwSignal<Route>>();
    view! {
        <button
            type="button"
            class="icon-button"
            data-testid="clear-button"
            aria-label="New chat"
            title="New chat"
            on:click=move |_| {
                session.stop();
                open(route, None);
            }
            disabled=move || session.shown.with(Vec::is_empty)
        >
            <NewChatIcon />
        </button>
    }
}

/// Says a question is being edited: the next one sent goes beside it.
#[component]
fn EditingNote(session: Session, input: RwSignal<String>) -> impl IntoView {
    // Hidden rather than absent: cheaper in WASM than a view built on demand.
    view! {
        <p class="editing-note" data-testid="editing-note" hidden=move || session.editing.with(Option::is_none)>
            "Editing a question: sending puts the new one beside it. "
            <button type="button" class="link-button" on:click=move |_| {
                session.editing.set(None);
                input.set(String::new());
            }>"Cancel"</button>
        </p>
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
fn NewChatIcon() -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path
                fill="currentColor"
                d="M4 4h10v2H6v12h12v-8h2v10H4V4zm14.3-1.7 3.4 3.4-8.6 8.6H9.7v-3.4l8.6-8.6zm0 2.8-6.6 6.6v.6h.6l6.6-6.6-.6-.6z"
            />
        </svg>
    }
}

#[component]
fn SlidersIcon() -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path
                fill="currentColor"
                d="M3 6h10v2H3V6zm14 0h4v2h-4v2h-2V4h2v2zM3 16h4v2H3v-2zm8 0h10v2H11v2H9v-6h2v2zm-8-5h14v2H3v-2zm16 0h2v2h-2v-2z"
            />
        </svg>
    }
}

#[component]
fn BoxesIcon() -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path
                fill="currentColor"
                d="M12 2 3 6.5v11L12 22l9-4.5v-11L12 2zm0 2.2 6.4 3.2L12 10.6 5.6 7.4 12 4.2zM5 9l6 3v7.4l-6-3V9zm8 10.4V12l6-3v7.4l-6 3z"
            />
        </svg>
    }
}

#[component]
fn MenuIcon() -> impl IntoView {
    view! {
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path fill="currentColor" d="M3 6h18v2H3V6zm0 5h18v2H3v-2zm0 5h18v2H3v-2z" />
        </svg>
    }
}
