//! The page's address: `/` for a new chat, `/c/{id}` for a conversation,
//! so a reload or a shared link opens it. Changed with the History API, so
//! opening a conversation or saving a new one never reloads the page.

/// Where a conversation lives.
pub fn conversation_path(id: &str) -> String {
    format!("/c/{id}")
}

/// The conversation a path names, if any.
pub fn conversation_in(path: &str) -> Option<String> {
    path.strip_prefix("/c/")
        .map(|id| id.trim_end_matches('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_string)
}

/// The path the browser shows now.
#[cfg(feature = "hydrate")]
pub fn current() -> String {
    web_sys::window()
        .and_then(|window| window.location().pathname().ok())
        .unwrap_or_else(|| "/".to_string())
}

/// Shows `path` as a new entry of the history (Back returns).
#[cfg(feature = "hydrate")]
pub fn push(path: &str) {
    if let Some(history) = web_sys::window().and_then(|window| window.history().ok()) {
        let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
    }
}

/// Shows `path` in place of the current entry (a new chat that was saved).
#[cfg(feature = "hydrate")]
pub fn replace(path: &str) {
    if let Some(history) = web_sys::window().and_then(|window| window.history().ok()) {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_has_its_own_path() {
        assert_eq!(
            conversation_in(&conversation_path("abc")),
            Some("abc".into())
        );
        assert_eq!(conversation_in("/c/abc/"), Some("abc".into()));
        assert_eq!(conversation_in("/"), None);
        assert_eq!(conversation_in("/c/"), None);
        assert_eq!(conversation_in("/c/a/b"), None);
    }
}
