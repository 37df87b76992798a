//! BERT encoders (Devlin et al. 2019) for small reward models: word + position + token-type embeddings and a
//! LayerNorm, then post-LN layers
//!
//! ```text
//! x = LN(x + Attention(x))          attention over the real tokens only (padding keys are masked)
//! x = LN(x + W₂·GELU(W₁·x + b₁) + b₂)  GELU(x) = x·Φ(x), exact erf form
//! ```
//!
//! and sentence embeddings pooled from the last hidden states as sentence-transformers does (Reimers &
//! Gurevych 2019): the mean over real tokens or the `[CLS]` state, optionally L2-normalised. Covers
//! transformers' `BertModel` checkpoints with absolute positions, e.g. sentence-transformers/all-MiniLM-L6-v2.
//!
//! Weights come from a [`WeightSource`] keyed by the Hugging Face names of `BertModel`
//! (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`, …), spelled once here.
//! [`EncoderRewardModel`] puts a scalar head on the pooled embedding, with the interface of the decoder's
//! [`RewardModel`](super::reward::RewardModel).

use std::f64::consts::SQRT_2;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::llama::NamedTensor;
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::weights::safetensors::SafetensorsSource;
use crate::weights::{WeightError, WeightSource};

/// Shape of a BERT encoder, resolved from a `config.json` by [`BertConfig::from_hf_json`].
#[derive(Config, Debug, PartialEq)]
pub struct BertConfig {
    /// Number of tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream (`hidden_size`).
    pub d_model: usize,
    /// Number of encoder layers.
    pub n_layers: usize,
    /// Number of attention heads; divides `d_model`.
    pub n_heads: usize,
    /// Inner width of the feed-forward (`intermediate_size`).
    pub d_ff: usize,
    /// Longest input, in tokens (the rows of the position embedding).
    #[config(default = 512)]
    pub max_position_embeddings: usize,
    /// Number of token types (segments A/B); this encoder feeds type 0 everywhere.
    #[config(default = 2)]
    pub type_vocab_size: usize,
    /// ε of every LayerNorm.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
}

impl BertConfig {
    /// Resolves a Hugging Face `config.json`. Refused rather than mis-run: another `model_type` (RoBERTa's
    /// positions are offset by its padding id), an activation other than exact `gelu`, and relative
    /// position embeddings.
    pub fn from_hf_json(bytes: &[u8]) -> Result<Self, WeightError> {
        let bad = |msg: String| WeightError::Config(format!("config.json: {msg}"));
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let fields = json.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
        // Each field is read on its own so that an error names it; absent and null mean "the default".
        let get = |key: &str| fields.get(key).filter(|v| !v.is_null());
        let int = |key: &str| -> Result<Option<usize>, WeightError> {
            get(key)
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| bad(format!("{key} = {v} is not a non-negative integer")))
                })
                .transpose()
        };
        let required = |key: &str| int(key)?.ok_or_else(|| bad(format!("{key} is missing")));
        let text = |key: &str| -> Result<Option<&str>, WeightError> {
            get(key).map(|v| v.as_str().ok_or_else(|| bad(format!("{key} = {v} is not a string")))).transpose()
        };
        if let Some(t) = text("model_type")?.filter(|t| *t != "bert") {
            return Err(bad(format!("model_type {t:?} is not \"bert\"")));
        }
        if let Some(act) = text("hidden_act")?.filter(|a| *a != "gelu") {
            return Err(bad(format!("hidden_act {act:?} is not supported (only the exact erf \"gelu\")")));
        }
        if let Some(p) = text("position_embedding_type")?.filter(|p| *p != "absolute") {
            return Err(bad(format!("position_embedding_type {p:?} is not supported (only \"absolute\")")));
        }
        let eps = get("layer_norm_eps")
            .map(|v| v.as_f64().ok_or_else(|| bad(format!("layer_norm_eps = {v} is not a number"))))
            .transpose()?;
        let default = BertConfig::new(0, 0, 0, 0, 0);
        let config = BertConfig::new(
            required("vocab_size")?,
            required("hidden_size")?,
            required("num_hidden_layers")?,
            required("num_attention_heads")?,
            required("intermediate_size")?,
        )
        .with_max_position_embeddings(int("max_position_embeddings")?.unwrap_or(default.max_position_embeddings))
        .with_type_vocab_size(int("type_vocab_size")?.unwrap_or(default.type_vocab_size))
        .with_layer_norm_eps(eps.unwrap_or(default.layer_norm_eps));
        config.validate()?;
        Ok(config)
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Checks that the shape is self-consistent and allocatable, with a message that names the field.
    pub fn validate(&self) -> Result<(), WeightError> {
        let bad = |msg: String| Err(WeightError::Config(msg));
        let dims = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.d_model),
            ("num_hidden_layers", self.n_layers),
            ("num_attention_heads", self.n_heads),
            ("intermediate_size", self.d_ff),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = dims.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} must be positive"));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.d_model, self.n_heads
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return bad(format!("layer_norm_eps {} is not in (0, 1)", self.layer_norm_eps));
        }
        // Bound what a hostile file can make us allocate: 2^34 parameters is far above any encoder we run.
        // Saturating: the sizes come from the file and may be anything up to u64::MAX.
        let [vocab, pos, types, d, ff, layers] = [
            self.vocab_size,
            self.max_position_embeddings,
            self.type_vocab_size,
            self.d_model,
            self.d_ff,
            self.n_layers,
        ]
        .map(|v| v as u128);
        let per_layer = d.saturating_mul(d).saturating_mul(4).saturating_add(d.saturating_mul(ff).saturating_mul(2));
        let params = (vocab + pos + types).saturating_mul(d).saturating_add(layers.saturating_mul(per_layer));
        if params > 1 << 34 {
            return bad(format!("{params} parameters is more than alignlab will allocate"));
        }
        Ok(())
    }
}

