//! The load generator: many streams at once, or many idle streams held open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::paths::Target;
use crate::stats::{StreamRecord, Summary};

/// A client for HTTP/1.1 streams: one connection per stream, as browsers
/// and most SDKs do.
pub fn http1_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client")
}

/// Keeps `concurrency` streams in flight, as a server under that load sees
/// them: each of `concurrency` clients runs `rounds` streams back to back,
/// the clients' starts spread over one stream's duration so arrivals are
/// staggered rather than synchronised. The first round warms connection
/// pools and is not counted. Client `i` uses `http[i % http.len()]`.
pub async fn run_concurrent(
    target: &Target,
    http: &[reqwest::Client],
    concurrency: usize,
    rounds: usize,
    stream_duration: Duration,
    prompt: &str,
) -> Summary {
    let (records, wall) =
        concurrent_records(target, http, concurrency, rounds, stream_duration, prompt).await;
    Summary::of(&records, wall)
}

/// [`run_concurrent`]'s streams, one record each, and the time they took.
pub async fn concurrent_records(
    target: &Target,
    http: &[reqwest::Client],
    concurrency: usize,
    rounds: usize,
    stream_duration: Duration,
    prompt: &str,
) -> (Vec<StreamRecord>, Duration) {
    let started = Instant::now();
    // A JoinSet aborts its tasks when dropped: a run given up on (see the
    // bench's time bound) leaves no client behind to load the next one.
    let mut clients = JoinSet::new();
    for index in 0..concurrency {
        let target = target.clone();
        let client = http[index % http.len()].clone();
        let prompt = prompt.to_string();
        let offset = stream_duration.mul_f64(index as f64 / concurrency as f64);
        clients.spawn(async move {
            tokio::time::sleep(offset).await;
            let mut records = Vec::with_capacity(rounds);
            let mut phase = PhaseJitter::seeded(index as u64);
            for _ in 0..rounds {
                phase.wait().await;
                records.push(target.measure(&client, &prompt).await);
            }
            records.remove(0);
            records
        });
    }
    let records: Vec<StreamRecord> = clients.join_all().await.into_iter().flatten().collect();
    (records, started.elapsed())
}

/// A pause of a uniformly random part of a millisecond before each stream.
/// The upstream paces tokens with a millisecond timer: a client that starts
/// its next stream the moment the last one ended starts it at a fixed phase
/// of that timer, set by the path's own latency, so a path a few
/// microseconds slower can read as a whole millisecond slower (or faster).
/// A random phase makes the timer's rounding the same for every path.
/// tokio's timers tick in milliseconds, so the pause is a blocking sleep on
/// the blocking pool.
struct PhaseJitter(u64);

impl PhaseJitter {
    fn seeded(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    async fn wait(&mut self) {
        // xorshift64: plenty for spreading phases, and no dependency.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let pause = Duration::from_micros(self.0 % 1000);
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(pause)).await;
    }
}

/// Opens `concurrency` streams at the same instant and reads them all to
/// the end.
pub async fn run_streams(
    target: &Target,
    client: &reqwest::Client,
    concurrency: usize,
    prompt: &str,
) -> Summary {
    let barrier = Arc::new(Barrier::new(concurrency));
    let started = Instant::now();
    let mut streams = JoinSet::new();
    for _ in 0..concurrency {
        let barrier = barrier.clone();
        let target = target.clone();
        let client = client.clone();
        let prompt = prompt.to_string();
        streams.spawn(async move {
            barrier.wait().await;
            target.measure(&client, &prompt).await
        });
    }
    let records: Vec<StreamRecord> = streams.join_all().await;
    Summary::of(&records, started.elapsed())
}

/// Streams held open with no token flowing, to weigh what each costs.
/// Dropping it closes them all.
pub struct IdleStreams {
    holders: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

impl IdleStreams {
    /// Starts `count` streams, `batch` at a time, each held by a task until
    /// dropped. A gateway may send no headers until the first token (LiteLLM
    /// does), so readiness is read elsewhere: from the upstream's count of
    /// open answers.
    pub async fn open(
        target: &Target,
        clients: &[reqwest::Client],
        count: usize,
        batch: usize,
    ) -> Self {
        let mut holders = Vec::with_capacity(count);
        for i in 0..count {
            let client = clients[i % clients.len()].clone();
            let target = target.clone();
            holders.push(tokio::spawn(async move {
                let response = target.open(&client, "Hold on", None).await?;
                // Keep the stream open until aborted.
                let _held = response;
                std::future::pending::<()>().await;
                Ok(())
            }));
            if (i + 1) % batch == 0 {
                // Let the gateway accept a batch before sending the next.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Self { holders }
    }

    /// Streams whose opening failed so far, with one of the errors.
    pub async fn failures(&mut self) -> (usize, Option<String>) {
        let mut errors = 0;
        let mut first = None;
        for holder in &mut self.holders {
            if holder.is_finished() {
                errors += 1;
                if let Ok(Ok(Err(error))) = tokio::time::timeout(Duration::ZERO, holder).await {
                    first.get_or_insert(error);
                }
            }
        }
        (errors, first)
    }
}

impl Drop for IdleStreams {
    fn drop(&mut self) {
        for holder in &self.holders {
            holder.abort();
        }
    }
}

/// HTTP/2 (cleartext, prior knowledge) clients, each its own connection.
pub fn http2_clients(count: usize) -> Vec<reqwest::Client> {
    (0..count)
        .map(|_| {
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .tcp_nodelay(true)
                .build()
                .expect("an HTTP/2 client")
        })
        .collect()
}
