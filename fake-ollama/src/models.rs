//! The models the fake pretends to have, described as Ollama describes them.

use serde_json::{Value, json};

/// One installed model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeModel {
    /// Full name with tag, e.g. `llama3.2:latest`.
    pub name: String,
    pub family: String,
    pub parameter_size: String,
    pub quantization_level: String,
    pub size: u64,
}

impl FakeModel {
    /// A model with plausible details derived from its name.
    pub fn named(name: &str) -> Self {
        let name = if name.contains(':') {
            name.to_string()
        } else {
            format!("{name}:latest")
        };
        let family = name
            .split([':', '.'])
            .next()
            .unwrap_or_default()
            .trim_end_matches(char::is_numeric)
            .to_string();
        Self {
            name,
            family,
            parameter_size: "3.2B".to_string(),
            quantization_level: "Q4_K_M".to_string(),
            size: 2_019_393_189,
        }
    }

    /// Whether a request's `model` names this model (`llama3.2` means `llama3.2:latest`).
    pub fn answers_to(&self, requested: &str) -> bool {
        self.name == requested || self.name.strip_suffix(":latest") == Some(requested)
    }

    pub(crate) fn digest(&self) -> String {
        // Stable and distinct per name, shaped like Ollama's sha256 digests.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}").repeat(4)
    }

    fn details(&self) -> Value {
        json!({
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        })
    }

    /// The entry `/api/tags` lists.
    pub fn tag_entry(&self) -> Value {
        json!({
            "name": self.name,
            "model": self.name,
            "modified_at": "2025-01-15T10:20:30.123456789Z",
            "size": self.size,
            "digest": self.digest(),
            "details": self.details(),
        })
    }

    /// The entry `/api/ps` lists: loaded on the CPU, for five more minutes.
    pub fn ps_entry(&self) -> Value {
        let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(300);
        json!({
            "name": self.name,
            "model": self.name,
            "size": self.size,
            "digest": self.digest(),
            "details": self.details(),
            "expires_at": humantime::format_rfc3339_nanos(expires).to_string(),
            "size_vram": 0,
            "context_length": 4096,
        })
    }

    /// The answer of `/api/show`.
    pub fn show(&self) -> Value {
        json!({
            "license": "fake license",
            "modelfile": format!("FROM {}\n", self.name),
            "parameters": "stop \"<|eot_id|>\"",
            "template": "{{ .Prompt }}",
            "details": self.details(),
            "model_info": {
                "general.architecture": self.family,
                "general.parameter_count": 3_212_749_888_u64,
                format!("{}.context_length", self.family): 131_072,
            },
            "capabilities": ["completion"],
            "modified_at": "2025-01-15T10:20:30.123456789Z",
        })
    }
}

/// The models a fake starts with unless told otherwise.
pub fn default_models() -> Vec<FakeModel> {
    vec![
        FakeModel::named("llama3.2:latest"),
        FakeModel {
            parameter_size: "494.03M".to_string(),
            size: 397_821_319,
            ..FakeModel::named("qwen2.5:0.5b")
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untagged_name_means_latest() {
        let model = FakeModel::named("llama3.2");
        assert_eq!(model.name, "llama3.2:latest");
        assert_eq!(model.family, "llama");
        assert!(model.answers_to("llama3.2"));
        assert!(model.answers_to("llama3.2:latest"));
        assert!(!model.answers_to("llama3"));
    }
}