/// Which hidden state(s) summarise a sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the real (non-padding) tokens: sentence-transformers' `pooling_mode_mean_tokens`, what
    /// all-MiniLM-L6-v2 was trained with.
    #[default]
    Mean,
    /// The state of the first token (`[CLS]`), as BERT's classification heads read it.
    Cls,
}

/// Exact GELU, `x·Φ(x) = x/2·(1 + erf(x/√2))` (Hendrycks & Gimpel 2016), as BERT uses it. Spelled out because
/// Burn 0.22's default `gelu_backward`, which the CubeCL backends (wgpu, WebGPU, Vulkan) use, is the
/// derivative of the tanh approximation (off by 8.7e-4 at |x| = 2; only flex overrides it with the exact one);
/// `erf` has an exact backward everywhere, so this is the same function and gradient on every backend.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * (x / SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5)
}

/// Hugging Face names of a layer's projections, in the order of [`EncoderLayer::linears`].
const LINEARS: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];
/// Hugging Face names of a layer's LayerNorms, in the order of [`EncoderLayer::norms`].
const NORMS: [&str; 2] = ["attention.output.LayerNorm", "output.LayerNorm"];
/// Hugging Face names of the embedding tables, in the order of [`Embeddings::tables`].
const TABLES: [&str; 3] = [
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
];
const EMBEDDING_NORM: &str = "embeddings.LayerNorm";

/// Word, position and token-type embeddings, summed and normalised.
#[derive(Module, Debug)]
pub struct Embeddings {
    /// `[vocab, d_model]`
    pub word: Param<Tensor<2>>,
    /// `[max_position_embeddings, d_model]`
    pub position: Param<Tensor<2>>,
    /// `[type_vocab_size, d_model]`
    pub token_type: Param<Tensor<2>>,
    pub norm: LayerNorm,
}

impl Embeddings {
    fn tables(&self) -> [&Param<Tensor<2>>; 3] {
        [&self.word, &self.position, &self.token_type]
    }
}

/// One post-LN encoder layer: bidirectional multi-head attention, then a GELU feed-forward.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
    pub n_heads: usize,
}

impl EncoderLayer {
    fn linears(&self) -> [&Linear; 6] {
        [&self.query, &self.key, &self.value, &self.attention_output, &self.intermediate, &self.output]
    }

