//! The model registry: merges the models of every backend into one list and
//! routes each request to the backend that serves its `model`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use app::api::ModelInfo;
use futures_util::future::join_all;

use crate::backend::{
    Backend, BackendError, BackendHealth, BackendKind, LoadedModel, Manage, ModelCard, TokenStream,
};
use crate::inference::{EmbedRequest, Embeddings, InferenceRequest};

/// All backends, in order of preference: when two offer the same model
/// name, the first one serves it.
pub struct Registry {
    backends: Vec<Arc<dyn Backend>>,
    /// Model name → index into `backends`, as of the last listing.
    routes: RwLock<HashMap<String, usize>>,
    /// How each backend's last listing failed, if it did: such a backend
    /// may hold a model nobody listed.
    failed_listings: Mutex<Vec<Option<BackendError>>>,
    /// Whether each backend answered its last listing, so that a backend
    /// going down or coming back is logged once, not at every listing.
    reachable: Vec<AtomicBool>,
}

impl Registry {
    pub fn new(backends: Vec<Arc<dyn Backend>>) -> Self {
        assert!(
            !backends.is_empty(),
            "the registry needs at least one backend"
        );
        Self {
            reachable: backends.iter().map(|_| AtomicBool::new(true)).collect(),
            failed_listings: Mutex::new(vec![None; backends.len()]),
            backends,
            routes: RwLock::new(HashMap::new()),
        }
    }

    pub fn backends(&self) -> &[Arc<dyn Backend>] {
        &self.backends
    }

    /// Every backend's models, merged. A backend that fails is logged and
    /// left out, unless every backend fails: then the first error is returned.
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, BackendError> {
        let listings = join_all(self.backends.iter().map(|backend| backend.list_models())).await;
        let mut models = Vec::new();
        let mut routes = HashMap::new();
        let mut failures = Vec::with_capacity(listings.len());
        for (index, listing) in listings.into_iter().enumerate() {
            let backend = self.backends[index].name();
            let was_reachable = self.reachable[index].swap(listing.is_ok(), Ordering::Relaxed);
            match listing {
                Ok(listed) => {
                    if !was_reachable {
                        tracing::info!(backend, "backend reachable again; its models are listed");
                    }
                    for model in listed {
                        if !routes.contains_key(&model.name) {
                            routes.insert(model.name.clone(), index);
                            models.push(model);
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
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
        Ok(models)
    }

    /// Routes the request to the backend serving its model and starts it.
    pub async fn infer(&self, request: InferenceRequest) -> Result<TokenStream, BackendError> {
        let backend = self.resolve(&request.model).await?;
        backend.infer(request).await
    }

    /// The backend that serves `model`. A name no backend listed goes to
    /// the first reachable backend that resolves names itself (Ollama), so
    /// its own "not found" reaches the client; while none is reachable, the
    /// answer is why (a backend that could hold the model is down); with
    /// no such backend at all, the model does not exist.
    pub async fn resolve(&self, model: &str) -> Result<Arc<dyn Backend>, BackendError> {
        if self.backends.len() == 1 {
            return Ok(self.backends[0].clone());
        }
        if let Some(index) = self.route(model) {
            return Ok(self.backends[index].clone());
        }
        // Unknown name: the model may be new since the last listing.
        let _ = self.list_models().await;
        if let Some(index) = self.route(model) {
            return Ok(self.backends[index].clone());
        }
        let failures = self
            .failed_listings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let open = self
            .backends
            .iter()
            .zip(&failures)
            .find(|(backend, failure)| backend.serves_unlisted_models() && failure.is_none());
        if let Some((backend, _)) = open {
            return Ok(backend.clone());
        }
        if let Some(down) = failures.into_iter().flatten().next() {
            return Err(down);
        }
        Err(BackendError::ModelNotFound {
            message: format!("model \"{model}\" not found"),
        })
    }

    fn route(&self, model: &str) -> Option<usize> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes
            .get(model)
            .or_else(|| routes.get(&format!("{model}:latest")))
            .copied()
    }

    /// Routes an embedding request to the backend serving its model.
    pub async fn embed(&self, request: EmbedRequest) -> Result<Embeddings, BackendError> {
        let backend = self.resolve(&request.model).await?;
        backend.embed(request).await
    }

    /// What the backend serving `model` knows of it.
    pub async fn describe(&self, model: &str) -> Result<ModelCard, BackendError> {
        self.resolve(model).await?.describe(model).await
    }

    /// Every backend's models in memory now. A backend that cannot say is
    /// left out (logged), as in [`Self::list_models`].
    pub async fn loaded(&self) -> Vec<LoadedModel> {
        let listings = join_all(self.backends.iter().map(|backend| backend.loaded())).await;
        let mut loaded = Vec::new();
        for (backend, listing) in self.backends.iter().zip(listings) {
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
            return self
                .backends
                .iter()
                .find(|backend| backend.kind() == BackendKind::Ollama)
                .cloned()
                .ok_or_else(|| BackendError::Rejected {
                    status: 400,
                    message: format!(
                        "no Ollama server is configured to {} models (set OLLAMA_URL); \
                         embedded models are the .gguf files in the models directory",
                        call.verb()
                    ),
                });
        }
        self.resolve(model).await
    }

    /// Each backend's health, checked concurrently, with its name.
    pub async fn health(&self) -> Vec<(&str, BackendHealth)> {
        let checks = join_all(self.backends.iter().map(|backend| backend.health())).await;
        self.backends
            .iter()
            .map(|backend| backend.name())
            .zip(checks)
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BoxFuture, ConnectFailure};

    /// A backend that lists fixed models, or fails to.
    struct Listed {
        name: &'static str,
        models: Result<Vec<&'static str>, BackendError>,
        open: bool,
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
                        modified_at: String::new(),
                        size: 0,
                        digest: String::new(),
                        details: Default::default(),
                        backend: self.name.into(),
                    })
                    .collect()
            });
            Box::pin(std::future::ready(listed))
        }
        fn infer(&self, _: InferenceRequest) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
            unreachable!("routing only")
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

