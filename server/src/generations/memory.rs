//! Generations held in this process's memory.
//!
//! Lifetimes: a generation nobody listens to for `grace` is cancelled (its
//! answer upstream dropped); a finished one is kept for `ttl` so a late
//! reconnect can still replay it; the store holds at most `max_generations`,
//! evicting the oldest finished one first, and is full when all are running.
//! Memory follows that bound: the store's map is the only thing holding a
//! finished generation, and one task for the whole store expires them.

mod driver;
mod entry;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::driver::Run;
use self::entry::Generation;
use super::{
    EventStream, GenerationEvent, GenerationSettings, GenerationStore, OnEnd, Snapshot, StoreError,
};
use crate::backend::BoxFuture;
use crate::shutdown::Shutdown;
use crate::stream::TokenStream;

/// How long a cancel waits for the generation to settle before answering.
const CANCEL_SETTLES_WITHIN: Duration = Duration::from_secs(2);

pub struct MemoryStore {
    shared: Arc<Shared>,
    expirer: JoinHandle<()>,
}

struct Shared {
    settings: GenerationSettings,
    held: Mutex<Held>,
    /// Generations not finished yet (a counter: the store can hold thousands).
    running: AtomicUsize,
    /// Wakes the expirer when the first finished generation arrives.
    finished_one: Arc<Notify>,
    shutdown: Shutdown,
}

#[derive(Default)]
struct Held {
    by_id: HashMap<String, Arc<Generation>>,
    /// Finished generations, oldest first, with when each expires. The TTL
    /// is the same for all, so finishing order is expiry order: the front
    /// is both the next to expire and the one to evict.
    finished: VecDeque<(Instant, String)>,
}

impl MemoryStore {
    /// An empty store and its expiry task; needs a Tokio runtime.
    pub fn new(settings: GenerationSettings, shutdown: Shutdown) -> Self {
        let finished_one = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            settings,
            held: Mutex::default(),
            running: AtomicUsize::new(0),
            finished_one: finished_one.clone(),
            shutdown,
        });
        let expirer = tokio::spawn(expire(Arc::downgrade(&shared), finished_one));
        Self { shared, expirer }
    }

    fn get(&self, id: &str) -> Result<Arc<Generation>, StoreError> {
        self.shared
            .held()
            .by_id
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound { id: id.to_string() })
    }

    /// Generations held, running or finished.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.shared.held().by_id.len()
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        self.expirer.abort();
    }
}

impl Shared {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full(&self, held: &Held) -> bool {
        held.by_id.len() >= self.settings.max_generations && held.finished.is_empty()
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Moves a generation that just ended to the finished queue.
    fn finished(&self, generation: &Generation) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        let expires = Instant::now() + self.settings.ttl;
        let mut held = self.held();
        // An evicted id is never reused, but be exact: only this generation.
        if held.by_id.contains_key(&generation.id) {
            held.finished.push_back((expires, generation.id.clone()));
            if held.finished.len() == 1 {
                self.finished_one.notify_one();
            }
        }
    }

    /// Removes the generations whose time is up; returns when the next one is.
    fn expire_due(&self, now: Instant) -> Option<Instant> {
        let mut held = self.held();
        while let Some(&(expires, _)) = held.finished.front() {
            if expires > now {
                return Some(expires);
            }
            if let Some((_, id)) = held.finished.pop_front() {
                held.by_id.remove(&id);
            }
        }
        None
    }
}

/// One task for the whole store: removes each finished generation when its
/// TTL ends. It holds no generation, so an evicted one is freed at once.
async fn expire(shared: Weak<Shared>, finished_one: Arc<Notify>) {
    loop {
        let next = match shared.upgrade() {
            Some(shared) => shared.expire_due(Instant::now()),
            None => return,
        };
        match next {
            Some(at) => tokio::time::sleep_until(at).await,
            // `notify_one` keeps a permit, so one that finished meanwhile is not missed.
            None => finished_one.notified().await,
        }
    }
}