    fn norms(&self) -> [&LayerNorm; 2] {
        [&self.attention_norm, &self.output_norm]
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - padding: `[batch, n_heads, seq, seq]`, true where the key is padding
    fn forward(&self, x: Tensor<3>, padding: Tensor<4, Bool>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, hd) = (self.n_heads, d / self.n_heads);
        let heads = |l: &Linear| l.forward(x.clone()).reshape([b, t, h, hd]).swap_dims(1, 2);
        let (q, k, v) = (heads(&self.query), heads(&self.key), heads(&self.value));
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
        let a = attention(q, k, v, Some(padding), None, options).swap_dims(1, 2).reshape([b, t, d]);
        let x = self.attention_norm.forward(x + self.attention_output.forward(a));
        let f = self.output.forward(gelu(self.intermediate.forward(x.clone())));
        self.output_norm.forward(x + f)
    }
}

/// A BERT encoder. Build it with [`Bert::from_source`] or [`Bert::from_hf`].
#[derive(Module, Debug)]
pub struct Bert {
    pub embeddings: Embeddings,
    pub layers: Vec<EncoderLayer>,
}

/// `y = x W + b` with `W: [d_in, d_out]` (Burn's layout); Hugging Face stores `[d_out, d_in]`.
fn dense(
    source: &dyn WeightSource,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear, WeightError> {
    let w = source.tensor(&format!("{prefix}.weight"), &[d_out, d_in])?;
    let w = super::linear_weight(&w, d_out, d_in, device);
    let b = source.tensor(&format!("{prefix}.bias"), &[d_out])?;
    let b = Tensor::from_data(TensorData::new(b, [d_out]), device);
    Ok(Linear { weight: Param::from_tensor(w), bias: Some(Param::from_tensor(b)) })
}

/// A LayerNorm from `{prefix}.weight` (γ) and `{prefix}.bias` (β).
fn layer_norm(
    source: &dyn WeightSource,
    prefix: &str,
    d: usize,
    eps: f64,
    device: &Device,
) -> Result<LayerNorm, WeightError> {
    let vector = |name: String| -> Result<Param<Tensor<1>>, WeightError> {
        let v = source.tensor(&name, &[d])?;
        Ok(Param::from_tensor(Tensor::from_data(TensorData::new(v, [d]), device)))
    };
    // LayerNorm's ε is private: build through its config, then set the weights.
    let mut norm = LayerNormConfig::new(d).with_epsilon(eps).init(device);
    norm.gamma = vector(format!("{prefix}.weight"))?;
    norm.beta = Some(vector(format!("{prefix}.bias"))?);
    Ok(norm)
}

/// `[batch, n_heads, seq, seq]`, true where the key position is at or after its sequence's length.
fn padding_mask(lengths: &[usize], t: usize, n_heads: usize, device: &Device) -> Tensor<4, Bool> {
    let b = lengths.len();
    let data: Vec<bool> = lengths.iter().flat_map(|&len| (0..t).map(move |j| j >= real_len(len, t))).collect();
    Tensor::<2, Bool>::from_data(TensorData::new(data, [b, t]), device).reshape([b, 1, 1, t]).expand([b, n_heads, t, t])
}

/// A length clamped to `1..=t`: an empty sequence is read as its first position (like the decoder's reward
/// model), so no row of the attention or of the mean is empty.
fn real_len(len: usize, t: usize) -> usize {
    len.clamp(1, t.max(1))
}

impl Bert {
    /// Builds the encoder from tensors named as in Hugging Face `BertModel` checkpoints. Every tensor the
    /// model needs must be present with its shape; the error names the first one that is not.
    pub fn from_source(config: &BertConfig, source: &dyn WeightSource, device: &Device) -> Result<Self, WeightError> {
        config.validate()?;
        let (d, ff, eps) = (config.d_model, config.d_ff, config.layer_norm_eps);
        let rows = [config.vocab_size, config.max_position_embeddings, config.type_vocab_size];
        let mut tables = Vec::with_capacity(3);
        for (name, n) in TABLES.iter().zip(rows) {
            let w = source.tensor(name, &[n, d])?;
            tables.push(Param::from_tensor(Tensor::from_data(TensorData::new(w, [n, d]), device)));
        }
        let Ok([word, position, token_type]) = <[_; 3]>::try_from(tables) else { unreachable!("three tables") };
        let embeddings =
            Embeddings { word, position, token_type, norm: layer_norm(source, EMBEDDING_NORM, d, eps, device)? };
        let dims = [(d, d), (d, d), (d, d), (d, d), (d, ff), (ff, d)];
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("encoder.layer.{i}");
            let linears = LINEARS
                .iter()
                .zip(dims)
                .map(|(n, (d_in, d_out))| dense(source, &format!("{p}.{n}"), d_in, d_out, device))
                .collect::<Result<Vec<_>, _>>()?;
            let norms = NORMS
                .iter()
                .map(|n| layer_norm(source, &format!("{p}.{n}"), d, eps, device))
                .collect::<Result<Vec<_>, _>>()?;
            let Ok([query, key, value, attention_output, intermediate, output]) = <[_; 6]>::try_from(linears) else {
                unreachable!("six projections")
            };
            let Ok([attention_norm, output_norm]) = <[_; 2]>::try_from(norms) else { unreachable!("two norms") };
            layers.push(EncoderLayer {
                query,
                key,
                value,
                attention_output,
                attention_norm,
                intermediate,
                output,
                output_norm,
                n_heads: config.n_heads,
            });
        }
        Ok(Self { embeddings, layers })
    }

    /// Builds the encoder from the bytes of a `config.json` and a `model.safetensors`. A tensor the encoder
    /// does not read is an error, except `BertModel`'s `pooler.dense` (the tanh pooler over `[CLS]` that
    /// sentence-transformers does not use either) and the `embeddings.position_ids` buffer.
    pub fn from_hf(config_json: &[u8], safetensors: &[u8], device: &Device) -> Result<(Self, BertConfig), WeightError> {
        let config = BertConfig::from_hf_json(config_json)?;
        let source = SafetensorsSource::parse(safetensors)?;
        let model = Self::from_source(&config, &source, device)?;
        let ignored = ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"];
        let unused: Vec<String> = source.unused().into_iter().filter(|n| !ignored.contains(&n.as_str())).collect();
        if !unused.is_empty() {
            return Err(WeightError::Unused { names: unused });
        }
        Ok((model, config))
    }

    pub fn d_model(&self) -> usize {
        self.embeddings.word.dims()[1]
    }

    pub fn vocab_size(&self) -> usize {
        self.embeddings.word.dims()[0]
    }

    /// Longest input the position embedding covers.
    pub fn max_len(&self) -> usize {
        self.embeddings.position.dims()[0]
    }

    /// Final hidden states `[batch, seq, d_model]` of right-padded `ids: [batch, seq]` whose real lengths are
    /// `lengths` (token type 0 everywhere). Padding keys are masked, so the states of real tokens do not
    /// depend on the padding; the states at padding positions are finite and meaningless.
    ///
    /// Panics when `seq` exceeds [`max_len`](Self::max_len) or `lengths` does not have `batch` entries: a
    /// caller truncates to the model's length before batching.
    pub fn forward_hidden(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<3> {
        let device = ids.device();
        let [b, t] = ids.dims();
        assert_eq!(lengths.len(), b, "one length per sequence");
        assert!(t <= self.max_len(), "{t} tokens is more than the encoder's {} positions", self.max_len());
        let e = &self.embeddings;
        let positions = e.position.val().narrow(0, 0, t).unsqueeze::<3>();
        let token_type = e.token_type.val().narrow(0, 0, 1).unsqueeze::<3>();
        let mut x = e.norm.forward(embedding(e.word.val(), ids) + positions + token_type);
        let n_heads = self.layers.first().map_or(1, |l| l.n_heads);
        let padding = padding_mask(lengths, t, n_heads, &device);
        for layer in &self.layers {
            x = layer.forward(x, padding.clone());
        }
        x
    }

    /// Pooled sentence embeddings `[batch, d_model]` (not normalised).
    pub fn embed(&self, ids: Tensor<2, Int>, lengths: &[usize], pooling: Pooling) -> Tensor<2> {
        pool(self.forward_hidden(ids, lengths), lengths, pooling)
    }

    /// L2-normalised pooled embeddings `[batch, d_model]`, as sentence-transformers' `Normalize` module
    /// returns them: their dot products are cosine similarities.
    pub fn sentence_embeddings(&self, ids: Tensor<2, Int>, lengths: &[usize], pooling: Pooling) -> Tensor<2> {
        l2_normalize(self.embed(ids, lengths, pooling))
    }

    /// Hugging Face names, shapes and flattened values in HF layout (`[out, in]` for projections), for export.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let flat = |name: String, t: Tensor<2>| {
            let [a, b] = t.dims();
            (name, vec![a, b], t.reshape([a * b]))
        };
        let vector = |name: String, v: Tensor<1>| (name, v.dims().to_vec(), v);
        let norm = |prefix: &str, n: &LayerNorm| {
            let mut out = vec![vector(format!("{prefix}.weight"), n.gamma.val())];
            out.extend(n.beta.as_ref().map(|b| vector(format!("{prefix}.bias"), b.val())));
            out
        };
        let mut out: Vec<NamedTensor> =
            TABLES.iter().zip(self.embeddings.tables()).map(|(n, w)| flat(n.to_string(), w.val())).collect();
        out.extend(norm(EMBEDDING_NORM, &self.embeddings.norm));
        for (i, l) in self.layers.iter().enumerate() {
            for (n, lin) in LINEARS.iter().zip(l.linears()) {
                out.push(flat(format!("encoder.layer.{i}.{n}.weight"), lin.weight.val().transpose()));
                out.extend(lin.bias.as_ref().map(|b| vector(format!("encoder.layer.{i}.{n}.bias"), b.val())));
            }
            for (n, ln) in NORMS.iter().zip(l.norms()) {
                out.extend(norm(&format!("encoder.layer.{i}.{n}"), ln));
            }
        }
        out
    }
}

