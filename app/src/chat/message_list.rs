//! The chat history: one bubble per turn. Each bubble reads only its own
//! signals, so a token re-renders one text node, never the history.

use leptos::html::Div;
use leptos::prelude::*;

use super::conversation::{Turn, TurnStatus};
use crate::api::Role;

/// How close to the bottom (px) counts as "following the answer".
const STICKY_DISTANCE: i32 = 48;

#[component]
pub fn MessageList(turns: RwSignal<Vec<Turn>>) -> impl IntoView {
    let list = NodeRef::<Div>::new();
    // Follow the answer while the reader is at the bottom; stop when they
    // scroll up to read, resume when they come back down.
    let follow = RwSignal::new(true);
    let on_scroll = move |_| {
        if let Some(list) = list.get_untracked() {
            let distance = list.scroll_height() - list.scroll_top() - list.client_height();
            follow.set(distance <= STICKY_DISTANCE);
        }
    };
    Effect::new(move |_| {
        turns.with(|turns| {
            if let Some(last) = turns.last() {
                last.text.track();
                last.status.track();
            }
        });
        if follow.get_untracked()
            && let Some(list) = list.get_untracked()
        {
            list.set_scroll_top(list.scroll_height());
        }
    });

    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll>
            <Show when=move || turns.with(Vec::is_empty)>
                <p class="empty-hint">"Pick a model, type a message, press Enter."</p>
            </Show>
            <For each=move || turns.get() key=|turn| turn.id children=|turn| view! { <Bubble turn /> } />
        </div>
    }
}

#[component]
fn Bubble(turn: Turn) -> impl IntoView {
    let is_user = turn.role == Role::User;
    let status = turn.status.clone();
    let pending = {
        let status = status.clone();
        move || status.get().is_pending()
    };
    let text = turn.text.clone();
    let note = {
        let status = status.clone();
        move || match status.get() {
            TurnStatus::Waiting => Some("Waiting for the answer…"),
            TurnStatus::Reconnecting => Some("Connection lost, reconnecting…"),
            TurnStatus::Stopped => Some("Stopped"),
            _ => None,
        }
    };
    let error = turn.error.clone();
    let stats = turn.stats.clone();
    let status_class = {
        let status = status.clone();
        move || match status.get() {
            TurnStatus::Failed => "message failed",
            TurnStatus::Stopped => "message stopped",
            _ => "message",
        }
    };

    view! {
        <article
            class=status_class
            class:user=is_user
            class:assistant=!is_user
            data-testid=if is_user { "message-user" } else { "message-assistant" }
            aria-label=if is_user { "You" } else { "Assistant" }
            aria-busy=move || pending().then_some("true")
            aria-live=(!is_user).then_some("polite")
        >
            // Model output is text, never HTML: Leptos sets it as a text node.
            <div class="message-text" data-testid="message-text">{move || text.get()}</div>
            {move || note().map(|note| view! { <p class="message-note" data-testid="message-note">{note}</p> })}
            {move || {
                error.get().map(|error| view! { <p class="message-error" role="alert" data-testid="error">{error}</p> })
            }}
            {move || {
                stats.get().map(|stats| view! { <p class="message-stats" data-testid="message-stats">{stats.summary()}</p> })
            }}
        </article>
    }
}
