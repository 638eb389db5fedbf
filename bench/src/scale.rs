//! Many streams at a model's pace: 10,000 at once in a full run, a token
//! every 50 ms, straight from the upstream and through llm-chat.
//!
//! Clients speak HTTP/2, a hundred streams to a connection, so the client
//! side fits in a few file descriptors; upstream, every stream has an
//! HTTP/1.1 connection of its own, as with a real Ollama. The row also
//! records how busy each process was, since on a small machine the cores,
//! not the gateway, are what such a row runs into.

use std::time::{Duration, Instant};

use crate::load;
use crate::paths::{PathKind, Target};
use crate::processes::{self, Service};
use crate::stats::Summary;

/// Streams per HTTP/2 connection (under the servers' 200-stream default).
const STREAMS_PER_CONNECTION: usize = 100;

/// One path's row.
pub struct ScaleRow {
    pub path: PathKind,
    pub streams: usize,
    pub summary: Summary,
    /// Cores each process used on average while the row ran.
    pub cpu: Cpu,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// `None` for the direct path, which has no gateway.
    pub gateway: Option<f64>,
    pub upstream: f64,
    pub load_generator: f64,
}

/// What the row is made of.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub streams: usize,
    pub tokens: usize,
    pub token_delay: Duration,
}

/// Runs `streams` paced streams on `target`: each client runs two back to
/// back, the first opening its connections (not counted).
pub async fn measure(
    target: &Target,
    shape: Shape,
    upstream: &Service,
    gateway: Option<&Service>,
) -> ScaleRow {
    let clients = load::http2_clients(shape.streams.div_ceil(STREAMS_PER_CONNECTION));
    let duration = shape.token_delay * u32::try_from(shape.tokens).unwrap_or(u32::MAX);
    let started = Instant::now();
    let before = (
        gateway.map(|g| g.cpu_seconds().unwrap_or(0.0)),
        upstream.cpu_seconds().unwrap_or(0.0),
        processes::own_cpu_seconds(),
    );
    let summary = crate::bounded(load::run_concurrent(
        target,
        &clients,
        shape.streams,
        2,
        duration,
        "Hi",
    ))
    .await;
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let cpu = Cpu {
        gateway: gateway
            .zip(before.0)
            .map(|(g, was)| (g.cpu_seconds().unwrap_or(was) - was) / wall),
        upstream: (upstream.cpu_seconds().unwrap_or(before.1) - before.1) / wall,
        load_generator: (processes::own_cpu_seconds() - before.2) / wall,
    };
    ScaleRow {
        path: target.kind,
        streams: shape.streams,
        summary,
        cpu,
    }
}
