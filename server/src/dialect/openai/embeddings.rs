//! `POST /v1/embeddings`: text in (a string or an array of them), vectors
//! out as floats or, with `encoding_format: "base64"` (what the official
//! SDKs ask for by default), their little-endian `f32` bytes in base64.

use base64::Engine;
use serde_json::Value;

use super::OpenAiError;
use super::wire::{Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage, EmbeddingVector};
use crate::inference::{EmbedRequest, Embeddings, Options};

/// How the vectors go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Float,
    Base64,
}

/// The embedding request, the model as the client named it, and how to
/// encode the vectors.
pub fn embed_request(request: EmbeddingRequest) -> Result<(EmbedRequest, Encoding), OpenAiError> {
    super::require_model(&request.model)?;
    let input = match request.input {
        Value::String(text) => vec![text],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::String(text) => Some(text),
                _ => None,
            })
            .collect(),
        Value::Array(items) if items.iter().all(|item| item.is_number() || item.is_array()) => {
            return Err(OpenAiError::unsupported(
                "input",
                "token ids cannot be embedded; send the text",
            ));
        }
        Value::Null => {
            return Err(OpenAiError::invalid(
                "input",
                "`input` is required: a string or an array of strings",
            ));
        }
        _ => {
            return Err(OpenAiError::invalid(
                "input",
                "`input` must be a string or an array of strings",
            ));
        }
    };
    if input.is_empty() || input.iter().any(String::is_empty) {
        return Err(OpenAiError::invalid(
            "input",
            "`input` must not be empty, nor hold an empty string",
        ));
    }
    let encoding = match request.encoding_format.as_deref() {
        None | Some("float") => Encoding::Float,
        Some("base64") => Encoding::Base64,
        Some(other) => {
            return Err(OpenAiError::invalid(
                "encoding_format",
                format!("`encoding_format` must be `float` or `base64`, not `{other}`"),
            ));
        }
    };
    let dimensions = match request.dimensions {
        None => None,
        Some(n) if n > 0 => Some(n as usize),
        Some(_) => {
            return Err(OpenAiError::invalid(
                "dimensions",
                "`dimensions` must be a positive number",
            ));
        }
    };
    Ok((
        EmbedRequest {
            model: request.model,
            input,
            // OpenAI refuses an input too long for the model.
            truncate: false,
            dimensions,
            options: Options::default(),
            keep_alive: None,
        },
        encoding,
    ))
}

/// The vectors as OpenAI lists them, under the model's name as asked.
pub fn embedding_list(model: String, embeddings: Embeddings, encoding: Encoding) -> EmbeddingList {
    EmbeddingList {
        object: "list",
        data: embeddings
            .vectors
            .into_iter()
            .enumerate()
            .map(|(index, vector)| Embedding {
                object: "embedding",
                index,
                embedding: match encoding {
                    Encoding::Float => EmbeddingVector::Float(vector),
                    Encoding::Base64 => EmbeddingVector::Base64(base64_of(&vector)),
                },
            })
            .collect(),
        model,
        usage: EmbeddingUsage {
            prompt_tokens: embeddings.prompt_tokens,
            total_tokens: embeddings.prompt_tokens,
        },
    }
}

fn base64_of(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<(EmbedRequest, Encoding), OpenAiError> {
        embed_request(serde_json::from_value(body).unwrap())
    }

    #[test]
    fn a_string_or_strings_are_the_inputs() {
        let (one, encoding) = parse(json!({"model": "m", "input": "hi"})).unwrap();
        assert_eq!(
            (one.input, encoding),
            (vec!["hi".to_string()], Encoding::Float)
        );
        let (two, encoding) = parse(json!({"model": "m", "input": ["a", "b"],
                                            "encoding_format": "base64", "dimensions": 8}))
        .unwrap();
        assert_eq!(two.input, ["a", "b"]);
        assert_eq!((two.dimensions, encoding), (Some(8), Encoding::Base64));
    }

    #[test]
    fn what_cannot_be_embedded_is_refused_by_name() {
        let param = |body: Value| parse(body).unwrap_err().body().error.param;
        assert_eq!(
            param(json!({"model": "m", "input": [1, 2]})),
            Some("input".into())
        );
        assert_eq!(
            param(json!({"model": "m", "input": []})),
            Some("input".into())
        );
        assert_eq!(param(json!({"model": "m"})), Some("input".into()));
        assert_eq!(
            param(json!({"model": "m", "input": "x", "encoding_format": "hex"})),
            Some("encoding_format".into())
        );
        assert_eq!(param(json!({"input": "x"})), Some("model".into()));
    }

    #[test]
    fn base64_is_the_little_endian_floats() {
        let list = embedding_list(
            "m".into(),
            Embeddings {
                vectors: vec![vec![1.0, -2.0]],
                prompt_tokens: 3,
                ..Embeddings::default()
            },
            Encoding::Base64,
        );
        assert_eq!(
            serde_json::to_value(list).unwrap(),
            json!({"object": "list",
                   "data": [{"object": "embedding", "index": 0, "embedding": "AACAPwAAAMA="}],
                   "model": "m", "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        );
    }
}
