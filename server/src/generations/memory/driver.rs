//! Running one generation. Two tasks serve it while it runs. The driver
//! reads the answer's tokens into the log and wakes on every chunk the
//! upstream sends, so it does nothing else: it only checks an abort flag
//! (one atomic load). A cancel aborts it directly; the supervisor sleeps
//! until the grace period runs out with no reader, or the server shuts
//! down, and then aborts it with that reason. Once it has ended, no task is
//! left: the store holds the finished generation until it expires.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{AbortRegistration, Abortable};
use tokio::sync::{oneshot, watch};

use super::entry::{Ending, Generation};
use crate::generations::End;
use crate::shutdown::{SHUTTING_DOWN, Shutdown};
use crate::stream::coalesce::coalesce;
use crate::stream::{StreamEvent, TokenStream};

/// What a running generation is given.
pub struct Run {
    pub generation: Arc<Generation>,
    pub tokens: TokenStream,
    pub abort: AbortRegistration,
    pub grace: Duration,
    pub max_bytes: usize,
    pub shutdown: Shutdown,
}

/// Starts the generation's tasks; `finished` runs once it has ended and
/// its end is recorded.
pub fn spawn(run: Run, finished: impl FnOnce(&Arc<Generation>) + Send + 'static) {
    let Run {
        generation,
        tokens,
        abort,
        grace,
        max_bytes,
        shutdown,
    } = run;
    let (driver_done, driver_gone) = oneshot::channel::<()>();
    tokio::spawn(supervise(generation.clone(), grace, shutdown, driver_gone));
    tokio::spawn(async move {
        let driver = Abortable::new(drive(&generation, tokens, max_bytes), abort);
        // Aborted or not, the token stream (and with it the answer upstream)
        // is dropped once this await returns: the backend stops generating.
        let ending = driver.await.map_or(Ending::Aborted, Ending::Finished);
        drop(driver_done);
        generation.finish(ending);
        finished(&generation);
    });
}

/// Reads the answer's tokens into the log until it ends. Readers wake once
/// per append, and waking a task on another thread costs far more than a
/// token, so tokens are appended in the bursts [`coalesce`] makes: at once
/// at a model's pace, at most once per burst window in a flood.
async fn drive(generation: &Generation, tokens: TokenStream, max_bytes: usize) -> End {
    let backend = tokens.backend().clone();
    let mut batches = coalesce(tokens);
    while let Some(batch) = batches.next().await {
        let texts = batch.iter().map_while(|event| event.as_ref().ok());
        if !generation.append(texts, max_bytes) {
            return End::Failed(format!(
                "the answer grew past the limit of {max_bytes} bytes"
            ));
        }
        // A token stream's last item is its end, so it closes the batch.
        match batch.into_iter().last() {
            Some(Ok(StreamEvent::Done(completion))) => {
                return End::Done {
                    completion: *completion,
                    time_to_first_token: None,
                };
            }
            Some(Err(error)) => return End::Failed(error.to_string()),
            _ => {}
        }
    }
    End::Failed(crate::backend::BackendError::EndedEarly { backend }.to_string())
}

/// Ends a running generation early when nobody has listened to it for
/// `grace`, or when the server shuts down; returns as soon as the driver is
/// gone.
async fn supervise(
    generation: Arc<Generation>,
    grace: Duration,
    shutdown: Shutdown,
    driver_gone: oneshot::Receiver<()>,
) {
    let reason = tokio::select! {
        biased;
        _ = driver_gone => return,
        () = shutdown.triggered() => End::Failed(SHUTTING_DOWN.into()),
        () = orphaned(generation.subscribers(), grace) => End::Cancelled(format!(
            "cancelled: no client listened for {}",
            humantime::format_duration(grace)
        )),
    };
    generation.stop(reason);
}

/// Resolves once the subscriber count has stayed at zero for `grace`.
async fn orphaned(mut subscribers: watch::Receiver<usize>, grace: Duration) {
    loop {
        while *subscribers.borrow_and_update() > 0 {
            if subscribers.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(grace) => return,
            changed = subscribers.changed() => {
                if changed.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}
