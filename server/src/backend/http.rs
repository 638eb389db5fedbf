//! What every backend reached over HTTP shares: one pooled client, the
//! timeouts (connecting, and the wait for response headers; never a body),
//! the mapping of a refusal, a timeout or a failed connection into a
//! [`BackendError`] that names no address, and the count of answers open.
//! Ollama and OpenAI-compatible servers differ only in their paths and
//! wire formats, which their own modules hold. Answer streams of plain-HTTP
//! upstreams are read by [`h1`]'s client instead of reqwest's, in the task
//! that relays them.

pub mod answer;
pub mod h1;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use self::answer::AnswerBody;
use self::h1::{H1Client, H1Error};
use super::{BackendError, ConnectFailure};

/// The most of an error answer's body read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How to reach one upstream server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The instance's name: what `/readyz`, the metrics and the logs say.
    pub name: String,
    pub url: Url,
    /// Bounds connecting, and separately the wait for response headers.
    pub timeout: Duration,
    pub tcp_keep_alive: Duration,
    pub idle_timeout: Duration,
}

/// Why a client of an upstream could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the URL of {name} must be http:// or https:// (got {url})")]
    Scheme { name: String, url: Url },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("the API key of {name} cannot be sent in a header")]
    Key { name: String },
}

/// A client of one upstream server. Cheap to clone: clones share the pool
/// and the count of open answers.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    pub name: Arc<str>,
    /// The base URL, ending in `/` so that API paths join under it.
    pub base: Url,
    pub http: reqwest::Client,
    pub timeout: Duration,
    /// The client of answer streams, for a plain-HTTP upstream ([`h1`]).
    h1: Option<Arc<H1Client>>,
    /// Answers being streamed from it right now.
    open_streams: Arc<AtomicUsize>,
}

