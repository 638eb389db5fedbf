//! What a code block does once it is on the page, whoever built it (the
//! server's HTML the browser adopted, or the live renderer): its Copy button
//! and its colours. Kept out of the renderer, so that an answer the server
//! rendered works without the renderer's code.

/// Copy buttons, handled where the answer sits: the code is the text of the
/// block the clicked button belongs to.
#[cfg(feature = "hydrate")]
pub fn copy_code(event: leptos::ev::MouseEvent) {
    use wasm_bindgen::JsCast;
    let code = event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        .and_then(|target| {
            target
                .closest("[data-testid='copy-code-button']")
                .ok()
                .flatten()
        })
        .and_then(|button| button.closest(".code-block").ok().flatten())
        .and_then(|block| block.query_selector("code").ok().flatten());
    if let Some(code) = code {
        crate::clipboard::copy(&code.text_content().unwrap_or_default());
    }
}

/// Colours every code block under `root` that names its language: for a
/// finished answer, whose blocks are all finished.
#[cfg(feature = "hydrate")]
pub fn colour_all(root: &web_sys::Element) {
    use wasm_bindgen::JsCast;
    let Ok(blocks) = root.query_selector_all("pre code[class^='language-']") else {
        return;
    };
    for index in 0..blocks.length() {
        let Some(code) = blocks
            .item(index)
            .and_then(|node| node.dyn_into::<web_sys::HtmlElement>().ok())
        else {
            continue;
        };
        let class = code.class_name();
        if let Some(language) = class
            .split_whitespace()
            .find_map(|class| class.strip_prefix("language-"))
        {
            colour(&code, language);
        }
    }
}

/// Hands a finished code block to the highlighter the page defines
/// (`window.llmChatHighlight`, which imports its module on first use).
pub fn colour(code: &leptos::web_sys::HtmlElement, language: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(window) = web_sys::window() else {
            return;
        };
        let loader = js_sys::Reflect::get(&window, &"llmChatHighlight".into()).ok();
        if let Some(loader) = loader
            .as_ref()
            .and_then(|loader| loader.dyn_ref::<js_sys::Function>())
        {
            let _ = loader.call2(&window, code, &language.into());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (code, language);
}
