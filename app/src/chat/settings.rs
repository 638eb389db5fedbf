//! A conversation's settings: its system prompt and sampling options, kept
//! with it (a new chat keeps them until its first question saves it).

use leptos::prelude::*;

use super::session::{Session, Settings};
use crate::api::ModelOptions;

#[component]
pub fn SettingsPanel(session: Session, open: RwSignal<bool>) -> impl IntoView {
    // The form edits a draft; Save makes it the conversation's.
    let draft = RwSignal::new(session.settings.get_untracked());
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let settings = draft.get_untracked();
        session.settings.set(settings.clone());
        open.set(false);
        #[cfg(feature = "hydrate")]
        if let Some(conversation) = session.conversation.get_untracked() {
            crate::client::fire(async move {
                let url = format!("/api/v1/conversations/{conversation}");
                let body = crate::api::UpdateConversationRequest {
                    system: Some(Some(settings.system).filter(|system| !system.trim().is_empty())),
                    options: Some(settings.options),
                    ..Default::default()
                };
                crate::client::patch_json::<_, crate::api::Conversation>(&url, &body)
                    .await
                    .map(drop)
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = settings;
    };
    let option =
        move |read: fn(&ModelOptions) -> String| move || draft.with(|draft| read(&draft.options));
    let set = move |write: fn(&mut ModelOptions, String)| {
        move |event| {
            let value = event_target_value(&event);
            draft.update(|draft| write(&mut draft.options, value));
        }
    };

    view! {
        <form class="settings" data-testid="settings-panel" on:submit=save>
            <label class="wide">
                <span class="label-text">"System prompt"</span>
                <textarea
                    data-testid="system-prompt"
                    rows="3"
                    placeholder="How the model should answer, for every message here"
                    prop:value=move || draft.with(|draft| draft.system.clone())
                    on:input=move |event| draft.update(|draft: &mut Settings| draft.system = event_target_value(&event))
                ></textarea>
            </label>
            <label>
                <span class="label-text">"Temperature"</span>
                <input type="number" step="0.05" min="0" max="2" data-testid="option-temperature"
                    prop:value=option(|o| shown(o.temperature))
                    on:input=set(|o, v| o.temperature = v.trim().parse().ok()) />
            </label>
            <label>
                <span class="label-text">"Top p"</span>
                <input type="number" step="0.05" min="0" max="1" data-testid="option-top-p"
                    prop:value=option(|o| shown(o.top_p))
                    on:input=set(|o, v| o.top_p = v.trim().parse().ok()) />
            </label>
            <label>
                <span class="label-text">"Top k"</span>
                <input type="number" step="1" min="0" data-testid="option-top-k"
                    prop:value=option(|o| shown(o.top_k))
                    on:input=set(|o, v| o.top_k = v.trim().parse().ok()) />
            </label>
            <label>
                <span class="label-text">"Max tokens"</span>
                <input type="number" step="1" min="-1" data-testid="option-num-predict"
                    prop:value=option(|o| shown(o.num_predict))
                    on:input=set(|o, v| o.num_predict = v.trim().parse().ok()) />
            </label>
            <label>
                <span class="label-text">"Seed"</span>
                <input type="number" step="1" data-testid="option-seed"
                    prop:value=option(|o| shown(o.seed))
                    on:input=set(|o, v| o.seed = v.trim().parse().ok()) />
            </label>
            <label>
                <span class="label-text">"Context window"</span>
                <input type="number" step="256" min="64" data-testid="option-num-ctx"
                    prop:value=option(|o| shown(o.num_ctx))
                    on:input=set(|o, v| o.num_ctx = v.trim().parse().ok()) />
            </label>
            <label class="wide">
                <span class="label-text">"Stop sequences (one per line)"</span>
                <textarea rows="2" data-testid="option-stop"
                    prop:value=option(|o| o.stop.clone().unwrap_or_default().join("\n"))
                    on:input=set(|o, v| {
                        let stops: Vec<String> = v.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
                        o.stop = (!stops.is_empty()).then_some(stops);
                    })
                ></textarea>
            </label>
            <div class="settings-actions wide">
                <button type="button" class="secondary" on:click=move |_| {
                    draft.set(session.settings.get_untracked());
                    open.set(false);
                }>"Cancel"</button>
                <button type="submit" class="primary" data-testid="settings-save">"Save"</button>
            </div>
        </form>
    }
}

/// A field's value as the form shows it (empty: the model's default).
fn shown<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}