impl HttpUpstream {
    /// A client that sends `headers` (an API key) with every request.
    pub fn new(
        settings: HttpSettings,
        headers: reqwest::header::HeaderMap,
    ) -> Result<Self, SetupError> {
        let mut base = settings.url;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(SetupError::Scheme {
                name: settings.name,
                url: base,
            });
        }
        // `join` replaces the last path segment unless the base ends in '/'.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let h1 = H1Client::new(
            &base,
            &headers,
            settings.tcp_keep_alive,
            settings.idle_timeout,
        )
        .map(Arc::new);
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .tcp_keepalive(settings.tcp_keep_alive)
            .pool_idle_timeout(settings.idle_timeout)
            .tcp_nodelay(true)
            .default_headers(headers)
            .build()?;
        Ok(Self {
            name: settings.name.into(),
            base,
            http,
            timeout: settings.timeout,
            h1,
            open_streams: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// An API path under the base URL.
    pub fn join(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("API paths are valid relative URLs")
    }

    /// Where it is, for operators (`/readyz`, logs); never for clients.
    pub fn location(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// Sends a request and waits, within the timeout, for a 2xx status;
    /// any other status becomes the matching [`BackendError`].
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, BackendError> {
        let response = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(error)) => return Err(self.unreachable(&error)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.refusal(response).await)
        }
    }

    /// POSTs `body` as JSON to ask for an answer stream, and waits, within
    /// the timeout, for a 2xx status; any other status becomes the matching
    /// [`BackendError`].
    pub async fn post_answer<T: Serialize>(
        &self,
        url: &Url,
        body: &T,
    ) -> Result<AnswerBody, BackendError> {
        let Some(h1) = &self.h1 else {
            let response = self.send(self.http.post(url.clone()).json(body)).await?;
            return Ok(AnswerBody::reqwest(response));
        };
        let json = serde_json::to_vec(body).map_err(|error| BackendError::Internal {
            backend: self.name.clone(),
            message: "cannot encode the request".into(),
            detail: error.to_string(),
        })?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let response = h1
            .post_json(url, &json, deadline)
            .await
            .map_err(|error| self.h1_failure(error))?;
        if (200..300).contains(&response.status) {
            return Ok(AnswerBody::h1(response.body));
        }
        let body = tokio::time::timeout(self.timeout, response.body.collect(ERROR_BODY_LIMIT))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Err(status_error(&self.name, response.status, &body))
    }

    /// What an [`h1`] failure before the response head means for the client.
    fn h1_failure(&self, error: H1Error) -> BackendError {
        let reason = match &error {
            H1Error::TimedOut => return self.timed_out(),
            H1Error::Connect(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
                std::io::ErrorKind::TimedOut => ConnectFailure::TimedOut,
                _ if io.to_string().contains("failed to lookup address") => {
                    ConnectFailure::NameNotResolved
                }
                _ => ConnectFailure::Other,
            },
            H1Error::Io(_) | H1Error::Malformed(_) => ConnectFailure::Other,
        };
        BackendError::Unreachable {
            backend: self.name.clone(),
            reason,
            detail: format!("{}: {error}", self.location()),
        }
    }

    /// The connection broke while an answer was being read (`detail` says how).
    pub fn broken_with(&self, detail: String) -> BackendError {
        BackendError::Broken {
            backend: self.name.clone(),
            detail,
        }
    }

    pub fn timed_out(&self) -> BackendError {
        BackendError::Timeout {
            backend: self.name.clone(),
            after: self.timeout,
        }
    }

    pub fn unreachable(&self, error: &reqwest::Error) -> BackendError {
        BackendError::Unreachable {
            backend: self.name.clone(),
            reason: connect_failure(error),
            detail: format!("{}: {}", self.location(), root_cause(error)),
        }
    }

    /// The connection broke while an answer was being read.
    pub fn broken(&self, error: &reqwest::Error) -> BackendError {
        BackendError::Broken {
            backend: self.name.clone(),
            detail: root_cause(error),
        }
    }

    /// Turns a non-2xx answer into an error ([`status_error`]).
    pub async fn refusal(&self, response: reqwest::Response) -> BackendError {
        let status = response.status().as_u16();
        let body = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        status_error(&self.name, status, &body)
    }

    /// Reads a JSON answer within the timeout.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(self.timeout, response.json())
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|error| BackendError::Malformed {
                backend: self.name.clone(),
                detail: format!("unreadable {what}: {error}"),
            })
    }

    /// `GET url`, its JSON answer read within the timeout.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<T, BackendError> {
        let response = self.send(self.http.get(url.clone())).await?;
        self.json(response, what).await
    }

    /// Counts one answer as open until the guard is dropped.
    pub fn open_stream(&self) -> OpenStream {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream(self.open_streams.clone())
    }

    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::Relaxed)
    }
}

/// Counts one answer streaming from an upstream until dropped.
pub struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upstream's non-2xx answer as the error it is, the one mapping for
/// answers llm-chat reads and management calls it passes on. The server's
/// own message (in any of [`error_message`]'s JSON shapes) is kept for the
/// client; any other body is not repeated (a proxy's HTML page may say
/// things about the network).
pub fn status_error(backend: &str, status: u16, body: &[u8]) -> BackendError {
    let message = error_message(body);
    if message.is_none() && !body.is_empty() {
        tracing::debug!(
            backend,
            status,
            body = %String::from_utf8_lossy(&body[..body.len().min(200)]),
            "error answer without a JSON message"
        );
    }
    let plain = || {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|code| code.canonical_reason())
            .unwrap_or("error")
            .to_lowercase()
    };
    match status {
        404 => BackendError::ModelNotFound {
            message: message.unwrap_or_else(plain),
        },
        // Our key, not the client's: a fault of this server's setup
        // (a 502), which the client cannot fix by asking again.
        // The upstream's own words are left out: OpenAI's repeat part
        // of the key ("Incorrect API key provided: sk-ab***yz").
        401 | 403 => BackendError::Status {
            backend: backend.into(),
            status,
            message: Some("llm-chat's API key was refused".into()),
        },
        429 | 503 => BackendError::Busy {
            backend: backend.into(),
            message: message.unwrap_or_else(|| format!("{backend} is busy; try again shortly")),
        },
        400..=499 => BackendError::Rejected {
            status,
            message: message.unwrap_or_else(plain),
        },
        _ => BackendError::Status {
            backend: backend.into(),
            status,
            message,
        },
    }
}

