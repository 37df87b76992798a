//! The Llama family of decoders: RMSNorm, rotary position embeddings (rotate-half layout, as in Hugging
//! Face), SwiGLU feed-forward, grouped-query attention and optionally tied input/output embeddings. Covers
//! SmolLM2, TinyLlama, Llama (with Llama 3's RoPE scaling) and Qwen2 (biases on q/k/v).
//!
//! Weights come from a [`WeightSource`] keyed by Hugging Face tensor names, so every format (GGUF, HF
//! safetensors) is one name mapping away and the names are spelled once, here.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, Linear, RmsNorm};
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData, activation};
use serde::{Deserialize, Serialize};

use crate::model::lora;
use crate::weights::{WeightError, WeightSource};

/// Shape of a Llama-family decoder, as resolved from a weights file.
#[derive(Config, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Number of tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of decoder blocks.
    pub n_layers: usize,
    /// Number of query heads.
    pub n_heads: usize,
    /// Number of key/value heads (grouped-query attention; equal to `n_heads` for plain multi-head).
    pub n_kv_heads: usize,
    /// Inner width of the SwiGLU feed-forward.
    pub d_ff: usize,
    /// RoPE base frequency θ.
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// ε of every RMSNorm.
    #[config(default = 1e-5)]
    pub rms_norm_eps: f64,
    /// Longest context the model was trained for.
    #[config(default = 2048)]
    pub max_position_embeddings: usize,
    /// Whether the output projection reuses the input embedding matrix.
    #[config(default = true)]
    pub tie_word_embeddings: bool,
    /// Whether the q/k/v projections have biases (Qwen2; o_proj never has one here).
    #[config(default = false)]
    pub qkv_bias: bool,
    /// How RoPE frequencies are rescaled for longer contexts; `None` is plain RoPE.
    pub rope_scaling: Option<RopeScaling>,
}

/// RoPE frequency scaling, as in transformers' `rope_scaling` (`ROPE_INIT_FUNCTIONS`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// Position interpolation (Chen et al. 2023): every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1's scaling: wavelengths longer than `original_max_position_embeddings / low_freq_factor` are
    /// divided by `factor`, shorter than `… / high_freq_factor` kept, and the band between interpolated.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: usize },
}

impl RopeScaling {
    fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("rope_scaling {name} must be positive, got {v}"))
            }
        };
        match *self {
            RopeScaling::Linear { factor } => positive("factor", factor),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                positive("factor", factor)?;
                positive("low_freq_factor", low_freq_factor)?;
                if high_freq_factor <= low_freq_factor {
                    return Err(format!(
                        "rope_scaling high_freq_factor {high_freq_factor} must exceed low_freq_factor {low_freq_factor}"
                    ));
                }
                positive("original_max_position_embeddings", original_max_position_embeddings as f64)
            }
        }
    }
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Checks that the shape is self-consistent, with a message that names the offending field.
    pub fn validate(&self) -> Result<(), WeightError> {
        let bad = |msg: String| Err(WeightError::Config(msg));
        if self.vocab_size == 0 || self.d_model == 0 || self.n_layers == 0 || self.d_ff == 0 {
            return bad(format!("every dimension must be positive: {self:?}"));
        }
        if self.n_heads == 0 || self.n_kv_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return bad(format!("d_model {} is not divisible by n_heads {}", self.d_model, self.n_heads));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(format!("n_heads {} is not a multiple of n_kv_heads {}", self.n_heads, self.n_kv_heads));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!("head_dim {} must be even for RoPE", self.head_dim()));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(format!("rope_theta must be a finite number above 1, got {}", self.rope_theta));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return bad(format!("rms_norm_eps must be finite and non-negative, got {}", self.rms_norm_eps));
        }
        if let Some(s) = &self.rope_scaling {
            s.validate().map_err(WeightError::Config)?;
        }
        // Layers are allocated up front: a count far above any real model (Llama 3.1 405B has 126) is corruption.
        if self.n_layers > 1024 {
            return bad(format!("n_layers {} is more than alignlab will build", self.n_layers));
        }
        // Bound what a hostile file can make us allocate: 2^34 parameters is far above any model we run.
        let params = self.vocab_size as u128 * self.d_model as u128
            + self.n_layers as u128
                * (4 * self.d_model as u128 * self.d_model as u128 + 3 * self.d_model as u128 * self.d_ff as u128);
        if params > 1 << 34 {
            return bad(format!("{params} parameters is more than alignlab will allocate"));
        }
        Ok(())
    }

    /// Number of parameters, counting a tied embedding once.
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let kv = self.n_kv_heads * self.head_dim();
        let bias = if self.qkv_bias { d + 2 * kv } else { 0 };
        let layer = 2 * d + d * d * 2 + 2 * d * kv + 3 * d * self.d_ff + bias;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * d };
        self.vocab_size * d + self.n_layers * layer + d + head
    }
}

