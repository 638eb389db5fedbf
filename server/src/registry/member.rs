//! One backend instance as the router sees it: its share of the load, its
//! limit, what it has in flight, and whether it is cooling down after
//! failures. Every field is an atomic: reading or updating a member on the
//! request path takes no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::backend::{Backend, BackendError};

/// The first cool-down after a failure; each further consecutive failure
/// doubles it, up to [`LONGEST_COOL_DOWN`].
pub const FIRST_COOL_DOWN: Duration = Duration::from_secs(1);
pub const LONGEST_COOL_DOWN: Duration = Duration::from_secs(60);

/// How a member is doing, as `/readyz` and the metrics say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Healthy,
    /// Failed lately: skipped while another member can serve, until its
    /// cool-down ends.
    CoolingDown,
    /// Its last health probe failed: skipped while another member can
    /// serve, until a probe or an answer succeeds.
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::CoolingDown => "cooling_down",
            Self::Down => "down",
        }
    }
}

pub struct Member {
    pub backend: Arc<dyn Backend>,
    pub weight: u32,
    /// Most answers in flight at once; `u32::MAX` is no limit.
    pub max_concurrent: u32,
    in_flight: Arc<AtomicU32>,
    consecutive_failures: AtomicU32,
    /// Milliseconds after `epoch` until which it cools down (0: it does not).
    cooling_until_ms: AtomicU64,
    failures: AtomicU64,
    /// Whether the last health probe succeeded (true until one fails).
    probe_ok: AtomicBool,
    /// How long the last probe took, in microseconds.
    probe_micros: AtomicU64,
    /// The models it holds in memory, as of the last probe.
    loaded: ArcSwap<Vec<String>>,
    epoch: Instant,
}

impl Member {
    pub fn new(backend: Arc<dyn Backend>, weight: u32, max_concurrent: Option<u32>) -> Self {
        Self {
            backend,
            weight: weight.max(1),
            max_concurrent: max_concurrent.unwrap_or(u32::MAX),
            in_flight: Arc::default(),
            consecutive_failures: AtomicU32::new(0),
            cooling_until_ms: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            probe_ok: AtomicBool::new(true),
            probe_micros: AtomicU64::new(0),
            loaded: ArcSwap::from_pointee(Vec::new()),
            epoch: Instant::now(),
        }
    }

    pub fn name(&self) -> &str {
        self.backend.name()
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn at_limit(&self) -> bool {
        self.in_flight() >= self.max_concurrent
    }

    /// Failures since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn state(&self) -> State {
        if !self.probe_ok.load(Ordering::Relaxed) {
            State::Down
        } else if self.now_ms() < self.cooling_until_ms.load(Ordering::Relaxed) {
            State::CoolingDown
        } else {
            State::Healthy
        }
    }

    /// How long its last health probe took.
    pub fn probe_latency(&self) -> Duration {
        Duration::from_micros(self.probe_micros.load(Ordering::Relaxed))
    }

    /// Whether it holds `model` in memory (so an answer pays no load).
    pub fn has_loaded(&self, model: &str) -> bool {
        self.loaded
            .load()
            .iter()
            .any(|name| name == model || name.strip_suffix(":latest") == Some(model))
    }

    /// Notes a health probe: a success ends any cool-down (but the count of
    /// consecutive failures stands, so the next failure cools it down for
    /// longer still), a failure marks it down. Returns whether the state
    /// changed.
    pub fn probed(&self, ok: bool, took: Duration, loaded: Option<Vec<String>>) -> bool {
        let before = self.state();
        self.probe_micros.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.probe_ok.store(ok, Ordering::Relaxed);
        if ok {
            self.cooling_until_ms.store(0, Ordering::Relaxed);
        }
        if let Some(loaded) = loaded {
            self.loaded.store(Arc::new(loaded));
        }
        before != self.state()
    }

    /// Counts one answer in flight until the lease is dropped.
    pub fn lease(&self) -> Lease {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Lease(self.in_flight.clone())
    }

    /// A lease, if one more answer fits within the limit: checked and
    /// counted in one step, so concurrent requests never exceed it.
    pub fn try_lease(&self) -> Option<Lease> {
        self.in_flight
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |count| {
                (count < self.max_concurrent).then_some(count + 1)
            })
            .ok()
            .map(|_| Lease(self.in_flight.clone()))
    }

    /// Its load if it took one more answer for `model`, read once.
    pub fn load(&self, model: &str) -> Load {
        Load {
            in_flight: u64::from(self.in_flight()) + 1,
            weight: u64::from(self.weight),
            cold: !self.has_loaded(model),
        }
    }

    /// Notes an answer under way: the member answers, so a cool-down or a
    /// failed probe's "down" ends. The count of consecutive failures stands
    /// until an answer finishes, so one that keeps breaking mid-answer cools
    /// down for longer each time. Returns whether the state changed.
    pub fn started(&self) -> bool {
        let before = self.state();
        self.cooling_until_ms.store(0, Ordering::Relaxed);
        self.probe_ok.store(true, Ordering::Relaxed);
        before != self.state()
    }

    /// Notes how an answer ended, or why it could not start. A failure of
    /// the upstream itself (not of the request, and not "busy", which is
    /// load) starts or lengthens a cool-down; a finished answer ends it and
    /// the count of failures. Returns whether the state changed, so the
    /// change is logged once.
    pub fn record(&self, outcome: Result<(), &BackendError>) -> bool {
        let before = self.state();
        match outcome {
            Ok(()) => {
                self.consecutive_failures.store(0, Ordering::Relaxed);
                self.cooling_until_ms.store(0, Ordering::Relaxed);
                self.probe_ok.store(true, Ordering::Relaxed);
            }
            Err(BackendError::Busy { .. }) => {}
            Err(error) if !error.is_server_side() => {}
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let cool_down = FIRST_COOL_DOWN
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(LONGEST_COOL_DOWN);
                let until = self.now_ms() + u64::try_from(cool_down.as_millis()).unwrap_or(0);
                self.cooling_until_ms.store(until, Ordering::Relaxed);
            }
        }
        before != self.state()
    }
}

