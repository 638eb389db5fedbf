//! Embeddings from a loaded model, through llama.cpp's embedding mode: a
//! context of its own (the engine's generation context stays as it is),
//! each input decoded as one sequence and pooled into one vector, then
//! scaled to unit length as Ollama returns them. A model whose GGUF names
//! its pooling (an embedding model) is pooled its own way; any other is
//! mean-pooled, so every GGUF can embed.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;

use super::engine::{CONTEXT_CREATION, DECODE, llama_backend};

/// How an embedding context is sized.
#[derive(Debug, Clone, Copy)]
pub struct EmbedSettings {
    pub threads: i32,
    /// The longest input, in tokens.
    pub window: u32,
}

/// Why inputs could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The client's to fix: an input longer than the window.
    #[error(
        "input {index} is {tokens} tokens, longer than the context window of {window} tokens \
         (send `truncate: true` to cut it)"
    )]
    TooLong {
        index: usize,
        tokens: usize,
        window: u32,
    },
    #[error("{0}")]
    Llama(String),
}

/// One unit vector per input, in order, and the tokens read.
pub fn embed(
    model: &LlamaModel,
    inputs: &[String],
    truncate: bool,
    dimensions: Option<usize>,
    settings: EmbedSettings,
) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
    let llama = |error: &dyn std::fmt::Display| EmbedError::Llama(error.to_string());
    let backend = llama_backend().map_err(|error| llama(&error))?;
    let window = settings.window.min(model.n_ctx_train()).max(1);
    let mut context = {
        let _creating = CONTEXT_CREATION.lock().unwrap_or_else(|p| p.into_inner());
        // The whole input in one micro-batch: pooling reads every token of it.
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(window))
            .with_n_batch(window)
            .with_n_ubatch(window)
            .with_n_threads(settings.threads)
            .with_n_threads_batch(settings.threads)
            .with_embeddings(true)
            .with_pooling_type(pooling(model));
        model
            .new_context(backend, params)
            .map_err(|error| llama(&error))?
    };
    let vocab = model.vocab();
    let mut batch = LlamaBatch::new(window as usize, 1);
    let mut vectors = Vec::with_capacity(inputs.len());
    let mut read = 0_u64;
    for (index, input) in inputs.iter().enumerate() {
        // Text is never parsed for special tokens: an input is data.
        let mut tokens = vocab.tokenize(input.as_bytes(), true, false);
        if tokens.len() > window as usize {
            if !truncate {
                return Err(EmbedError::TooLong {
                    index,
                    tokens: tokens.len(),
                    window,
                });
            }
            tokens.truncate(window as usize);
        }
        read += tokens.len() as u64;
        batch.clear();
        batch
            .add_sequence(&tokens, 0, true)
            .map_err(|error| llama(&error))?;
        context.clear_kv_cache();
        {
            let _decoding = DECODE.lock().unwrap_or_else(|p| p.into_inner());
            context.decode(&mut batch).map_err(|error| llama(&error))?;
        }
        let pooled = context
            .embeddings_seq_ith(0)
            .map_err(|error| llama(&error))?;
        vectors.push(unit(pooled, dimensions));
    }
    Ok((vectors, read))
}

/// The model's own pooling when its GGUF names one, else the mean.
fn pooling(model: &LlamaModel) -> LlamaPoolingType {
    let declared = model
        .meta_val_str("general.architecture")
        .ok()
        .and_then(|arch| model.meta_val_str(&format!("{arch}.pooling_type")).ok())
        .and_then(|value| value.trim().parse::<i32>().ok())
        .map(LlamaPoolingType::from)
        .filter(|pooling| {
            !matches!(
                pooling,
                LlamaPoolingType::Unspecified | LlamaPoolingType::None
            )
        });
    declared.unwrap_or(LlamaPoolingType::Mean)
}

/// The first `dimensions` of a vector (all of them when unset), scaled to
/// length 1; a zero vector stays zero.
pub fn unit(vector: &[f32], dimensions: Option<usize>) -> Vec<f32> {
    let kept = dimensions.map_or(vector.len(), |n| n.min(vector.len()));
    let mut out = vector[..kept].to_vec();
    let norm = out
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in &mut out {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_out_unit_length_and_cut_to_the_dimensions_asked() {
        assert_eq!(unit(&[3.0, 4.0], None), vec![0.6, 0.8]);
        assert_eq!(unit(&[3.0, 4.0, 12.0], Some(2)), vec![0.6, 0.8]);
        assert_eq!(unit(&[0.0, 0.0], None), vec![0.0, 0.0]);
        assert_eq!(unit(&[2.0], Some(5)), vec![1.0]);
    }
}