/// `y = x W (+ b)` with `W: [d_in, d_out]` (Burn's layout) read from `{prefix}.weight`, which Hugging Face
/// stores `[d_out, d_in]`, and `b` from `{prefix}.bias` when `bias`.
fn linear(
    source: &dyn WeightSource,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &Device,
) -> Result<Linear, WeightError> {
    let w = source.tensor(&format!("{prefix}.weight"), &[d_out, d_in])?;
    let w = super::linear_weight(&w, d_out, d_in, device);
    let bias = if bias {
        let b = source.tensor(&format!("{prefix}.bias"), &[d_out])?;
        Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [d_out]), device)))
    } else {
        None
    };
    Ok(Linear { weight: Param::from_tensor(w), bias })
}

fn rms_norm(
    source: &dyn WeightSource,
    name: &str,
    d: usize,
    eps: f64,
    device: &Device,
) -> Result<RmsNorm, WeightError> {
    let g = source.tensor(name, &[d])?;
    Ok(RmsNorm { gamma: Param::from_tensor(Tensor::from_data(TensorData::new(g, [d]), device)), epsilon: eps })
}

/// Multi-head attention with grouped key/value heads and rotary embeddings.
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// SwiGLU feed-forward: `down(silu(gate(x)) ⊙ up(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

/// One pre-norm decoder block.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
}

/// A Llama-family decoder. Build it with [`Llama::from_source`].
#[derive(Module, Debug)]
pub struct Llama {
    /// `[vocab, d_model]`
    pub embed_tokens: Param<Tensor<2>>,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    /// `[vocab, d_model]` when the output projection is not tied to the embedding.
    pub lm_head: Option<Param<Tensor<2>>>,
    pub rope_theta: f64,
    #[module(skip)]
    pub rope_scaling: Option<RopeScaling>,
    /// Dropout on the input of LoRA adapters while training (see [`lora`]); `None` without adapters.
    pub lora_dropout: Option<Dropout>,
}

/// Keys and values of past positions, per layer, `[batch, n_kv_heads, past, head_dim]`.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the batch rows `rows`, in that order, and drops the others: a batched generation removes the
    /// sequences that finished so that they stop costing compute.
    pub fn select_rows(&mut self, rows: &[usize]) {
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        for (k, v) in self.layers.iter_mut().flatten() {
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx.clone(), [rows.len()]), &k.device());
            *k = k.clone().select(0, idx.clone());
            *v = v.clone().select(0, idx);
        }
    }
}

