//! Process-wide counters, served at `/metrics` in Prometheus' text format
//! and read by tests (an open stream count that must return to 0).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    active_streams: AtomicU64,
    streams_total: AtomicU64,
    tokens_relayed: AtomicU64,
}

impl Metrics {
    /// SSE streams open right now.
    pub fn active_streams(&self) -> u64 {
        self.active_streams.load(Ordering::Relaxed)
    }

    /// Counts one open stream until the returned guard is dropped.
    pub fn stream_opened(self: &Arc<Self>) -> StreamGuard {
        self.active_streams.fetch_add(1, Ordering::Relaxed);
        self.streams_total.fetch_add(1, Ordering::Relaxed);
        StreamGuard {
            metrics: self.clone(),
        }
    }

    pub fn tokens_relayed(&self, count: u64) {
        if count > 0 {
            self.tokens_relayed.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// The counters in Prometheus' text exposition format, with the gauges
    /// owned elsewhere passed in: running generations, and each backend's
    /// sequences in flight.
    pub fn render(
        &self,
        running_generations: usize,
        backends: &[(&str, usize)],
        conversation_writes: u64,
    ) -> String {
        let mut text = String::new();
        metric_header(
            &mut text,
            "llm_chat_active_streams",
            "gauge",
            "SSE token streams open right now.",
        );
        let _ = writeln!(text, "llm_chat_active_streams {}", self.active_streams());
        metric_header(
            &mut text,
            "llm_chat_streams_total",
            "counter",
            "SSE token streams opened since start.",
        );
        let _ = writeln!(
            text,
            "llm_chat_streams_total {}",
            self.streams_total.load(Ordering::Relaxed)
        );
        metric_header(
            &mut text,
            "llm_chat_generations_running",
            "gauge",
            "Generations producing tokens right now.",
        );
        let _ = writeln!(text, "llm_chat_generations_running {running_generations}");
        metric_header(
            &mut text,
            "llm_chat_backend_sequences",
            "gauge",
            "Generations each backend is producing right now.",
        );
        for (backend, count) in backends {
            let _ = writeln!(
                text,
                "llm_chat_backend_sequences{{backend=\"{backend}\"}} {count}"
            );
        }
        metric_header(
            &mut text,
            "llm_chat_tokens_relayed_total",
            "counter",
            "Tokens sent to clients since start.",
        );
        let _ = writeln!(
            text,
            "llm_chat_tokens_relayed_total {}",
            self.tokens_relayed.load(Ordering::Relaxed)
        );
        metric_header(
            &mut text,
            "llm_chat_conversation_writes_total",
            "counter",
            "Writes to the conversations' database since start.",
        );
        let _ = writeln!(
            text,
            "llm_chat_conversation_writes_total {conversation_writes}"
        );
        text
    }
}

fn metric_header(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
}

/// Keeps a stream counted as open; see [`Metrics::stream_opened`].
#[derive(Debug)]
pub struct StreamGuard {
    metrics: Arc<Metrics>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.metrics.active_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_closes_its_stream() {
        let metrics = Arc::new(Metrics::default());
        let guard = metrics.stream_opened();
        assert_eq!(metrics.active_streams(), 1);
        drop(guard);
        assert_eq!(metrics.active_streams(), 0);
        assert!(
            metrics
                .render(0, &[("ollama", 0)], 0)
                .contains("llm_chat_streams_total 1\n")
        );
    }
}
