//! Model weight formats. Every reader is exposed to the models as a [`WeightSource`] that answers Hugging
//! Face tensor names, so a model spells its names once and any format maps onto them.

pub mod gguf;
pub mod hf;
pub mod safetensors;

use crate::model::llama::LlamaConfig;
use gguf::{Gguf, GgufError};

#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("tensor {name} is missing from the weights file")]
    Missing { name: String },
    #[error("tensor {name} has shape {got:?}, the model expects {expected:?}")]
    Shape { name: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("model config: {0}")]
    Config(String),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("safetensors: {0}")]
    Safetensors(String),
    #[error("reading tensor data back from the device: {0}")]
    Read(String),
    #[error("tensor {name} has dtype {dtype}; f32, f16 and bf16 can be read")]
    Dtype { name: String, dtype: String },
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("{} tensor(s) the model does not use: {}", names.len(), names.join(", "))]
    Unused { names: Vec<String> },
    /// Any of the above, with the file it happened in.
    #[error("{file}: {source}")]
    InFile { file: String, source: Box<WeightError> },
}

impl WeightError {
    /// This error, located in `file`.
    pub fn in_file(self, file: &str) -> WeightError {
        WeightError::InFile { file: file.to_string(), source: Box::new(self) }
    }
}

/// Tensors by Hugging Face name, as row-major f32 in Hugging Face layout.
pub trait WeightSource {
    /// The tensor `name`, checked to have `shape`.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError>;
}

/// GGUF tensor name for a Hugging Face Llama tensor name (llama.cpp's `convert_hf_to_gguf.py` table).
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, field) = rest.split_once('.')?;
    let field = match field {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{field}"))
}

/// A GGUF file seen through Hugging Face names. llama.cpp's converter permutes the rows of Q and K so that
/// RoPE rotates adjacent pairs; this source undoes that so the model uses Hugging Face's rotate-half layout.
pub struct GgufSource<'a> {
    pub gguf: &'a Gguf,
    pub n_heads: usize,
    pub n_kv_heads: usize,
}

impl WeightSource for GgufSource<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
        let gname = gguf_name(name).ok_or_else(|| WeightError::Missing { name: name.to_string() })?;
        if self.gguf.tensor_info(&gname).is_none() {
            return Err(WeightError::Missing { name: format!("{gname} ({name})") });
        }
        let (got, data) = self.gguf.tensor_f32(&gname)?;
        if got != shape {
            return Err(WeightError::Shape { name: gname, expected: shape.to_vec(), got });
        }
        Ok(if name.ends_with("q_proj.weight") {
            unpermute_rope_rows(&data, shape, self.n_heads)
        } else if name.ends_with("k_proj.weight") {
            unpermute_rope_rows(&data, shape, self.n_kv_heads)
        } else {
            data
        })
    }
}

/// Inverse of llama.cpp's `permute`: GGUF row `h·hd + 2j + s` holds Hugging Face row `h·hd + s·hd/2 + j`.
pub fn unpermute_rope_rows(data: &[f32], shape: &[usize], n_heads: usize) -> Vec<f32> {
    let (rows, cols) = (shape[0], shape[1]);
    let hd = rows / n_heads;
    let mut out = vec![0.0; data.len()];
    for h in 0..n_heads {
        for j in 0..hd / 2 {
            for s in 0..2 {
                let src = h * hd + 2 * j + s;
                let dst = h * hd + s * (hd / 2) + j;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// The decoder shape from GGUF metadata (`{arch}.block_count` …); ties the output to the embedding when the
/// file has no `output.weight`.
pub fn llama_config_from_gguf(g: &Gguf) -> Result<LlamaConfig, WeightError> {
    let arch = g.get_str("general.architecture")?.to_string();
    if !matches!(arch.as_str(), "llama" | "qwen2" | "mistral") {
        return Err(WeightError::Config(format!("architecture {arch:?} is not a Llama-family decoder")));
    }
    let key = |k: &str| format!("{arch}.{k}");
    let int = |k: &str| -> Result<usize, WeightError> {
        let v = g.get_u64(&key(k))?;
        usize::try_from(v).map_err(|_| WeightError::Config(format!("{} = {v} is too large", key(k))))
    };
    let d_model = int("embedding_length")?;
    let n_heads = int("attention.head_count")?;
    let n_kv_heads =
        if g.metadata(&key("attention.head_count_kv")).is_some() { int("attention.head_count_kv")? } else { n_heads };
    let embd =
        g.tensor_info("token_embd.weight").ok_or_else(|| WeightError::Missing { name: "token_embd.weight".into() })?;
    let vocab_size = embd.dims.get(1).copied().unwrap_or(0) as usize;
    let config =
        LlamaConfig::new(vocab_size, d_model, int("block_count")?, n_heads, n_kv_heads, int("feed_forward_length")?)
            .with_rope_theta(g.get_f32(&key("rope.freq_base")).map(f64::from).unwrap_or(10000.0))
            .with_rms_norm_eps(g.get_f32(&key("attention.layer_norm_rms_epsilon")).map(f64::from).unwrap_or(1e-5))
            .with_max_position_embeddings(int("context_length").unwrap_or(2048))
            .with_tie_word_embeddings(g.tensor_info("output.weight").is_none());
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (n_heads, hd, cols) = (2, 4, 3);
        let rows = n_heads * hd;
        let hf: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let mut permuted = vec![0.0; hf.len()];
        for h in 0..n_heads {
            for s in 0..2 {
                for j in 0..hd / 2 {
                    let src = h * hd + s * (hd / 2) + j; // (h, s, j)
                    let dst = h * hd + j * 2 + s; // (h, j, s)
                    permuted[dst * cols..(dst + 1) * cols].copy_from_slice(&hf[src * cols..(src + 1) * cols]);
                }
            }
        }
        assert_eq!(unpermute_rope_rows(&permuted, &[rows, cols], n_heads), hf);
    }

    #[test]
    fn every_llama_tensor_has_a_gguf_name() {
        assert_eq!(gguf_name("model.layers.12.self_attn.k_proj.weight").unwrap(), "blk.12.attn_k.weight");
        assert_eq!(gguf_name("model.embed_tokens.weight").unwrap(), "token_embd.weight");
        assert!(gguf_name("model.layers.0.unknown.weight").is_none());
    }
}
