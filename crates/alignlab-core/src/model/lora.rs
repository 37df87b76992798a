//! LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") for the Llama family, with
//! peft's names and TRL's defaults: a frozen projection `W` gains `(α/r)·B·A` with trainable `A: [r, d_in]`
//! and `B: [d_out, r]` (peft's layout); `B = 0` at the start, so the adapted model starts as the base.
//!
//! The adapters are Burn's own ([`LoraAdapter`] attached to the weight [`Param`] through a
//! [`Reparameterizer`]): Burn then freezes the base, gives the factors their own parameter ids (so only they
//! get gradients and AdamW state, and checkpoints record them), and merges them with
//! [`Module::materialize`]. What Burn's `Linear::forward` does with an adapter does not fit training,
//! though: it composes the dense `W + (α/r)·A·B` at every call, keeps it in the autodiff graph and
//! backpropagates a dense `[d_in, d_out]` gradient into the factors — full fine-tuning's weight-gradient
//! cost and memory — and it cannot apply peft's dropout, which acts on the adapter's input `x`, not on a
//! weight. So [`forward`] computes `x·W + dropout(x)·A·(α/r)·B` (peft's `lora.Linear.forward`), whose
//! backward never forms a weight-sized tensor; the decoder calls it for every projection.

use burn::module::{LoraAdapter, Module, Param, Reparameterizer};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Deserializer};

use crate::model::llama::{Attention, DecoderLayer, Llama, Mlp, NamedTensor};
use crate::rng::SplitMix64;
use crate::train::{Objective, TrainConfig, TrainError};
use crate::weights::{WeightError, WeightSource};

/// The projections of a Llama block, by peft's names (what `"all-linear"` expands to; the LM head is never
/// adapted, as in peft).
pub const LINEAR_MODULES: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// peft's targets for Llama when none are named (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`).
pub const DEFAULT_TARGET_MODULES: [&str; 2] = ["q_proj", "v_proj"];

/// peft's shorthand for every linear layer but the output head.
pub const ALL_LINEAR: &str = "all-linear";

/// Prefix of every tensor name in peft's `adapter_model.safetensors` for a causal LM.
const PEFT_PREFIX: &str = "base_model.model.";

/// The adapters of a run, peft's `LoraConfig` fields.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    /// Rank `r` of each adapter.
    pub r: usize,
    /// `α`: the adapters' product is scaled by `α / r`.
    pub alpha: f64,
    /// Dropout on the adapters' input during training.
    pub dropout: f64,
    /// Names from [`LINEAR_MODULES`], or `["all-linear"]`.
    pub target_modules: Vec<String>,
}

/// TRL's CLI defaults (`--lora_r 16 --lora_alpha 32 --lora_dropout 0.05`) and peft's Llama targets.
impl Default for LoraConfig {
    fn default() -> Self {
        Self { r: 16, alpha: 32.0, dropout: 0.05, target_modules: default_target_modules() }
    }
}

pub fn default_target_modules() -> Vec<String> {
    DEFAULT_TARGET_MODULES.iter().map(|s| s.to_string()).collect()
}

/// A module name or a list of them (TOML/JSON), as peft's `target_modules` takes.
pub fn one_or_many_modules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `init(hf_name, d_in, d_out)` gives an adapter's A and B.
type AdapterInit<'a, E> = dyn FnMut(&str, usize, usize) -> Result<(Vec<f32>, Vec<f32>), E> + 'a;

impl LoraConfig {
    /// The run's adapters, or `None` for full fine-tuning (`lora_r = 0`).
    pub fn of(config: &TrainConfig) -> Option<Self> {
        (config.lora_r > 0).then(|| Self {
            r: config.lora_r,
            alpha: config.lora_alpha,
            dropout: config.lora_dropout,
            target_modules: config.lora_target_modules.clone(),
        })
    }

