//! The chat history: one bubble per turn. Each bubble reads only its own
//! signals, so a token re-renders one text node, never the history.

use leptos::html::Div;
use leptos::prelude::*;

use super::answer::Answer;
use super::conversation::{Turn, TurnStatus};
use super::session::Session;
use crate::api::Role;
use crate::clipboard;

/// How close to the bottom (px) counts as "following the answer".
const STICKY_DISTANCE: i32 = 48;

#[component]
pub fn MessageList(
    session: Session,
    /// The model a regenerated answer comes from.
    model: Memo<String>,
    /// The composer's text: an edited question goes back there.
    input: RwSignal<String>,
) -> impl IntoView {
    let turns = session.shown;
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
            <p class="empty-hint" hidden=move || !turns.with(Vec::is_empty)>
                "Pick a model, type a message, press Enter."
            </p>
            <For
                each=move || turns.get()
                key=|turn| turn.id
                children=move |turn| view! { <Bubble turn session model input /> }
            />
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
fn Bubble(
    turn: Turn,
    session: Session,
    model: Memo<String>,
    input: RwSignal<String>,
) -> impl IntoView {
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
            TurnStatus::Interrupted => Some("Interrupted"),
            _ => None,
        }
    };
    let error = turn.error.clone();
    let stats = turn.stats.clone();
    let actions_turn = turn.clone();
    let status_class = {
        let status = status.clone();
        move || match status.get() {
            TurnStatus::Failed => "message failed",
            TurnStatus::Stopped | TurnStatus::Interrupted => "message stopped",
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
            // The user's words as typed; an answer as Markdown, built into
            // nodes (never parsed as HTML).
            {if is_user {
                view! { <div class="message-text plain" data-testid="message-text">{move || text.get()}</div> }.into_any()
            } else {
                let streaming = Signal::derive({
                    let status = status.clone();
                    move || status.get().is_pending()
                });
                let thinking = turn.thinking.clone();
                view! { <Answer text thinking streaming /> }.into_any()
            }}
            {move || note().map(|note| view! { <p class="message-note" data-testid="message-note">{note}</p> })}
            {move || {
                error.get().map(|error| view! { <p class="message-error" role="alert" data-testid="error">{error}</p> })
            }}
            {move || {
                stats.get().map(|stats| view! { <p class="message-stats" data-testid="message-stats">{stats.summary()}</p> })
            }}
            <Actions turn=actions_turn session model input />
        </article>
    }
}

/// What can be done with a message: copy it; ask again (an answer) or edit
/// and resend (a question); and, where it has siblings, `‹ 2/3 ›` to show
/// another version. The buttons never change while other messages stream.
#[component]
fn Actions(
    turn: Turn,
    session: Session,
    model: Memo<String>,
    input: RwSignal<String>,
) -> impl IntoView {
    let is_user = turn.role == Role::User;
    let position = session.position(&turn);
    let has_siblings = Memo::new(move |_| position.get().1 > 1);
    let copy = {
        let text = turn.text.clone();
        move |_| clipboard::copy(&text.get_untracked())
    };
    let again = {
        let turn = turn.clone();
        move |_| {
            if is_user {
                input.set(turn.text.get_untracked());
                session.editing.set(Some(turn.clone()));
                focus_composer();
            } else if !session.answering() {
                session.regenerate(&turn, model.get_untracked());
            }
        }
    };
    let previous = {
        let turn = turn.clone();
        move |_| session.switch(&turn, -1)
    };
    let next = {
        let turn = turn.clone();
        move |_| session.switch(&turn, 1)
    };
    view! {
        <div class="message-actions">
            <button type="button" class="action" data-testid="copy-button" aria-label="Copy" title="Copy" on:click=copy>
                "Copy"
            </button>
            {if is_user {
                view! {
                    <button type="button" class="action" data-testid="edit-button" aria-label="Edit and resend" title="Edit and resend" on:click=again>
                        "Edit"
                    </button>
                }.into_any()
            } else {
                view! {
                    <button type="button" class="action" data-testid="regenerate-button" aria-label="Regenerate" title="Regenerate" on:click=again>
                        "Regenerate"
                    </button>
                }.into_any()
            }}
            {move || {
                has_siblings.get().then(|| {
                    let (previous, next) = (previous.clone(), next.clone());
                    view! {
                        <span class="branch" role="group" aria-label="Versions">
                            <button type="button" class="action" data-testid="branch-prev" aria-label="Previous version"
                                disabled=move || position.get().0 <= 1 on:click=previous>"‹"</button>
                            <span data-testid="branch-position">{move || {
                                let (at, count) = position.get();
                                format!("{at}/{count}")
                            }}</span>
                            <button type="button" class="action" data-testid="branch-next" aria-label="Next version"
                                disabled=move || { let (at, count) = position.get(); at >= count } on:click=next>"›"</button>
                        </span>
                    }
                })
            }}
        </div>
    }
}

/// Moves the focus to the message box.
fn focus_composer() {
    #[cfg(feature = "hydrate")]
    if let Some(input) = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id("message-input"))
    {
        use wasm_bindgen::JsCast;
        if let Ok(input) = input.dyn_into::<web_sys::HtmlElement>() {
            let _ = input.focus();
        }
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
