//! The model registry and router: merges the models of every backend into
//! one list, and sends each request to a backend that serves its `model`.
//! A model several upstreams serve is one model; each request goes to the
//! least-loaded healthy one ([`member`]), and moves to the next when one
//! fails before the first token ([`Registry::infer`]). The routing table is
//! a snapshot swapped whole after each listing: the request path reads it
//! without a lock.

mod failover;
mod member;
mod probe;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::api::{BackendInfo, ModelInfo, ModelList};
use arc_swap::ArcSwap;
use futures_util::future::join_all;

use self::failover::Attempts;
pub use self::member::{Lease, Load, Member, State};
use crate::backend::{
    Backend, BackendError, BackendKind, LoadedModel, Manage, ModelCard, TokenStream,
};
use crate::inference::{EmbedRequest, Embeddings, InferenceRequest};

/// Picks that may lose the last free place to another request before the
/// answer is "busy".
const RACES_BEFORE_BUSY: usize = 16;

/// How hard the router tries before the first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// Most upstreams one request is sent to.
    pub attempts: usize,
    /// With another upstream left to try, how long to wait for the first
    /// token before moving there (`None`: as long as it takes).
    pub first_token: Option<Duration>,
}

impl Default for Failover {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_token: None,
        }
    }
}

/// All backends, in order of preference: the first that lists a model is
/// its first choice when loads are equal.
pub struct Registry {
    members: Vec<Arc<Member>>,
    failover: Failover,
    /// Model name → members serving it, as of the last listing.
    routes: ArcSwap<HashMap<String, Vec<usize>>>,
    /// How each backend's last listing failed, if it did: such a backend
    /// may hold a model nobody listed.
    failed_listings: Mutex<Vec<Option<BackendError>>>,
    /// Whether each backend answered its last listing, so that a backend
    /// going down or coming back is logged once, not at every listing.
    reachable: Vec<AtomicBool>,
    /// Turns ties between equally loaded members.
    rotation: AtomicUsize,
}

impl Registry {
    /// Backends with equal weights and no limits (tests, and env-only setups).
    pub fn new(backends: Vec<Arc<dyn Backend>>) -> Self {
        let members = backends
            .into_iter()
            .map(|backend| Member::new(backend, 1, None))
            .collect();
        Self::with_members(members, Failover::default())
    }

    pub fn with_members(members: Vec<Member>, failover: Failover) -> Self {
        assert!(
            !members.is_empty(),
            "the registry needs at least one backend"
        );
        Self {
            reachable: members.iter().map(|_| AtomicBool::new(true)).collect(),
            failed_listings: Mutex::new(vec![None; members.len()]),
            members: members.into_iter().map(Arc::new).collect(),
            failover: Failover {
                attempts: failover.attempts.max(1),
                ..failover
            },
            routes: ArcSwap::from_pointee(HashMap::new()),
            rotation: AtomicUsize::new(0),
        }
    }

    pub fn members(&self) -> &[Arc<Member>] {
        &self.members
    }

    /// The backend instance called `name`.
    pub fn backend_named(&self, name: &str) -> Option<&Arc<dyn Backend>> {
        self.backends().find(|backend| backend.name() == name)
    }

    pub fn backends(&self) -> impl Iterator<Item = &Arc<dyn Backend>> {
        self.members.iter().map(|member| &member.backend)
    }

    /// The models and the backends, as `GET /api/v1/models` answers them.
    pub async fn catalog(&self) -> Result<ModelList, BackendError> {
        let models = self.list_models().await?;
        let backends = self
            .backends()
            .map(|backend| BackendInfo {
                name: backend.name().to_string(),
                kind: backend.kind().as_str().to_string(),
                manages_models: backend.kind() == BackendKind::Ollama,
            })
            .collect();
        Ok(ModelList { models, backends })
    }

