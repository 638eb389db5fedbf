//! The model picker: filled on the server, so it works before the WASM
//! bundle loads (and with JavaScript off).

use leptos::prelude::*;

use crate::api::ModelList;

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
                                        model.backend.as_str().to_string(),
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
