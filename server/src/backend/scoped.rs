//! An upstream seen through its `models` allow-list: it lists and serves
//! only those models, under the names clients use (aliases included), and
//! each request reaches it under the upstream's own name.

use std::sync::Arc;

use app::api::ModelInfo;
use bytes::Bytes;

use super::{
    Backend, BackendError, BackendHealth, BackendKind, BoxFuture, Forwarded, LoadedModel, Manage,
    ModelCard, TokenStream,
};
use crate::inference::{EmbedRequest, Embeddings, InferenceRequest};
use crate::upstreams::ModelMap;

pub struct Scoped {
    inner: Arc<dyn Backend>,
    models: ModelMap,
}

impl Scoped {
    pub fn new(inner: Arc<dyn Backend>, models: ModelMap) -> Self {
        Self { inner, models }
    }

    /// The upstream's name for `asked`, or why it is not served here.
    fn upstream_name(&self, asked: &str) -> Result<String, BackendError> {
        self.models
            .upstream_name(asked)
            .map(str::to_string)
            .ok_or_else(|| BackendError::ModelNotFound {
                message: format!("model \"{asked}\" not found"),
            })
    }

    /// A management call's body with the model it concerns under the
    /// upstream's name. A model off the allow-list is not served here, so
    /// it is not managed here either: the upstream's other models stay out
    /// of clients' reach, and a pull that would never be listed is refused.
    fn renamed_body(&self, call: Manage, body: &[u8]) -> Result<Bytes, BackendError> {
        let mut value: serde_json::Value =
            serde_json::from_slice(body).map_err(|error| BackendError::Rejected {
                status: 400,
                message: format!("invalid JSON body: {error}"),
            })?;
        let fields: &[&str] = match call {
            Manage::Copy => &["source"],
            _ => &["model", "name"],
        };
        for field in fields {
            let Some(serde_json::Value::String(asked)) = value.get_mut(*field) else {
                continue;
            };
            *asked = match self.upstream_name(asked) {
                Ok(upstream) => upstream,
                Err(_) if matches!(call, Manage::Pull | Manage::Create) => {
                    return Err(BackendError::Rejected {
                        status: 400,
                        message: format!(
                            "\"{asked}\" is not among the models the {} upstream is configured \
                             to serve; add it to its models list to {} it",
                            self.name(),
                            call.verb()
                        ),
                    });
                }
                Err(not_served) => return Err(not_served),
            };
        }
        Ok(Bytes::from(
            serde_json::to_vec(&value).expect("a JSON value serialises"),
        ))
    }

    /// One entry per client name of each allowed model the upstream has.
    fn renamed<T: Clone>(
        &self,
        listed: Vec<T>,
        name_of: impl Fn(&mut T) -> &mut ModelInfo,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for mut item in listed {
            let upstream = name_of(&mut item).name.clone();
            for client in self.models.client_names(&upstream) {
                let mut entry = item.clone();
                let info = name_of(&mut entry);
                info.name = client.to_string();
                info.model = client.to_string();
                out.push(entry);
            }
        }
        out
    }
}

impl Backend for Scoped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
        Box::pin(async move {
            let listed = self.inner.list_models().await?;
            Ok(self.renamed(listed, |info| info))
        })
    }

    fn infer(
        &self,
        mut request: InferenceRequest,
    ) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
        Box::pin(async move {
            request.model = self.upstream_name(&request.model)?;
            self.inner.infer(request).await
        })
    }

    fn embed(&self, mut request: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>> {
        Box::pin(async move {
            request.model = self.upstream_name(&request.model)?;
            self.inner.embed(request).await
        })
    }

    fn health(&self) -> BoxFuture<'_, BackendHealth> {
        self.inner.health()
    }

    fn describe(&self, model: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
        let name = self.upstream_name(model);
        Box::pin(async move { self.inner.describe(&name?).await })
    }

    fn loaded(&self) -> BoxFuture<'_, Result<Vec<LoadedModel>, BackendError>> {
        Box::pin(async move {
            let loaded = self.inner.loaded().await?;
            Ok(self.renamed(loaded, |model| &mut model.info))
        })
    }

    fn manage(&self, call: Manage, body: Bytes) -> BoxFuture<'_, Result<Forwarded, BackendError>> {
        Box::pin(async move {
            let body = self.renamed_body(call, &body)?;
            self.inner.manage(call, body).await
        })
    }

    fn accepts_model(&self, name: &str) -> bool {
        self.models.upstream_name(name).is_some()
    }

    fn active_sequences(&self) -> usize {
        self.inner.active_sequences()
    }

    /// The allow-list is the whole list.
    fn serves_unlisted_models(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Listing(Vec<&'static str>);

    impl Backend for Listing {
        fn name(&self) -> &str {
            "up"
        }
        fn kind(&self) -> BackendKind {
            BackendKind::Openai
        }
        fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, BackendError>> {
            let models = self
                .0
                .iter()
                .map(|name| ModelInfo {
                    name: name.to_string(),
                    model: name.to_string(),
                    backend: "up".into(),
                    ..ModelInfo::default()
                })
                .collect();
            Box::pin(async move { Ok(models) })
        }
        fn infer(
            &self,
            request: InferenceRequest,
        ) -> BoxFuture<'_, Result<TokenStream, BackendError>> {
            Box::pin(async move {
                Err(BackendError::Rejected {
                    status: 400,
                    message: format!("asked for {}", request.model),
                })
            })
        }
        fn embed(&self, _: EmbedRequest) -> BoxFuture<'_, Result<Embeddings, BackendError>> {
            unimplemented!()
        }
        fn health(&self) -> BoxFuture<'_, BackendHealth> {
            unimplemented!()
        }
        fn describe(&self, _: &str) -> BoxFuture<'_, Result<ModelCard, BackendError>> {
            unimplemented!()
        }
    }

    fn scoped() -> Scoped {
        let map = BTreeMap::from([
            ("fast".to_string(), "llama3.2:1b".to_string()),
            ("llama3.2:1b".to_string(), "llama3.2:1b".to_string()),
        ]);
        Scoped::new(
            Arc::new(Listing(vec!["llama3.2:1b", "qwen:7b"])),
            ModelMap(map),
        )
    }

    #[tokio::test]
    async fn only_allowed_models_are_listed_under_every_name() {
        let names: Vec<String> = scoped()
            .list_models()
            .await
            .unwrap()
            .into_iter()
            .map(|info| info.name)
            .collect();
        assert_eq!(names, ["fast", "llama3.2:1b"]);
    }

    #[tokio::test]
    async fn an_alias_reaches_the_upstream_under_its_own_name() {
        let request = |model: &str| InferenceRequest {
            model: model.into(),
            input: crate::inference::Input::Load,
            options: Default::default(),
            keep_alive: None,
            think: None,
            format: None,
        };
        let scoped = scoped();
        let Err(error) = scoped.infer(request("fast")).await else {
            panic!()
        };
        assert_eq!(error.to_string(), "asked for llama3.2:1b");
        let Err(error) = scoped.infer(request("qwen:7b")).await else {
            panic!()
        };
        assert!(matches!(error, BackendError::ModelNotFound { .. }));
    }
}