impl Llama {
    /// Builds the model from tensors named as in Hugging Face checkpoints (`model.layers.0.self_attn.q_proj.weight`…).
    pub fn from_source(config: &LlamaConfig, source: &dyn WeightSource, device: &Device) -> Result<Self, WeightError> {
        config.validate()?;
        let (d, kv) = (config.d_model, config.n_kv_heads * config.head_dim());
        let eps = config.rms_norm_eps;
        let embed = source.tensor("model.embed_tokens.weight", &[config.vocab_size, d])?;
        let embed_tokens =
            Param::from_tensor(Tensor::from_data(TensorData::new(embed, [config.vocab_size, d]), device));
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("model.layers.{i}");
            let qkv = config.qkv_bias;
            layers.push(DecoderLayer {
                input_layernorm: rms_norm(source, &format!("{p}.input_layernorm.weight"), d, eps, device)?,
                self_attn: Attention {
                    q_proj: linear(source, &format!("{p}.self_attn.q_proj"), d, d, qkv, device)?,
                    k_proj: linear(source, &format!("{p}.self_attn.k_proj"), d, kv, qkv, device)?,
                    v_proj: linear(source, &format!("{p}.self_attn.v_proj"), d, kv, qkv, device)?,
                    o_proj: linear(source, &format!("{p}.self_attn.o_proj"), d, d, false, device)?,
                    n_heads: config.n_heads,
                    n_kv_heads: config.n_kv_heads,
                    head_dim: config.head_dim(),
                },
                post_attention_layernorm: rms_norm(
                    source,
                    &format!("{p}.post_attention_layernorm.weight"),
                    d,
                    eps,
                    device,
                )?,
                mlp: Mlp {
                    gate_proj: linear(source, &format!("{p}.mlp.gate_proj"), d, config.d_ff, false, device)?,
                    up_proj: linear(source, &format!("{p}.mlp.up_proj"), d, config.d_ff, false, device)?,
                    down_proj: linear(source, &format!("{p}.mlp.down_proj"), config.d_ff, d, false, device)?,
                },
            });
        }
        let norm = rms_norm(source, "model.norm.weight", d, eps, device)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            let w = source.tensor("lm_head.weight", &[config.vocab_size, d])?;
            Some(Param::from_tensor(Tensor::from_data(TensorData::new(w, [config.vocab_size, d]), device)))
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope_theta: config.rope_theta,
            rope_scaling: config.rope_scaling.clone(),
            lora_dropout: None,
        })
    }

    /// The output projection `[vocab, d_model]` (the embedding itself when tied).
    pub fn head_weight(&self) -> Tensor<2> {
        match &self.lm_head {
            Some(w) => w.val(),
            None => self.embed_tokens.val(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.embed_tokens.dims()[0]
    }

    pub fn d_model(&self) -> usize {
        self.embed_tokens.dims()[1]
    }

    /// Final hidden states (after the last RMSNorm), `[batch, seq, d_model]`.
    ///
    /// Without a cache the attention is causal over `ids`; with one, `ids` continue the cached positions.
    /// Sequences are right-padded: a padding position only sees real tokens and is never attended to by
    /// them, so padding needs no mask of its own.
    pub fn forward_hidden(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.forward_hidden_padded(ids, None, cache)
    }

    /// [`Llama::forward_hidden`] over left-padded rows: the first `left_pad[r]` positions of row `r` (counted
    /// from the start of the cache, so pass the same `left_pad` at every step) are padding. Real tokens never
    /// attend to padding, and their RoPE positions count from the row's first real token, so each row's
    /// hidden states are those of the row alone without padding (to float rounding). This is what lets
    /// prompts of different lengths share one batch in [`crate::generate`]. `None` (or all zeros) is no
    /// padding.
    pub fn forward_hidden_padded(
        &self,
        ids: Tensor<2, Int>,
        left_pad: Option<&[usize]>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let device = ids.device();
        let [b, t] = ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len);
        let pad = left_pad.filter(|p| p.iter().any(|&l| l > 0));
        if let Some(p) = pad {
            assert_eq!(p.len(), b, "left_pad has one entry per batch row");
        }
        let head_dim = self.layers.first().map_or(2, |l| l.self_attn.head_dim);
        let inv_freq = rope_inv_freq(head_dim, self.rope_theta, self.rope_scaling.as_ref());
        let positions: Vec<usize> = match pad {
            None => (past..past + t).collect(),
            Some(p) => p.iter().flat_map(|&l| (past..past + t).map(move |i| i.saturating_sub(l))).collect(),
        };
        let (cos, sin) = rope_tables(&positions, t, &inv_freq, &device);
        let mask = attention_mask(pad, past, t, &device);
        let mut x = embedding(self.embed_tokens.val(), ids);
        if let Some(c) = cache.as_deref_mut() {
            c.layers.resize(self.layers.len(), None);
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let dropout = self.lora_dropout.as_ref();
            let normed = layer.input_layernorm.forward(x.clone());
            let h = layer.self_attn.forward(normed, &cos, &sin, &mask, slot, dropout);
            x = x + h;
            let h = layer.mlp.forward(layer.post_attention_layernorm.forward(x.clone()), dropout);
            x = x + h;
        }
        if let Some(c) = cache {
            c.len += t;
        }
        self.norm.forward(x)
    }

    /// Hugging Face names, shapes and flattened values in HF layout (`[out, in]` for projections), for export.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let flat = |name: String, t: Tensor<2>| {
            let [a, b] = t.dims();
            (name, vec![a, b], t.reshape([a * b]))
        };
        let vector = |name: String, v: Tensor<1>| (name, v.dims().to_vec(), v);
        let norm = |name: String, n: &RmsNorm| vector(name, n.gamma.val());
        let lin = |out: &mut Vec<NamedTensor>, prefix: String, l: &Linear| {
            out.push(flat(format!("{prefix}.weight"), l.weight.val().transpose()));
            if let Some(b) = &l.bias {
                out.push(vector(format!("{prefix}.bias"), b.val()));
            }
        };
        let mut out = vec![flat("model.embed_tokens.weight".into(), self.embed_tokens.val())];
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            out.push(norm(format!("{p}.input_layernorm.weight"), &l.input_layernorm));
            lin(&mut out, format!("{p}.self_attn.q_proj"), &l.self_attn.q_proj);
            lin(&mut out, format!("{p}.self_attn.k_proj"), &l.self_attn.k_proj);
            lin(&mut out, format!("{p}.self_attn.v_proj"), &l.self_attn.v_proj);
            lin(&mut out, format!("{p}.self_attn.o_proj"), &l.self_attn.o_proj);
            out.push(norm(format!("{p}.post_attention_layernorm.weight"), &l.post_attention_layernorm));
            lin(&mut out, format!("{p}.mlp.gate_proj"), &l.mlp.gate_proj);
            lin(&mut out, format!("{p}.mlp.up_proj"), &l.mlp.up_proj);
            lin(&mut out, format!("{p}.mlp.down_proj"), &l.mlp.down_proj);
        }
        out.push(norm("model.norm.weight".into(), &self.norm));
        if let Some(w) = &self.lm_head {
            out.push(flat("lm_head.weight".into(), w.val()));
        }
        out
    }
}

