//! The HTTP API as the page calls it (browser only): JSON in, JSON out, and
//! a non-2xx answer as its `{"error"}` message.

use leptos::task::spawn_local;
use serde::Serialize;
use serde::de::DeserializeOwned;
use web_sys::AbortSignal;

use crate::api::ErrorBody;

pub async fn post_json<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
    signal: Option<&AbortSignal>,
) -> Result<T, String> {
    let request = gloo_net::http::Request::post(url)
        .abort_signal(signal)
        .json(body)
        .map_err(|error| error.to_string())?;
    answer(request.send().await).await
}

pub async fn patch_json<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, String> {
    let request = gloo_net::http::Request::patch(url)
        .json(body)
        .map_err(|error| error.to_string())?;
    answer(request.send().await).await
}

pub async fn delete(url: &str) -> Result<(), String> {
    let response = gloo_net::http::Request::delete(url)
        .send()
        .await
        .map_err(|error| format!("cannot reach the server: {error}"))?;
    if response.ok() {
        Ok(())
    } else {
        Err(refusal(response).await)
    }
}

/// Sends in the background, for changes whose answer the page does not need.
pub fn fire(request: impl Future<Output = Result<(), String>> + 'static) {
    spawn_local(async move {
        if let Err(error) = request.await {
            web_sys::console::warn_1(&error.into());
        }
    });
}

async fn answer<T: DeserializeOwned>(
    sent: Result<gloo_net::http::Response, gloo_net::Error>,
) -> Result<T, String> {
    let response = sent.map_err(|error| format!("cannot reach the server: {error}"))?;
    if !response.ok() {
        return Err(refusal(response).await);
    }
    response
        .json::<T>()
        .await
        .map_err(|error| format!("the server sent an unreadable answer: {error}"))
}

pub(crate) async fn refusal(response: gloo_net::http::Response) -> String {
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => format!("the server answered HTTP {status}"),
    }
}