    /// Every backend's models, merged: a model several backends list is
    /// one entry (the first one's), with every backend serving it in
    /// `backends`. A backend that fails is logged and left out, unless
    /// every backend fails: then the first error is returned.
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError> {
        let listings = join_all(self.members.iter().map(|m| m.backend.list_models())).await;
        let mut models: Vec<ModelInfo> = Vec::new();
        let mut routes: HashMap<String, Vec<usize>> = HashMap::new();
        let mut failures = Vec::with_capacity(listings.len());
        for (index, listing) in listings.into_iter().enumerate() {
            let backend = self.members[index].name();
            let was_reachable = self.reachable[index].swap(listing.is_ok(), Ordering::Relaxed);
            match listing {
                Ok(listed) => {
                    if !was_reachable {
                        tracing::info!(backend, "backend reachable again; its models are listed");
                    }
                    for model in listed {
                        let serving = routes.entry(model.name.clone()).or_default();
                        if serving.contains(&index) {
                            continue;
                        }
                        serving.push(index);
                        if serving.len() == 1 {
                            models.push(ModelInfo {
                                backends: vec![backend.to_string()],
                                ..model
                            });
                        } else if let Some(entry) = models.iter_mut().find(|m| m.name == model.name)
                        {
                            entry.backends.push(backend.to_string());
                        }
                    }
                    failures.push(None);
                }
                Err(error) => {
                    if was_reachable {
                        tracing::warn!(
                            backend,
                            %error,
                            detail = error.detail().unwrap_or_default(),
                            "cannot list models; leaving them out until the backend answers"
                        );
                    } else {
                        tracing::debug!(backend, %error, "cannot list models");
                    }
                    failures.push(Some(error));
                }
            }
        }
        let all_failed = failures.iter().all(Option::is_some);
        let first_error = failures.iter().flatten().next().cloned();
        *self
            .failed_listings
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = failures;
        if all_failed {
            return Err(first_error.expect("every listing failed, so one did"));
        }
        self.routes.store(Arc::new(routes));
        Ok(models)
    }

    /// Starts the answer on the least-loaded healthy backend serving its
    /// model. Until the first token, a failure that another backend could
    /// avoid (unreachable, a timeout, a 5xx, busy, an error before any
    /// text, or no first token within the deadline) moves the request to
    /// the next one, within [`Failover::attempts`] ([`failover`]); after
    /// it, nothing is retried (that would repeat text). A client that
    /// leaves drops the answer, and with it every further try.
    pub async fn infer(
        self: &Arc<Self>,
        request: InferenceRequest,
    ) -> Result<TokenStream, BackendError> {
        let candidates = self.candidates(&request.model).await?;
        failover::start(Attempts::new(self.clone(), request, candidates)).await
    }

    /// The member to try next: among those not tried yet, healthy ones
    /// before the others, within their limits, the least loaded (weighted;
    /// between equal loads, one holding the model in memory before one that
    /// would load it), ties taken in turn.
    fn pick(
        &self,
        candidates: &[usize],
        tried: &[usize],
        model: &str,
    ) -> Result<usize, BackendError> {
        let untried = || candidates.iter().copied().filter(|i| !tried.contains(i));
        let healthy: Vec<usize> = untried()
            .filter(|&i| self.members[i].state() == State::Healthy)
            .collect();
        let pool = if healthy.is_empty() {
            untried().collect()
        } else {
            healthy
        };
        // Each member's load read once: counts move under other requests,
        // and comparing two readings of one counter could find no minimum.
        let open: Vec<(usize, Load)> = pool
            .into_iter()
            .filter(|&i| !self.members[i].at_limit())
            .map(|i| (i, self.members[i].load(model)))
            .collect();
        let Some(least) = open.iter().map(|(_, load)| *load).min() else {
            return Err(self.busy(candidates, model));
        };
        let tied: Vec<usize> = open
            .into_iter()
            .filter(|(_, load)| *load == least)
            .map(|(i, _)| i)
            .collect();
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
        Ok(tied[turn % tied.len()])
    }

    fn busy(&self, candidates: &[usize], model: &str) -> BackendError {
        BackendError::Busy {
            backend: self.members[candidates[0]].name().into(),
            message: format!(
                "every backend serving \"{model}\" is at its limit; try again shortly"
            ),
        }
    }

    /// The members serving `model`. A name no backend listed goes to the
    /// first reachable backend that resolves names itself (Ollama), so its
    /// own "not found" reaches the client; while none is reachable, the
    /// answer is why (a backend that could hold the model is down); with no
    /// such backend at all, the model does not exist.
    async fn candidates(&self, model: &str) -> Result<Vec<usize>, BackendError> {
        if self.members.len() == 1 {
            return Ok(vec![0]);
        }
        if let Some(serving) = self.route(model) {
            return Ok(serving);
        }
        // Unknown name: the model may be new since the last listing.
        let _ = self.list_models().await;
        if let Some(serving) = self.route(model) {
            return Ok(serving);
        }
        let failures = self
            .failed_listings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let open = self
            .members
            .iter()
            .zip(&failures)
            .position(|(member, failure)| {
                member.backend.serves_unlisted_models() && failure.is_none()
            });
        if let Some(index) = open {
            return Ok(vec![index]);
        }
        if let Some(down) = failures.into_iter().flatten().next() {
            return Err(down);
        }
        Err(BackendError::ModelNotFound {
            message: format!("model \"{model}\" not found"),
        })
    }