/// An error body's message, in the shapes servers use: Ollama's
/// `{"error": "…"}`, OpenAI's (and llama.cpp server's)
/// `{"error": {"message": "…"}}`, vLLM's `{"object": "error", "message": "…"}`.
pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Text { error: String },
        Nested { error: Nested },
        Flat { message: String },
    }
    #[derive(Deserialize)]
    struct Nested {
        message: String,
    }
    let message = match serde_json::from_slice::<Shape>(body).ok()? {
        Shape::Text { error } => error,
        Shape::Nested { error } => error.message,
        Shape::Flat { message } => message,
    };
    Some(message).filter(|message| !message.trim().is_empty())
}

/// What kind of connection failure a reqwest error is, for the client.
fn connect_failure(error: &reqwest::Error) -> ConnectFailure {
    if error.is_timeout() {
        return ConnectFailure::TimedOut;
    }
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return ConnectFailure::Refused,
                std::io::ErrorKind::TimedOut => return ConnectFailure::TimedOut,
                _ => {}
            }
        }
        let text = current.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return ConnectFailure::NameNotResolved;
        }
        if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
            return ConnectFailure::Tls;
        }
        cause = current.source();
    }
    ConnectFailure::Other
}

/// The innermost cause of a reqwest error, which says what really happened
/// ("Connection refused (os error 111)") where the outer one only names the
/// URL. For the logs.
pub fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_servers_error_shape_gives_its_message() {
        assert_eq!(
            error_message(br#"{"error":"model 'x' not found"}"#).as_deref(),
            Some("model 'x' not found")
        );
        assert_eq!(
            error_message(
                br#"{"error":{"message":"Loading model","type":"unavailable_error","code":503}}"#
            )
            .as_deref(),
            Some("Loading model")
        );
        assert_eq!(
            error_message(br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#)
                .as_deref(),
            Some("The model `x` does not exist.")
        );
        assert_eq!(error_message(b"<html>bad gateway</html>"), None);
        assert_eq!(error_message(br#"{"error":"  "}"#), None);
    }

    #[test]
    fn each_status_is_the_error_it_means_and_no_key_or_page_is_repeated() {
        let error = |status, body: &[u8]| status_error("gpu", status, body);
        assert!(matches!(
            error(404, br#"{"error":"model 'x' not found"}"#),
            BackendError::ModelNotFound { message } if message == "model 'x' not found"
        ));
        let refused = error(
            401,
            br#"{"error":{"message":"Incorrect API key provided: sk-ab***yz"}}"#,
        );
        assert!(
            matches!(&refused, BackendError::Status { status: 401, .. }),
            "{refused:?}"
        );
        assert!(!refused.to_string().contains("sk-"), "{refused}");
        for status in [429, 503] {
            assert!(matches!(
                error(status, b""),
                BackendError::Busy { message, .. } if message == "gpu is busy; try again shortly"
            ));
        }
        assert!(matches!(
            error(400, b"<html>no</html>"),
            BackendError::Rejected { status: 400, message } if message == "bad request"
        ));
        let failed = error(500, br#"{"error":"llama runner process has terminated"}"#);
        assert_eq!(
            failed.to_string(),
            "gpu answered 500: llama runner process has terminated"
        );
        assert_eq!(
            error(502, b"<html>10.0.0.7</html>").to_string(),
            "gpu answered 502"
        );
    }
}
