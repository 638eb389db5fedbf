//! Failover before the first token. A request is started on one member
//! after another until one answers (its headers: a 200); the answer's
//! stream goes to the client at once, as a single upstream's does, so the
//! client's headers never wait for a token. Until the first event, a
//! failure another member could avoid (an error inside the 200 before any
//! text, as vLLM does, or no first token within the deadline) moves the
//! answer to the next member inside that same stream, so the client sees
//! one clean answer; after it, nothing is retried (that would repeat text).

use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use super::{RACES_BEFORE_BUSY, Registry, record, under_way};
use crate::backend::{BackendError, StreamEvent, TokenStream};
use crate::inference::InferenceRequest;

/// One request's tries: the members serving its model, those tried, and
/// the last reason to move on.
pub(super) struct Attempts {
    registry: Arc<Registry>,
    request: InferenceRequest,
    candidates: Vec<usize>,
    tried: Vec<usize>,
    limit: usize,
    last_error: Option<BackendError>,
}

impl Attempts {
    pub(super) fn new(
        registry: Arc<Registry>,
        request: InferenceRequest,
        candidates: Vec<usize>,
    ) -> Self {
        let limit = registry.failover.attempts.min(candidates.len());
        Self {
            registry,
            request,
            candidates,
            tried: Vec::with_capacity(limit),
            limit,
            last_error: None,
        }
    }

    fn more_to_try(&self) -> bool {
        self.tried.len() < self.limit
    }

    /// Starts the answer on the next member that answers it, and says
    /// which member that is. A refusal of the request itself, or a failure
    /// with no member left to try, is the answer.
    async fn start_next(&mut self) -> Result<(TokenStream, usize), BackendError> {
        let registry = self.registry.clone();
        let mut raced = 0;
        while self.more_to_try() {
            let index = match registry.pick(&self.candidates, &self.tried, &self.request.model) {
                Ok(index) => index,
                Err(busy) => return Err(self.last_error.take().unwrap_or(busy)),
            };
            let member = &registry.members[index];
            // The pick saw a free place; another request may have taken it
            // since. Then pick again: the limit is never exceeded.
            let Some(lease) = member.try_lease() else {
                raced += 1;
                if raced > RACES_BEFORE_BUSY {
                    let busy = || registry.busy(&self.candidates, &self.request.model);
                    return Err(self.last_error.take().unwrap_or_else(busy));
                }
                continue;
            };
            self.tried.push(index);
            match member.backend.infer(self.request.clone()).await {
                Ok(stream) => return Ok((under_way(member, stream, lease), index)),
                Err(error) => {
                    record(member, Err(&error));
                    self.move_on(index, error)?;
                }
            }
        }
        Err(self
            .last_error
            .take()
            .expect("a try is made before the tries run out"))
    }

    /// Keeps `error` as the reason to try the next member, or gives it back
    /// when nothing may be tried after it.
    fn move_on(&mut self, index: usize, error: BackendError) -> Result<(), BackendError> {
        if !(self.more_to_try() && error.retryable_before_first_token()) {
            return Err(error);
        }
        tracing::info!(
            backend = self.registry.members[index].name(),
            model = %self.request.model,
            %error,
            "moving the request to the next backend serving the model"
        );
        self.last_error = Some(error);
        Ok(())
    }
}

/// Starts `request` on its model's members, failing over as the module
/// comment says.
pub(super) async fn start(mut attempts: Attempts) -> Result<TokenStream, BackendError> {
    let (stream, index) = attempts.start_next().await?;
    if !attempts.more_to_try() {
        return Ok(stream);
    }
    let backend = stream.backend().clone();
    Ok(TokenStream::new(
        backend,
        until_first_event(attempts, stream, index),
    ))
}

/// `current`'s events, moved to the next member while the first of them is
/// a failure another member could avoid. The last member tried has no
/// first-token deadline: there is nowhere left to move to.
fn until_first_event(
    mut attempts: Attempts,
    current: TokenStream,
    mut index: usize,
) -> impl Stream<Item = Result<StreamEvent, BackendError>> + Send {
    async_stream::stream! {
        let mut current = Some(current);
        while let Some(stream) = current.as_mut() {
            let deadline = attempts
                .registry
                .failover
                .first_token
                .filter(|_| attempts.more_to_try());
            let first = match deadline {
                Some(after) => tokio::time::timeout(after, stream.next())
                    .await
                    .map_err(|_| after),
                None => Ok(stream.next().await),
            };
            let error = match first {
                // A failed answer records its own end.
                Ok(Some(Err(error))) if attempts.more_to_try() => error,
                Ok(Some(event)) => {
                    yield event;
                    while let Some(event) = stream.next().await {
                        yield event;
                    }
                    return;
                }
                Ok(None) => return,
                Err(after) => {
                    let error = BackendError::Timeout {
                        backend: stream.backend().clone(),
                        after,
                    };
                    record(&attempts.registry.members[index], Err(&error));
                    error
                }
            };
            // Let the failed answer go (its place, its connection) first.
            drop(current.take());
            if let Err(error) = attempts.move_on(index, error) {
                yield Err(error);
                return;
            }
            match attempts.start_next().await {
                Ok((next, next_index)) => {
                    current = Some(next);
                    index = next_index;
                }
                Err(error) => {
                    yield Err(error);
                    return;
                }
            }
        }
    }
}