    /// `α / r`, the factor of every adapter's product.
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// Checks the options, naming the `TrainConfig` field at fault.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &'static str, msg: String| Err(TrainError::Config { field, msg });
        // Far above any adapter in use (peft's examples stop at 256); bounds what a config file allocates.
        if self.r == 0 || self.r > 4096 {
            return bad("lora_r", format!("must be in 1..=4096 (0 trains every weight), got {}", self.r));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad("lora_alpha", format!("must be a positive number, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("lora_dropout", format!("must be in [0, 1), got {}", self.dropout));
        }
        self.modules()?;
        Ok(())
    }

    /// The adapted projections in block order, `"all-linear"` expanded; unknown or no names are errors.
    pub fn modules(&self) -> Result<Vec<&'static str>, TrainError> {
        let bad = |msg: String| Err(TrainError::Config { field: "lora_target_modules", msg });
        if self.target_modules.is_empty() {
            return bad(format!("name at least one of {} or {ALL_LINEAR}", LINEAR_MODULES.join(", ")));
        }
        if self.target_modules.iter().any(|m| m == ALL_LINEAR) {
            if self.target_modules.len() > 1 {
                return bad(format!("{ALL_LINEAR} stands alone, got {:?}", self.target_modules));
            }
            return Ok(LINEAR_MODULES.to_vec());
        }
        if let Some(m) = self.target_modules.iter().find(|m| !LINEAR_MODULES.contains(&m.as_str())) {
            return bad(format!("{m:?} is not a Llama projection ({} or {ALL_LINEAR})", LINEAR_MODULES.join(", ")));
        }
        Ok(LINEAR_MODULES.iter().copied().filter(|n| self.target_modules.iter().any(|m| m == n)).collect())
    }

    /// `model` with every weight frozen and fresh adapters on the target projections: `A` as peft draws it
    /// (Kaiming-uniform with `a = √5`, i.e. uniform in `±1/√d_in`), here from [`SplitMix64`] seeded by `seed`
    /// so that a run is reproducible on every backend; `B = 0`.
    pub fn apply(&self, model: Llama, seed: u64) -> Result<Llama, TrainError> {
        let mut rng = SplitMix64::new(seed);
        let r = self.r;
        self.attach(model, &mut |_, d_in, d_out| {
            let bound = 1.0 / (d_in as f64).sqrt();
            let a = (0..d_in * r).map(|_| ((2.0 * rng.next_f64() - 1.0) * bound) as f32).collect();
            Ok((a, vec![0.0; r * d_out]))
        })
    }

    /// `model` with every weight frozen and the adapters of peft's `adapter_model.safetensors` (names as
    /// [`peft_tensors`] writes them; each tensor's shape checked).
    pub fn load_peft(&self, model: Llama, source: &dyn WeightSource) -> Result<Llama, WeightError> {
        let r = self.r;
        self.attach::<AttachError>(model, &mut |name, d_in, d_out| {
            let a = source.tensor(&format!("{PEFT_PREFIX}{name}.lora_A.weight"), &[r, d_in])?;
            let b = source.tensor(&format!("{PEFT_PREFIX}{name}.lora_B.weight"), &[d_out, r])?;
            Ok((super::transpose(&a, r, d_in), super::transpose(&b, d_out, r)))
        })
        .map_err(|e| match e {
            AttachError::Weights(e) => e,
            AttachError::Config(e) => WeightError::Config(e.to_string()),
        })
    }

    /// Freezes `model` and attaches adapters whose `A: [d_in, r]` and `B: [r, d_out]` (Burn's layout) come
    /// from `init(hf_name, d_in, d_out)`.
    fn attach<E>(&self, model: Llama, init: &mut AdapterInit<E>) -> Result<Llama, E>
    where
        E: From<TrainError>,
    {
        self.validate()?;
        let modules = self.modules()?;
        if has_adapters(&model) {
            return Err(
                TrainError::Config { field: "lora_r", msg: "the model already has LoRA adapters".into() }.into()
            );
        }
        let mut model = model.no_grad();
        for (i, layer) in model.layers.iter_mut().enumerate() {
            for (block, name, linear) in linears_mut(layer) {
                if !modules.contains(&name) {
                    continue;
                }
                let [d_in, d_out] = linear.weight.dims();
                let device = linear.weight.device();
                let (a, b) = init(&format!("model.layers.{i}.{block}.{name}"), d_in, d_out)?;
                let adapter = LoraAdapter {
                    a: Param::from_data(TensorData::new(a, [d_in, self.r]), &device),
                    b: Param::from_data(TensorData::new(b, [self.r, d_out]), &device),
                    scale: self.scale(),
                };
                *linear = linear.clone().apply_reparameterization(AttachTo(Some(adapter)));
            }
        }
        model.lora_dropout = (self.dropout > 0.0).then(|| DropoutConfig::new(self.dropout).init());
        Ok(model)
    }

