//! The model registry: merges the models of every backend into one list and
//! routes each request to the backend that serves its `model`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use app::api::{BackendKind, ModelInfo};
use futures_util::future::join_all;

use crate::backend::{Backend, BackendError, BackendHealth};

/// All backends, in order of preference: when two offer the same model
/// name, the first one serves it.
pub struct Registry {
    backends: Vec<Arc<dyn Backend>>,
    /// Model name → index into `backends`, as of the last listing.
    routes: RwLock<HashMap<String, usize>>,
    /// The first backend that answered the last listing: it gets names no
    /// backend listed, so its own "not found" reaches the client.
    fallback: RwLock<usize>,
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
            backends,
            routes: RwLock::new(HashMap::new()),
            fallback: RwLock::new(0),
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
        let mut first_error = None;
        let mut first_listed = None;
        for (index, listing) in listings.into_iter().enumerate() {
            let backend = self.backends[index].kind().as_str();
            let was_reachable = self.reachable[index].swap(listing.is_ok(), Ordering::Relaxed);
            match listing {
                Ok(listed) => {
                    if !was_reachable {
                        tracing::info!(backend, "backend reachable again; its models are listed");
                    }
                    first_listed.get_or_insert(index);
                    for model in listed {
                        if !routes.contains_key(&model.name) {
                            routes.insert(model.name.clone(), index);
                            models.push(model);
                        }
                    }
                }
                Err(error) => {
                    if was_reachable {
                        tracing::warn!(backend, %error, "cannot list models; leaving them out until the backend answers");
                    } else {
                        tracing::debug!(backend, %error, "cannot list models");
                    }
                    first_error.get_or_insert(error);
                }
            }
        }
        let Some(fallback) = first_listed else {
            return Err(first_error.expect("no listing succeeded, so one failed"));
        };
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
        *self.fallback.write().unwrap_or_else(|p| p.into_inner()) = fallback;
        Ok(models)
    }

    /// The backend that serves `model`. A name no backend listed goes to the
    /// first backend that is up, so its own "not found" reaches the client.
    pub async fn resolve(&self, model: &str) -> Arc<dyn Backend> {
        if self.backends.len() == 1 {
            return self.backends[0].clone();
        }
        if let Some(index) = self.route(model) {
            return self.backends[index].clone();
        }
        // Unknown name: the model may be new since the last listing.
        let _ = self.list_models().await;
        let index = self
            .route(model)
            .unwrap_or_else(|| *self.fallback.read().unwrap_or_else(|p| p.into_inner()));
        self.backends[index].clone()
    }

    fn route(&self, model: &str) -> Option<usize> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes
            .get(model)
            .or_else(|| routes.get(&format!("{model}:latest")))
            .copied()
    }

    /// Each backend's health, checked concurrently.
    pub async fn health(&self) -> Vec<BackendHealth> {
        join_all(self.backends.iter().map(|backend| backend.health())).await
    }

    /// Logs, once at start, which backends can serve. A backend that is down
    /// is a warning, not a failure: its models appear once it is up.
    pub async fn log_backends(&self) {
        for (index, health) in self.health().await.into_iter().enumerate() {
            // Said here; the listings need not say it again.
            self.reachable[index].store(health.ready, Ordering::Relaxed);
            let backend = health.backend.as_str();
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

    /// The backend of the given kind, if configured.
    pub fn backend(&self, kind: BackendKind) -> Option<&Arc<dyn Backend>> {
        self.backends.iter().find(|backend| backend.kind() == kind)
    }
}