/// A tensor for export: its Hugging Face name, its shape and its values flattened row-major.
pub type NamedTensor = (String, Vec<usize>, Tensor<1>);

impl Attention {
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: &Mask,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
        dropout: Option<&Dropout>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (h, kvh, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let q = lora::forward(&self.q_proj, x.clone(), dropout).reshape([b, t, h, hd]).swap_dims(1, 2);
        let k = lora::forward(&self.k_proj, x.clone(), dropout).reshape([b, t, kvh, hd]).swap_dims(1, 2);
        let v = lora::forward(&self.v_proj, x, dropout).reshape([b, t, kvh, hd]).swap_dims(1, 2);
        let q = apply_rope(q, cos, sin);
        let mut k = apply_rope(k, cos, sin);
        let mut v = v;
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.take() {
                k = Tensor::cat(vec![pk, k], 2);
                v = Tensor::cat(vec![pv, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let k = repeat_kv(k, h / kvh);
        let v = repeat_kv(v, h / kvh);
        let (mask, is_causal) = match mask {
            Mask::None => (None, false),
            Mask::Causal => (None, true),
            Mask::Explicit(m) => {
                let [mb, _, mt, total] = m.dims();
                (Some(Tensor::clone(m).expand([mb.max(b), h, mt, total])), false)
            }
        };
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal };
        let out = attention(q, k, v, mask, None, options);
        lora::forward(&self.o_proj, out.swap_dims(1, 2).reshape([b, t, h * hd]), dropout)
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<3>, dropout: Option<&Dropout>) -> Tensor<3> {
        let gate = activation::silu(lora::forward(&self.gate_proj, x.clone(), dropout));
        lora::forward(&self.down_proj, gate * lora::forward(&self.up_proj, x, dropout), dropout)
    }
}

/// `[b, kv, t, d]` → `[b, kv·n_rep, t, d]`, each key/value head serving `n_rep` consecutive query heads.
fn repeat_kv(x: Tensor<4>, n_rep: usize) -> Tensor<4> {
    if n_rep == 1 {
        return x;
    }
    let [b, kv, t, d] = x.dims();
    x.unsqueeze_dim::<5>(2).expand([b, kv, n_rep, t, d]).reshape([b, kv * n_rep, t, d])
}

/// RoPE's `head_dim / 2` inverse frequencies `θ^(−2i/head_dim)`, rescaled as `scaling` says; computed in
/// f64 and rounded once (transformers computes them in f32: the two agree to an ulp or so).
pub fn rope_inv_freq(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f32> {
    let base = (0..head_dim / 2).map(|i| 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64));
    let scaled: Vec<f64> = match scaling {
        None => base.collect(),
        Some(&RopeScaling::Linear { factor }) => base.map(|f| f / factor).collect(),
        // transformers' `_compute_llama3_parameters`.
        Some(&RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) => {
            let old = original_max_position_embeddings as f64;
            let (low_wavelen, high_wavelen) = (old / low_freq_factor, old / high_freq_factor);
            base.map(|f| {
                let wavelen = 2.0 * std::f64::consts::PI / f;
                if wavelen < high_wavelen {
                    f
                } else if wavelen > low_wavelen {
                    f / factor
                } else {
                    let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * f / factor + smooth * f
                }
            })
            .collect()
        }
    };
    scaled.into_iter().map(|f| f as f32).collect()
}

/// Which keys each query may attend to, built once per forward and shared by every layer.
enum Mask {
    /// Every key (one new token after the cache, no padding).
    None,
    /// The backend's causal path (a fresh sequence without padding).
    Causal,
    /// `[1 or batch, 1, t, past + t]`, `true` where attention is masked out.
    Explicit(Box<Tensor<4, Bool>>),
}

/// The attention mask of `t` new positions after `past` cached ones: causal, and with left padding, no
/// real token sees a padding key. A padding position sees itself, so that no softmax row is empty (its
/// output is never read by a real token).
fn attention_mask(pad: Option<&[usize]>, past: usize, t: usize, device: &Device) -> Mask {
    let total = past + t;
    let masked = |l: usize, i: usize, j: usize| j > past + i || (j < l && j != past + i);
    match pad {
        None if past == 0 => {
            if t > 1 {
                Mask::Causal
            } else {
                Mask::None
            }
        }
        None if t == 1 => Mask::None,
        None => {
            let data: Vec<bool> = (0..t).flat_map(|i| (0..total).map(move |j| masked(0, i, j))).collect();
            Mask::Explicit(Box::new(Tensor::from_data(TensorData::new(data, [1, 1, t, total]), device)))
        }
        Some(pad) => {
            let data: Vec<bool> =
                pad.iter().flat_map(|&l| (0..t).flat_map(move |i| (0..total).map(move |j| masked(l, i, j)))).collect();
            Mask::Explicit(Box::new(Tensor::from_data(TensorData::new(data, [pad.len(), 1, t, total]), device)))
        }
    }
}

/// cos and sin of the rotary angles at `positions` (`t` per row, one or more rows), `[rows, 1, t, head_dim]`,
/// with each frequency repeated in both halves (rotate-half layout).
fn rope_tables(positions: &[usize], t: usize, inv_freq: &[f32], device: &Device) -> (Tensor<4>, Tensor<4>) {
    let head_dim = 2 * inv_freq.len();
    let mut cos = Vec::with_capacity(positions.len() * head_dim);
    let mut sin = Vec::with_capacity(positions.len() * head_dim);
    for &p in positions {
        for _half in 0..2 {
            for &f in inv_freq {
                // Hugging Face computes the angle in f32; matching that keeps logits within float noise of
                // transformers for long positions.
                let angle = (p as f32) * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
    let shape = [positions.len() / t.max(1), 1, t, head_dim];
    (Tensor::from_data(TensorData::new(cos, shape), device), Tensor::from_data(TensorData::new(sin, shape), device))
}

/// `x·cos + rotate_half(x)·sin` with `rotate_half([x1, x2]) = [−x2, x1]`.
fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [_, _, _, d] = x.dims();
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretrained::Pretrained;
    use crate::tiny::tiny_gguf;

    fn logits(model: &Llama, hidden: Tensor<3>) -> Vec<f32> {
        let [b, t, d] = hidden.dims();
        hidden.reshape([b * t, d]).matmul(model.head_weight().transpose()).into_data().iter::<f32>().collect()
    }

    fn ids(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
        let width = rows[0].len();
        let flat: Vec<i64> = rows.concat();
        Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device)
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max);
        assert!(worst <= 1e-5, "{what}: logits differ by {worst}");
    }

    #[test]
    fn left_padded_rows_give_the_logits_of_each_row_alone() {
        let device = Device::flex();
        let model = Pretrained::from_gguf(tiny_gguf(0), &device).unwrap().model;
        let vocab = model.vocab_size();
        // Row 0 has 3 real tokens after 4 padding ones (id 7, which must not matter), row 1 has 7, row 2 has 5.
        let (a, b, c) = (vec![5i64, 70, 80], vec![1i64, 40, 50, 60, 70, 80, 90], vec![9i64, 8, 200, 3, 4]);
        let pad = [4, 0, 2];
        let padded: Vec<Vec<i64>> = [&a, &b, &c]
            .iter()
            .zip(pad)
            .map(|(row, l)| std::iter::repeat_n(7, l).chain(row.iter().copied()).collect())
            .collect();
        let full = logits(&model, model.forward_hidden_padded(ids(&padded, &device), Some(&pad), None));
        for (r, row) in [&a, &b, &c].into_iter().enumerate() {
            let alone = logits(&model, model.forward_hidden(ids(std::slice::from_ref(row), &device), None));
            let start = (r * 7 + pad[r]) * vocab;
            assert_close(&full[start..(r + 1) * 7 * vocab], &alone, &format!("row {r} without cache"));
        }
        // With a cache: the prompts, then a two-token continuation (an explicit mask after the cache), then
        // one token (a mask over the cache only), each against the row run alone over the whole sequence.
        let mut cache = KvCache::new();
        let first = model.forward_hidden_padded(ids(&padded, &device), Some(&pad), Some(&mut cache));
        let more = [vec![11i64, 12], vec![13, 14], vec![15, 16]];
        let mid = model.forward_hidden_padded(ids(&more, &device), Some(&pad), Some(&mut cache));
        let last = [vec![17i64], vec![18], vec![19]];
        let end = model.forward_hidden_padded(ids(&last, &device), Some(&pad), Some(&mut cache));
        let (first, mid, end) = (logits(&model, first), logits(&model, mid), logits(&model, end));
        for (r, row) in [&a, &b, &c].into_iter().enumerate() {
            let seq: Vec<i64> = row.iter().chain(&more[r]).chain(&last[r]).copied().collect();
            let alone = logits(&model, model.forward_hidden(ids(&[seq], &device), None));
            let n = row.len();
            assert_close(&first[(r * 7 + pad[r]) * vocab..(r + 1) * 7 * vocab], &alone[..n * vocab], "prompt");
            assert_close(&mid[r * 2 * vocab..(r + 1) * 2 * vocab], &alone[n * vocab..(n + 2) * vocab], "continuation");
            assert_close(&end[r * vocab..(r + 1) * vocab], &alone[(n + 2) * vocab..], "last token");
        }
        // Dropping a row from the cache leaves the others' continuations unchanged.
        cache.select_rows(&[2, 0]);
        let next = model.forward_hidden_padded(ids(&[vec![21], vec![20]], &device), Some(&[2, 4]), Some(&mut cache));
        let next = logits(&model, next);
        let seq: Vec<i64> = a.iter().chain(&more[0]).chain(&last[0]).chain(&[20]).copied().collect();
        let alone = logits(&model, model.forward_hidden(ids(std::slice::from_ref(&seq), &device), None));
        assert_close(&next[vocab..], &alone[(seq.len() - 1) * vocab..], "row 0 after row 1 left");
        // Padding really is masked: the same rows without the mask (all positions real) give other logits.
        let unmasked = logits(&model, model.forward_hidden(ids(&padded, &device), None));
        let alone = logits(&model, model.forward_hidden(ids(std::slice::from_ref(&a), &device), None));
        let diff = unmasked[4 * vocab..7 * vocab].iter().zip(&alone).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(diff > 1e-3, "padding seen as tokens changes the logits ({diff})");
    }

    #[test]
    fn rope_inv_freq_matches_transformers_rope_init_functions() {
        // transformers 5.24 `ROPE_INIT_FUNCTIONS[...]` for head_dim 8, θ 10000 (float32 values).
        let linear = rope_inv_freq(8, 10000.0, Some(&RopeScaling::Linear { factor: 2.0 }));
        assert_eq!(linear, [0.5, 0.05, 0.005, 0.0005]);
        let llama3 = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        };
        let got = rope_inv_freq(8, 10000.0, Some(&llama3));
        let want = [1.0, 0.013042256, 0.00125, 0.000125];
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 1e-7 * w), "{got:?}");
        assert_eq!(rope_inv_freq(8, 10000.0, None), [1.0, 0.1, 0.01, 0.001]);
    }

    #[test]
    fn bad_rope_scaling_is_a_config_error() {
        let bad = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 4.0,
            high_freq_factor: 1.0,
            original_max_position_embeddings: 64,
        };
        let e = LlamaConfig::new(300, 32, 2, 4, 2, 64).with_rope_scaling(Some(bad)).validate().unwrap_err();
        assert_eq!(e.to_string(), "model config: rope_scaling high_freq_factor 1 must exceed low_freq_factor 4");
        let e = LlamaConfig::new(300, 32, 2, 4, 2, 64)
            .with_rope_scaling(Some(RopeScaling::Linear { factor: 0.0 }))
            .validate()
            .unwrap_err();
        assert_eq!(e.to_string(), "model config: rope_scaling factor must be positive, got 0");
    }
}