/// Pools hidden states `[batch, seq, d]` into `[batch, d]`; `Mean` averages the first `lengths[i]` positions.
pub fn pool(hidden: Tensor<3>, lengths: &[usize], pooling: Pooling) -> Tensor<2> {
    let [b, t, d] = hidden.dims();
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1).reshape([b, d]),
        Pooling::Mean => {
            let weights: Vec<f32> = lengths
                .iter()
                .flat_map(|&len| {
                    let n = real_len(len, t);
                    (0..t).map(move |j| if j < n { 1.0 / n as f32 } else { 0.0 })
                })
                .collect();
            let weights = Tensor::<3>::from_data(TensorData::new(weights, [b, t, 1]), &hidden.device());
            (hidden * weights).sum_dim(1).reshape([b, d])
        }
    }
}

/// `x / max(‖x‖₂, 1e-12)` per row, like `torch.nn.functional.normalize`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// The WordPiece tokenizer of a BERT checkpoint's `tokenizer.json`, with `[CLS]` as bos (put before every
/// prompt), `[SEP]` as eos (after every response) and `[PAD]` as pad, so that the data pipeline's
/// `prompt ++ response` reads `[CLS] prompt response [SEP]`. The file's own padding to a fixed length is
/// dropped; the encoder masks padding by length instead.
pub fn bert_tokenizer(tokenizer_json: &[u8]) -> Result<Tokenizer, TokenizerError> {
    let specials = br#"{"bos_token": "[CLS]", "eos_token": "[SEP]", "pad_token": "[PAD]", "add_bos_token": true}"#;
    Tokenizer::from_hf(tokenizer_json, Some(specials))
}

