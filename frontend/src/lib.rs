//! The WASM entry point: cargo-leptos compiles this crate for the browser and
//! the page's hydration script calls `hydrate()` once the bundle is loaded.

/// Attaches the browser-side reactive system to the server-rendered page.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