    /// peft's `adapter_config.json` for these adapters (its other fields take peft's defaults on load).
    pub fn adapter_config_json(&self, base_model: Option<&str>) -> Result<String, TrainError> {
        let json = serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.modules()?,
            "bias": "none",
            "fan_in_fan_out": false,
            "init_lora_weights": true,
            "inference_mode": true,
            "modules_to_save": null,
            "use_rslora": false,
            "use_dora": false,
        });
        Ok(serde_json::to_string_pretty(&json).expect("a JSON value serialises"))
    }
}

/// What attaching adapters read from a file fails with.
enum AttachError {
    Weights(WeightError),
    Config(TrainError),
}

impl From<TrainError> for AttachError {
    fn from(e: TrainError) -> Self {
        Self::Config(e)
    }
}

impl From<WeightError> for AttachError {
    fn from(e: WeightError) -> Self {
        Self::Weights(e)
    }
}

/// The policy a language-model run (DPO family, KTO, LiPO, MODPO) trains: `model` itself for full
/// fine-tuning, or `model` with fresh adapters (seeded by the run's seed) when `lora_r > 0`. A model that
/// already carries adapters (a resumed LoRA run, see [`LoraConfig::load_peft`]) is kept as it is, provided
/// its rank is the run's.
pub fn for_run(model: Llama, config: &TrainConfig) -> Result<Llama, TrainError> {
    let Some(lora) = LoraConfig::of(config) else {
        return match has_adapters(&model) {
            true => Err(TrainError::Config { field: "lora_r", msg: "the model has LoRA adapters: set lora_r".into() }),
            false => Ok(model),
        };
    };
    if has_adapters(&model) {
        let rank = all_linears(&model).find_map(|l| l.weight.adapter().map(|a| a.a.dims()[1]));
        return match rank == Some(lora.r) {
            true => Ok(model),
            false => Err(TrainError::Config {
                field: "lora_r",
                msg: format!("the model's adapters have rank {rank:?}, the run asks for {}", lora.r),
            }),
        };
    }
    lora.apply(model, config.seed)
}

/// Whether any projection of `model` carries an adapter.
pub fn has_adapters(model: &Llama) -> bool {
    all_linears(model).any(|l| l.weight.adapter().is_some())
}

/// A plain Llama with `W + (α/r)·B·A` in every adapted projection (for export; transformers loads it as any
/// checkpoint). [`Llama::named_tensors`] of an adapted model gives the same merged weights.
pub fn merge(model: &Llama) -> Llama {
    let mut merged = model.valid().materialize();
    merged.lora_dropout = None;
    merged
}

/// The adapters under peft's names and layout (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`
/// `[r, d_in]`, `….lora_B.weight` `[d_out, r]`), for `adapter_model.safetensors`.
pub fn peft_tensors(model: &Llama) -> Vec<NamedTensor> {
    let mut out = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for (block, name, linear) in linears(layer) {
            let Some(adapter) = linear.weight.adapter() else { continue };
            let prefix = format!("{PEFT_PREFIX}model.layers.{i}.{block}.{name}");
            for (factor, t) in [("lora_A", adapter.a.val()), ("lora_B", adapter.b.val())] {
                let [rows, cols] = t.dims();
                out.push((format!("{prefix}.{factor}.weight"), vec![cols, rows], t.transpose().reshape([rows * cols])));
            }
        }
    }
    out
}

