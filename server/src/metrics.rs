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
    /// as the router sees it.
    pub fn render(
        &self,
        running_generations: usize,
        backends: &[BackendGauges<'_>],
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
        per_backend(
            &mut text,
            backends,
            ("llm_chat_backend_sequences", "gauge"),
            "Generations each backend is producing right now.",
            |gauges| gauges.sequences.to_string(),
        );
        per_backend(
            &mut text,
            backends,
            ("llm_chat_backend_in_flight", "gauge"),
            "Requests the router has on each backend right now, waiting for headers included.",
            |gauges| gauges.in_flight.to_string(),
        );
        metric_header(
            &mut text,
            "llm_chat_backend_state",
            "gauge",
            "1 for each backend's state: healthy, cooling_down (after failures) or down (its health probe fails).",
        );
        for gauges in backends {
            for state in ["healthy", "cooling_down", "down"] {
                let _ = writeln!(
                    text,
                    "llm_chat_backend_state{{backend=\"{}\",state=\"{state}\"}} {}",
                    gauges.name,
                    u8::from(gauges.state == state)
                );
            }
        }
        per_backend(
            &mut text,
            backends,
            ("llm_chat_backend_failures_total", "counter"),
            "Failures of each backend the router saw (unreachable, timeouts, 5xx, broken streams).",
            |gauges| gauges.failures.to_string(),
        );
        per_backend(
            &mut text,
            backends,
            ("llm_chat_backend_probe_seconds", "gauge"),
            "How long each backend's last health probe took.",
            |gauges| format!("{:.6}", gauges.probe_seconds),
        );
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

/// One backend's gauges, read from the router.
#[derive(Debug, Clone, Copy)]
pub struct BackendGauges<'a> {
    pub name: &'a str,
    /// Answers it is producing (its own count).
    pub sequences: usize,
    pub in_flight: u32,
    pub state: &'static str,
    pub failures: u64,
    pub probe_seconds: f64,
}

/// One metric with a line per backend, labelled with its name.
fn per_backend(
    text: &mut String,
    backends: &[BackendGauges<'_>],
    (name, kind): (&str, &str),
    help: &str,
    value: impl Fn(&BackendGauges<'_>) -> String,
) {
    metric_header(text, name, kind, help);
    for gauges in backends {
        let _ = writeln!(
            text,
            "{name}{{backend=\"{}\"}} {}",
            gauges.name,
            value(gauges)
        );
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
                .render(
                    0,
                    &[BackendGauges {
                        name: "ollama",
                        sequences: 0,
                        in_flight: 0,
                        state: "healthy",
                        failures: 0,
                        probe_seconds: 0.0
                    }],
                    0
                )
                .contains("llm_chat_streams_total 1\n")
        );
    }
}