/// A member's load as the router compares it: answers in flight over
/// weight (compared without division), then whether the model would have
/// to load first.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    in_flight: u64,
    weight: u64,
    cold: bool,
}

impl Ord for Load {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.in_flight * other.weight)
            .cmp(&(other.in_flight * self.weight))
            .then(self.cold.cmp(&other.cold))
    }
}

impl PartialOrd for Load {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Load {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Load {}

/// One answer in flight on a member.
pub struct Lease(Arc<AtomicU32>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ConnectFailure;

    fn member() -> Member {
        struct Nothing;
        impl Backend for Nothing {
            fn name(&self) -> &str {
                "m"
            }
            fn kind(&self) -> crate::backend::BackendKind {
                crate::backend::BackendKind::Ollama
            }
            fn list_models(
                &self,
            ) -> crate::backend::BoxFuture<'_, Result<Vec<app::api::ModelInfo>, BackendError>>
            {
                unreachable!()
            }
            fn infer(
                &self,
                _: crate::inference::InferenceRequest,
            ) -> crate::backend::BoxFuture<'_, Result<crate::backend::TokenStream, BackendError>>
            {
                unreachable!()
            }
            fn embed(
                &self,
                _: crate::inference::EmbedRequest,
            ) -> crate::backend::BoxFuture<'_, Result<crate::inference::Embeddings, BackendError>>
            {
                unreachable!()
            }
            fn health(&self) -> crate::backend::BoxFuture<'_, crate::backend::BackendHealth> {
                unreachable!()
            }
            fn describe(
                &self,
                _: &str,
            ) -> crate::backend::BoxFuture<'_, Result<crate::backend::ModelCard, BackendError>>
            {
                unreachable!()
            }
        }
        Member::new(Arc::new(Nothing), 1, None)
    }

    fn refused() -> BackendError {
        BackendError::Unreachable {
            backend: "m".into(),
            reason: ConnectFailure::Refused,
            detail: String::new(),
        }
    }

    #[test]
    fn failures_cool_it_down_longer_each_time_and_a_good_probe_ends_it() {
        let member = member();
        assert!(member.record(Err(&refused())));
        assert_eq!(member.state(), State::CoolingDown);
        let first = member.cooling_until_ms.load(Ordering::Relaxed);
        assert!(!member.record(Err(&refused())));
        let second = member.cooling_until_ms.load(Ordering::Relaxed);
        assert!(second >= first + 1000, "{first} then {second}");
        assert_eq!(member.failures(), 2);
        assert!(member.probed(
            true,
            Duration::from_millis(3),
            Some(vec!["llama3.2:latest".into()])
        ));
        assert_eq!(member.state(), State::Healthy);
        assert!(member.has_loaded("llama3.2"));
        assert_eq!(member.probe_latency(), Duration::from_millis(3));
        // Still failing after the probe: a longer cool-down than before.
        let before = member.now_ms();
        member.record(Err(&refused()));
        let third = member.cooling_until_ms.load(Ordering::Relaxed);
        assert!(third >= before + 4000, "{before} then {third}");
    }

    #[test]
    fn an_upstream_that_breaks_mid_answer_cools_down_longer_each_time() {
        let member = member();
        let broke = BackendError::EndedEarly {
            backend: "m".into(),
        };
        assert!(!member.started());
        assert!(member.record(Err(&broke)));
        let first = member.cooling_until_ms.load(Ordering::Relaxed) - member.now_ms();
        assert!(member.started(), "an answer under way ends the cool-down");
        assert_eq!(member.state(), State::Healthy);
        member.record(Err(&broke));
        let second = member.cooling_until_ms.load(Ordering::Relaxed) - member.now_ms();
        assert!(second > first + 500, "{first} ms then {second} ms");
        assert!(member.started());
        assert!(!member.record(Ok(())));
        member.record(Err(&broke));
        let after_a_whole_answer =
            member.cooling_until_ms.load(Ordering::Relaxed) - member.now_ms();
        assert!(
            after_a_whole_answer <= first + 50,
            "{after_a_whole_answer} ms"
        );
    }

    #[test]
    fn busy_and_refused_requests_are_not_the_backends_failure() {
        let member = member();
        let busy = BackendError::Busy {
            backend: "m".into(),
            message: "full".into(),
        };
        let rejected = BackendError::Rejected {
            status: 400,
            message: "bad".into(),
        };
        assert!(!member.record(Err(&busy)));
        assert!(!member.record(Err(&rejected)));
        assert_eq!(member.state(), State::Healthy);
        assert_eq!(member.failures(), 0);
    }

    #[test]
    fn a_lease_past_the_limit_is_refused_until_one_ends() {
        let mut member = member();
        member.max_concurrent = 2;
        let first = member.try_lease().unwrap();
        let _second = member.try_lease().unwrap();
        assert!(member.try_lease().is_none());
        drop(first);
        assert!(member.try_lease().is_some());
    }

    #[test]
    fn a_failed_probe_is_down_until_a_probe_or_an_answer_succeeds() {
        let member = member();
        assert!(member.probed(false, Duration::ZERO, None));
        assert_eq!(member.state(), State::Down);
        assert!(member.record(Ok(())));
        assert_eq!(member.state(), State::Healthy);
    }
}
