//! The HTTP dialects llm-chat speaks. Each is one module: a parser from its
//! requests into the [`crate::inference`] request, and an encoder of the
//! answer's token stream (and its errors) back into its own wire format.
//! Streaming rules, cancellation, limits and logs live below, once.

pub mod native;
pub mod openai;