/// A scalar reward model on a BERT encoder: a linear head on the pooled embedding (a cross-encoder reward
/// model: the whole `prompt ++ response` is encoded together). Same interface as the decoder's
/// [`RewardModel`](super::reward::RewardModel), so the training loop can hold either.
#[derive(Module, Debug)]
pub struct EncoderRewardModel {
    pub backbone: Bert,
    /// `[d_model, 1]`, initialised to zero so that every reward starts at 0 and the first loss is ln 2.
    pub score: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

impl EncoderRewardModel {
    pub fn new(backbone: Bert, pooling: Pooling, device: &Device) -> Self {
        Self::with_labels(backbone, pooling, 1, device)
    }

    /// A zero-initialised head of `labels` outputs (attribute regression).
    pub fn with_labels(backbone: Bert, pooling: Pooling, labels: usize, device: &Device) -> Self {
        let score = super::reward::score_head(backbone.d_model(), labels, device);
        Self { backbone, score, pooling }
    }

    /// The first label's rewards of right-padded sequences `ids: [batch, seq]` whose real lengths are
    /// `lengths`, `[batch]`.
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<1> {
        super::reward::ScalarReward::rewards(self, ids, lengths)
    }

    /// Backbone tensors (`BertModel` names) plus `score.weight` `[k, d_model]`. transformers'
    /// `BertForSequenceClassification` reads a tanh pooler over `[CLS]` instead, so this export is for
    /// alignlab and for code that pools the same way (see [`super::reward`]).
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out = self.backbone.named_tensors();
        out.push(super::reward::score_tensor(&self.score));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::rng::SplitMix64;
    use crate::weights::safetensors::to_safetensors;

