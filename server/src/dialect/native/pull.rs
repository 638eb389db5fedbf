//! A model pull's progress as our Server-Sent Events: Ollama's NDJSON
//! progress lines become `data: {"status","digest","total","completed"}`
//! frames as they arrive; the end is `event: done` (once the model is
//! listed) or `event: error` with Ollama's reason. A client that leaves
//! drops the upstream request, and Ollama stops the download.

use std::sync::Arc;

use app::api::{EVENT_DONE, EVENT_ERROR, ErrorBody, PullDone, PullProgress};
use axum::response::Response;
use bytes::BytesMut;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use super::events::{framing, write_event};
use crate::backend::BackendError;
use crate::backend::ndjson::LineBuffer;
use crate::dialect::write_json;
use crate::registry::Registry;
use crate::stream::body::{self, Chunk, StreamContext};

/// One of Ollama's progress lines.
#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    status: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    completed: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

/// The pull of `model` as it goes; on success the registry lists it again
/// before `event: done`, so a client that reloads the list sees it.
pub fn stream_pull(
    lines: impl Stream<Item = Result<bytes::Bytes, BackendError>> + Send + 'static,
    model: String,
    registry: Arc<Registry>,
    context: &StreamContext,
) -> Response {
    body::response(frames(lines, model, registry), framing(), context)
}

fn frames(
    body: impl Stream<Item = Result<bytes::Bytes, BackendError>> + Send + 'static,
    model: String,
    registry: Arc<Registry>,
) -> impl Stream<Item = Chunk> + Send {
    async_stream::stream! {
        let mut body = std::pin::pin!(body);
        let mut lines = LineBuffer::default();
        let mut ended = false;
        loop {
            let line = match lines.next_line() {
                Some(line) => line,
                None if ended => {
                    let end = lines.finish();
                    match end {
                        Some(line) => line,
                        None => {
                            yield error("the pull ended before it was done".into());
                            return;
                        }
                    }
                }
                None => {
                    match body.next().await {
                        Some(Ok(chunk)) => lines.push(chunk),
                        Some(Err(broken)) => {
                            yield error(broken.to_string());
                            return;
                        }
                        None => ended = true,
                    }
                    continue;
                }
            };
            let Ok(line) = serde_json::from_slice::<Line>(&line) else {
                yield error("Ollama sent a malformed progress line".into());
                return;
            };
            if let Some(message) = line.error {
                yield error(message);
                return;
            }
            if line.status == "success" {
                if let Err(listing) = registry.list_models().await {
                    tracing::debug!(%listing, "cannot list models after a pull");
                }
                let mut out = BytesMut::new();
                write_event(&mut out, EVENT_DONE, &PullDone { status: line.status, model: model.clone() });
                yield Chunk { bytes: out.freeze(), tokens: 0 };
                return;
            }
            let progress = PullProgress {
                status: line.status,
                digest: line.digest,
                total: line.total,
                completed: line.completed,
            };
            let mut out = BytesMut::new();
            out.extend_from_slice(b"data: ");
            write_json(&mut out, &progress);
            out.extend_from_slice(b"\n\n");
            yield Chunk { bytes: out.freeze(), tokens: 0 };
        }
    }
}

fn error(message: String) -> Chunk {
    let mut out = BytesMut::new();
    write_event(&mut out, EVENT_ERROR, &ErrorBody { error: message });
    Chunk {
        bytes: out.freeze(),
        tokens: 0,
    }
}
