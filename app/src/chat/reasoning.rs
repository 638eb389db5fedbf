//! A reasoning model's thoughts, above its answer: a collapsed "Reasoning"
//! section the reader opens if they care, streaming like the answer. Shown
//! as plain text (line breaks kept): it is the model's scratchpad, not the
//! answer, so it is not rendered as Markdown.

use leptos::prelude::*;

#[component]
pub fn Reasoning(
    thinking: ArcRwSignal<String>,
    /// The answer's own text: until it starts, the model is still thinking.
    answer: ArcRwSignal<String>,
    /// More is coming.
    streaming: Signal<bool>,
) -> impl IntoView {
    let shown = {
        let thinking = thinking.clone();
        move || thinking.with(|thinking| !thinking.is_empty())
    };
    let label = move || {
        if streaming.get() && answer.with(String::is_empty) {
            "Thinking…"
        } else {
            "Reasoning"
        }
    };
    view! {
        <Show when=shown>
            <details class="reasoning" data-testid="reasoning">
                <summary data-testid="reasoning-summary">{label.clone()}</summary>
                <div class="reasoning-text" data-testid="reasoning-text">{
                    let thinking = thinking.clone();
                    move || thinking.get()
                }</div>
            </details>
        </Show>
    }
}