    /// Seeded random weights for whatever the model asks: LayerNorm γ near 1, everything else N(0, σ²);
    /// `overrides` replace named tensors.
    struct RandomSource {
        seed: u64,
        overrides: HashMap<String, Vec<f32>>,
    }

    impl WeightSource for RandomSource {
        fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
            if let Some(v) = self.overrides.get(name) {
                return Ok(v.clone());
            }
            let n: usize = shape.iter().product();
            let salt = name.bytes().fold(self.seed, |h, c| h.wrapping_mul(31).wrapping_add(c as u64));
            let mut rng = SplitMix64::new(salt);
            let (mean, sigma) = match name {
                s if s.ends_with("LayerNorm.weight") => (1.0, 0.1),
                s if s.ends_with(".bias") => (0.0, 0.1),
                _ => (0.0, 0.5),
            };
            Ok((0..n).map(|_| (mean + sigma * rng.next_normal()) as f32).collect())
        }
    }

    fn tiny_config() -> BertConfig {
        BertConfig::new(50, 16, 2, 2, 32).with_max_position_embeddings(16).with_layer_norm_eps(1e-12)
    }

    fn tiny(device: &Device) -> Bert {
        Bert::from_source(&tiny_config(), &RandomSource { seed: 7, overrides: HashMap::new() }, device).unwrap()
    }

