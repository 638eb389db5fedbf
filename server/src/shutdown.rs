//! Stopping the server: the signals that ask for it, and the switch every
//! part of the server watches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// What a stream or generation cut short by a shutdown says.
pub const SHUTTING_DOWN: &str = "server shutting down";

/// The server's stop switch. Tasks await it; hot loops (a token stream's
/// every poll) read its flag, which costs an atomic load where the token's
/// own check takes a lock.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    flag: Arc<AtomicBool>,
}

impl Shutdown {
    /// Starts the shutdown; every waiter wakes.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Resolves once the shutdown has started.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }

    /// [`Shutdown::triggered`] as a future that owns what it needs.
    pub fn triggered_owned(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
