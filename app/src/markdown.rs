//! Model answers as Markdown (CommonMark and GFM), rendered as they stream.
//!
//! The text is parsed by pulldown-cmark into a small tree of [`Node`]s, never
//! into an HTML string, so nothing a model writes can become markup: raw HTML
//! stays visible text, links keep only `http`, `https` and `mailto`, and
//! images become links (an answer cannot make the browser fetch anything).
//! [`Incremental`] keeps the blocks no later text can change and re-parses
//! only the tail, so a token costs the same at the end of a long answer as at
//! its start. The Leptos side is in [`view`]; [`code`] is what a code block
//! does on the page, whoever rendered it.

mod blocks;
pub mod code;
mod incremental;
mod links;
mod tree;
mod view;

pub use incremental::{Block, Incremental};
pub use tree::Node;
pub use view::markdown_view;

/// The whole of `text` as nodes, parsed afresh: what the incremental
/// renderer must always agree with. `streaming`: the text is still growing, so
/// its last block is shown as if its open `**`, `~~` and `` ` `` were closed.
#[cfg(test)]
pub fn render(text: &str, streaming: bool) -> Vec<Node> {
    blocks::render_tail(text, streaming)
}