    fn ids(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
        let t = rows[0].len();
        let flat: Vec<i64> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    const MINILM_CONFIG: &str = r#"{"_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
        "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522}"#;

    #[test]
    fn minilm_config_json_resolves() {
        let c = BertConfig::from_hf_json(MINILM_CONFIG.as_bytes()).unwrap();
        assert_eq!(c, BertConfig::new(30522, 384, 6, 12, 1536));
        assert_eq!(c.head_dim(), 32);
    }

    #[test]
    fn malformed_configs_are_refused_with_the_field_named() {
        let with = |from: &str, to: &str| {
            assert!(MINILM_CONFIG.contains(from), "{from}");
            BertConfig::from_hf_json(MINILM_CONFIG.replace(from, to).as_bytes()).unwrap_err().to_string()
        };
        for (from, to, want) in [
            ("\"gelu\"", "\"gelu_new\"", "hidden_act \"gelu_new\" is not supported"),
            ("\"bert\"", "\"roberta\"", "model_type \"roberta\" is not \"bert\""),
            ("\"absolute\"", "\"relative_key\"", "position_embedding_type \"relative_key\""),
            ("\"num_attention_heads\": 12", "\"num_attention_heads\": 7", "not divisible by num_attention_heads 7"),
            ("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 0", "num_hidden_layers must be positive"),
            (
                "\"num_hidden_layers\": 6",
                "\"num_hidden_layers\": -1",
                "num_hidden_layers = -1 is not a non-negative integer",
            ),
            ("\"vocab_size\": 30522", "\"vocab_size\": 30522000000", "more than alignlab will allocate"),
            ("\"hidden_size\": 384", "\"hidden_size\": 18446744073709551615", "not divisible by"),
            ("\"vocab_size\": 30522", "\"vocab_size\": 18446744073709551615", "more than alignlab will allocate"),
            ("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": 0", "layer_norm_eps 0 is not in (0, 1)"),
            ("\"hidden_size\": 384,", "", "hidden_size is missing"),
            (
                "\"layer_norm_eps\": 1e-12",
                "\"layer_norm_eps\": \"small\"",
                "layer_norm_eps = \"small\" is not a number",
            ),
        ] {
            let e = with(from, to);
            assert!(e.starts_with("model config: ") && e.contains(want), "{from} → {to}: {e}");
        }
        let e = BertConfig::from_hf_json(b"{\"vocab_size\": 3").unwrap_err().to_string();
        assert!(e.starts_with("model config: config.json: "), "{e}");
    }

    #[test]
    fn padding_with_a_mask_leaves_pooled_embeddings_unchanged() {
        let d = Device::flex();
        let model = tiny(&d);
        let seqs: [Vec<i64>; 2] = [vec![1, 5, 9, 12, 3], vec![1, 40, 2]];
        for pooling in [Pooling::Mean, Pooling::Cls] {
            let alone: Vec<Vec<f32>> = seqs
                .iter()
                .map(|s| values(model.embed(ids(std::slice::from_ref(s), &d), &[s.len()], pooling)))
                .collect();
            // Padded to 9 with ids that are not the pad id, so only the mask can hide them.
            let padded: Vec<Vec<i64>> =
                seqs.iter().map(|s| s.iter().copied().chain(std::iter::repeat(17)).take(9).collect()).collect();
            let batch = values(model.embed(ids(&padded, &d), &[5, 3], pooling));
            for (i, want) in alone.iter().enumerate() {
                assert!(close(&batch[i * 16..(i + 1) * 16], want, 1e-5), "{pooling:?} row {i}");
            }
            let normed = values(model.sentence_embeddings(ids(&padded, &d), &[5, 3], pooling));
            let norm: f32 = normed[..16].iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
    }

    #[test]
    fn fresh_reward_head_scores_zero() {
        let d = Device::flex();
        let rm = EncoderRewardModel::new(tiny(&d), Pooling::Mean, &d);
        let r = rm.forward(ids(&[vec![1, 2, 3, 4], vec![5, 6, 0, 0]], &d), &[4, 2]);
        assert_eq!(values(r), [0.0, 0.0]);
    }

    #[test]
    fn gelu_gradient_is_the_exact_derivative() {
        // d/dx x·Φ(x) = Φ(x) + x·φ(x), from Python's math.erf in float64.
        let points = [-2.0f32, -1.0, 0.5, 1.0, 2.0];
        let want = [-0.0852318, -0.0833155, 0.8674951, 1.0833155, 1.0852318];
        let d = Device::flex().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(points.to_vec(), [5]), &d).require_grad();
        let grads = gelu(x.clone()).sum().backward();
        let got = values(x.grad(&grads).unwrap());
        assert!(close(&got, &want, 2e-6), "{got:?}");
    }

    #[test]
    fn gradients_through_gelu_match_finite_differences() {
        // Layer 0's first feed-forward unit gets input exactly −2 at every token (zero weights, bias −2), so
        // the gradient of its bias is GELU'(−2) = −0.0852 times the upstream gradient: the tanh-approximate
        // derivative (8.7e-4 off there) would move it by 1%, five times the tolerance. Its output weight is the
        // second parameter. h = 0.1 was measured to keep both f32 rounding and the O(h²) term under 1e-3.
        let d = Device::flex();
        let (ff, dm) = (32, 16);
        let mut w1 = RandomSource { seed: 7, overrides: HashMap::new() }
            .tensor("encoder.layer.0.intermediate.dense.weight", &[ff, dm])
            .unwrap();
        w1[..dm].fill(0.0);
        let build = |b0: f32, v0: f32, device: &Device| {
            let mut b1 = vec![0.0; ff];
            b1[0] = b0;
            let mut w2 = RandomSource { seed: 7, overrides: HashMap::new() }
                .tensor("encoder.layer.0.output.dense.weight", &[dm, ff])
                .unwrap();
            w2[0] = v0;
            let overrides = HashMap::from([
                ("encoder.layer.0.intermediate.dense.weight".to_string(), w1.clone()),
                ("encoder.layer.0.intermediate.dense.bias".to_string(), b1),
                ("encoder.layer.0.output.dense.weight".to_string(), w2),
            ]);
            Bert::from_source(&tiny_config(), &RandomSource { seed: 7, overrides }, device).unwrap()
        };
        let input = vec![vec![1i64, 5, 9, 12, 3], vec![1, 40, 2, 0, 0]];
        let probe: Vec<f32> = (0..2 * dm).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let objective = |m: &Bert, device: &Device| {
            let probe = Tensor::<1>::from_data(TensorData::new(probe.clone(), [2 * dm]), device);
            (m.embed(ids(&input, device), &[5, 3], Pooling::Mean).reshape([2 * dm]) * probe).sum()
        };
        let (b0, v0) = (-2.0f32, 0.7f32);
        let ad = d.clone().autodiff();
        let model = build(b0, v0, &ad);
        let grads = objective(&model, &ad).backward();
        let g_b = values(model.layers[0].intermediate.bias.as_ref().unwrap().grad(&grads).unwrap())[0];
        let g_v = values(model.layers[0].output.weight.grad(&grads).unwrap())[0];
        let f = |b: f32, v: f32| values(objective(&build(b, v, &d), &d))[0];
        let h = 0.1;
        let fd_b = (f(b0 + h, v0) - f(b0 - h, v0)) / (2.0 * h);
        let fd_v = (f(b0, v0 + h) - f(b0, v0 - h)) / (2.0 * h);
        eprintln!("bias: fd {fd_b} vs autodiff {g_b}; output weight: fd {fd_v} vs autodiff {g_v}");
        assert!((fd_b - g_b).abs() < 2e-3 * g_b.abs(), "bias: fd {fd_b} vs autodiff {g_b}");
        assert!((fd_v - g_v).abs() < 2e-3 * g_v.abs(), "output weight: fd {fd_v} vs autodiff {g_v}");
    }

    fn tiny_safetensors(model: &Bert) -> Vec<u8> {
        pollster::block_on(to_safetensors(model.named_tensors(), HashMap::new())).unwrap()
    }

    #[test]
    fn exported_tensors_round_trip_through_safetensors() {
        let d = Device::flex();
        let model = tiny(&d);
        let bytes = tiny_safetensors(&model);
        let source = SafetensorsSource::parse(&bytes).unwrap();
        assert_eq!(source.names().len(), 5 + 2 * 16);
        assert!(source.names().contains(&"encoder.layer.1.attention.self.query.weight"));
        let back = Bert::from_source(&tiny_config(), &source, &d).unwrap();
        let input = ids(&[vec![1, 5, 9, 12, 3]], &d);
        let (a, b) = (model.embed(input.clone(), &[5], Pooling::Mean), back.embed(input, &[5], Pooling::Mean));
        assert_eq!(values(a), values(b));
    }

    #[test]
    fn missing_misshaped_and_truncated_weights_are_clear_errors() {
        let d = Device::flex();
        let tensors = tiny(&d).named_tensors();
        let write = |tensors: Vec<NamedTensor>| pollster::block_on(to_safetensors(tensors, HashMap::new())).unwrap();
        let load = |bytes: &[u8]| {
            let source = SafetensorsSource::parse(bytes).map_err(|e| e.to_string())?;
            Bert::from_source(&tiny_config(), &source, &d).map(|_| ()).map_err(|e| e.to_string())
        };

        let key = "encoder.layer.1.attention.output.LayerNorm.bias";
        let without: Vec<NamedTensor> = tensors.iter().filter(|t| t.0 != key).cloned().collect();
        assert_eq!(load(&write(without)).unwrap_err(), format!("tensor {key} is missing from the weights file"));

        let key = "encoder.layer.0.intermediate.dense.weight";
        let reshaped: Vec<NamedTensor> =
            tensors.iter().cloned().map(|(n, s, v)| if n == key { (n, vec![16, 32], v) } else { (n, s, v) }).collect();
        assert_eq!(
            load(&write(reshaped)).unwrap_err(),
            format!("tensor {key} has shape [16, 32], the model expects [32, 16]")
        );

        // Through from_hf: the pooler is ignored on purpose, any other extra tensor is named.
        let config = br#"{"model_type": "bert", "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16}"#;
        let extra = |name: &str| {
            let mut more = tensors.clone();
            more.push((name.to_string(), vec![16], Tensor::zeros([16], &d)));
            Bert::from_hf(config, &write(more), &d).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(extra("pooler.dense.bias").is_ok());
        assert_eq!(
            extra("cls.predictions.bias").unwrap_err(),
            "1 tensor(s) the model does not use: cls.predictions.bias"
        );

        let bytes = write(tensors);
        for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
            let e = load(&bytes[..cut]).unwrap_err();
            assert!(e.starts_with("safetensors: "), "cut at {cut}: {e}");
        }
        assert!(load(&bytes).is_ok());
    }
}
