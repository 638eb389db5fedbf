//! The HTTP dialects llm-chat speaks. Each is one module: a parser from its
//! requests into the [`crate::inference`] request, and an encoder of the
//! answer's token stream (and its errors) back into its own wire format.
//! Streaming rules, cancellation, limits and logs live below, once.

pub mod native;
pub mod ollama;
pub mod openai;

use bytes::{BufMut, BytesMut};

/// Writes `value` as JSON straight into a body chunk's buffer; every
/// streaming encoder does. JSON has no raw newlines, so it always fits on
/// one SSE `data:` line.
pub(crate) fn write_json(out: &mut BytesMut, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(out.writer(), value).expect("wire types always serialise");
}
