//! Active health checks: every member is probed on an interval (Ollama's
//! `/api/version`, an OpenAI-compatible server's `/health` or model list,
//! the embedded engine's models directory), and what each holds in memory
//! is read at the same time, so that requests prefer a member that already
//! has their model loaded. `/readyz` probes too. A change of state is
//! logged once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::{Member, Registry, State};
use crate::backend::BackendHealth;

/// The longest a probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl Registry {
    /// Probes every member every `interval`, for ever (the caller aborts
    /// the task at shutdown). The first probe is one interval after start:
    /// the start itself checks every backend once ([`Self::log_backends`]).
    pub async fn probe_every(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            self.health().await;
        }
    }

    /// Probes every member at once.
    pub async fn probe_all(&self) {
        self.health().await;
    }

    /// Each backend's health, checked concurrently (and noted, as a
    /// periodic probe is), with its name.
    pub async fn health(&self) -> Vec<(&str, BackendHealth)> {
        let checks = join_all(self.members.iter().map(|member| probe(member))).await;
        self.members
            .iter()
            .map(|member| member.name())
            .zip(checks)
            .collect()
    }
}

async fn probe(member: &Member) -> BackendHealth {
    let started = Instant::now();
    let health = tokio::time::timeout(PROBE_TIMEOUT, member.backend.health())
        .await
        .unwrap_or_else(|_| BackendHealth {
            kind: member.backend.kind(),
            ready: false,
            location: String::new(),
            version: None,
            error: Some(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
        });
    let took = started.elapsed();
    let loaded = if health.ready {
        match tokio::time::timeout(PROBE_TIMEOUT, member.backend.loaded()).await {
            Ok(Ok(models)) => Some(models.into_iter().map(|model| model.info.name).collect()),
            _ => None,
        }
    } else {
        Some(Vec::new())
    };
    if member.probed(health.ready, took, loaded) {
        match member.state() {
            State::Down => tracing::warn!(
                backend = member.name(),
                error = health.error.as_deref().unwrap_or("not ready"),
                "backend down; others serve its models while it is"
            ),
            state => tracing::info!(
                backend = member.name(),
                state = state.as_str(),
                "backend answers its health probe again"
            ),
        }
    }
    health
}
