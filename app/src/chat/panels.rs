//! The settings and Models panels, kept out of the first load: built with
//! cargo-leptos `--split`, each `#[lazy]` function below, and the code only
//! it reaches, goes to a WASM file of its own that the browser fetches the
//! first time that panel opens (together about 40 KB of the bundle's gzip,
//! measured by building without them). Both are closed in the first HTML, so
//! hydration never waits for them; on the server they are plain functions.

// `#[lazy]` links the split-off file through `extern` imports and exports.
#![allow(unsafe_code)]

use leptos::prelude::*;

use super::session::Session;
use super::settings::SettingsPanel;
use crate::api::ModelList;
use crate::models::ModelsPanel;

#[component]
pub fn LazySettingsPanel(session: Session, open: RwSignal<bool>) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move { settings_panel(session, open).await })}
        </Suspense>
    }
}

#[component]
pub fn LazyModelsPanel(models: Resource<Result<ModelList, String>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move { models_panel(models).await })}
        </Suspense>
    }
}

#[lazy]
fn settings_panel(session: Session, open: RwSignal<bool>) -> AnyView {
    view! { <SettingsPanel session open /> }.into_any()
}

#[lazy]
fn models_panel(models: Resource<Result<ModelList, String>>) -> AnyView {
    view! { <ModelsPanel models /> }.into_any()
}
