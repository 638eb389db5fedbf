//! An answer's body (its reasoning and its Markdown), and how the code that
//! renders it arrives.
//!
//! That code (pulldown-cmark, the Markdown views, the reasoning section) is a
//! quarter of the WASM, so the page does not wait for it: cargo-leptos
//! `--split` moves everything only [`mount_live_answer`] reaches into a file
//! of its own, which [`preload`] fetches once the page is live. Until it is
//! here:
//! - an answer the server rendered keeps the server's nodes (hydration adopts
//!   the element without touching what is inside). Its reasoning opens (a
//!   native `<details>`), its code is coloured and its Copy buttons work
//!   (`markdown::code`); it needs the renderer only if it changes (an answer
//!   still streaming when the page loaded);
//! - an answer begun in the browser shows its text plain.
//!
//! Then the renderer takes the element over for good.

// `#[lazy]` links the split-off renderer through `extern` imports and exports.
#![cfg_attr(feature = "hydrate", allow(unsafe_code))]

use leptos::prelude::*;

use super::reasoning::Reasoning;
use crate::markdown::markdown_view;

/// An answer: `thinking` above `text`. `streaming`: more is coming.
#[component]
pub fn Answer(
    text: ArcRwSignal<String>,
    thinking: ArcRwSignal<String>,
    streaming: Signal<bool>,
) -> impl IntoView {
    host(text, thinking, streaming)
}

/// The server's side of [`Answer`]: rendered whole.
#[cfg(not(feature = "hydrate"))]
fn host(
    text: ArcRwSignal<String>,
    thinking: ArcRwSignal<String>,
    streaming: Signal<bool>,
) -> impl IntoView {
    view! { <div class="answer">{answer_view(text, thinking, streaming)}</div> }
}

/// The browser's side of [`Answer`]: the element hydration adopts, and the
/// renderer fetched into it.
#[cfg(feature = "hydrate")]
fn host(
    text: ArcRwSignal<String>,
    thinking: ArcRwSignal<String>,
    streaming: Signal<bool>,
) -> impl IntoView {
    use leptos::html::Div;
    use leptos::mount::UnmountHandle;
    use leptos::tachys::view::any_view::AnyViewState;

    let host = NodeRef::<Div>::new();
    // The renderer is fetched and mounted under this component's owner: the
    // effect's own is cleaned up each time it runs again (every token).
    let owner = Owner::current().unwrap_or_default();
    let phase = StoredValue::new(Phase::New);
    // Owns the renderer's nodes and effects: dropped with this component.
    let live = StoredValue::new_local(None::<UnmountHandle<AnyViewState>>);

    Effect::new(move |_| {
        let Some(element) = host.get() else {
            return;
        };
        match phase.get_value() {
            // A new element holds no elements (a marker comment at most); one
            // the browser adopted holds the server's.
            Phase::New if adopted(&element) && !streaming.get() => {
                text.track();
                thinking.track();
                crate::markdown::code::colour_all(&element);
                phase.set_value(Phase::Adopted);
            }
            Phase::New | Phase::Adopted => {
                let plain = (!adopted(&element)).then(|| plain_text(&element));
                if let Some(plain) = &plain {
                    plain.set_text_content(Some(&text.get()));
                }
                phase.set_value(Phase::Loading(plain));
                let (text, thinking, element) = (text.clone(), thinking.clone(), element.clone());
                let owner = owner.clone();
                // Mounted in a task of its own, for the reason the answer's row
                // is drawn in one (`Session::send`): the first mount is the
                // renderer's first run, all of it compiled on first call.
                set_timeout(
                    move || {
                        // The answer left the page before its turn came.
                        if phase.try_get_value().is_none() {
                            return;
                        }
                        owner.with(|| {
                            leptos::task::spawn_local_scoped_with_cancellation(async move {
                                let handle =
                                    mount_live_answer(element, text, thinking, streaming).await;
                                phase.try_set_value(Phase::Live);
                                live.try_set_value(Some(handle));
                            });
                        });
                    },
                    std::time::Duration::ZERO,
                );
            }
            Phase::Loading(Some(plain)) => plain.set_text_content(Some(&text.get())),
            // The server's nodes stay until the renderer, which reads the
            // latest text, replaces them; from then on it follows the text
            // itself and this effect, reading nothing, never runs again.
            Phase::Loading(None) | Phase::Live => {}
        }
    });

    view! { <div class="answer" node_ref=host on:click=crate::markdown::code::copy_code></div> }
}

/// Whether `host` shows what the server rendered (hydration adopted it).
#[cfg(feature = "hydrate")]
fn adopted(host: &web_sys::HtmlDivElement) -> bool {
    host.child_element_count() > 0
}

/// The answer's text, plain (line breaks kept), until the renderer arrives:
/// the element a user's message uses, so it reads like one.
#[cfg(feature = "hydrate")]
fn plain_text(host: &web_sys::HtmlDivElement) -> send_wrapper::SendWrapper<web_sys::Element> {
    let element = host
        .owner_document()
        .and_then(|document| document.create_element("div").ok())
        .expect("a page element belongs to a document that can make elements");
    element.set_class_name("message-text plain");
    let _ = element.set_attribute("data-testid", "message-text");
    let _ = host.append_child(&element);
    send_wrapper::SendWrapper::new(element)
}

/// Where an [`Answer`] element is in its life.
#[cfg(feature = "hydrate")]
#[derive(Clone)]
enum Phase {
    /// Not looked at yet.
    New,
    /// Showing the server's nodes, untouched.
    Adopted,
    /// The renderer's code is on its way: meanwhile the server's nodes stay,
    /// or (an answer begun here) the text shows plain in this element.
    Loading(Option<send_wrapper::SendWrapper<web_sys::Element>>),
    /// The renderer owns the element.
    Live,
}

/// What the server renders, and the renderer mounts in the browser.
fn answer_view(
    text: ArcRwSignal<String>,
    thinking: ArcRwSignal<String>,
    streaming: Signal<bool>,
) -> AnyView {
    let answer = text.clone();
    view! {
        <Reasoning thinking answer streaming />
        {markdown_view(text, streaming)}
    }
    .into_any()
}

/// Replaces what `host` shows with the live renderer: the one way into the
/// split-off code, so the browser fetches it the first time this runs.
#[cfg(feature = "hydrate")]
#[lazy]
fn mount_live_answer(
    host: web_sys::HtmlDivElement,
    text: ArcRwSignal<String>,
    thinking: ArcRwSignal<String>,
    streaming: Signal<bool>,
) -> leptos::mount::UnmountHandle<leptos::tachys::view::any_view::AnyViewState> {
    host.set_text_content(None);
    leptos::mount::mount_to(host.into(), move || answer_view(text, thinking, streaming))
}

/// Starts fetching the renderer, so the first answer does not wait for it:
/// whether it has arrived (never, on the server).
pub fn preload() -> ReadSignal<bool> {
    #[cfg(feature = "hydrate")]
    return lazy_preload!(mount_live_answer);
    #[cfg(not(feature = "hydrate"))]
    signal(false).0
}
