//! The embedded backend's baseline: llama-cpp-2's own decode loop on the
//! same model, threads and context shape as llm-chat's engine, with no
//! server around it. Several prompts decode as sequences of one batch, as
//! the engine does.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;

/// When each token of one sequence was sampled, from the start of its
/// prompt's decoding.
pub type TokenTimes = Vec<Duration>;

/// What the engine is given per sequence in llm-chat, mirrored here.
pub struct RawSettings {
    pub threads: i32,
    pub parallel: u32,
    pub context_size: u32,
}

/// The transcript llm-chat builds for a model without a chat template.
pub fn transcript(question: &str) -> String {
    format!("User: {question}\nAssistant:")
}

/// A model loaded once for every raw run.
pub struct RawModel {
    backend: LlamaBackend,
    model: LlamaModel,
}

impl RawModel {
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
        backend.void_logs();
        let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())
            .map_err(|e| e.to_string())?;
        Ok(Self { backend, model })
    }

    /// Decodes `tokens` tokens for each prompt at once (greedy, with
    /// llm-chat's default repeat penalty), stopping a sequence at its
    /// end-of-generation token as the engine does.
    pub fn decode(
        &self,
        prompts: &[String],
        tokens: usize,
        settings: &RawSettings,
    ) -> Result<Vec<TokenTimes>, String> {
        let model = &self.model;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(settings.context_size * settings.parallel))
            .with_n_batch(512)
            .with_n_ubatch(512)
            .with_n_seq_max(settings.parallel)
            .with_kv_unified(true)
            .with_n_threads(settings.threads)
            .with_n_threads_batch(settings.threads);
        let mut context = model
            .new_context(&self.backend, params)
            .map_err(|e| e.to_string())?;
        let vocab = model.vocab();
        let prompts: Vec<_> = prompts
            .iter()
            .map(|p| vocab.tokenize(p.as_bytes(), true, false))
            .collect();
        let mut samplers: Vec<LlamaSampler> = prompts
            .iter()
            .map(|_| {
                LlamaSampler::chain_simple([
                    LlamaSampler::penalties(model.n_vocab(), 64, 1.1, 0.0, 0.0),
                    LlamaSampler::greedy(),
                ])
            })
            .collect();
        let mut batch = LlamaBatch::new(512, prompts.len() as i32);
        let mut times: Vec<TokenTimes> =
            prompts.iter().map(|_| Vec::with_capacity(tokens)).collect();

        let started = Instant::now();
        let mut logits_at = Vec::new();
        for (seq, prompt) in prompts.iter().enumerate() {
            for (position, token) in prompt.iter().enumerate() {
                let last = position + 1 == prompt.len();
                batch
                    .add(*token, position as i32, &[seq as i32], last)
                    .map_err(|e| e.to_string())?;
            }
            logits_at.push(batch.n_tokens() - 1);
        }
        context.decode(&mut batch).map_err(|e| e.to_string())?;
        let mut positions: Vec<i32> = prompts.iter().map(|p| p.len() as i32).collect();
        let mut live: Vec<Option<llama_cpp_2::token::LlamaToken>> = Vec::new();
        for (seq, sampler) in samplers.iter_mut().enumerate() {
            let token = sampler.sample(&context, logits_at[seq]);
            times[seq].push(started.elapsed());
            live.push((!vocab.is_eog(token)).then_some(token));
        }
        for _ in 1..tokens {
            batch.clear();
            let mut at = Vec::new();
            for (seq, token) in live.iter().enumerate() {
                if let Some(token) = token {
                    batch
                        .add(*token, positions[seq], &[seq as i32], true)
                        .map_err(|e| e.to_string())?;
                    positions[seq] += 1;
                    at.push((seq, batch.n_tokens() - 1));
                }
            }
            if at.is_empty() {
                break;
            }
            context.decode(&mut batch).map_err(|e| e.to_string())?;
            for (seq, index) in at {
                let token = samplers[seq].sample(&context, index);
                times[seq].push(started.elapsed());
                live[seq] = (!vocab.is_eog(token)).then_some(token);
            }
        }
        Ok(times)
    }
}
