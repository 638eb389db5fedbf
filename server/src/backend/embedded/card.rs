//! An embedded model described as Ollama's `/api/show` describes a model:
//! its GGUF metadata as `model_info`, its chat template, its license, and
//! what it can do.

use std::path::Path;

use super::catalog::ModelFile;
use super::gguf::{GgufError, Metadata, Value};
use crate::backend::ModelCard;

/// Metadata too long to be worth a listing (the template has its own field).
const LEFT_OUT: [&str; 1] = ["tokenizer.chat_template"];

/// Reads the card of a model file. Blocking: reads the file's header.
pub fn read(file: &ModelFile) -> Result<ModelCard, GgufError> {
    let metadata = Metadata::read(&file.path)?;
    Ok(card(file, &metadata))
}

fn card(file: &ModelFile, metadata: &Metadata) -> ModelCard {
    let mut entries: Vec<(&str, &Value)> = metadata
        .entries()
        .filter(|(key, _)| !LEFT_OUT.contains(key))
        .collect();
    entries.sort_by_key(|(key, _)| *key);
    let model_info = entries
        .into_iter()
        .map(|(key, value)| (key.to_string(), json(value)))
        .collect();
    let template = metadata
        .text("tokenizer.chat_template")
        .unwrap_or_default()
        .to_string();
    ModelCard {
        license: metadata
            .text("general.license")
            .unwrap_or_default()
            .to_string(),
        // No Modelfile built it: name the file it is, not where it lies.
        modelfile: format!("FROM {}\n", file_name(&file.path)),
        parameters: String::new(),
        template,
        system: String::new(),
        details: file.info.details.clone(),
        model_info,
        capabilities: vec!["completion".to_string()],
        modified_at: file.info.modified_at.clone(),
        extra: serde_json::Map::new(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Int(int) => i64::try_from(*int)
            .map(serde_json::Value::from)
            .or_else(|_| u64::try_from(*int).map(serde_json::Value::from))
            .unwrap_or_else(|_| serde_json::Value::from(int.to_string())),
        Value::Float(float) => serde_json::Number::from_f64(*float)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Bool(flag) => serde_json::Value::Bool(*flag),
        Value::Text(text) => serde_json::Value::String(text.clone()),
    }
}
