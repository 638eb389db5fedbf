//! The model picker: filled on the server, so it works before the WASM
//! bundle loads (and with JavaScript off).

use leptos::prelude::*;

use crate::api::ModelList;

/// The model requests will use: the user's choice if the backends still
/// offer it, else the first one listed.
pub fn current_model(
    models: Resource<Result<ModelList, String>>,
    chosen: RwSignal<String>,
) -> Memo<String> {
    Memo::new(move |_| {
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
    })
}

/// A `<select>` of the models. `current` is the model requests will use;
/// `on_pick` hears the user's choice.
#[component]
pub fn ModelPicker(
    models: Resource<Result<ModelList, String>>,
    current: Memo<String>,
    on_pick: Callback<String>,
) -> impl IntoView {
    view! {
        <label class="picker">
            <span class="label-text">"Model"</span>
            <Suspense fallback=|| {
                view! {
                    <select data-testid="model-picker" disabled>
                        <option>"Loading models…"</option>
                    </select>
                }
            }>
                {move || Suspend::new(async move {
                    let models = models.await.map(|list| list.models).unwrap_or_default();
                    let empty = models.is_empty();
                    view! {
                        <select
                            data-testid="model-picker"
                            disabled=empty
                            on:change=move |event| on_pick.run(event_target_value(&event))
                        >
                            {empty.then(|| view! { <option value="">"No models available"</option> })}
                            {models
                                .into_iter()
                                .map(|model| {
                                    let name = model.name.clone();
                                    let selected = {
                                        let name = name.clone();
                                        move || current.get() == name
                                    };
                                    let detail = [
                                        model.details.parameter_size,
                                        model.details.quantization_level,
                                        model.backend,
                                    ]
                                        .into_iter()
                                        .filter(|part| !part.is_empty())
                                        .collect::<Vec<_>>()
                                        .join(" · ");
                                    view! {
                                        <option value=name.clone() selected=selected>
                                            {format!("{name} ({detail})")}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    }
                })}
            </Suspense>
        </label>
    }
}
