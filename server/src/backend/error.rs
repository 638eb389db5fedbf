//! Why a backend could not serve a request, typed so that the layers above
//! can tell what happened: the status a client gets, what it reads, what
//! the logs get, and whether trying another backend before the first token
//! is safe. A client never reads an internal address or path: those are in
//! [`BackendError::detail`], for the logs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// The backend does not serve this model. The message is the backend's
    /// own (Ollama's "try pulling it first") or ours.
    #[error("{message}")]
    ModelNotFound { message: String },
    /// The backend refused the request itself (a 4xx, a prompt that does
    /// not fit the context window): sending it elsewhere would not help.
    #[error("{message}")]
    Rejected { status: u16, message: String },
    /// No connection could be made.
    #[error("{backend} is unreachable: {reason}")]
    Unreachable {
        backend: Arc<str>,
        reason: ConnectFailure,
        /// The address and the system's own words, for the logs.
        detail: String,
    },
    /// No response headers within the timeout.
    #[error("{backend} did not answer within {}", humantime::format_duration(*.after))]
    Timeout { backend: Arc<str>, after: Duration },
    /// A server error status before any answer (a 5xx). Only a JSON error
    /// message is repeated to the client; other bodies stay in the logs.
    #[error("{backend} answered {status}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        backend: Arc<str>,
        status: u16,
        message: Option<String>,
    },
    /// At capacity: every slot and queue place is taken, or the upstream
    /// said so (429, 503).
    #[error("{message}")]
    Busy { backend: Arc<str>, message: String },
    /// The backend reported a failure inside its answer (an error line).
    #[error("{message}")]
    Failed { backend: Arc<str>, message: String },
    /// A line of the answer could not be read.
    #[error("{backend} sent a malformed line")]
    Malformed { backend: Arc<str>, detail: String },
    /// The answer's connection broke.
    #[error("the stream from {backend} broke")]
    Broken { backend: Arc<str>, detail: String },
    /// The answer ended before its final chunk.
    #[error("{backend} ended the stream before it was done")]
    EndedEarly { backend: Arc<str> },
    /// Something failed inside the backend itself (a model that does not
    /// load, an engine that stopped): a fault of this server, not the request.
    #[error("{message}")]
    Internal {
        backend: Arc<str>,
        message: String,
        detail: String,
    },
}

/// Why a connection could not be made, in words a client may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    Refused,
    TimedOut,
    NameNotResolved,
    Tls,
    Other,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Refused => "connection refused",
            Self::TimedOut => "connection timed out",
            Self::NameNotResolved => "host name not found",
            Self::Tls => "TLS handshake failed",
            Self::Other => "cannot connect",
        })
    }
}

impl BackendError {
    /// Whether sending the same request to another backend that serves the
    /// model is safe, provided no token has reached the client yet: nothing
    /// was produced, or what was is discarded. A model one backend lacks
    /// (deleted there since it was listed) another may still have.
    pub fn retryable_before_first_token(&self) -> bool {
        match self {
            Self::ModelNotFound { .. }
            | Self::Unreachable { .. }
            | Self::Timeout { .. }
            | Self::Status { .. }
            | Self::Busy { .. }
            | Self::Failed { .. }
            | Self::Malformed { .. }
            | Self::Broken { .. }
            | Self::EndedEarly { .. } => true,
            Self::Rejected { .. } | Self::Internal { .. } => false,
        }
    }

    /// What the logs get beyond the client's message.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Unreachable { detail, .. }
            | Self::Malformed { detail, .. }
            | Self::Broken { detail, .. }
            | Self::Internal { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The backend instance that failed, when one did.
    pub fn backend(&self) -> Option<&str> {
        match self {
            Self::ModelNotFound { .. } | Self::Rejected { .. } => None,
            Self::Unreachable { backend, .. }
            | Self::Timeout { backend, .. }
            | Self::Status { backend, .. }
            | Self::Busy { backend, .. }
            | Self::Failed { backend, .. }
            | Self::Malformed { backend, .. }
            | Self::Broken { backend, .. }
            | Self::EndedEarly { backend }
            | Self::Internal { backend, .. } => Some(backend),
        }
    }

    /// Whether the failure is the server's side (a 5xx), not the request's.
    pub fn is_server_side(&self) -> bool {
        !matches!(self, Self::ModelNotFound { .. } | Self::Rejected { .. })
    }

    /// Logs the error with its detail, once, where it is turned into an
    /// answer.
    pub fn log(&self) {
        if self.is_server_side() {
            tracing::warn!(
                backend = self.backend().unwrap_or_default(),
                error = %self,
                detail = self.detail().unwrap_or_default(),
                "backend failed"
            );
        } else {
            tracing::debug!(error = %self, "backend refused the request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_name_no_address() {
        let error = BackendError::Unreachable {
            backend: "ollama".into(),
            reason: ConnectFailure::Refused,
            detail: "http://10.0.0.7:11434: Connection refused (os error 111)".into(),
        };
        assert_eq!(
            error.to_string(),
            "ollama is unreachable: connection refused"
        );
        assert!(error.detail().unwrap().contains("10.0.0.7"));
        let status = BackendError::Status {
            backend: "ollama".into(),
            status: 500,
            message: None,
        };
        assert_eq!(status.to_string(), "ollama answered 500");
    }

    #[test]
    fn only_failures_before_an_answer_can_move_elsewhere() {
        let timeout = BackendError::Timeout {
            backend: "ollama".into(),
            after: Duration::from_secs(2),
        };
        assert_eq!(timeout.to_string(), "ollama did not answer within 2s");
        assert!(timeout.retryable_before_first_token());
        let rejected = BackendError::Rejected {
            status: 400,
            message: "bad".into(),
        };
        assert!(!rejected.retryable_before_first_token());
        assert!(!rejected.is_server_side());
        let missing = BackendError::ModelNotFound {
            message: "model \"llama3.2\" not found, try pulling it first".into(),
        };
        assert!(missing.retryable_before_first_token());
        assert!(!missing.is_server_side());
    }
}
