//! Sampling settings from a request's Ollama-named options, with Ollama's
//! defaults, turned into a llama.cpp sampler chain.

use crate::inference::Options;
use llama_cpp_2::sampling::LlamaSampler;

/// llama.cpp's "pick a random seed" value.
const RANDOM_SEED: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: i32,
    pub seed: u32,
}

impl Default for Sampling {
    /// Ollama's defaults.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: RANDOM_SEED,
        }
    }
}

impl Sampling {
    pub fn from_options(options: &Options) -> Self {
        let defaults = Self::default();
        Self {
            temperature: options.temperature.unwrap_or(defaults.temperature),
            top_k: options.top_k.unwrap_or(defaults.top_k),
            top_p: options.top_p.unwrap_or(defaults.top_p),
            repeat_penalty: options.repeat_penalty.unwrap_or(defaults.repeat_penalty),
            repeat_last_n: options.repeat_last_n.unwrap_or(defaults.repeat_last_n),
            // Ollama's seed is any integer; llama.cpp's is 32-bit.
            seed: options.seed.map_or(defaults.seed, |seed| seed as u32),
        }
    }

    /// The sampler chain. Temperature 0 (or below) means greedy: always the
    /// most likely token, the same text every time.
    pub fn sampler(&self, n_vocab: i32) -> LlamaSampler {
        let penalties =
            LlamaSampler::penalties(n_vocab, self.repeat_last_n, self.repeat_penalty, 0.0, 0.0);
        if self.temperature <= 0.0 {
            return LlamaSampler::chain_simple([penalties, LlamaSampler::greedy()]);
        }
        let mut chain = vec![penalties];
        if self.top_k > 0 {
            chain.push(LlamaSampler::top_k(self.top_k));
        }
        if self.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(self.top_p, 1));
        }
        chain.push(LlamaSampler::temp(self.temperature));
        chain.push(LlamaSampler::dist(self.seed));
        LlamaSampler::chain_simple(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_override_ollamas_defaults() {
        let options = Options {
            temperature: Some(0.0),
            seed: Some(42),
            repeat_last_n: Some(16),
            ..Options::default()
        };
        let sampling = Sampling::from_options(&options);
        assert_eq!(sampling.temperature, 0.0);
        assert_eq!(sampling.seed, 42);
        assert_eq!(sampling.repeat_last_n, 16);
        assert_eq!(sampling.top_k, 40);
    }
}
