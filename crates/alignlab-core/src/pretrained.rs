//! A model with its tokenizer, loaded from the bytes of one file.

use burn::tensor::Device;

use crate::model::llama::{Llama, LlamaConfig};
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::weights::gguf::{Gguf, GgufError};
use crate::weights::{GgufSource, WeightError, llama_config_from_gguf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading GGUF: {0}")]
    Gguf(#[from] GgufError),
    #[error("loading weights: {0}")]
    Weights(#[from] WeightError),
    #[error("building the tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
}

/// A decoder, its resolved config and its tokenizer.
pub struct Pretrained {
    pub model: Llama,
    pub config: LlamaConfig,
    pub tokenizer: Tokenizer,
}

impl Pretrained {
    /// Loads a Llama-family GGUF (weights dequantised to f32, tokenizer and chat template from its metadata).
    pub fn from_gguf(bytes: Vec<u8>, device: &Device) -> Result<Self, LoadError> {
        let gguf = Gguf::parse(bytes)?;
        let config = llama_config_from_gguf(&gguf)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        let source = GgufSource { gguf: &gguf, n_heads: config.n_heads, n_kv_heads: config.n_kv_heads };
        let model = Llama::from_source(&config, &source, device)?;
        Ok(Self { model, config, tokenizer })
    }
}