/// `(trainable, total)` parameters, as peft's `print_trainable_parameters` counts them: with adapters only
/// theirs train, and the total includes them.
pub fn param_counts(model: &Llama) -> (usize, usize) {
    let total = model.num_params();
    let adapters: usize =
        all_linears(model).filter_map(|l| l.weight.adapter()).map(|a| a.a.num_params() + a.b.num_params()).sum();
    (if adapters > 0 { adapters } else { total }, total)
}

/// `linear(x)`, with its adapter when it has one: `x·W + b + dropout(x)·A·((α/r)·B)`. The base term is
/// Burn's `linear` on the frozen weight, so without an adapter this is exactly `Linear::forward`.
pub fn forward(linear: &Linear, x: Tensor<3>, dropout: Option<&Dropout>) -> Tensor<3> {
    let Some(adapter) = linear.weight.adapter() else { return linear.forward(x) };
    let base = burn::tensor::module::linear(x.clone(), linear.weight.base(), linear.bias.as_ref().map(|b| b.val()));
    let x = match dropout {
        Some(d) => d.forward(x),
        None => x,
    };
    let [b, t, d_in] = x.dims();
    let d_out = base.dims()[2];
    let low = x.reshape([b * t, d_in]).matmul(adapter.a.val()).matmul(adapter.b.val().mul_scalar(adapter.scale));
    base + low.reshape([b, t, d_out])
}

/// Attaches its adapter to the `weight` of the one `Linear` it is applied to.
struct AttachTo(Option<LoraAdapter>);

impl Reparameterizer for AttachTo {
    type Reparam = LoraAdapter;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<LoraAdapter>) {
        let adapter = if D == 2 && path.rsplit('.').next() == Some("weight") { self.0.take() } else { None };
        (param, adapter)
    }
}

/// `(block, name, projection)` of a decoder block, in [`LINEAR_MODULES`] order.
fn linears(layer: &DecoderLayer) -> [(&'static str, &'static str, &Linear); 7] {
    let (Attention { q_proj, k_proj, v_proj, o_proj, .. }, Mlp { gate_proj, up_proj, down_proj }) =
        (&layer.self_attn, &layer.mlp);
    [
        ("self_attn", "q_proj", q_proj),
        ("self_attn", "k_proj", k_proj),
        ("self_attn", "v_proj", v_proj),
        ("self_attn", "o_proj", o_proj),
        ("mlp", "gate_proj", gate_proj),
        ("mlp", "up_proj", up_proj),
        ("mlp", "down_proj", down_proj),
    ]
}

fn linears_mut(layer: &mut DecoderLayer) -> [(&'static str, &'static str, &mut Linear); 7] {
    let (Attention { q_proj, k_proj, v_proj, o_proj, .. }, Mlp { gate_proj, up_proj, down_proj }) =
        (&mut layer.self_attn, &mut layer.mlp);
    [
        ("self_attn", "q_proj", q_proj),
        ("self_attn", "k_proj", k_proj),
        ("self_attn", "v_proj", v_proj),
        ("self_attn", "o_proj", o_proj),
        ("mlp", "gate_proj", gate_proj),
        ("mlp", "up_proj", up_proj),
        ("mlp", "down_proj", down_proj),
    ]
}

fn all_linears(model: &Llama) -> impl Iterator<Item = &Linear> {
    model.layers.iter().flat_map(|l| linears(l).map(|(_, _, lin)| lin))
}

/// The LoRA options of a run checked (nothing to check when `lora_r = 0`). LoRA trains the policies of the
/// language-model objectives (DPO family, KTO, LiPO, MODPO), which share one path: adapters on the policy,
/// and the reference is the base with the adapters off (its log-probs are taken before they are attached,
/// when `B = 0` makes both the same). A reward model's score head and backbone train in full.
pub fn validate_train_config(config: &TrainConfig) -> Result<(), TrainError> {
    let Some(lora) = LoraConfig::of(config) else { return Ok(()) };
    if !matches!(config.objective, Objective::Dpo | Objective::Kto | Objective::Lipo | Objective::Modpo) {
        return Err(TrainError::Config {
            field: "lora_r",
            msg: "LoRA adapters train policies (DPO family, KTO, LiPO, MODPO); reward models train every weight".into(),
        });
    }
    lora.validate()
}
