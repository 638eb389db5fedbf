//! The Models panel: every model with the backends serving it, its size,
//! family and quantisation; pulling one onto an Ollama upstream with a real
//! progress bar (percent, bytes, speed, cancel), and deleting one after a
//! confirmation. The model list (and with it the picker) is read again
//! after each change.

// Fed only in the browser; the sums and the speed are tested natively.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod progress;
#[cfg(feature = "hydrate")]
mod pull;
// The frames are only read in the browser; the parser is tested natively.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod sse;

use leptos::prelude::*;

use self::progress::{PullTracker, format_bytes};
use crate::api::{BackendInfo, ModelInfo, ModelList};

/// What the panel last finished, said under the pull form (only the
/// browser finishes anything).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Pulled(String),
    Cancelled(String),
    Deleted(String),
    Failed(String),
}

/// A pull under way: its model and what it reported so far.
#[derive(Debug, Clone, PartialEq)]
struct Pulling {
    model: String,
    progress: PullTracker,
}

#[component]
pub fn ModelsPanel(models: Resource<Result<ModelList, String>>) -> impl IntoView {
    let pulling = RwSignal::new(None::<Pulling>);
    let outcome = RwSignal::new(None::<Outcome>);
    let confirming = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    let handle = StoredValue::new_local(None::<pull::PullHandle>);

    let start_pull = Callback::new(move |(model, upstream): (String, Option<String>)| {
        outcome.set(None);
        pulling.set(Some(Pulling {
            model: model.clone(),
            progress: PullTracker::default(),
        }));
        #[cfg(feature = "hydrate")]
        {
            let request = crate::api::PullRequest {
                model: model.clone(),
                upstream,
            };
            // What the frames said about the end; the stream's close decides.
            let said = std::rc::Rc::new(std::cell::RefCell::new(None::<Outcome>));
            let heard = said.clone();
            let on_frame = move |frame: sse::Frame| match frame.event.as_deref() {
                None => {
                    if let Ok(step) = serde_json::from_str::<crate::api::PullProgress>(&frame.data)
                    {
                        let now = now_ms();
                        pulling.update(|pulling| {
                            if let Some(pulling) = pulling {
                                pulling.progress.update(&step, now);
                            }
                        });
                    }
                }
                Some("done") => {
                    let name = serde_json::from_str::<crate::api::PullDone>(&frame.data)
                        .map(|done| done.model)
                        .unwrap_or_else(|_| model.clone());
                    *heard.borrow_mut() = Some(Outcome::Pulled(name));
                }
                Some(_) => {
                    let message = serde_json::from_str::<crate::api::ErrorBody>(&frame.data)
                        .map(|body| body.error)
                        .unwrap_or(frame.data);
                    *heard.borrow_mut() = Some(Outcome::Failed(message));
                }
            };
            let on_end = move |ended: pull::Ended| {
                let name = pulling
                    .get_untracked()
                    .map(|pulling| pulling.model)
                    .unwrap_or_default();
                let finished = match ended {
                    pull::Ended::Cancelled => Outcome::Cancelled(name),
                    pull::Ended::Refused(message) => Outcome::Failed(message),
                    pull::Ended::Closed => said.borrow_mut().take().unwrap_or_else(|| {
                        Outcome::Failed("the pull stopped before it finished".to_string())
                    }),
                };
                if matches!(finished, Outcome::Pulled(_)) {
                    models.refetch();
                }
                handle.set_value(None);
                pulling.set(None);
                outcome.set(Some(finished));
            };
            match pull::start(request, on_frame, on_end) {
                Ok(started) => handle.set_value(Some(started)),
                Err(message) => {
                    pulling.set(None);
                    outcome.set(Some(Outcome::Failed(message)));
                }
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (model, upstream);
    });
    let cancel_pull = Callback::new(move |()| {
        #[cfg(feature = "hydrate")]
        handle.with_value(|handle| {
            if let Some(handle) = handle {
                handle.cancel();
            }
        });
    });
    let delete = Callback::new(move |name: String| {
        confirming.set(None);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let url = format!("/api/v1/models/{}", crate::data::encode(&name));
            let finished = match crate::client::delete(&url).await {
                Ok(()) => Outcome::Deleted(name),
                Err(message) => Outcome::Failed(format!("Could not delete {name}: {message}")),
            };
            models.refetch();
            outcome.set(Some(finished));
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = name;
    });

    view! {
        <section class="models-panel" data-testid="models-panel" aria-label="Models">
            <Transition fallback=|| view! { <p class="panel-note">"Loading models…"</p> }>
                {move || Suspend::new(async move {
                    match models.await {
                        Ok(list) => view! {
                            <PullForm backends=list.backends.clone() pulling start_pull cancel_pull />
                            <OutcomeNote outcome />
                            <ModelTable list confirming delete />
                        }.into_any(),
                        Err(error) => view! {
                            <p class="panel-note" role="alert">"Could not list models: " {error}</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The name to pull, the upstream to pull it to (when there is a choice),
/// and while it runs, its progress with a Cancel button.
#[component]
fn PullForm(
    backends: Vec<BackendInfo>,
    pulling: RwSignal<Option<Pulling>>,
    start_pull: Callback<(String, Option<String>)>,
    cancel_pull: Callback<()>,
) -> impl IntoView {
    let targets: Vec<String> = backends
        .into_iter()
        .filter(|backend| backend.manages_models)
        .map(|backend| backend.name)
        .collect();
    if targets.is_empty() {
        return view! {
            <p class="panel-note" data-testid="pull-unavailable">
                "Pulling needs an Ollama upstream (set OLLAMA_URL); embedded models are the .gguf files in the models directory."
            </p>
        }
        .into_any();
    }
    let name = RwSignal::new(String::new());
    let target = RwSignal::new(targets[0].clone());
    let choice = (targets.len() > 1).then(|| {
        view! {
            <label class="pull-target">
                <span class="label-text">"To"</span>
                <select
                    data-testid="pull-upstream"
                    on:change=move |event| target.set(event_target_value(&event))
                >
                    {targets
                        .iter()
                        .map(|upstream| view! { <option value=upstream.clone()>{upstream.clone()}</option> })
                        .collect_view()}
                </select>
            </label>
        }
    });
    let several = targets.len() > 1;
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let model = name.get_untracked().trim().to_string();
        if model.is_empty() || pulling.with_untracked(Option::is_some) {
            return;
        }
        start_pull.run((model, several.then(|| target.get_untracked())));
    };
    view! {
        <form class="pull-form" on:submit=submit>
            <label class="pull-name">
                <span class="label-text">"Pull a model"</span>
                <input
                    type="text"
                    data-testid="pull-model-input"
                    placeholder="llama3.2:1b"
                    autocomplete="off"
                    spellcheck="false"
                    prop:value=move || name.get()
                    on:input=move |event| name.set(event_target_value(&event))
                    disabled=move || pulling.with(Option::is_some)
                />
            </label>
            {choice}
            <button
                type="submit"
                class="primary"
                data-testid="pull-button"
                disabled=move || pulling.with(Option::is_some) || name.with(|name| name.trim().is_empty())
            >
                "Pull"
            </button>
        </form>
        {move || pulling.get().map(|pulling| view! { <PullBar pulling cancel_pull /> })}
    }
    .into_any()
}

/// The progress of the pull under way.
#[component]
fn PullBar(pulling: Pulling, cancel_pull: Callback<()>) -> impl IntoView {
    let progress = &pulling.progress;
    let percent = progress.percent();
    let bytes = (progress.total() > 0).then(|| {
        format!(
            "{} of {}",
            format_bytes(progress.completed()),
            format_bytes(progress.total())
        )
    });
    let speed = progress
        .bytes_per_second()
        .map(|speed| format!("{}/s", format_bytes(speed.round() as u64)));
    let status = if progress.status.is_empty() {
        "starting".to_string()
    } else {
        progress.status.clone()
    };
    view! {
        <div class="pull-progress" data-testid="pull-progress">
            <div class="pull-heading">
                <span>"Pulling " <strong>{pulling.model.clone()}</strong> ": " {status}</span>
                <button
                    type="button"
                    class="secondary"
                    data-testid="pull-cancel"
                    on:click=move |_| cancel_pull.run(())
                >
                    "Cancel"
                </button>
            </div>
            <progress
                data-testid="pull-bar"
                max="100"
                value=percent.map(|percent| format!("{percent:.1}"))
                aria-label="Pull progress"
            ></progress>
            <p class="pull-figures">
                <span data-testid="pull-percent">
                    {percent.map(|percent| format!("{percent:.0}%"))}
                </span>
                <span data-testid="pull-bytes">{bytes}</span>
                <span data-testid="pull-speed">{speed}</span>
            </p>
        </div>
    }
}

#[component]
fn OutcomeNote(outcome: RwSignal<Option<Outcome>>) -> impl IntoView {
    move || {
        outcome.get().map(|outcome| {
            let (class, text) = match outcome {
                Outcome::Pulled(model) => ("panel-note", format!("Pulled {model}.")),
                Outcome::Cancelled(model) => {
                    ("panel-note", format!("Cancelled the pull of {model}."))
                }
                Outcome::Deleted(model) => ("panel-note", format!("Deleted {model}.")),
                Outcome::Failed(message) => ("panel-note failed", message),
            };
            view! { <p class=class role="status" data-testid="models-outcome">{text}</p> }
        })
    }
}

/// Every model, one row each; a model on an Ollama upstream can be deleted
/// once the user confirms.
#[component]
fn ModelTable(
    list: ModelList,
    confirming: RwSignal<Option<String>>,
    delete: Callback<String>,
) -> impl IntoView {
    if list.models.is_empty() {
        return view! { <p class="panel-note">"No models yet."</p> }.into_any();
    }
    let managers: Vec<String> = list
        .backends
        .iter()
        .filter(|backend| backend.manages_models)
        .map(|backend| backend.name.clone())
        .collect();
    let rows = list
        .models
        .into_iter()
        .map(|model| {
            let deletable_from = model
                .backends
                .iter()
                .find(|backend| managers.contains(backend))
                .cloned();
            view! { <ModelRow model deletable_from confirming delete /> }
        })
        .collect_view();
    view! {
        <table class="models-table" data-testid="models-table">
            <thead>
                <tr>
                    <th scope="col">"Model"</th>
                    <th scope="col">"Served by"</th>
                    <th scope="col">"Size"</th>
                    <th scope="col">"Family"</th>
                    <th scope="col">"Parameters"</th>
                    <th scope="col">"Quantisation"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn ModelRow(
    model: ModelInfo,
    /// The Ollama upstream a delete removes it from, when there is one.
    deletable_from: Option<String>,
    confirming: RwSignal<Option<String>>,
    delete: Callback<String>,
) -> impl IntoView {
    let name = model.name.clone();
    let served_by = if model.backends.is_empty() {
        model.backend.clone()
    } else {
        model.backends.join(", ")
    };
    let size = (model.size > 0).then(|| format_bytes(model.size));
    let actions = deletable_from.map(|upstream| {
        let name = name.clone();
        let asking = {
            let name = name.clone();
            move || confirming.with(|confirming| confirming.as_deref() == Some(name.as_str()))
        };
        let question = format!("Delete {name} from {upstream}?");
        let ask = {
            let name = name.clone();
            move |_| confirming.set(Some(name.clone()))
        };
        view! {
            <Show
                when=asking
                fallback=move || view! {
                    <button type="button" class="secondary" data-testid="delete-model-button" on:click=ask.clone()>
                        "Delete"
                    </button>
                }
            >
                <span class="confirm-delete" role="group" aria-label="Confirm delete">
                    <span>{question.clone()}</span>
                    <button
                        type="button"
                        class="danger"
                        data-testid="confirm-delete"
                        on:click={
                            let name = name.clone();
                            move |_| delete.run(name.clone())
                        }
                    >
                        "Delete"
                    </button>
                    <button type="button" class="secondary" on:click=move |_| confirming.set(None)>
                        "Cancel"
                    </button>
                </span>
            </Show>
        }
        .into_any()
    });
    view! {
        <tr data-testid="model-row" data-model=name.clone()>
            <th scope="row" class="model-name">{name.clone()}</th>
            <td>{served_by}</td>
            <td>{size.unwrap_or_else(|| "—".to_string())}</td>
            <td>{or_dash(model.details.family)}</td>
            <td>{or_dash(model.details.parameter_size)}</td>
            <td>{or_dash(model.details.quantization_level)}</td>
            <td class="model-actions">{actions}</td>
        </tr>
    }
    // Erased: the table's nested view type is otherwise too deep to compile.
    .into_any()
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "—".to_string()
    } else {
        text
    }
}

#[cfg(feature = "hydrate")]
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}