    fn route(&self, model: &str) -> Option<Vec<usize>> {
        let routes = self.routes.load();
        routes
            .get(model)
            .or_else(|| routes.get(&format!("{model}:latest")))
            .cloned()
    }

    /// The backend a one-off call about `model` goes to: the least-loaded
    /// healthy one serving it.
    pub async fn resolve(&self, model: &str) -> Result<Arc<dyn Backend>, BackendError> {
        let candidates = self.candidates(model).await?;
        let index = self.pick(&candidates, &[], model)?;
        Ok(self.members[index].backend.clone())
    }

    /// Routes an embedding request to a backend serving its model.
    pub async fn embed(&self, request: EmbedRequest) -> Result<Embeddings, BackendError> {
        let backend = self.resolve(&request.model).await?;
        backend.embed(request).await
    }

    /// What a backend serving `model` knows of it.
    pub async fn describe(&self, model: &str) -> Result<ModelCard, BackendError> {
        self.resolve(model).await?.describe(model).await
    }

    /// Every backend's models in memory now. A backend that cannot say is
    /// left out (logged), as in [`Self::list_models`].
    pub async fn loaded(&self) -> Vec<LoadedModel> {
        let listings = join_all(self.backends().map(|backend| backend.loaded())).await;
        let mut loaded = Vec::new();
        for (backend, listing) in self.backends().zip(listings) {
            match listing {
                Ok(models) => loaded.extend(models),
                Err(error) => {
                    tracing::debug!(backend = backend.name(), %error, "cannot list loaded models");
                }
            }
        }
        loaded
    }

    /// The backend to make a management call on: the one serving the model
    /// it names, or for a model that does not exist yet (pull, create) the
    /// first backend that can fetch models.
    pub async fn manager(
        &self,
        call: Manage,
        model: &str,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        if matches!(call, Manage::Pull | Manage::Create) {
            let mut ollamas = self
                .backends()
                .filter(|backend| backend.kind() == BackendKind::Ollama)
                .peekable();
            if ollamas.peek().is_none() {
                return Err(BackendError::Rejected {
                    status: 400,
                    message: format!(
                        "no Ollama server is configured to {} models (set OLLAMA_URL); \
                         embedded models are the .gguf files in the models directory",
                        call.verb()
                    ),
                });
            }
            return ollamas
                .find(|backend| backend.accepts_model(model))
                .cloned()
                .ok_or_else(|| BackendError::Rejected {
                    status: 400,
                    message: format!(
                        "no Ollama upstream is configured to serve \"{model}\" (each has a \
                         models list without it); add it to one to {} it",
                        call.verb()
                    ),
                });
        }
        self.resolve(model).await
    }

    /// Logs, once at start, which backends can serve. A backend that is down
    /// is a warning, not a failure: its models appear once it is up.
    pub async fn log_backends(&self) {
        for (index, (backend, health)) in self.health().await.into_iter().enumerate() {
            // Said here; the listings need not say it again.
            self.reachable[index].store(health.ready, Ordering::Relaxed);
            if health.ready {
                tracing::info!(
                    backend,
                    location = %health.location,
                    version = health.version.as_deref().unwrap_or("unknown"),
                    "backend ready"
                );
            } else {
                tracing::warn!(
                    backend,
                    location = %health.location,
                    error = health.error.as_deref().unwrap_or("unknown"),
                    "backend not reachable; its models will appear once it is up"
                );
            }
        }
    }
}

/// An answer started on `member`: it counts in flight until it ends, and
/// how it ends is the member's record (a break mid-answer is a failure
/// like one before it; a client leaving is nobody's).
fn under_way(member: &Arc<Member>, stream: TokenStream, lease: Lease) -> TokenStream {
    if member.started() {
        log_change(member, None);
    }
    let member = member.clone();
    stream.on_end(move |outcome| {
        drop(lease);
        record(&member, outcome);
    })
}

