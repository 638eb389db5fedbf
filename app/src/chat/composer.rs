//! The composer: a textarea and one button that is Send, or Stop while an
//! answer is coming. Enter sends; Shift+Enter starts a new line.

use leptos::prelude::*;

#[component]
pub fn Composer(
    input: RwSignal<String>,
    answering: Memo<bool>,
    /// Whether Send would do anything (text, a model, the page hydrated).
    can_send: Signal<bool>,
    on_send: Callback<()>,
    on_stop: Callback<()>,
) -> impl IntoView {
    let on_keydown = move |event: leptos::ev::KeyboardEvent| {
        // Enter while composing (an IME) belongs to the input method.
        if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
            event.prevent_default();
            if !answering.get_untracked() {
                on_send.run(());
            }
        }
    };
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if answering.get_untracked() {
            on_stop.run(());
        } else {
            on_send.run(());
        }
    };

    view! {
        <form class="composer" on:submit=on_submit>
            <label for="message-input" class="visually-hidden">"Message"</label>
            <textarea
                id="message-input"
                data-testid="message-input"
                rows="2"
                placeholder="Message the model…"
                aria-describedby="composer-hint"
                prop:value=move || input.get()
                on:input=move |event| input.set(event_target_value(&event))
                on:keydown=on_keydown
            ></textarea>
            <span id="composer-hint" class="visually-hidden">
                "Enter sends; Shift+Enter starts a new line."
            </span>
            <button
                type="submit"
                class="send-button"
                class:stop=move || answering.get()
                data-testid="send-button"
                disabled=move || !answering.get() && !can_send.get()
            >
                {move || if answering.get() { "Stop" } else { "Send" }}
            </button>
        </form>
    }
}
