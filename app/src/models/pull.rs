//! A pull as the browser runs it (browser only): a streaming `fetch` POST
//! whose body is read chunk by chunk into SSE frames; cancelling aborts the
//! request, which closes the stream, and the server cancels the pull at
//! Ollama.

use js_sys::{Reflect, Uint8Array};
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader};

use super::sse::{Frame, FrameReader};
use crate::api::PullRequest;

/// How a pull's stream ended, before its frames said why.
pub enum Ended {
    /// The stream closed (after `event: done` or `event: error`, or early).
    Closed,
    /// The server refused the pull, or could not be reached.
    Refused(String),
    /// The user cancelled it.
    Cancelled,
}

/// A running pull; [`PullHandle::cancel`] stops it.
pub struct PullHandle {
    controller: AbortController,
}

impl PullHandle {
    pub fn cancel(&self) {
        self.controller.abort();
    }
}

/// Starts pulling: each frame goes to `on_frame` as it arrives, then
/// `on_end` hears how the stream ended.
pub fn start(
    request: PullRequest,
    mut on_frame: impl FnMut(Frame) + 'static,
    on_end: impl FnOnce(Ended) + 'static,
) -> Result<PullHandle, String> {
    let controller = AbortController::new().map_err(|_| "this browser cannot cancel requests")?;
    let signal = controller.signal();
    spawn_local(async move {
        let ended = read(&request, &signal, &mut on_frame).await;
        on_end(if signal.aborted() {
            Ended::Cancelled
        } else {
            ended
        });
    });
    Ok(PullHandle { controller })
}

async fn read(
    request: &PullRequest,
    signal: &web_sys::AbortSignal,
    on_frame: &mut impl FnMut(Frame),
) -> Ended {
    let sent = match gloo_net::http::Request::post("/api/v1/models/pull")
        .abort_signal(Some(signal))
        .json(request)
    {
        Ok(sent) => sent.send().await,
        Err(error) => return Ended::Refused(error.to_string()),
    };
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Ended::Refused(format!("cannot reach the server: {error}")),
    };
    if !response.ok() {
        return Ended::Refused(crate::client::refusal(response).await);
    }
    let Some(body) = response.body() else {
        return Ended::Closed;
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut frames = FrameReader::default();
    loop {
        let Ok(chunk) = JsFuture::from(reader.read()).await else {
            // Aborted, or the connection dropped.
            return Ended::Closed;
        };
        if field(&chunk, "done").as_bool() == Some(true) {
            return Ended::Closed;
        }
        let bytes = field(&chunk, "value")
            .unchecked_into::<Uint8Array>()
            .to_vec();
        for frame in frames.push(&bytes) {
            on_frame(frame);
        }
    }
}

fn field(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}
