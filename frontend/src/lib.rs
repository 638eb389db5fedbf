//! The WASM entry point: cargo-leptos compiles this crate for the browser and
//! the page's hydration script calls `hydrate()` once the bundle is loaded.
//!
//! No panic hook: `make build` compiles the WASM with `panic =
//! "immediate-abort"` (see WASM_BUILD_ENV in the Makefile), where a panic
//! traps at once and never reaches a hook.

/// Attaches the browser-side reactive system to the server-rendered page.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(app::App);
}
