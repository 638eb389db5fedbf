//! The model list: where the page gets it (the server's registry during SSR,
//! `GET /api/v1/models` in the browser) and how it shows it.

use leptos::prelude::*;

use crate::api::{ModelInfo, ModelList};

/// What the server gives the page during SSR so it can list models without
/// calling itself over HTTP. The server crate implements it over its backend
/// registry and provides it as context.
#[cfg(feature = "ssr")]
pub trait ModelCatalog: Send + Sync + 'static {
    fn list_models(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<ModelList, String>> + Send + '_>>;
}

/// The context value the server provides to every render.
#[cfg(feature = "ssr")]
pub type SharedModelCatalog = std::sync::Arc<dyn ModelCatalog>;

/// Loads the model list from wherever this side of the app can reach it.
fn load_models() -> impl Future<Output = Result<ModelList, String>> + Send + 'static {
    #[cfg(feature = "ssr")]
    {
        let catalog = use_context::<SharedModelCatalog>();
        async move {
            match catalog {
                Some(catalog) => catalog.list_models().await,
                None => Err("the server provided no model catalog".to_string()),
            }
        }
    }
    #[cfg(not(feature = "ssr"))]
    {
        fetch_models()
    }
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn fetch_models() -> impl Future<Output = Result<ModelList, String>> + Send + 'static {
    // The browser has one thread, so the !Send fetch future may be wrapped.
    send_wrapper::SendWrapper::new(async {
        let response = gloo_net::http::Request::get("/api/v1/models")
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if !response.ok() {
            let body = response
                .json::<crate::api::ErrorBody>()
                .await
                .map(|body| body.error)
                .unwrap_or_else(|_| format!("HTTP {}", response.status()));
            return Err(body);
        }
        response
            .json::<ModelList>()
            .await
            .map_err(|error| error.to_string())
    })
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn fetch_models() -> impl Future<Output = Result<ModelList, String>> + Send + 'static {
    async { Err("built without the ssr or hydrate feature".to_string()) }
}

/// The models the backends offer, or why there are none.
#[component]
pub fn ModelOverview() -> impl IntoView {
    // Blocking: the list is part of the first HTML, so it shows with
    // JavaScript off and before the WASM bundle loads.
    let models = Resource::new_blocking(|| (), |_| load_models());

    view! {
        <section class="models" aria-labelledby="models-heading">
            <h2 id="models-heading">"Models"</h2>
            <Suspense fallback=|| view! { <p>"Loading models…"</p> }>
                {move || Suspend::new(async move {
                    match models.await {
                        Ok(list) if list.models.is_empty() => {
                            view! {
                                <p class="notice" data-testid="models-empty">
                                    "No models are available. Start Ollama (make run-ollama) or set OLLAMA_URL."
                                </p>
                            }
                                .into_any()
                        }
                        Ok(list) => view! { <ModelTable models=list.models /> }.into_any(),
                        Err(error) => {
                            view! {
                                <p class="notice error" role="alert" data-testid="error">
                                    "Could not list models: " {error}
                                </p>
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn ModelTable(models: Vec<ModelInfo>) -> impl IntoView {
    view! {
        <table class="model-table" data-testid="model-list">
            <thead>
                <tr>
                    <th scope="col">"Name"</th>
                    <th scope="col">"Backend"</th>
                    <th scope="col">"Parameters"</th>
                    <th scope="col">"Quantization"</th>
                    <th scope="col">"Size"</th>
                </tr>
            </thead>
            <tbody>
                {models
                    .into_iter()
                    .map(|model| {
                        view! {
                            <tr data-testid="model-row">
                                <td>{model.name}</td>
                                <td>{model.backend.as_str()}</td>
                                <td>{model.details.parameter_size}</td>
                                <td>{model.details.quantization_level}</td>
                                <td>{human_size(model.size)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// Bytes as a person reads them: `1.9 GB`, `253 MB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_ollamas_list() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(253_000_000), "253 MB");
        assert_eq!(human_size(1_900_000_000), "1.9 GB");
    }
}
