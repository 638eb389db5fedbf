//! Burst coalescing: items that arrive close together travel as one batch.
//!
//! Every item is passed on at once, except in a burst: an item arriving
//! less than `window` after the last batch left (faster than 1,000 items/s
//! for the 1 ms window the server uses, far above any model's pace) waits
//! out the rest of that window, and everything arriving meanwhile goes with
//! it. So a flood of tokens costs one write (or one wake-up of readers) per
//! window instead of one per token, while the first token, and tokens at a
//! model's pace, are never held. Measured on the relay (BENCHMARKS.md, "What
//! the benchmark changed", 3): `writev` calls in 2 s at saturation went from
//! 70,336 to 3,216, and tokens/s from 0.19× to 0.56× of the direct path.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// Writes closer together than this are merged.
pub const BURST_WINDOW: Duration = Duration::from_millis(1);

/// Most items in one batch, so one batch stays one modest write.
pub const MAX_BATCH: usize = 512;

/// Where a batch gathers. Items are added as they arrive, so an encoder can
/// write each out at once into the buffer that will leave as one write; the
/// batch is taken when it leaves.
pub trait Batch<T> {
    type Output;
    fn push(&mut self, item: T);
    /// Items gathered since the last take.
    fn len(&self) -> usize;
    fn take(&mut self) -> Self::Output;
}

impl<T> Batch<T> for Vec<T> {
    type Output = Vec<T>;

    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn take(&mut self) -> Vec<T> {
        std::mem::take(self)
    }
}

/// The batching adapter; see the module comment.
pub struct Coalesce<S, B> {
    inner: S,
    window: Duration,
    max_items: usize,
    batch: B,
    /// When the last batch left; `None` before the first.
    last_flush: Option<Instant>,
    /// Wakes the adapter when a held batch is due; created once, re-armed.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    ended: bool,
}

/// Batches `inner` within the server's burst window, as `Vec`s.
pub fn coalesce<S: Stream + Unpin>(inner: S) -> Coalesce<S, Vec<S::Item>> {
    Coalesce::new(inner, Vec::new(), BURST_WINDOW, MAX_BATCH)
}

/// Batches `inner` within the server's burst window into `batch`.
pub fn coalesce_into<S, B>(inner: S, batch: B) -> Coalesce<S, B>
where
    S: Stream + Unpin,
    B: Batch<S::Item>,
{
    Coalesce::new(inner, batch, BURST_WINDOW, MAX_BATCH)
}

impl<S, B> Coalesce<S, B>
where
    S: Stream + Unpin,
    B: Batch<S::Item>,
{
    pub fn new(inner: S, batch: B, window: Duration, max_items: usize) -> Self {
        Self {
            inner,
            window,
            max_items: max_items.max(1),
            batch,
            last_flush: None,
            timer: None,
            armed: false,
            ended: false,
        }
    }

    /// Whether the batch must wait for the window to close; arms the timer.
    fn hold(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(last) = self.last_flush else {
            return false;
        };
        let due = last + self.window;
        if Instant::now() >= due {
            return false;
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if !self.armed {
            timer.as_mut().reset(due);
            self.armed = true;
        }
        timer.as_mut().poll(cx).is_pending()
    }
}

impl<S, B> Stream for Coalesce<S, B>
where
    S: Stream + Unpin,
    B: Batch<S::Item> + Unpin,
{
    type Item = B::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let mut waiting = false;
        while !this.ended && this.batch.len() < this.max_items {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(item)) => this.batch.push(item),
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => {
                    waiting = true;
                    break;
                }
            }
        }
        if this.batch.len() == 0 {
            return if this.ended {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        }
        // More may come within the window: hold the batch until it closes.
        if waiting && this.hold(cx) {
            return Poll::Pending;
        }
        this.armed = false;
        this.last_flush = Some(Instant::now());
        Poll::Ready(Some(this.batch.take()))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{FutureExt, StreamExt};
    use tokio::sync::mpsc;

    use super::*;

    type Items = Pin<Box<dyn Stream<Item = u32> + Send>>;
    type Batches = Coalesce<Items, Vec<u32>>;

    /// Wider than the server's window: tokio's timers tick in milliseconds,
    /// so a test can place events inside this one.
    const WINDOW: Duration = Duration::from_millis(10);

    /// A channel-fed stream, so a test decides when each item arrives.
    fn fed(max_items: usize) -> (mpsc::UnboundedSender<u32>, Batches) {
        let (send, mut receive) = mpsc::unbounded_channel();
        let items: Items = Box::pin(futures_util::stream::poll_fn(move |cx| {
            receive.poll_recv(cx)
        }));
        (send, Coalesce::new(items, Vec::new(), WINDOW, max_items))
    }

    /// The next batch if it is ready without waiting.
    fn ready_now(batches: &mut Batches) -> Option<Vec<u32>> {
        batches.next().now_or_never().flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_item_is_never_held() {
        let (send, mut batches) = fed(MAX_BATCH);
        send.send(1).unwrap();
        assert_eq!(ready_now(&mut batches), Some(vec![1]));
    }

    #[tokio::test(start_paused = true)]
    async fn items_at_a_models_pace_pass_one_by_one_at_once() {
        let (send, mut batches) = fed(MAX_BATCH);
        for item in 0..5 {
            send.send(item).unwrap();
            assert_eq!(
                ready_now(&mut batches),
                Some(vec![item]),
                "item {item} held"
            );
            tokio::time::sleep(WINDOW * 2).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_waits_out_the_window_and_leaves_as_one_batch() {
        let (send, mut batches) = fed(MAX_BATCH);
        send.send(0).unwrap();
        assert_eq!(ready_now(&mut batches), Some(vec![0]));
        let flushed = Instant::now();
        // Within the window after that flush: held...
        send.send(1).unwrap();
        send.send(2).unwrap();
        assert_eq!(ready_now(&mut batches), None);
        tokio::time::sleep(WINDOW / 2).await;
        send.send(3).unwrap();
        assert_eq!(ready_now(&mut batches), None);
        // ...until the window, counted from the last flush, closes.
        assert_eq!(batches.next().await, Some(vec![1, 2, 3]));
        let waited = Instant::now() - flushed;
        assert!(
            waited >= WINDOW && waited <= WINDOW + Duration::from_millis(1),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_flushes_what_is_held() {
        let (send, mut batches) = fed(MAX_BATCH);
        send.send(0).unwrap();
        assert_eq!(ready_now(&mut batches), Some(vec![0]));
        send.send(1).unwrap();
        drop(send);
        assert_eq!(ready_now(&mut batches), Some(vec![1]));
        assert_eq!(batches.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_leaves_without_waiting() {
        let (send, mut batches) = fed(3);
        send.send(0).unwrap();
        assert_eq!(ready_now(&mut batches), Some(vec![0]));
        for item in 1..=4 {
            send.send(item).unwrap();
        }
        assert_eq!(ready_now(&mut batches), Some(vec![1, 2, 3]));
        assert_eq!(batches.next().await, Some(vec![4]));
    }

    #[tokio::test]
    async fn a_flood_arrives_whole_in_order_and_in_few_batches() {
        let (send, mut batches) = fed(MAX_BATCH);
        let writer = tokio::spawn(async move {
            for item in 0..10_000 {
                send.send(item).unwrap();
                if item % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut seen = Vec::new();
        let mut count = 0;
        while let Some(batch) = batches.next().await {
            assert!(batch.len() <= MAX_BATCH);
            seen.extend(batch);
            count += 1;
        }
        writer.await.unwrap();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
        assert!(
            count < 10_000 / 7,
            "{count} batches: the flood was not coalesced"
        );
    }
}
