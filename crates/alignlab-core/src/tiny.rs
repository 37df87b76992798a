//! A tiny random Llama with a byte-level vocabulary, written as a GGUF file: the demo model of the page and
//! the model of unit and cross-surface tests. Its weights come from [`SplitMix64`] on the host, so a seed
//! gives the same bytes on every surface and backend.

use crate::model::llama::LlamaConfig;
use crate::rng::SplitMix64;
use crate::tokenizer::byte_level_gguf_metadata;
use crate::weights::gguf::{MetaValue, write_gguf};
use crate::weights::gguf_name;

/// d_model 64, 2 layers, 4 query / 2 key-value heads, SwiGLU 128, vocabulary 259 (3 specials + 256 bytes).
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig::new(259, 64, 2, 4, 2, 128).with_max_position_embeddings(1024)
}

/// The tiny model as GGUF bytes. Projections are N(0, 0.02²) as in Hugging Face's Llama initialisation,
/// norms are 1. (Q/K rows are stored in GGUF's permuted order; for random weights that is only a relabelling.)
pub fn tiny_gguf(seed: u64) -> Vec<u8> {
    let c = tiny_config();
    let mut rng = SplitMix64::new(seed);
    let (d, kv) = (c.d_model, c.n_kv_heads * c.head_dim());
    let mut shapes: Vec<(String, Vec<usize>)> = vec![("model.embed_tokens.weight".into(), vec![c.vocab_size, d])];
    for i in 0..c.n_layers {
        let p = format!("model.layers.{i}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![d]),
            ("self_attn.q_proj.weight", vec![d, d]),
            ("self_attn.k_proj.weight", vec![kv, d]),
            ("self_attn.v_proj.weight", vec![kv, d]),
            ("self_attn.o_proj.weight", vec![d, d]),
            ("post_attention_layernorm.weight", vec![d]),
            ("mlp.gate_proj.weight", vec![c.d_ff, d]),
            ("mlp.up_proj.weight", vec![c.d_ff, d]),
            ("mlp.down_proj.weight", vec![d, c.d_ff]),
        ] {
            shapes.push((format!("{p}.{name}"), shape));
        }
    }
    shapes.push(("model.norm.weight".into(), vec![d]));
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = shapes
        .into_iter()
        .map(|(hf, shape)| {
            let n: usize = shape.iter().product();
            let values = if shape.len() == 1 {
                vec![1.0; n]
            } else {
                (0..n).map(|_| (rng.next_normal() * 0.02) as f32).collect()
            };
            (gguf_name(&hf).expect("every tiny tensor has a GGUF name"), shape, values)
        })
        .collect();
    let u32v = |v: usize| MetaValue::U32(v as u32);
    let mut meta = vec![
        ("general.architecture".to_string(), MetaValue::String("llama".into())),
        ("general.name".to_string(), MetaValue::String(format!("alignlab tiny (seed {seed})"))),
        ("llama.block_count".to_string(), u32v(c.n_layers)),
        ("llama.context_length".to_string(), u32v(c.max_position_embeddings)),
        ("llama.embedding_length".to_string(), u32v(d)),
        ("llama.feed_forward_length".to_string(), u32v(c.d_ff)),
        ("llama.attention.head_count".to_string(), u32v(c.n_heads)),
        ("llama.attention.head_count_kv".to_string(), u32v(c.n_kv_heads)),
        ("llama.rope.freq_base".to_string(), MetaValue::F32(c.rope_theta as f32)),
        ("llama.attention.layer_norm_rms_epsilon".to_string(), MetaValue::F32(c.rms_norm_eps as f32)),
    ];
    meta.extend(byte_level_gguf_metadata());
    write_gguf(&meta, &tensors)
}
