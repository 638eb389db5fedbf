//! Choices the page remembers across visits, in the browser's localStorage.

const MODEL_KEY: &str = "llm-chat.model";
const STREAM_KEY: &str = "llm-chat.stream";

#[cfg(feature = "hydrate")]
fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

#[cfg(feature = "hydrate")]
fn load(key: &str) -> Option<String> {
    storage()?.get_item(key).ok()?
}

#[cfg(feature = "hydrate")]
fn save(key: &str, value: &str) {
    if let Some(storage) = storage() {
        // Private windows may refuse; forgetting a preference is harmless.
        let _ = storage.set_item(key, value);
    }
}

#[cfg(not(feature = "hydrate"))]
fn load(_: &str) -> Option<String> {
    None
}

#[cfg(not(feature = "hydrate"))]
fn save(_: &str, _: &str) {}

pub fn load_model() -> Option<String> {
    load(MODEL_KEY)
}

pub fn save_model(name: &str) {
    save(MODEL_KEY, name);
}

pub fn load_stream() -> Option<bool> {
    load(STREAM_KEY).map(|value| value != "false")
}

pub fn save_stream(enabled: bool) {
    save(STREAM_KEY, if enabled { "true" } else { "false" });
}