fn record(member: &Member, outcome: Result<(), &BackendError>) {
    if member.record(outcome) {
        log_change(member, outcome.err());
    }
}

/// Logs a member's new state, once per change.
fn log_change(member: &Member, error: Option<&BackendError>) {
    match member.state() {
        State::Healthy | State::Down => {
            tracing::info!(
                backend = member.name(),
                state = member.state().as_str(),
                "backend answers again"
            );
        }
        State::CoolingDown => tracing::warn!(
            backend = member.name(),
            error = %error.map(ToString::to_string).unwrap_or_default(),
            "backend failed; cooling down while others serve its models"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use futures_util::StreamExt;

    use super::*;
    use crate::backend::{BackendHealth, BoxFuture, ConnectFailure, StreamEvent};
    use crate::inference::{Input, Options};

    /// A backend that lists fixed models (or fails to), and answers with
    /// one token, or with the failure it is given.
    struct Listed {
        name: &'static str,
        models: Result<Vec<&'static str>, BackendError>,
        open: bool,
        answer: Answer,
        calls: AtomicU32,
    }

    #[derive(Clone)]
    enum Answer {
        Token,
        Refuse(BackendError),
        /// A 200 whose stream fails before any text (as vLLM does).
        FailFirst(BackendError),
        /// Headers, then silence.
        Silent,
        /// Headers, then the token a second later.
        Late,
    }

    fn listed(name: &'static str, models: &[&'static str], answer: Answer) -> Listed {
        Listed {
            name,
            models: Ok(models.to_vec()),
            open: false,
            answer,
            calls: AtomicU32::new(0),
        }
    }

    impl Backend for Listed {
        fn name(&self) -> &str {
            self.name
        }
        fn kind(&self) -> BackendKind {
            BackendKind::Ollama
        }
        fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
            let listed = self.models.clone().map(|names| {
                names
                    .into_iter()
                    .map(|name| ModelInfo {
                        name: name.into(),
                        model: name.into(),
                        backend: self.name.into(),
                        ..ModelInfo::default()
                    })
                    .collect()
            });
            Box::pin(std::future::ready(listed))
        }
        fn infer(&self, _: InferenceRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let name: Arc<str> = self.name.into();
            let answer = self.answer.clone();
            Box::pin(async move {
                match answer {
                    Answer::Token => Ok(TokenStream::new(
                        name.clone(),
                        futures_util::stream::iter([
                            Ok(StreamEvent::Token(name.to_string())),
                            Ok(StreamEvent::Done(Box::default())),
                        ]),
                    )),
                    Answer::Refuse(error) => Err(error),
                    Answer::FailFirst(error) => Ok(TokenStream::new(
                        name,
                        futures_util::stream::iter([Err(error)]),
                    )),
                    Answer::Silent => Ok(TokenStream::new(name, futures_util::stream::pending())),
                    Answer::Late => Ok(TokenStream::new(
                        name.clone(),
                        futures_util::stream::once(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            Ok(StreamEvent::Token(name.to_string()))
                        })
                        .chain(futures_util::stream::iter([Ok(
                            StreamEvent::Done(Box::default()),
                        )])),
                    )),
                }
            })
        }
        fn embed(&self, _: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>> {
            unreachable!("routing only")
        }
        fn health(&self) -> BoxFuture<'_, BackendHealth> {
            unreachable!("routing only")
        }
        fn describe(&self, _: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
            unreachable!("routing only")
        }
        fn serves_unlisted_models(&self) -> bool {
            self.open
        }
    }

    fn down(backend: &str) -> BackendError {
        BackendError::Unreachable {
            backend: backend.into(),
            reason: ConnectFailure::Refused,
            detail: "http://127.0.0.1:11434".into(),
        }
    }

    fn registry(ollama: Result<Vec<&'static str>, BackendError>) -> Registry {
        Registry::new(vec![
            Arc::new(Listed {
                open: true,
                models: ollama,
                ..listed("ollama", &[], Answer::Token)
            }),
            Arc::new(listed("embedded", &["gemma3:270m"], Answer::Token)),
        ])
    }

    async fn resolved(registry: &Registry, model: &str) -> Result<String, BackendError> {
        registry
            .resolve(model)
            .await
            .map(|backend| backend.name().to_string())
    }

    fn request(model: &str) -> InferenceRequest {
        InferenceRequest {
            model: model.into(),
            input: Input::Completion {
                prompt: "hi".into(),
                system: None,
                context: None,
                raw: false,
            },
            options: Options::default(),
            keep_alive: None,
            think: None,
            format: None,
        }
    }

    /// Who answered: the first token's text is the backend's name.
    async fn answered_by(registry: &Arc<Registry>, model: &str) -> Result<String, BackendError> {
        let mut stream = registry.infer(request(model)).await?;
        match stream.next().await {
            Some(Ok(StreamEvent::Token(name))) => Ok(name),
            Some(Err(error)) => Err(error),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_listed_model_goes_to_its_backend_with_or_without_latest() {
        let registry = registry(Ok(vec!["llama3.2:latest"]));
        assert_eq!(resolved(&registry, "llama3.2").await.unwrap(), "ollama");
        assert_eq!(
            resolved(&registry, "gemma3:270m").await.unwrap(),
            "embedded"
        );
    }

    #[tokio::test]
    async fn an_unlisted_name_goes_to_ollama_for_its_own_answer() {
        let registry = registry(Ok(vec![]));
        assert_eq!(resolved(&registry, "nope").await.unwrap(), "ollama");
    }

    #[tokio::test]
    async fn while_ollama_is_down_an_unlisted_name_is_its_outage_not_a_404() {
        let registry = registry(Err(down("ollama")));
        assert_eq!(
            resolved(&registry, "llama3.2:1b").await,
            Err(down("ollama"))
        );
        // The embedded models are still served.
        assert_eq!(
            resolved(&registry, "gemma3:270m").await.unwrap(),
            "embedded"
        );
    }

    #[tokio::test]
    async fn with_every_backend_up_and_none_resolving_names_it_is_not_found() {
        let registry = Arc::new(Registry::new(vec![
            Arc::new(listed("embedded", &["gemma3:270m"], Answer::Token)),
            Arc::new(listed("other", &[], Answer::Token)),
        ]));
        assert_eq!(
            resolved(&registry, "llama3.2:1b").await,
            Err(BackendError::ModelNotFound {
                message: "model \"llama3.2:1b\" not found".into()
            })
        );
    }

    #[tokio::test]
    async fn a_model_on_several_backends_is_listed_once_with_all_of_them() {
        let registry = Arc::new(Registry::new(vec![
            Arc::new(listed("a", &["m", "only-a"], Answer::Token)),
            Arc::new(listed("b", &["m"], Answer::Token)),
        ]));
        let models = registry.list_models().await.unwrap();
        let names: Vec<(&str, Vec<String>)> = models
            .iter()
            .map(|m| (m.name.as_str(), m.backends.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("m", vec!["a".to_string(), "b".to_string()]),
                ("only-a", vec!["a".to_string()])
            ]
        );
    }

    #[tokio::test]
    async fn equal_loads_take_turns_and_a_busier_backend_is_passed_over() {
        let registry = Arc::new(Registry::new(vec![
            Arc::new(listed("a", &["m"], Answer::Token)),
            Arc::new(listed("b", &["m"], Answer::Token)),
        ]));
        registry.list_models().await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(answered_by(&registry, "m").await.unwrap());
        }
        assert_eq!(
            seen.iter().filter(|name| *name == "a").count(),
            2,
            "{seen:?}"
        );
        // An answer in flight on "a": the next goes to "b", every time.
        let _busy = registry.members()[0].lease();
        for _ in 0..3 {
            assert_eq!(answered_by(&registry, "m").await.unwrap(), "b");
        }
    }

    #[tokio::test]
    async fn weights_and_limits_shape_the_choice() {
        let heavy = Member::new(Arc::new(listed("heavy", &["m"], Answer::Token)), 3, None);
        let light = Member::new(Arc::new(listed("light", &["m"], Answer::Token)), 1, Some(1));
        let registry = Arc::new(Registry::with_members(
            vec![light, heavy],
            Failover::default(),
        ));
        registry.list_models().await.unwrap();
        // Weight 3 against 1: with two answers in flight on "heavy" it is
        // still the less loaded (3/3 against 1/1 ties; 2/3 wins).
        let _one = registry.members()[1].lease();
        assert_eq!(answered_by(&registry, "m").await.unwrap(), "heavy");
        // "light" at its limit of one: never chosen, and when "heavy" is
        // full too the answer is busy.
        let _light = registry.members()[0].lease();
        assert_eq!(answered_by(&registry, "m").await.unwrap(), "heavy");
        let limited = Member::new(Arc::new(listed("x", &["m"], Answer::Token)), 1, Some(1));
        let registry = Arc::new(Registry::with_members(vec![limited], Failover::default()));
        let _held = registry.members()[0].lease();
        let Err(error) = registry.infer(request("m")).await else {
            panic!("an answer past the limit")
        };
        assert!(matches!(error, BackendError::Busy { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_failure_before_the_first_token_moves_to_the_next_backend_once() {
        let failing = Arc::new(listed("a", &["m"], Answer::Refuse(down("a"))));
        let registry = Arc::new(Registry::new(vec![
            failing.clone(),
            Arc::new(listed("b", &["m"], Answer::Token)),
        ]));
        registry.list_models().await.unwrap();
        assert_eq!(answered_by(&registry, "m").await.unwrap(), "b");
        assert_eq!(registry.members()[0].state(), State::CoolingDown);
        // While "a" cools down, requests skip it.
        for _ in 0..3 {
            assert_eq!(answered_by(&registry, "m").await.unwrap(), "b");
        }
        assert!(failing.calls.load(Ordering::Relaxed) <= 2);
    }

    #[tokio::test]
    async fn an_error_inside_the_stream_before_any_text_moves_on_too() {
        let failed = BackendError::Failed {
            backend: "a".into(),
            message: "CUDA out of memory".into(),
        };
        let registry = Arc::new(Registry::new(vec![
            Arc::new(listed("a", &["m"], Answer::FailFirst(failed))),
            Arc::new(listed("b", &["m"], Answer::Token)),
        ]));
        registry.list_models().await.unwrap();
        for _ in 0..2 {
            assert_eq!(answered_by(&registry, "m").await.unwrap(), "b");
        }
    }

    #[tokio::test]
    async fn a_refusal_of_the_request_itself_is_not_retried() {
        let rejected = BackendError::Rejected {
            status: 400,
            message: "prompt too long".into(),
        };
        let second = Arc::new(listed("b", &["m"], Answer::Token));
        let registry = Arc::new(Registry::new(vec![
            Arc::new(listed("a", &["m"], Answer::Refuse(rejected.clone()))),
            second.clone(),
        ]));
        registry.list_models().await.unwrap();
        // Whichever is tried first: "a" refuses and nothing moves.
        let mut refusals = 0;
        for _ in 0..2 {
            if answered_by(&registry, "m").await == Err(rejected.clone()) {
                refusals += 1;
            }
        }
        assert_eq!(refusals, 1);
        assert_eq!(registry.members()[0].state(), State::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn with_members_to_fail_over_to_the_answer_is_not_held_until_its_first_token() {
        let registry = Arc::new(Registry::new(vec![
            Arc::new(listed("a", &["m"], Answer::Late)),
            Arc::new(listed("b", &["m"], Answer::Late)),
        ]));
        registry.list_models().await.unwrap();
        let started = tokio::time::Instant::now();
        let mut stream = registry.infer(request("m")).await.unwrap();
        // Its headers can go out now, as a single upstream's do.
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(matches!(
            stream.next().await,
            Some(Ok(StreamEvent::Token(_)))
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_first_token_within_the_deadline_moves_on() {
        let registry = Arc::new(Registry::with_members(
            vec![
                Member::new(Arc::new(listed("a", &["m"], Answer::Silent)), 5, None),
                Member::new(Arc::new(listed("b", &["m"], Answer::Token)), 1, None),
            ],
            Failover {
                attempts: 3,
                first_token: Some(Duration::from_secs(2)),
            },
        ));
        registry.list_models().await.unwrap();
        // "a" weighs more, so it is tried first; its silence costs the deadline.
        let started = tokio::time::Instant::now();
        assert_eq!(answered_by(&registry, "m").await.unwrap(), "b");
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(registry.members()[0].in_flight(), 0);
    }

    #[tokio::test]
    async fn when_every_backend_fails_the_client_reads_the_last_reason() {
        let registry = Arc::new(Registry::new(vec![
            Arc::new(listed("a", &["m"], Answer::Refuse(down("a")))),
            Arc::new(listed("b", &["m"], Answer::Refuse(down("b")))),
        ]));
        registry.list_models().await.unwrap();
        let error = answered_by(&registry, "m").await.unwrap_err();
        assert!(
            matches!(error, BackendError::Unreachable { .. }),
            "{error:?}"
        );
    }
}
