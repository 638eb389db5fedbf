//! The Leptos side of a rendered answer: finished blocks in a keyed list
//! (mounted once, never rebuilt), the tail rebuilt at most once a frame.
//! The server renders these nodes into the first HTML; in the browser this
//! code is split off the first load (see `chat::answer`).

use std::sync::Arc;

use leptos::attr::any_attribute::{AnyAttribute, IntoAnyAttribute};
use leptos::attr::custom::custom_attribute;
use leptos::prelude::*;

use super::{Block, Incremental, Node};

/// An answer's text as Markdown. `streaming`: more text is coming.
pub fn markdown_view(text: ArcRwSignal<String>, streaming: Signal<bool>) -> AnyView {
    let mut renderer = Incremental::new();
    let first = text.with_untracked(|text| renderer.update(text, streaming.get_untracked()));
    let finished = RwSignal::new(first.finished.into_iter().map(Arc::new).collect::<Vec<_>>());
    let tail = RwSignal::new(first.tail);
    let renderer = StoredValue::new(renderer);

    // Tokens arrive faster than frames: render the latest text once a frame.
    let scheduled = StoredValue::new(false);
    Effect::new(move |_| {
        text.track();
        streaming.track();
        if scheduled.get_value() {
            return;
        }
        scheduled.set_value(true);
        let text = text.clone();
        after_next_frame(move || {
            scheduled.try_set_value(false);
            let update = text.try_with_untracked(|text| {
                renderer.try_update_value(|renderer| {
                    renderer.update(text, streaming.try_get_untracked().unwrap_or(false))
                })
            });
            let Some(Some(update)) = update else {
                return;
            };
            if update.reset {
                finished.try_set(update.finished.into_iter().map(Arc::new).collect());
            } else if !update.finished.is_empty() {
                finished
                    .try_update(|blocks| blocks.extend(update.finished.into_iter().map(Arc::new)));
            }
            if tail.try_with_untracked(|tail| *tail != update.tail) == Some(true) {
                tail.try_set(update.tail);
            }
        });
    });

    view! {
        <div class="message-text markdown" data-testid="message-text">
            <For
                each=move || finished.get()
                key=block_key
                children=block_view
            />
            {move || tail.with(|tail| nodes_view(tail, Finished(false)))}
        </div>
    }
    .into_any()
}

fn block_key(block: &Arc<Block>) -> u64 {
    block.id
}

fn block_view(block: Arc<Block>) -> Vec<AnyView> {
    nodes_view(&block.nodes, Finished(true))
}

/// Whether the nodes are in a finished block: only then is code coloured
/// (once, when its fence has closed; never per token).
#[derive(Clone, Copy)]
struct Finished(bool);

fn after_next_frame(callback: impl FnOnce() + 'static) {
    #[cfg(feature = "hydrate")]
    request_animation_frame(callback);
    #[cfg(not(feature = "hydrate"))]
    drop(callback);
}

fn nodes_view(nodes: &[Node], finished: Finished) -> Vec<AnyView> {
    nodes.iter().map(|node| node_view(node, finished)).collect()
}

fn node_view(node: &Node, finished: Finished) -> AnyView {
    match node {
        Node::Text(text) => text.clone().into_any(),
        Node::Code { language, code } => view! {
            <CodeBlock language=language.clone() code=code.clone() highlight=finished.0 />
        }
        .into_any(),
        // Void elements: a custom element would be written with a closing
        // tag, which HTML reads as a second element.
        Node::Element { tag: "br", .. } => view! { <br /> }.into_any(),
        Node::Element { tag: "hr", .. } => view! { <hr /> }.into_any(),
        Node::Element {
            tag: "input",
            attrs,
            ..
        } => {
            let checked = attrs.iter().any(|(name, _)| *name == "checked");
            view! { <input type="checkbox" disabled=true checked=checked /> }.into_any()
        }
        Node::Element {
            tag,
            attrs,
            children,
        } => {
            let attributes: Vec<AnyAttribute> = attrs
                .iter()
                .map(|(name, value)| custom_attribute(*name, value.clone()).into_any_attr())
                .collect();
            leptos::html::custom(*tag)
                .add_any_attr(attributes)
                .child(nodes_view(children, finished))
                .into_any()
        }
    }
}

/// A code block: its language, a Copy button (its clicks are handled where
/// the answer sits: [`super::code::copy_code`]), and the code, coloured by the
/// lazily loaded highlighter when `highlight`.
#[component]
fn CodeBlock(language: String, code: String, highlight: bool) -> impl IntoView {
    let code_ref = NodeRef::<leptos::html::Code>::new();
    if highlight && !language.is_empty() {
        let language = language.clone();
        Effect::new(move |_| {
            if let Some(element) = code_ref.get() {
                super::code::colour(&element, &language);
            }
        });
    }
    let label = if language.is_empty() {
        "text".to_string()
    } else {
        language.clone()
    };
    let class = (!language.is_empty()).then(|| format!("language-{language}"));
    view! {
        <div class="code-block" data-testid="code-block">
            <div class="code-header">
                <span class="code-language" data-testid="code-language">{label}</span>
                <button type="button" class="action" data-testid="copy-code-button" aria-label="Copy code" title="Copy code">
                    "Copy"
                </button>
            </div>
            <pre><code class=class node_ref=code_ref>{code}</code></pre>
        </div>
    }
}