impl GenerationStore for MemoryStore {
    fn check_room(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let held = self.shared.held();
        let result = if self.shared.full(&held) {
            Err(StoreError::Full {
                running: self.shared.running(),
            })
        } else {
            Ok(())
        };
        drop(held);
        Box::pin(std::future::ready(result))
    }

    fn start(
        &self,
        model: String,
        tokens: TokenStream,
        on_end: Option<OnEnd>,
    ) -> BoxFuture<'_, Result<String, StoreError>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (generation, abort) = Generation::new(id.clone(), model);
        let generation = Arc::new(generation);
        {
            let mut held = self.shared.held();
            if self.shared.full(&held) {
                let running = self.shared.running();
                return Box::pin(std::future::ready(Err(StoreError::Full { running })));
            }
            if held.by_id.len() >= self.shared.settings.max_generations
                && let Some((_, oldest)) = held.finished.pop_front()
            {
                held.by_id.remove(&oldest);
            }
            held.by_id.insert(id.clone(), generation.clone());
        }
        self.shared.running.fetch_add(1, Ordering::Relaxed);
        let settings = self.shared.settings;
        let shared = Arc::downgrade(&self.shared);
        driver::spawn(
            Run {
                generation,
                tokens,
                abort,
                grace: settings.grace,
                max_bytes: settings.max_bytes,
                shutdown: self.shared.shutdown.clone(),
            },
            move |generation| {
                if let Some(shared) = shared.upgrade() {
                    shared.finished(generation);
                }
                if let Some(on_end) = on_end {
                    tokio::spawn(on_end(generation.snapshot()));
                }
            },
        );
        Box::pin(std::future::ready(Ok(id)))
    }

    fn state(&self, id: &str) -> BoxFuture<'_, Result<Snapshot, StoreError>> {
        let state = self.get(id).map(|generation| generation.snapshot());
        Box::pin(std::future::ready(state))
    }

    fn subscribe(&self, id: &str, after: u64) -> BoxFuture<'_, Result<EventStream, StoreError>> {
        let events = self.get(id).map(|generation| events(generation, after));
        Box::pin(std::future::ready(events))
    }

    fn cancel(&self, id: &str) -> BoxFuture<'_, Result<Snapshot, StoreError>> {
        let generation = self.get(id);
        Box::pin(async move {
            let generation = generation?;
            generation.cancel();
            // Its driver settles it at once; wait so the answer says so.
            let _ = tokio::time::timeout(CANCEL_SETTLES_WITHIN, generation.ended()).await;
            Ok(generation.snapshot())
        })
    }

    fn running(&self) -> usize {
        self.shared.running()
    }
}

