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
    // scroll up to read, resume when they come back down. Whether they were
    // at the bottom is judged against the height before this growth: a
    // scroll event arrives a frame late, and a token landing in between
    // would otherwise pull a reader who just scrolled up back down.
    let seen = StoredValue::new(Seen::default());
    Effect::new(move |_| {
        let turn_count = turns.with(|turns| {
            if let Some(last) = turns.last() {
                last.text.track();
                last.status.track();
            }
            turns.len()
        });
        let Some(list) = list.get_untracked() else {
            return;
        };
        let before = seen.get_value();
        let view = Viewport {
            scroll_top: list.scroll_top(),
            client_height: list.client_height(),
            scroll_height: list.scroll_height(),
        };
        // A new turn (the reader just sent) always brings the bottom into view.
        if turn_count != before.turn_count || view.was_following(before.scroll_height) {
            list.set_scroll_top(view.scroll_height);
        }
        seen.set_value(Seen {
            turn_count,
            scroll_height: view.scroll_height,
        });
    });

    view! {
        <div class="messages" node_ref=list>
            <Show when=move || turns.with(Vec::is_empty)>
                <p class="empty-hint">"Pick a model, type a message, press Enter."</p>
            </Show>
            <For each=move || turns.get() key=|turn| turn.id children=|turn| view! { <Bubble turn /> } />
        </div>
    }
}

/// What the list looked like when it last followed (or declined to).
#[derive(Clone, Copy, Default)]
struct Seen {
    turn_count: usize,
    scroll_height: i32,
}

/// The list's scroll geometry now, in CSS pixels.
struct Viewport {
    scroll_top: i32,
    client_height: i32,
    scroll_height: i32,
}

impl Viewport {
    /// Was the reader at the bottom before the content grew to its current
    /// height? Nothing to scroll counts as following.
    fn was_following(&self, height_before: i32) -> bool {
        self.scroll_height <= self.client_height
            || height_before - self.scroll_top - self.client_height <= STICKY_DISTANCE
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

#[cfg(test)]
mod tests {
    use super::*;

    fn viewport(scroll_top: i32) -> Viewport {
        Viewport {
            scroll_top,
            client_height: 400,
            scroll_height: 1000,
        }
    }

    #[test]
    fn a_reader_at_the_old_bottom_keeps_following() {
        // 900 high before a token, scrolled to its bottom (500 + 400).
        assert!(viewport(500).was_following(900));
        assert!(viewport(500 - STICKY_DISTANCE).was_following(900));
    }

    #[test]
    fn a_reader_who_scrolled_up_before_the_token_is_left_there() {
        assert!(!viewport(0).was_following(900));
        assert!(!viewport(500 - STICKY_DISTANCE - 1).was_following(900));
    }

    #[test]
    fn a_list_with_nothing_to_scroll_follows() {
        let short = Viewport {
            scroll_top: 0,
            client_height: 400,
            scroll_height: 400,
        };
        assert!(short.was_following(5000));
    }
}