    fn down() -> BackendError {
        BackendError::Unreachable {
            backend: "ollama".into(),
            reason: ConnectFailure::Refused,
            detail: "http://127.0.0.1:11434".into(),
        }
    }

    fn registry(ollama: Result<Vec<&'static str>, BackendError>) -> Registry {
        Registry::new(vec![
            Arc::new(Listed {
                name: "ollama",
                models: ollama,
                open: true,
            }),
            Arc::new(Listed {
                name: "embedded",
                models: Ok(vec!["gemma3:270m"]),
                open: false,
            }),
        ])
    }

    async fn resolved(registry: &Registry, model: &str) -> Result<String, BackendError> {
        registry
            .resolve(model)
            .await
            .map(|backend| backend.name().to_string())
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
        let registry = registry(Err(down()));
        assert_eq!(resolved(&registry, "llama3.2:1b").await, Err(down()));
        // The embedded models are still served.
        assert_eq!(
            resolved(&registry, "gemma3:270m").await.unwrap(),
            "embedded"
        );
    }

    #[tokio::test]
    async fn with_every_backend_up_and_none_resolving_names_it_is_not_found() {
        let registry = Registry::new(vec![
            Arc::new(Listed {
                name: "embedded",
                models: Ok(vec!["gemma3:270m"]),
                open: false,
            }),
            Arc::new(Listed {
                name: "other",
                models: Ok(vec![]),
                open: false,
            }),
        ]);
        assert_eq!(
            resolved(&registry, "llama3.2:1b").await,
            Err(BackendError::ModelNotFound {
                message: "model \"llama3.2:1b\" not found".into()
            })
        );
    }
}