/// A subscriber's stream: everything after `after` that is there, then each
/// change as it happens, then the end.
fn events(generation: Arc<Generation>, after: u64) -> EventStream {
    // Counted from now, not from the stream's first poll.
    let subscriber = generation.subscribe();
    Box::pin(async_stream::stream! {
        let _subscriber = subscriber;
        let mut cursor = after;
        loop {
            // Listen before reading, so a change made while we send is
            // waited for, not missed.
            let changed = generation.changes();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let update = generation.read_after(cursor);
            if let Some(last) = update.tokens.last() {
                cursor = last;
                yield GenerationEvent::Tokens(update.tokens);
            }
            if let Some(end) = update.end {
                yield GenerationEvent::End(end);
                break;
            }
            changed.await;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use futures_util::StreamExt;
    use tokio::sync::mpsc;

    use super::*;
    use crate::backend::BackendError;
    use crate::generations::{End, Status};
    use crate::stream::StreamEvent;

    const GRACE: Duration = Duration::from_secs(15);
    const TTL: Duration = Duration::from_secs(300);

    fn store(max_generations: usize) -> MemoryStore {
        MemoryStore::new(
            GenerationSettings {
                grace: GRACE,
                ttl: TTL,
                max_generations,
                max_bytes: 1 << 20,
            },
            Shutdown::default(),
        )
    }

    /// An answer fed by hand, and a flag that is set once the store has
    /// dropped it (the answer cancelled upstream).
    struct Feed {
        send: mpsc::UnboundedSender<Result<StreamEvent, BackendError>>,
        dropped: Arc<AtomicBool>,
    }

    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn feed() -> (Feed, TokenStream) {
        let (send, mut receive) = mpsc::unbounded_channel();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let events = futures_util::stream::poll_fn(move |cx| {
            let _alive = &flag;
            receive.poll_recv(cx)
        });
        (
            Feed { send, dropped },
            TokenStream::new("fake".into(), events),
        )
    }

    impl Feed {
        fn token(&self, text: &str) {
            let _ = self.send.send(Ok(StreamEvent::Token(text.into())));
        }

        fn done(&self) {
            let _ = self.send.send(Ok(StreamEvent::Done(Box::default())));
        }

        fn dropped(&self) -> bool {
            self.dropped.load(Ordering::SeqCst)
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    async fn text_of(store: &MemoryStore, id: &str) -> String {
        store.state(id).await.unwrap().text
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_at_a_models_pace_are_readable_at_once() {
        let store = store(4);
        let (feed, tokens) = feed();
        let id = store.start("m".into(), tokens, None).await.unwrap();
        let mut expected = String::new();
        for token in ["One", " two", " three"] {
            feed.token(token);
            settle().await;
            expected.push_str(token);
            assert_eq!(
                text_of(&store, &id).await,
                expected,
                "a token was held back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_flood_of_tokens_arrives_whole_and_in_order_before_the_end() {
        let store = store(4);
        let (feed, tokens) = feed();
        let id = store.start("m".into(), tokens, None).await.unwrap();
        let mut events = store.subscribe(&id, 0).await.unwrap();
        let sent: Vec<String> = (0..1000).map(|i| format!(" {i}")).collect();
        for token in &sent {
            feed.token(token);
        }
        feed.done();
        let mut received = Vec::new();
        let mut end = None;
        while let Some(event) = events.next().await {
            match event {
                GenerationEvent::Tokens(run) => {
                    assert_eq!(run.first, received.len() as u64 + 1);
                    received.extend(run.iter().map(|(_, text)| text.to_string()));
                }
                GenerationEvent::End(last) => end = Some(last),
            }
        }
        assert_eq!(received, sent);
        assert!(matches!(end, Some(End::Done { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_generation_nobody_reads_is_cancelled_after_the_grace_period() {
        let store = store(4);
        let (feed, tokens) = feed();
        let id = store.start("m".into(), tokens, None).await.unwrap();
        feed.token("partial");
        tokio::time::sleep(GRACE - Duration::from_millis(10)).await;
        assert!(!feed.dropped(), "cancelled before the grace period ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
        settle().await;
        assert!(feed.dropped(), "the answer upstream was dropped");
        let state = store.state(&id).await.unwrap();
        assert_eq!(state.status, Status::Cancelled);
        assert_eq!(state.text, "partial");
        assert_eq!(
            state.end,
            Some(End::Cancelled(
                "cancelled: no client listened for 15s".into()
            ))
        );
        assert_eq!(store.running(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_keeps_it_running_and_leaving_starts_the_grace_period() {
        let store = store(4);
        let (feed, tokens) = feed();
        let id = store.start("m".into(), tokens, None).await.unwrap();
        let reader = store.subscribe(&id, 0).await.unwrap();
        tokio::time::sleep(GRACE * 4).await;
        assert!(!feed.dropped());
        drop(reader);
        tokio::time::sleep(GRACE - Duration::from_millis(10)).await;
        assert!(!feed.dropped());
        tokio::time::sleep(Duration::from_millis(20)).await;
        settle().await;
        assert!(feed.dropped());
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_generation_expires_after_its_ttl() {
        let store = store(4);
        let (feed, tokens) = feed();
        let id = store.start("m".into(), tokens, None).await.unwrap();
        feed.done();
        settle().await;
        tokio::time::sleep(TTL - Duration::from_millis(10)).await;
        assert_eq!(store.state(&id).await.unwrap().status, Status::Done);
        tokio::time::sleep(Duration::from_millis(20)).await;
        settle().await;
        assert_eq!(
            store.state(&id).await.unwrap_err(),
            StoreError::NotFound { id: id.clone() }
        );
    }

    /// The bound holds for memory, not only for the map: an evicted
    /// generation is freed at once, not when its TTL would have ended.
    #[tokio::test(start_paused = true)]
    async fn max_generations_bounds_what_is_kept_in_memory() {
        let store = store(4);
        let mut kept = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..12 {
            let (feed, tokens) = feed();
            let id = store.start("m".into(), tokens, None).await.unwrap();
            kept.push(Arc::downgrade(&store.get(&id).unwrap()));
            feed.token("some text");
            feed.done();
            settle().await;
            ids.push(id);
        }
        assert_eq!(store.held(), 4);
        let alive = kept.iter().filter(|weak| weak.upgrade().is_some()).count();
        assert_eq!(alive, 4, "evicted generations are freed");
        // The newest are kept; the oldest are gone.
        assert!(store.state(&ids[11]).await.is_ok());
        assert!(store.state(&ids[0]).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_of_running_generations_is_full() {
        let store = store(2);
        let (_a, tokens_a) = feed();
        let (b, tokens_b) = feed();
        store.start("m".into(), tokens_a, None).await.unwrap();
        store.start("m".into(), tokens_b, None).await.unwrap();
        let (_c, tokens_c) = feed();
        assert_eq!(
            store.check_room().await,
            Err(StoreError::Full { running: 2 })
        );
        assert!(store.start("m".into(), tokens_c, None).await.is_err());
        // One finished: it makes room.
        b.done();
        settle().await;
        assert_eq!(store.check_room().await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancel_stops_the_answer_and_the_hook_gets_the_partial_text() {
        let store = store(4);
        let (feed, tokens) = feed();
        let (heard, hear) = tokio::sync::oneshot::channel();
        let on_end: OnEnd = Box::new(move |snapshot| {
            Box::pin(async move {
                let _ = heard.send(snapshot);
            })
        });
        let id = store.start("m".into(), tokens, Some(on_end)).await.unwrap();
        feed.token("Half an");
        settle().await;
        let state = store.cancel(&id).await.unwrap();
        assert_eq!(state.status, Status::Cancelled);
        assert!(feed.dropped());
        let ended = hear.await.unwrap();
        assert_eq!(ended.text, "Half an");
        assert_eq!(
            ended.end,
            Some(End::Cancelled("the generation was cancelled".into()))
        );
        // A second cancel changes nothing.
        assert_eq!(store.cancel(&id).await.unwrap().status, Status::Cancelled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_fails_running_generations() {
        let shutdown = Shutdown::default();
        let store = MemoryStore::new(
            GenerationSettings {
                grace: GRACE,
                ttl: TTL,
                max_generations: 4,
                max_bytes: 1 << 20,
            },
            shutdown.clone(),
        );
        let (feed, tokens) = feed();
        let id = store.start("m".into(), tokens, None).await.unwrap();
        shutdown.trigger();
        settle().await;
        assert!(feed.dropped());
        assert_eq!(
            store.state(&id).await.unwrap().end,
            Some(End::Failed("server shutting down".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_over_the_size_limit_fails_keeping_what_fit() {
        let store = MemoryStore::new(
            GenerationSettings {
                grace: GRACE,
                ttl: TTL,
                max_generations: 4,
                max_bytes: 8,
            },
            Shutdown::default(),
        );
        let (feed, tokens) = feed();
        let id = store.start("m".into(), tokens, None).await.unwrap();
        feed.token("12345");
        settle().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        feed.token("6789");
        settle().await;
        let state = store.state(&id).await.unwrap();
        assert_eq!(state.text, "12345");
        assert_eq!(
            state.end,
            Some(End::Failed(
                "the answer grew past the limit of 8 bytes".into()
            ))
        );
        assert!(feed.dropped());
    }
}
