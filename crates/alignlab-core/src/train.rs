//! One training loop for every objective: batching of preference pairs (and of KTO's unpaired examples,
//! LiPO's ranked lists and regression's ratings, see [`TrainData`]), AdamW with warm-up and linear decay,
//! global grad-norm clipping, a frozen reference whose log-probs are computed once and cached, and metrics
//! under TRL's names.
//!
//! Metrics stay on the device as small tensors until [`Trainer::steps`] returns, then are read back in one
//! asynchronous transfer: no synchronous read ever happens (a requirement on wasm, and what keeps a native
//! GPU from stalling every step).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Deserializer, Serialize};

use crate::data::{
    DataError, ReadOptions, TokenizeOptions, TokenizedCompletion, TokenizedList, TokenizedPair, TokenizedRating,
    rating_attributes, read_lists, read_preferences, read_ratings, read_unpaired, tokenize_completion, tokenize_list,
    tokenize_pair, tokenize_rating, train_eval_split,
};
use crate::metrics::{self, Metrics};
use crate::model::bert::{Bert, EncoderRewardModel, Pooling};
use crate::model::llama::Llama;
use crate::model::reward::{RewardModel, ScalarReward, score_length};
use crate::objectives::dpo::{DpoLoss, DpoLossType, PairLogps};
use crate::objectives::kto::{KtoLogps, KtoLoss, kl_completion_index};
use crate::objectives::lipo::{LipoLoss, LipoLossType, ListLogps};
use crate::objectives::logprob::{chunk_rows, masked_sum, token_logps, token_logps_backward};
use crate::objectives::modpo::{MarginRewards, ModpoLoss, ModpoLossType, ModpoWeights};
use crate::objectives::reward::{RewardLoss, RewardLossType, regression_loss};
use crate::rng::SplitMix64;
use crate::tokenizer::Tokenizer;

/// What the loop optimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Direct Preference Optimization of the policy against a frozen copy of itself.
    #[default]
    Dpo,
    /// A Bradley–Terry reward model: the backbone plus a scalar head.
    Reward,
    /// KTO on unpaired examples (desirable / undesirable completions), against a frozen copy of the policy.
    Kto,
    /// LiPO on ranked lists of responses (`lipo_loss_type`), against a frozen copy of the policy.
    Lipo,
    /// MODPO: DPO on the preference pairs of one objective, with the other objectives' margin reward models
    /// (scored once before training, see [`Trainer::set_margin_rewards`]) weighted by `modpo_weights`.
    Modpo,
    /// Attribute regression (SteerLM, HelpSteer2) on rated responses: a reward model with one head per rated
    /// attribute, fitted by [`regression_loss`]; its heads start a Bradley–Terry run (`--init-from`).
    Regression,
}

impl Objective {
    /// Whether the run trains a reward model (a backbone and a score head) rather than a policy.
    pub fn trains_reward_model(self) -> bool {
        matches!(self, Self::Reward | Self::Regression)
    }
}

/// Every option of a run. The field names are the CLI flags (`--learning-rate`), the TOML keys and the keys
/// of the JS options object (`learning_rate`); unknown keys are rejected so that a typo is not a silent
/// default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub objective: Objective,
    /// DPO temperature β (0.1; 0.01–0.5 typical).
    pub beta: f64,
    /// DPO-family loss (TRL's `loss_type`): one name, or a list whose losses add up (`["sigmoid", "sft"]`).
    #[serde(deserialize_with = "one_or_many")]
    pub loss_type: Vec<DpoLossType>,
    /// Weight of each `loss_type` (all 1 when absent).
    pub loss_weights: Option<Vec<f64>>,
    /// cDPO / rDPO label smoothing ε ∈ [0, 0.5) (0).
    pub label_smoothing: f64,
    /// SimPO's target reward margin γ (0.5; the paper pairs β ≈ 2–2.5 with γ/β ≈ 0.5).
    pub simpo_gamma: f64,
    /// CPO's weight of the chosen response's NLL (1).
    pub cpo_alpha: f64,
    /// How a reward model uses preference strength: `bradley_terry`, `margin` (Llama 2) or `scaled_bt`.
    pub reward_loss_type: RewardLossType,
    /// Reward centering: adds c·(r_w + r_l)² so rewards stay near 0 (TRL's name; 0 disables; 0.01 typical).
    pub center_rewards_coefficient: f64,
    /// Micro-batches of `batch_size` pairs whose gradients add up to one optimizer step.
    pub gradient_accumulation_steps: usize,
    /// Fraction of the records held out for evaluation (seeded by `seed`; 0: none).
    pub eval_split: f64,
    /// Evaluate the held-out pairs every this many steps (and at the end).
    pub eval_steps: Option<usize>,
    /// Peak learning rate of AdamW (1e-5 suits SmolLM2-size models; tiny models take 1e-3).
    pub learning_rate: f64,
    /// Stop after this many optimizer steps (otherwise `num_epochs` epochs).
    pub max_steps: Option<usize>,
    pub num_epochs: usize,
    /// Preference pairs per step.
    pub batch_size: usize,
    /// Linear warm-up from 0 over this many steps, then linear decay to 0.
    pub warmup_steps: usize,
    /// Decoupled weight decay of AdamW (0).
    pub weight_decay: f64,
    /// Global gradient-norm clipping threshold; 0 disables it.
    pub max_grad_norm: f64,
    /// Seed of the data order.
    pub seed: u64,
    /// Longest prompt + response, in tokens.
    pub max_length: usize,
    /// Longest prompt, in tokens (kept from its end).
    pub max_prompt_length: usize,
    /// Wrap plain-text records in the model's chat template (conversational records always use it).
    pub chat_template: bool,
    /// Memory for one chunk of LM-head logits (64 MiB: half of WebGPU's default storage-binding limit).
    pub logits_chunk_bytes: usize,
    /// KTO's λ_D, the weight of desirable examples (1; TRL's name). Keep λ_D·n_D / (λ_U·n_U) in [1, 4/3].
    pub desirable_weight: f64,
    /// KTO's λ_U, the weight of undesirable examples (1; TRL's name).
    pub undesirable_weight: f64,
    /// LiPO's listwise loss: `lambda` (LiPO-λ), `pair_logistic`, `pair_hinge`, `list_mle` or `softmax`. LiPO
    /// takes `beta` too (the paper uses 0.05).
    pub lipo_loss_type: LipoLossType,
    /// Most responses per ranked list (LiPO's K, 8 in the paper); longer lists keep their first responses.
    pub max_list_length: usize,
    /// MODPO's objective weights on the simplex: w_k of the objective whose pairs are trained on, then one
    /// w_i per margin reward model (absent: w_k = 1 and no margin RMs, which is DPO).
    pub modpo_weights: Option<Vec<f64>>,
    /// MODPO's loss of the collective reward margin: `sigmoid` (the paper) or `hinge`.
    pub modpo_loss_type: ModpoLossType,
    /// LoRA rank r: train rank-r adapters on frozen weights instead of every weight (0: full fine-tuning;
    /// TRL's `--lora_r` is 16). See [`crate::model::lora`].
    pub lora_r: usize,
    /// LoRA α: each adapter's product is scaled by α / r (32, TRL's).
    pub lora_alpha: f64,
    /// Dropout on the adapters' input while training (0.05, TRL's; masks come from the backend's RNG, so
    /// only a run with 0 resumes to the identical loss curve).
    pub lora_dropout: f64,
    /// The projections that get adapters, peft's names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,
    /// down_proj, or "all-linear" (q_proj and v_proj: peft's default for Llama).
    #[serde(deserialize_with = "crate::model::lora::one_or_many_modules")]
    pub lora_target_modules: Vec<String>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            objective: Objective::Dpo,
            beta: 0.1,
            loss_type: vec![DpoLossType::Sigmoid],
            loss_weights: None,
            label_smoothing: 0.0,
            simpo_gamma: 0.5,
            cpo_alpha: 1.0,
            reward_loss_type: RewardLossType::BradleyTerry,
            center_rewards_coefficient: 0.0,
            gradient_accumulation_steps: 1,
            eval_split: 0.0,
            eval_steps: None,
            learning_rate: 1e-5,
            max_steps: None,
            num_epochs: 1,
            batch_size: 2,
            warmup_steps: 0,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            seed: 0,
            max_length: 512,
            max_prompt_length: 256,
            chat_template: false,
            logits_chunk_bytes: 64 << 20,
            lora_r: 0,
            lora_alpha: 32.0,
            lora_dropout: 0.05,
            lora_target_modules: crate::model::lora::default_target_modules(),
            desirable_weight: 1.0,
            undesirable_weight: 1.0,
            lipo_loss_type: LipoLossType::Lambda,
            max_list_length: 8,
            modpo_weights: None,
            modpo_loss_type: ModpoLossType::Sigmoid,
        }
    }
}

impl TrainConfig {
    /// Checks ranges, naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &'static str, msg: String| Err(TrainError::Config { field, msg });
        self.modpo_loss()?;
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return bad("beta", format!("must be a positive number, got {}", self.beta));
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return bad("label_smoothing", format!("must be in [0, 0.5), got {}", self.label_smoothing));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", format!("must be a positive number, got {}", self.learning_rate));
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.eval_split) {
            return bad("eval_split", format!("must be in [0, 1), got {}", self.eval_split));
        }
        if self.eval_steps == Some(0) {
            return bad("eval_steps", "must be at least 1".into());
        }
        if self.gradient_accumulation_steps == 0 {
            return bad("gradient_accumulation_steps", "must be at least 1".into());
        }
        if self.loss_type.is_empty() {
            return bad("loss_type", "name at least one loss".into());
        }
        if let Some(w) = &self.loss_weights
            && (w.len() != self.loss_type.len() || w.iter().any(|w| !w.is_finite()))
        {
            return bad("loss_weights", format!("needs one finite weight per loss_type ({})", self.loss_type.len()));
        }
        if !(self.simpo_gamma.is_finite() && self.cpo_alpha.is_finite() && self.center_rewards_coefficient >= 0.0) {
            return bad("simpo_gamma", "simpo_gamma, cpo_alpha and center_rewards_coefficient must be finite".into());
        }
        if self.max_steps == Some(0) || (self.max_steps.is_none() && self.num_epochs == 0) {
            return bad("max_steps", "the run must have at least one step".into());
        }
        if self.max_length < 2 || self.max_prompt_length >= self.max_length {
            return bad("max_length", format!("must exceed max_prompt_length ({})", self.max_prompt_length));
        }
        // `>= 0` is false for NaN too, so NaN is refused with the negatives.
        let non_negative = |x: f64| x >= 0.0;
        if !non_negative(self.max_grad_norm) || !non_negative(self.weight_decay) {
            return bad("max_grad_norm", "max_grad_norm and weight_decay must be non-negative".into());
        }
        crate::model::lora::validate_train_config(self)?;
        for (field, w) in [("desirable_weight", self.desirable_weight), ("undesirable_weight", self.undesirable_weight)]
        {
            if !(w.is_finite() && w > 0.0) {
                return bad(field, format!("must be a positive number, got {w}"));
            }
        }
        if self.max_list_length < 2 {
            return bad("max_list_length", format!("a list needs at least 2 responses, got {}", self.max_list_length));
        }
        Ok(())
    }

    /// The DPO-family loss this run asks for.
    pub fn dpo_loss(&self) -> DpoLoss {
        let weights = self.loss_weights.clone().unwrap_or_else(|| vec![1.0; self.loss_type.len()]);
        DpoLoss {
            terms: self.loss_type.iter().copied().zip(weights).collect(),
            beta: self.beta,
            label_smoothing: self.label_smoothing,
            simpo_gamma: self.simpo_gamma,
            cpo_alpha: self.cpo_alpha,
        }
    }

    /// The reward-model loss this run asks for.
    pub fn reward_loss(&self) -> RewardLoss {
        RewardLoss { loss_type: self.reward_loss_type, center_rewards_coefficient: self.center_rewards_coefficient }
    }

    /// Pairs consumed by one optimizer step.
    pub fn pairs_per_step(&self) -> usize {
        self.batch_size * self.gradient_accumulation_steps
    }

    /// The tokenisation this run asks for (the length limits and chat wrapping live in the run's options).
    pub fn tokenize_options(&self) -> TokenizeOptions {
        TokenizeOptions {
            max_length: self.max_length,
            max_prompt_length: self.max_prompt_length,
            chat_template: self.chat_template,
            max_list_length: self.max_list_length,
            ..Default::default()
        }
    }

    /// The KTO loss this run asks for.
    pub fn kto_loss(&self) -> KtoLoss {
        KtoLoss {
            beta: self.beta,
            desirable_weight: self.desirable_weight,
            undesirable_weight: self.undesirable_weight,
        }
    }

    /// The MODPO loss this run asks for; the error names `modpo_weights` when they are off the simplex.
    pub fn modpo_loss(&self) -> Result<ModpoLoss, TrainError> {
        let weights = match self.modpo_weights.as_deref() {
            None => ModpoWeights::single(),
            Some([]) => return Err(TrainError::Config { field: "modpo_weights", msg: "give w_k first".into() }),
            Some([target, others @ ..]) => ModpoWeights::new(*target, others.to_vec())
                .map_err(|e| TrainError::Config { field: "modpo_weights", msg: e.to_string() })?,
        };
        Ok(ModpoLoss { loss_type: self.modpo_loss_type, beta: self.beta, weights })
    }

    /// The LiPO loss this run asks for.
    pub fn lipo_loss(&self) -> LipoLoss {
        LipoLoss { loss_type: self.lipo_loss_type, beta: self.beta }
    }

    /// Learning rate at optimizer step `step` (0-based) of `total`: linear warm-up, then linear decay to 0
    /// (TRL's default `lr_scheduler_type="linear"`).
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay = total.saturating_sub(self.warmup_steps).max(1);
        self.learning_rate * (1.0 - (step - self.warmup_steps) as f64 / decay as f64).max(0.0)
    }
}

/// `"sigmoid"` or `["sigmoid", "sft"]`, as TRL accepts; the error names the bad entry.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DpoLossType>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<DpoLossType>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a loss type name or a list of them")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![DpoLossType::deserialize(serde::de::value::StrDeserializer::new(v))?])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(t) = seq.next_element()? {
                out.push(t);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Visitor)
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("option {field}: {msg}")]
    Config { field: &'static str, msg: String },
    #[error("no training pairs: the data set is empty after reading and tokenizing")]
    NoData,
    #[error("token id {id} in the pair from line {line} is outside the model's vocabulary of {vocab}")]
    BadToken { id: u32, line: usize, vocab: usize },
    #[error("the loss became {value} at step {step}; training stopped (the last checkpoint is kept)")]
    NonFinite { step: usize, value: f64 },
    #[error("reading metrics back from the device failed: {0}")]
    Read(String),
    #[error("the checkpoint does not fit this run: {0}")]
    Checkpoint(String),
}

/// Where a run stands, beside its weights and optimizer state in a checkpoint: enough to continue with the
/// identical loss curve (the data order, the step, the reference log-probs of the starting policy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub step: usize,
    pub total_steps: usize,
    pub rng: u64,
    /// Pair indices left in the current epoch's order.
    pub order: Vec<usize>,
    /// Reference log-probs per pair; for KTO (completion, its KL pair) per example.
    pub reference: Vec<(f32, f32)>,
    /// Training examples: pairs, unpaired examples or lists.
    pub pairs: usize,
    /// Reference log-probs of each ranked list's responses (LiPO).
    #[serde(default)]
    pub list_reference: Vec<Vec<f32>>,
    /// MODPO's margin-RM rewards per pair, `[pair][rm]` = (chosen, rejected), scored before training.
    #[serde(default)]
    pub margins: Vec<Vec<(f32, f32)>>,
    /// Reference log-probs of the held-out data, which a resumed run cannot recompute (its policy has moved).
    #[serde(default)]
    pub eval_reference: Vec<(f32, f32)>,
    #[serde(default)]
    pub eval_list_reference: Vec<Vec<f32>>,
}

/// What a run trains on: pairs (DPO and reward models), unpaired examples (KTO), ranked lists (LiPO) or
/// rated responses (attribute regression).
#[derive(Clone, Debug, PartialEq)]
pub enum TrainData {
    Pairs(Vec<TokenizedPair>),
    Unpaired(Vec<TokenizedCompletion>),
    Lists(Vec<TokenizedList>),
    /// Rated responses, their labels in the order of `attributes` (the regression heads).
    Ratings {
        attributes: Vec<String>,
        ratings: Vec<TokenizedRating>,
    },
}

impl From<Vec<TokenizedPair>> for TrainData {
    fn from(v: Vec<TokenizedPair>) -> Self {
        Self::Pairs(v)
    }
}

impl From<Vec<TokenizedCompletion>> for TrainData {
    fn from(v: Vec<TokenizedCompletion>) -> Self {
        Self::Unpaired(v)
    }
}

impl From<Vec<TokenizedList>> for TrainData {
    fn from(v: Vec<TokenizedList>) -> Self {
        Self::Lists(v)
    }
}

impl TrainData {
    pub fn len(&self) -> usize {
        match self {
            Self::Pairs(v) => v.len(),
            Self::Unpaired(v) => v.len(),
            Self::Lists(v) => v.len(),
            Self::Ratings { ratings, .. } => ratings.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads and tokenises the format `objective` trains on from `text` (JSONL, or a JSON array of records):
    /// preference pairs without their ties (DPO, reward models), unpaired examples (KTO), ranked lists
    /// (LiPO) or ratings (regression: the attributes rated anywhere in the file, in name order). Returns the lines skipped with `opts.skip_bad_lines`; errors name `source` and the line.
    pub fn read(
        source: &str,
        text: &str,
        objective: Objective,
        opts: &ReadOptions,
        tok: &Tokenizer,
        topts: &TokenizeOptions,
    ) -> Result<(Self, Vec<(usize, String)>), DataError> {
        let at = |e: DataError| e.in_file(source);
        Ok(match objective {
            Objective::Dpo | Objective::Reward | Objective::Modpo => {
                let r = read_preferences(source, text, opts)?;
                let pairs = r.records.iter().filter(|p| !p.tie).map(|p| tokenize_pair(tok, p, topts).map_err(at));
                (Self::Pairs(pairs.collect::<Result<_, _>>()?), r.skipped)
            }
            Objective::Kto => {
                let r = read_unpaired(source, text, opts)?;
                let ex = r.records.iter().map(|e| tokenize_completion(tok, e, topts).map_err(at));
                (Self::Unpaired(ex.collect::<Result<_, _>>()?), r.skipped)
            }
            Objective::Lipo => {
                let r = read_lists(source, text, opts)?;
                let lists = r.records.iter().map(|l| tokenize_list(tok, l, topts).map_err(at));
                (Self::Lists(lists.collect::<Result<_, _>>()?), r.skipped)
            }
            Objective::Regression => {
                let r = read_ratings(source, text, opts)?;
                let attributes = rating_attributes(&r.records);
                let ratings = r.records.iter().map(|x| tokenize_rating(tok, x, &attributes, topts).map_err(at));
                (Self::Ratings { ratings: ratings.collect::<Result<_, _>>()?, attributes }, r.skipped)
            }
        })
    }

    /// [`train_eval_split`] of the examples: (train, held out).
    pub fn split(self, eval_fraction: f64, seed: u64) -> (Self, Self) {
        fn two<T>(v: Vec<T>, f: f64, seed: u64) -> (Vec<T>, Vec<T>) {
            train_eval_split(v, f, seed)
        }
        match self {
            Self::Pairs(v) => {
                let (a, b) = two(v, eval_fraction, seed);
                (a.into(), b.into())
            }
            Self::Unpaired(v) => {
                let (a, b) = two(v, eval_fraction, seed);
                (a.into(), b.into())
            }
            Self::Lists(v) => {
                let (a, b) = two(v, eval_fraction, seed);
                (a.into(), b.into())
            }
            Self::Ratings { attributes, ratings } => {
                let (a, b) = two(ratings, eval_fraction, seed);
                (Self::Ratings { attributes: attributes.clone(), ratings: a }, Self::Ratings { attributes, ratings: b })
            }
        }
    }

    /// Gives the examples a checkpoint's reference log-probs (pairs: chosen, rejected; KTO: completion, KL
    /// pair; lists: each response), so a resumed run never recomputes them from the moved policy. A state of
    /// another size leaves the data as it is ([`Trainer::restore`] then refuses it).
    pub fn use_reference_of(&mut self, state: &TrainerState) {
        match self {
            Self::Pairs(pairs) if state.reference.len() == pairs.len() => {
                for (pair, &(c, r)) in pairs.iter_mut().zip(&state.reference) {
                    (pair.ref_chosen_logps, pair.ref_rejected_logps) = (Some(c), Some(r));
                }
            }
            Self::Unpaired(ex) if state.reference.len() == ex.len() => {
                for (e, &(r, kl)) in ex.iter_mut().zip(&state.reference) {
                    (e.reference_logps, e.reference_kl_logps) = (Some(r), Some(kl));
                }
            }
            Self::Lists(lists) if state.list_reference.len() == lists.len() => {
                for (l, r) in lists.iter_mut().zip(&state.list_reference) {
                    l.ref_logps = Some(r.clone());
                }
            }
            _ => {}
        }
    }

    /// The format `objective` trains on, or an error naming both.
    fn check(&self, objective: Objective) -> Result<(), TrainError> {
        let ok = matches!(
            (self, objective),
            (Self::Pairs(_), Objective::Dpo | Objective::Reward | Objective::Modpo)
                | (Self::Unpaired(_), Objective::Kto)
                | (Self::Lists(_), Objective::Lipo)
                | (Self::Ratings { .. }, Objective::Regression)
        );
        let kind = match self {
            Self::Pairs(_) => "preference pairs",
            Self::Unpaired(_) => "unpaired examples",
            Self::Lists(_) => "ranked lists",
            Self::Ratings { .. } => "ratings",
        };
        let want = match objective {
            Objective::Dpo | Objective::Reward | Objective::Modpo => "preference pairs",
            Objective::Kto => "unpaired examples ({prompt, completion, label})",
            Objective::Lipo => "ranked lists ({prompt, responses, ranking | scores})",
            Objective::Regression => "ratings ({prompt, response, attributes})",
        };
        if ok {
            Ok(())
        } else {
            Err(TrainError::Config { field: "objective", msg: format!("{objective:?} trains on {want}, not {kind}") })
        }
    }

    /// The loop's storage: pairs as they are; each KTO example i as a pair slot of its completion and its KL
    /// pair — its prompt with the completion of example i − 1 ([`kl_completion_index`] over the data set,
    /// TRL's KL dataset), cut to `max_length` — so batching, the one reference pass and its cache serve KTO
    /// unchanged; lists and ratings apart. Returns (pairs, the extras: desirable flags, lists or ratings).
    fn into_parts(self, max_length: usize) -> (Vec<TokenizedPair>, Extra) {
        match self {
            Self::Pairs(p) => (p, Extra::default()),
            Self::Lists(lists) => (Vec::new(), Extra { lists, ..Default::default() }),
            Self::Ratings { attributes, ratings } => (Vec::new(), Extra { attributes, ratings, ..Default::default() }),
            Self::Unpaired(ex) => {
                let kl = kl_completion_index(ex.len());
                let pairs = ex
                    .iter()
                    .zip(kl)
                    .map(|(e, j)| {
                        let budget = max_length.saturating_sub(e.prompt.len()).max(1);
                        let other = &ex[j].completion;
                        TokenizedPair {
                            prompt: e.prompt.clone(),
                            chosen: e.completion.clone(),
                            rejected: other[..other.len().min(budget)].to_vec(),
                            line: e.line,
                            strength: None,
                            ref_chosen_logps: e.reference_logps,
                            ref_rejected_logps: e.reference_kl_logps,
                        }
                    })
                    .collect();
                (pairs, Extra { desirable: ex.iter().map(|e| e.label).collect(), ..Default::default() })
            }
        }
    }
}

/// The model being trained.
enum Policy {
    Lm(Llama),
    Reward(RewardModel),
    /// A reward model on an encoder (MiniLM): small enough to train a useful reward model in a browser.
    EncoderReward(EncoderRewardModel),
}

/// The network a run starts from: a decoder (policy, or reward-model backbone) or an encoder (reward models),
/// or a reward model with its head (a resumed run, or a regression model that starts a Bradley–Terry one).
pub enum Backbone {
    Decoder(Llama),
    Encoder(Bert),
    Reward(RewardModel),
    EncoderReward(EncoderRewardModel),
}

impl From<Llama> for Backbone {
    fn from(m: Llama) -> Self {
        Self::Decoder(m)
    }
}

impl From<Bert> for Backbone {
    fn from(m: Bert) -> Self {
        Self::Encoder(m)
    }
}

/// Tokens of a batch of pairs on the device: chosen sequences first, then rejected ones, right-padded.
struct Batch {
    /// `[2k, t]` whole sequences.
    ids: Tensor<2, Int>,
    /// `[2k, t−1]` model inputs (sequence without its last token).
    inputs: Tensor<2, Int>,
    /// `[2k·(t−1)]` next-token targets.
    targets: Tensor<1, Int>,
    /// `[2k·(t−1)]` 1 where the target is a response token.
    mask: Tensor<1>,
    /// Each sequence's length up to its last token that is not pad ([`score_length`]): the real length
    /// unless a sequence ends in pad tokens (pad = eos), where a reward head reads as transformers does.
    lengths: Vec<usize>,
    /// Response tokens of each sequence (at least 1, as the length-normalised losses divide by it).
    response_lens: Vec<f32>,
    /// Preference strength of each pair, 0 where none was given.
    strengths: Vec<f32>,
    pairs: usize,
    response_tokens: usize,
}

impl Batch {
    fn new(pairs: &[&TokenizedPair], pad: u32, device: &Device) -> Self {
        let seqs: Vec<(usize, Vec<u32>)> = [true, false]
            .iter()
            .flat_map(|&chosen| {
                pairs.iter().map(move |p| {
                    let response = if chosen { &p.chosen } else { &p.rejected };
                    (p.prompt.len(), p.prompt.iter().chain(response).copied().collect())
                })
            })
            .collect();
        let mut batch = Self::from_sequences(seqs, pad, device);
        batch.strengths = pairs.iter().map(|p| p.strength.unwrap_or(0.0)).collect();
        batch.pairs = pairs.len();
        batch
    }

    /// The responses of ranked lists, list after list (`pairs` counts the lists).
    fn lists(lists: &[&TokenizedList], pad: u32, device: &Device) -> Self {
        let seqs = lists
            .iter()
            .flat_map(|l| l.responses.iter().map(|r| (l.prompt.len(), l.prompt.iter().chain(r).copied().collect())))
            .collect();
        let mut batch = Self::from_sequences(seqs, pad, device);
        batch.pairs = lists.len();
        batch
    }

    /// Rated responses, one sequence each (`pairs` counts them).
    fn ratings(ratings: &[&TokenizedRating], pad: u32, device: &Device) -> Self {
        let seqs =
            ratings.iter().map(|r| (r.prompt.len(), r.prompt.iter().chain(&r.response).copied().collect())).collect();
        let mut batch = Self::from_sequences(seqs, pad, device);
        batch.pairs = ratings.len();
        batch
    }

    /// `(prompt length, prompt + response)` sequences, right-padded; no strengths, `pairs` 0.
    fn from_sequences(seqs: Vec<(usize, Vec<u32>)>, pad: u32, device: &Device) -> Self {
        let t = seqs.iter().map(|(_, s)| s.len()).max().unwrap_or(2).max(2);
        let n = seqs.len();
        let (mut ids, mut inputs, mut targets, mut mask) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (prompt_len, s) in &seqs {
            let padded: Vec<i64> = (0..t).map(|j| s.get(j).copied().unwrap_or(pad) as i64).collect();
            ids.extend_from_slice(&padded);
            inputs.extend_from_slice(&padded[..t - 1]);
            targets.extend_from_slice(&padded[1..]);
            mask.extend((1..t).map(|j| if j >= *prompt_len && j < s.len() { 1.0f32 } else { 0.0 }));
        }
        let response_tokens = mask.iter().filter(|&&m| m > 0.0).count();
        let response_lens = mask.chunks(t - 1).map(|m| m.iter().sum::<f32>().max(1.0)).collect();
        let inner = device.clone().inner();
        Self {
            ids: Tensor::from_data(TensorData::new(ids, [n, t]), device),
            inputs: Tensor::from_data(TensorData::new(inputs, [n, t - 1]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n * (t - 1)]), &inner),
            mask: Tensor::from_data(TensorData::new(mask, [n * (t - 1)]), &inner),
            // where transformers' sequence classifiers read: the last token that is not pad
            lengths: seqs.iter().map(|(_, s)| score_length(s, pad)).collect(),
            response_lens,
            strengths: Vec::new(),
            pairs: 0,
            response_tokens,
        }
    }
}

/// Names of the values each objective computes on the device, in the order of its metrics tensor. Regression
/// logs `loss`, then per attribute of `attributes` `mse/<a>` and `mae/<a>` (error sums over the examples that
/// rate it) and `count/<a>`, which [`finish_metrics`] turns into means.
fn device_metric_names(objective: Objective, attributes: &[String]) -> Vec<String> {
    if objective == Objective::Regression {
        let per = |p: &'static str| attributes.iter().map(move |a| format!("{p}/{a}"));
        return std::iter::once(metrics::LOSS.to_string())
            .chain(per("mse"))
            .chain(per("mae"))
            .chain(per("count"))
            .collect();
    }
    let names: &[&str] = match objective {
        Objective::Dpo | Objective::Modpo => &[
            metrics::LOSS,
            metrics::REWARDS_CHOSEN,
            metrics::REWARDS_REJECTED,
            metrics::REWARDS_MARGINS,
            metrics::REWARDS_ACCURACIES,
            metrics::LOGPS_CHOSEN,
            metrics::LOGPS_REJECTED,
        ],
        Objective::Reward => &[
            metrics::LOSS,
            metrics::ACCURACY,
            metrics::MARGIN,
            metrics::MEAN_REWARD,
            metrics::MIN_REWARD,
            metrics::MAX_REWARD,
        ],
        // Sums and counts per example, as TRL's KTOTrainer logs them; `metrics::finish` divides them.
        Objective::Kto => &[
            metrics::LOSS,
            metrics::REWARDS_CHOSEN_SUM,
            metrics::REWARDS_REJECTED_SUM,
            metrics::LOGPS_CHOSEN_SUM,
            metrics::LOGPS_REJECTED_SUM,
            metrics::COUNT_CHOSEN,
            metrics::COUNT_REJECTED,
            metrics::KL,
        ],
        Objective::Lipo => &[
            metrics::LOSS,
            metrics::REWARDS_CHOSEN,
            metrics::REWARDS_REJECTED,
            metrics::REWARDS_MARGINS,
            metrics::COUNT_CORRECT_PAIRS,
            metrics::COUNT_PAIRS,
        ],
        Objective::Regression => unreachable!("returned above"),
    };
    names.iter().map(|n| n.to_string()).collect()
}

/// Turns a record's sums into means: regression's per-attribute error sums over the examples that rate the
/// attribute (an attribute no example rated is left out), then [`metrics::finish`].
fn finish_metrics(m: &mut Metrics, attributes: &[String]) {
    for a in attributes {
        let count = m.remove(&format!("count/{a}")).unwrap_or(0.0);
        for key in [format!("mse/{a}"), format!("mae/{a}")] {
            if let Some(sum) = m.remove(&key)
                && count > 0.0
            {
                m.insert(key, sum / count);
            }
        }
    }
    metrics::finish(m);
}

/// KTO's desirable flags, LiPO's lists and regression's ratings, beside a data set's pairs (see
/// [`TrainData::into_parts`]).
#[derive(Default)]
struct Extra {
    /// The rated attributes, in head order, and the rated responses (regression).
    attributes: Vec<String>,
    ratings: Vec<TokenizedRating>,
    desirable: Vec<bool>,
    lists: Vec<TokenizedList>,
    /// Reference log-probs of each list's responses.
    list_reference: Vec<Vec<f32>>,
    /// MODPO's margin-RM rewards of each pair: `[pair][rm]` = (chosen, rejected).
    margins: Vec<Vec<(f32, f32)>>,
}

/// A data set as the loss reads it: pairs (or KTO's pair slots) with their reference log-probs, and the extras.
#[derive(Clone, Copy)]
struct View<'a> {
    pairs: &'a [TokenizedPair],
    reference: &'a [(f32, f32)],
    extra: &'a Extra,
}

impl View<'_> {
    fn len(&self) -> usize {
        self.pairs.len().max(self.extra.lists.len()).max(self.extra.ratings.len())
    }

    /// The batch of the examples `idx`.
    fn batch(&self, idx: &[usize], pad: u32, device: &Device) -> Batch {
        if !self.extra.ratings.is_empty() {
            Batch::ratings(&idx.iter().map(|&i| &self.extra.ratings[i]).collect::<Vec<_>>(), pad, device)
        } else if self.extra.lists.is_empty() {
            Batch::new(&idx.iter().map(|&i| &self.pairs[i]).collect::<Vec<_>>(), pad, device)
        } else {
            Batch::lists(&idx.iter().map(|&i| &self.extra.lists[i]).collect::<Vec<_>>(), pad, device)
        }
    }
}

/// Pairs and their summed reference log-probs (chosen, rejected).
type PairsWithReference = (Vec<TokenizedPair>, Vec<(f32, f32)>);

/// A training run in progress. Create it with [`Trainer::new`], advance it with [`Trainer::steps`].
pub struct Trainer {
    config: TrainConfig,
    policy: Option<Policy>,
    optimizer: ModuleOptimizer,
    pairs: Vec<TokenizedPair>,
    /// Summed reference log-probs (chosen, rejected) of each pair; empty when the loss needs no reference.
    reference: Vec<(f32, f32)>,
    dpo_loss: DpoLoss,
    reward_loss: RewardLoss,
    /// Held-out pairs and their reference log-probs.
    eval: Option<PairsWithReference>,
    kto_loss: KtoLoss,
    lipo_loss: LipoLoss,
    /// KTO's desirable flags or LiPO's lists, of the training data and of the held-out data.
    extra: Extra,
    eval_extra: Extra,
    order: Vec<usize>,
    rng: SplitMix64,
    step: usize,
    total_steps: usize,
    chunk: usize,
    pad_id: u32,
    device: Device,
}

impl Trainer {
    /// Sets up a run of `config` on `data` (pairs, or the unpaired examples of KTO, the ranked lists of LiPO,
    /// the ratings of regression: [`TrainData`]). `model` is the starting policy (and, for DPO, KTO and LiPO,
    /// the frozen reference, whose log-probs are computed here once unless the data carry them), or a reward
    /// model's backbone (a zero head of one label, or of one per rated attribute), or a reward model to
    /// continue. `device` is the device the model lives on; autodiff is enabled on it here.
    pub async fn new(
        model: impl Into<Backbone>,
        data: impl Into<TrainData>,
        config: TrainConfig,
        pad_id: u32,
        device: &Device,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let data = data.into();
        if data.is_empty() {
            return Err(TrainError::NoData);
        }
        data.check(config.objective)?;
        let (pairs, mut extra) = data.into_parts(config.max_length);
        let model = model.into();
        let bad = |field, msg: String| Err(TrainError::Config { field, msg });
        let encoder = match &model {
            Backbone::Encoder(bert) => Some(bert),
            Backbone::EncoderReward(m) => Some(&m.backbone),
            _ => None,
        };
        if let Some(bert) = encoder {
            if !config.objective.trains_reward_model() {
                return bad("objective", "an encoder backbone trains reward models only".into());
            }
            if config.max_length > bert.max_len() {
                return bad("max_length", format!("the encoder reads at most {} positions", bert.max_len()));
            }
        }
        let labels = match &model {
            Backbone::Reward(m) => m.num_labels(),
            Backbone::EncoderReward(m) => m.score.weight.dims()[1],
            _ => 1,
        };
        let has_head = matches!(model, Backbone::Reward(_) | Backbone::EncoderReward(_));
        if has_head && !config.objective.trains_reward_model() {
            return bad("objective", "a reward model continues reward-model training only".into());
        }
        // Regression: one head per rated attribute; a pairwise reward: one.
        let heads = if config.objective == Objective::Regression { extra.attributes.len() } else { 1 };
        if has_head && labels != heads {
            let msg = match config.objective {
                Objective::Regression => format!(
                    "regression on {heads} attributes ({}) needs a head of {heads} labels, this one has {labels}",
                    extra.attributes.join(", ")
                ),
                _ => format!("pairwise reward training needs a one-label head, this one has {labels}"),
            };
            return bad("objective", msg);
        }
        let vocab = match &model {
            Backbone::Decoder(m) => m.vocab_size(),
            Backbone::Encoder(m) => m.vocab_size(),
            Backbone::Reward(m) => m.backbone.vocab_size(),
            Backbone::EncoderReward(m) => m.backbone.vocab_size(),
        };
        for p in &pairs {
            if let Some(&id) = p.prompt.iter().chain(&p.chosen).chain(&p.rejected).find(|&&id| id as usize >= vocab) {
                return Err(TrainError::BadToken { id, line: p.line, vocab });
            }
        }
        for l in &extra.lists {
            if let Some(&id) = l.prompt.iter().chain(l.responses.iter().flatten()).find(|&&id| id as usize >= vocab) {
                return Err(TrainError::BadToken { id, line: l.line, vocab });
            }
        }
        for r in &extra.ratings {
            if let Some(&id) = r.prompt.iter().chain(&r.response).find(|&&id| id as usize >= vocab) {
                return Err(TrainError::BadToken { id, line: r.line, vocab });
            }
        }
        let device = device.clone().autodiff();
        let chunk = chunk_rows(vocab, config.logits_chunk_bytes);
        let (dpo_loss, reward_loss) = (config.dpo_loss(), config.reward_loss());
        let (policy, reference) = match model {
            Backbone::Decoder(model) => {
                let model = model.fork(&device);
                let reference = if (config.objective == Objective::Dpo && dpo_loss.uses_reference())
                    || matches!(config.objective, Objective::Kto | Objective::Modpo)
                {
                    reference_logps(&model.valid(), &pairs, config.batch_size, pad_id, chunk, &device).await?
                } else {
                    Vec::new()
                };
                extra.list_reference =
                    list_reference_logps(&model.valid(), &extra.lists, config.batch_size, pad_id, chunk, &device)
                        .await?;
                let policy = match config.objective {
                    Objective::Dpo | Objective::Kto | Objective::Lipo | Objective::Modpo => {
                        Policy::Lm(stable_param_ids(crate::model::lora::for_run(model, &config)?).train())
                    }
                    Objective::Reward | Objective::Regression => {
                        Policy::Reward(stable_param_ids(RewardModel::with_labels(model, heads, &device)).train())
                    }
                };
                (policy, reference)
            }
            Backbone::Encoder(bert) => {
                let model = EncoderRewardModel::with_labels(bert.fork(&device), Pooling::Mean, heads, &device);
                (Policy::EncoderReward(stable_param_ids(model).train()), Vec::new())
            }
            Backbone::Reward(model) => (Policy::Reward(stable_param_ids(model.fork(&device)).train()), Vec::new()),
            Backbone::EncoderReward(model) => {
                (Policy::EncoderReward(stable_param_ids(model.fork(&device)).train()), Vec::new())
            }
        };
        let examples = View { pairs: &pairs, reference: &reference, extra: &extra }.len();
        let steps_per_epoch = examples.div_ceil(config.pairs_per_step());
        let (kto_loss, lipo_loss) = (config.kto_loss(), config.lipo_loss());
        let total_steps = config.max_steps.unwrap_or(steps_per_epoch * config.num_epochs);
        let optimizer = adamw(&config);
        Ok(Self {
            rng: SplitMix64::new(config.seed),
            config,
            policy: Some(policy),
            optimizer,
            pairs,
            reference,
            dpo_loss,
            reward_loss,
            eval: None,
            kto_loss,
            lipo_loss,
            extra,
            eval_extra: Extra::default(),
            order: Vec::new(),
            step: 0,
            total_steps,
            chunk,
            pad_id,
            device,
        })
    }

    pub fn step_count(&self) -> usize {
        self.step
    }

    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps
    }

    /// Summed reference log-probs (chosen, rejected) per pair, in data order; empty for a reward model.
    /// Stored as `ref_chosen_logps`/`ref_rejected_logps` beside the data, they spare the next run the reference.
    pub fn reference_logps(&self) -> &[(f32, f32)] {
        &self.reference
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The attributes a regression run rates, in the order of its heads (its labels); empty for other runs.
    pub fn attributes(&self) -> &[String] {
        &self.extra.attributes
    }

    /// The policy being trained, for generation or export (a DPO run only).
    pub fn policy(&self) -> Option<&Llama> {
        match self.policy.as_ref()? {
            Policy::Lm(m) => Some(m),
            _ => None,
        }
    }

    /// The reward model being trained (a reward run on a decoder).
    pub fn reward_model(&self) -> Option<&RewardModel> {
        match self.policy.as_ref()? {
            Policy::Reward(m) => Some(m),
            _ => None,
        }
    }

    /// The reward model being trained (a reward run on an encoder).
    pub fn encoder_reward_model(&self) -> Option<&EncoderRewardModel> {
        match self.policy.as_ref()? {
            Policy::EncoderReward(m) => Some(m),
            _ => None,
        }
    }

    /// Runs up to `n` optimizer steps and returns one metrics record per step.
    pub async fn steps(&mut self, n: usize) -> Result<Vec<Metrics>, TrainError> {
        self.check_margins(self.view())?;
        let mut host = Vec::new();
        let mut device_values = Vec::new();
        for _ in 0..n {
            if self.is_done() {
                break;
            }
            let batch_idx = self.next_batch();
            let lr = self.config.learning_rate_at(self.step, self.total_steps);
            let (values, tokens) = self.optimizer_step(&batch_idx, lr);
            self.step += 1;
            let mut m = Metrics::new();
            m.insert(metrics::STEP.into(), self.step as f64);
            let seen = self.step * self.config.pairs_per_step();
            m.insert(metrics::EPOCH.into(), seen as f64 / self.view().len() as f64);
            m.insert(metrics::LEARNING_RATE.into(), lr);
            m.insert(metrics::NUM_TOKENS.into(), tokens as f64);
            host.push(m);
            device_values.push(values);
        }
        if host.is_empty() {
            return Ok(host);
        }
        let mut names = device_metric_names(self.config.objective, &self.extra.attributes);
        names.push(metrics::GRAD_NORM.into());
        let values = read_f32(Tensor::cat(device_values, 0)).await?;
        for (m, vals) in host.iter_mut().zip(values.chunks(names.len())) {
            for (name, v) in names.iter().zip(vals) {
                m.insert(name.clone(), *v as f64);
            }
            finish_metrics(m, &self.extra.attributes);
        }
        for m in &host {
            let loss = m[metrics::LOSS];
            if !loss.is_finite() {
                return Err(TrainError::NonFinite { step: m[metrics::STEP] as usize, value: loss });
            }
        }
        Ok(host)
    }

    /// The run's position, saved beside the weights and [`Trainer::optimizer_state`] in a checkpoint.
    pub fn state(&self) -> TrainerState {
        TrainerState {
            step: self.step,
            total_steps: self.total_steps,
            rng: self.rng.state(),
            order: self.order.clone(),
            reference: self.reference.clone(),
            pairs: self.view().len(),
            list_reference: self.extra.list_reference.clone(),
            margins: self.extra.margins.clone(),
            eval_reference: self.eval.as_ref().map(|(_, r)| r.clone()).unwrap_or_default(),
            eval_list_reference: self.eval_extra.list_reference.clone(),
        }
    }

    /// AdamW's moments as burnpack bytes. Reads the device synchronously, so native only.
    pub fn optimizer_state(&self) -> Result<Vec<u8>, TrainError> {
        let bytes = self.optimizer.into_bytes().map_err(|e| TrainError::Checkpoint(format!("{e:?}")))?;
        Ok(bytes.to_vec())
    }

    /// Continues a checkpointed run: `self` was created by [`Trainer::new`] from the checkpoint's weights and
    /// the same pairs (give them the state's reference log-probs, so none are recomputed from the moved policy).
    pub fn restore(&mut self, state: TrainerState, optimizer: Vec<u8>) -> Result<(), TrainError> {
        let n = self.view().len();
        let bad = |msg: String| Err(TrainError::Checkpoint(msg));
        if state.pairs != n {
            return bad(format!("it was trained on {} pairs, this run has {n}", state.pairs));
        }
        if state.order.iter().any(|&i| i >= n) || state.step > state.total_steps {
            return bad("its data order or step is out of range".into());
        }
        if !(state.reference.is_empty() || state.reference.len() == n) {
            return bad(format!("{} reference log-probs for {n} pairs", state.reference.len()));
        }
        let sizes = |r: &[Vec<f32>]| r.iter().map(Vec::len).collect::<Vec<_>>();
        let lists: Vec<usize> = self.extra.lists.iter().map(|l| l.responses.len()).collect();
        if sizes(&state.list_reference) != lists {
            return bad("its reference log-probs do not fit this run's lists".into());
        }
        // Held-out data is set before restoring (its reference is computed then from the resumed policy, which
        // has moved): the checkpoint's held-out reference replaces it.
        if let Some((_, reference)) = &mut self.eval {
            if reference.len() != state.eval_reference.len() {
                return bad(format!(
                    "it holds reference log-probs for {} held-out pairs, this run holds out {} (same data and \
                     eval_split are needed to resume with held-out evaluation)",
                    state.eval_reference.len(),
                    reference.len()
                ));
            }
            *reference = state.eval_reference.clone();
        }
        if sizes(&state.eval_list_reference) != sizes(&self.eval_extra.list_reference) {
            return bad("its held-out reference log-probs do not fit this run's held-out lists".into());
        }
        self.eval_extra.list_reference = state.eval_list_reference.clone();
        let optimizer = adamw(&self.config)
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(optimizer))
            .map_err(|e| TrainError::Checkpoint(format!("optimizer state: {e:?}")))?;
        self.optimizer = optimizer;
        self.step = state.step;
        self.total_steps = state.total_steps;
        self.rng = SplitMix64::new(state.rng);
        self.order = state.order;
        self.reference = state.reference;
        self.extra.list_reference = state.list_reference;
        if !state.margins.is_empty() {
            self.set_margin_rewards(state.margins, None)?;
        }
        Ok(())
    }

    /// MODPO's margin-RM rewards, `[pair][rm]` = (chosen, rejected), of the training pairs and (optionally)
    /// of the held-out pairs, in data order: computed once before training by the other objectives' reward
    /// models (each with its own tokenizer), and cached in [`TrainerState::margins`].
    pub fn set_margin_rewards(
        &mut self,
        train: Vec<Vec<(f32, f32)>>,
        eval: Option<Vec<Vec<(f32, f32)>>>,
    ) -> Result<(), TrainError> {
        let m = self.config.modpo_loss()?.weights.others().len();
        let check = |what: &str, r: &[Vec<(f32, f32)>], n: usize| {
            if r.len() != n || r.iter().any(|row| row.len() != m) {
                let msg = format!("{what}: {} rows of margin rewards for {n} pairs and {m} margin RMs", r.len());
                return Err(TrainError::Config { field: "modpo_weights", msg });
            }
            if r.iter().flatten().any(|(c, r)| !(c.is_finite() && r.is_finite())) {
                return Err(TrainError::Config {
                    field: "modpo_weights",
                    msg: format!("{what}: a margin reward is not finite"),
                });
            }
            Ok(())
        };
        check("training pairs", &train, self.pairs.len())?;
        if let Some(eval) = eval {
            check("held-out pairs", &eval, self.eval.as_ref().map_or(0, |(p, _)| p.len()))?;
            self.eval_extra.margins = eval;
        }
        self.extra.margins = train;
        Ok(())
    }

    /// Holds `pairs` out of training, for [`Trainer::evaluate_held_out`]. Their reference log-probs come from
    /// the starting policy, so this must happen before the first step.
    pub async fn set_eval_pairs(&mut self, pairs: Vec<TokenizedPair>) -> Result<(), TrainError> {
        if self.step > 0 {
            return Err(TrainError::Config { field: "eval", msg: "held-out pairs must be set before training".into() });
        }
        let reference = match self.policy.as_ref() {
            Some(Policy::Lm(m)) if !self.reference.is_empty() => {
                reference_logps(&m.valid(), &pairs, self.config.batch_size, self.pad_id, self.chunk, &self.device)
                    .await?
            }
            _ => Vec::new(),
        };
        self.eval = Some((pairs, reference));
        Ok(())
    }

    /// Holds `data` out of training (the run's format: pairs, unpaired examples or lists), for
    /// [`Trainer::evaluate_held_out`]; as [`Trainer::set_eval_pairs`]. Held-out KTO examples take their KL
    /// pairs among themselves.
    pub async fn set_eval_data(&mut self, data: impl Into<TrainData>) -> Result<(), TrainError> {
        let data = data.into();
        data.check(self.config.objective)?;
        if let TrainData::Pairs(pairs) = data {
            return self.set_eval_pairs(pairs).await;
        }
        if self.step > 0 {
            return Err(TrainError::Config { field: "eval", msg: "held-out data must be set before training".into() });
        }
        let (pairs, mut extra) = data.into_parts(self.config.max_length);
        if self.config.objective == Objective::Regression {
            extra.ratings = in_attribute_order(extra.ratings, &extra.attributes, &self.extra.attributes)?;
            extra.attributes = self.extra.attributes.clone();
            self.eval = Some((pairs, Vec::new()));
            self.eval_extra = extra;
            return Ok(());
        }
        let Some(Policy::Lm(m)) = self.policy.as_ref() else {
            return Err(TrainError::Config { field: "objective", msg: "KTO and LiPO train a language model".into() });
        };
        let (model, b) = (m.valid(), self.config.batch_size);
        let reference = reference_logps(&model, &pairs, b, self.pad_id, self.chunk, &self.device).await?;
        extra.list_reference =
            list_reference_logps(&model, &extra.lists, b, self.pad_id, self.chunk, &self.device).await?;
        self.eval = Some((pairs, reference));
        self.eval_extra = extra;
        Ok(())
    }

    /// The training data as the loss reads it.
    fn view(&self) -> View<'_> {
        View { pairs: &self.pairs, reference: &self.reference, extra: &self.extra }
    }

    /// Metrics of the current model over every training pair, without updating it.
    pub async fn evaluate(&self) -> Result<Metrics, TrainError> {
        self.evaluate_view(self.view()).await
    }

    /// Metrics over the held-out pairs under TRL's `eval_` names (`eval_loss`, `eval_rewards/accuracies`), or
    /// `None` without held-out pairs.
    pub async fn evaluate_held_out(&self) -> Result<Option<Metrics>, TrainError> {
        let Some(view) = self
            .eval
            .as_ref()
            .map(|(pairs, reference)| View { pairs, reference, extra: &self.eval_extra })
            .filter(|v| v.len() > 0)
        else {
            return Ok(None);
        };
        let m = self.evaluate_view(view).await?;
        Ok(Some(
            m.into_iter().map(|(k, v)| if k == metrics::STEP { (k, v) } else { (format!("eval_{k}"), v) }).collect(),
        ))
    }

    /// A MODPO run with margin RMs has their rewards for every pair of `view`.
    fn check_margins(&self, view: View<'_>) -> Result<(), TrainError> {
        let m = match self.config.objective {
            Objective::Modpo => self.config.modpo_loss()?.weights.others().len(),
            _ => 0,
        };
        if m > 0 && view.extra.margins.len() != view.pairs.len() {
            let msg = format!("{m} margin RMs but no margin rewards for these pairs: call set_margin_rewards");
            return Err(TrainError::Config { field: "modpo_weights", msg });
        }
        Ok(())
    }

    async fn evaluate_view(&self, view: View<'_>) -> Result<Metrics, TrainError> {
        self.check_margins(view)?;
        let idx: Vec<usize> = (0..view.len()).collect();
        let mut per_batch = Vec::new();
        for chunk in idx.chunks(self.config.batch_size) {
            let batch = view.batch(chunk, self.pad_id, &self.device);
            let values = match self.policy.as_ref().expect("policy present between steps") {
                Policy::Lm(m) => {
                    let seq = sequence_logps(&m.valid(), &batch, self.chunk);
                    self.lm_values(seq, &batch, view, chunk).0
                }
                Policy::Reward(m) => {
                    self.reward_model_values(&m.valid(), batch.ids.clone().inner(), &batch, view, chunk).0
                }
                Policy::EncoderReward(m) => {
                    self.reward_model_values(&m.valid(), batch.ids.clone().inner(), &batch, view, chunk).0
                }
            };
            per_batch.push((chunk.len(), values));
        }
        let names = device_metric_names(self.config.objective, &view.extra.attributes);
        let sizes: Vec<usize> = per_batch.iter().map(|(s, _)| *s).collect();
        let values = read_f32(Tensor::cat(per_batch.into_iter().map(|(_, v)| v).collect(), 0)).await?;
        // Pair-weighted means; min/max reduce as such.
        let mut out = Metrics::new();
        for (i, name) in names.iter().enumerate() {
            let vals = values.chunks(names.len()).map(|c| c[i] as f64);
            let v = match name.as_str() {
                metrics::MIN_REWARD => vals.fold(f64::INFINITY, f64::min),
                metrics::MAX_REWARD => vals.fold(f64::NEG_INFINITY, f64::max),
                _ => vals.zip(&sizes).map(|(v, &s)| v * s as f64).sum::<f64>() / view.len() as f64,
            };
            out.insert(name.clone(), v);
        }
        finish_metrics(&mut out, &view.extra.attributes);
        out.insert(metrics::STEP.into(), self.step as f64);
        Ok(out)
    }

    /// Indices of the next batch, reshuffling at each epoch boundary.
    fn next_batch(&mut self) -> Vec<usize> {
        let len = self.view().len();
        let n = self.config.pairs_per_step().min(len);
        let mut idx = Vec::with_capacity(n);
        while idx.len() < n {
            if self.order.is_empty() {
                self.order = (0..len).collect();
                self.rng.shuffle(&mut self.order);
                self.order.reverse(); // popped from the back: keep the shuffled order
            }
            idx.push(self.order.pop().expect("refilled above"));
        }
        idx
    }

    /// The mean DPO-family loss of a batch and its metric values (on the inner device).
    fn dpo_values(&self, lp: PairLogps) -> (Tensor<1>, Tensor<1>) {
        let out = self.dpo_loss.forward(&lp);
        dpo_values_of(out.losses, out.chosen_rewards, out.rejected_rewards, &lp)
    }

    /// The loss of a batch of the language-model objectives (DPO family, KTO, LiPO) from the summed response
    /// log-probs `seq` of its sequences, and its metric values; `view` holds the examples `idx`.
    fn lm_values(&self, seq: Tensor<1>, batch: &Batch, view: View<'_>, idx: &[usize]) -> (Tensor<1>, Tensor<1>) {
        match self.config.objective {
            Objective::Kto => {
                let desirable = idx.iter().map(|&i| view.extra.desirable[i]).collect();
                self.kto_values(pair_logps(seq, batch, view.reference, idx), desirable)
            }
            Objective::Lipo => self.lipo_values(seq, view, idx),
            Objective::Modpo => self.modpo_values(pair_logps(seq, batch, view.reference, idx), view, idx),
            Objective::Dpo | Objective::Reward | Objective::Regression => {
                self.dpo_values(pair_logps(seq, batch, view.reference, idx))
            }
        }
    }

    /// The mean MODPO loss of a batch of pairs and its metric values under DPO's names (the rewards are the
    /// collective implicit rewards r̂ of the target objective).
    fn modpo_values(&self, lp: PairLogps, view: View<'_>, idx: &[usize]) -> (Tensor<1>, Tensor<1>) {
        let loss = self.config.modpo_loss().expect("validated in Trainer::new");
        let m = loss.weights.others().len();
        let margins = (m > 0).then(|| {
            let device = lp.chosen.device();
            let side = |chosen: bool| {
                let v: Vec<f32> = idx
                    .iter()
                    .flat_map(|&i| view.extra.margins[i].iter().map(move |&(c, r)| if chosen { c } else { r }))
                    .collect();
                Tensor::<2>::from_data(TensorData::new(v, [idx.len(), m]), &device)
            };
            MarginRewards { chosen: side(true), rejected: side(false) }
        });
        let out = loss.forward(&lp, margins.as_ref());
        dpo_values_of(out.losses, out.chosen_rewards, out.rejected_rewards, &lp)
    }

    /// The mean KTO loss of a batch whose pair slots hold (completion, KL pair), and its metric values: TRL's
    /// per-example sums and counts (divided by the batch size, see [`metrics::finish`]) and `kl`.
    fn kto_values(&self, lp: PairLogps, desirable: Vec<bool>) -> (Tensor<1>, Tensor<1>) {
        let k = desirable.len();
        let device = lp.chosen.device();
        let mask = Tensor::<1, Bool>::from_data(TensorData::new(desirable, [k]), &device);
        let (reference, kl_reference) = lp.reference.expect("KTO runs compute reference log-probs");
        let out = self.kto_loss.forward(&KtoLogps {
            policy: lp.chosen.clone(),
            reference,
            desirable: mask.clone(),
            mismatched: Some((lp.rejected.detach(), kl_reference)),
        });
        let loss = out.losses.mean();
        let d = mask.float().inner();
        let u = d.clone().neg().add_scalar(1.0);
        let (r, l) = (out.rewards.inner(), lp.chosen.inner());
        let per = |x: Tensor<1>| x.sum().div_scalar(k as f64);
        let values = Tensor::cat(
            vec![
                loss.clone().inner().reshape([1]),
                per(r.clone() * d.clone()),
                per(r * u.clone()),
                per(l.clone() * d.clone()),
                per(l * u.clone()),
                per(d),
                per(u),
                out.kl.inner(),
            ],
            0,
        );
        (values, loss)
    }

    /// The mean LiPO loss of the lists `idx` from their responses' summed log-probs `seq` (list after list),
    /// padded to the longest list, and its metric values.
    fn lipo_values(&self, seq: Tensor<1>, view: View<'_>, idx: &[usize]) -> (Tensor<1>, Tensor<1>) {
        let lists: Vec<&TokenizedList> = idx.iter().map(|&i| &view.extra.lists[i]).collect();
        let (n, k) = (lists.len(), lists.iter().map(|l| l.responses.len()).max().unwrap_or(1));
        let device = seq.device();
        let (mut index, mut present, mut labels, mut reference) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0;
        for (&i, l) in idx.iter().zip(&lists) {
            let size = l.responses.len();
            for j in 0..k {
                // Padding reads the list's first response; the loss masks it out.
                index.push((offset + if j < size { j } else { 0 }) as i64);
                present.push(j < size);
                labels.push(if j < size { l.labels[j] } else { 0.0 });
                reference.push(if j < size { view.extra.list_reference[i][j] } else { 0.0 });
            }
            offset += size;
        }
        let grid = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [n, k]), &device);
        let out = self.lipo_loss.forward(&ListLogps {
            policy: seq
                .select(0, Tensor::<1, Int>::from_data(TensorData::new(index, [n * k]), &device))
                .reshape([n, k]),
            reference: grid(reference),
            labels: grid(labels),
            mask: Some(Tensor::<2, Bool>::from_data(TensorData::new(present, [n, k]), &device)),
        });
        let loss = out.losses.mean();
        let (best, worst) = (out.best_rewards.inner(), out.worst_rewards.inner());
        let per = |x: Tensor<1>| x.inner().sum().div_scalar(n as f64);
        let values = Tensor::cat(
            vec![
                loss.clone().inner().reshape([1]),
                best.clone().mean(),
                worst.clone().mean(),
                (best - worst).mean(),
                per(out.correct_pairs),
                per(out.pairs),
            ],
            0,
        );
        (values, loss)
    }

    /// The loss of a batch of a reward-model objective and its metric values, from the model's scores of the
    /// sequences `ids`: pairwise (Bradley–Terry family) on the first label, or regression on all k; `view`
    /// holds the examples `idx`.
    fn reward_model_values<M: ScalarReward>(
        &self,
        model: &M,
        ids: Tensor<2, Int>,
        batch: &Batch,
        view: View<'_>,
        idx: &[usize],
    ) -> (Tensor<1>, Tensor<1>) {
        match self.config.objective {
            Objective::Regression => self.regression_values(model.scores(ids, &batch.lengths), view, idx),
            _ => self.reward_values(model.rewards(ids, &batch.lengths), batch),
        }
    }

    /// The mean regression loss of the rated responses `idx` from their scores `[n, k]`, and its metric
    /// values: per attribute the sums of squared and of absolute errors and the count of examples that rate
    /// it, each divided by n (so that weighted means over micro-batches keep their ratios; see
    /// [`finish_metrics`]).
    fn regression_values(&self, scores: Tensor<2>, view: View<'_>, idx: &[usize]) -> (Tensor<1>, Tensor<1>) {
        let [n, k] = scores.dims();
        let device = scores.device();
        let rated: Vec<Option<f32>> = idx.iter().flat_map(|&i| view.extra.ratings[i].labels.iter().copied()).collect();
        let grid = |f: &dyn Fn(&Option<f32>) -> f32| {
            Tensor::<2>::from_data(TensorData::new(rated.iter().map(f).collect::<Vec<_>>(), [n, k]), &device)
        };
        let (labels, mask) = (grid(&|l| l.unwrap_or(0.0)), grid(&|l| if l.is_some() { 1.0 } else { 0.0 }));
        let loss = regression_loss(scores.clone(), labels.clone(), mask.clone()).mean();
        let mask = mask.inner();
        let error = (scores.inner() - labels.inner()) * mask.clone();
        let per = |x: Tensor<2>| x.sum_dim(0).reshape([k]).div_scalar(n as f64);
        let values = Tensor::cat(
            vec![loss.clone().inner().reshape([1]), per(error.clone().square()), per(error.abs()), per(mask)],
            0,
        );
        (values, loss)
    }

    /// The mean reward-model loss of a batch from the rewards of its `2k` sequences, and its metric values.
    fn reward_values(&self, rewards: Tensor<1>, batch: &Batch) -> (Tensor<1>, Tensor<1>) {
        let k = batch.pairs;
        let (rc, rr) = (rewards.clone().narrow(0, 0, k), rewards.narrow(0, k, k));
        let strength = Tensor::from_data(TensorData::new(batch.strengths.clone(), [k]), &rc.device());
        let loss = self.reward_loss.forward(rc.clone(), rr.clone(), strength).mean();
        (reward_metric_values(loss.clone().inner(), rc.inner(), rr.inner()), loss)
    }

    /// One optimizer step on the pairs `idx`, in micro-batches of `batch_size` whose gradients add up; returns
    /// the step's device-side metrics (pair-weighted means over the micro-batches) and its response tokens.
    fn optimizer_step(&mut self, idx: &[usize], lr: f64) -> (Tensor<1>, usize) {
        let (policy, values, grads, tokens) = match self.policy.take().expect("policy present between steps") {
            Policy::Lm(model) => {
                let (v, g, t) =
                    self.accumulate(&model, idx, |batch, micro, w| self.dpo_gradients(&model, batch, micro, w));
                (Policy::Lm(model), v, g, t)
            }
            Policy::Reward(model) => {
                let (v, g, t) = self.reward_gradients(&model, idx);
                (Policy::Reward(model), v, g, t)
            }
            Policy::EncoderReward(model) => {
                let (v, g, t) = self.reward_gradients(&model, idx);
                (Policy::EncoderReward(model), v, g, t)
            }
        };
        let inner = self.device.clone().inner();
        let max_norm = self.config.max_grad_norm;
        let (grads, norm) = match &policy {
            Policy::Lm(m) => clip_grad_norm(m, grads, max_norm, &inner),
            Policy::Reward(m) => clip_grad_norm(m, grads, max_norm, &inner),
            Policy::EncoderReward(m) => clip_grad_norm(m, grads, max_norm, &inner),
        };
        let policy = match policy {
            Policy::Lm(m) => Policy::Lm(self.optimizer.step(lr, m, grads)),
            Policy::Reward(m) => Policy::Reward(self.optimizer.step(lr, m, grads)),
            Policy::EncoderReward(m) => Policy::EncoderReward(self.optimizer.step(lr, m, grads)),
        };
        self.policy = Some(policy);
        (Tensor::cat(vec![values, norm], 0), tokens)
    }

    /// Reward-model gradients over the micro-batches of `idx`.
    fn reward_gradients<M: ScalarReward>(&self, model: &M, idx: &[usize]) -> (Tensor<1>, GradientsParams, usize) {
        self.accumulate(model, idx, |batch, micro, w| {
            let (values, loss) = self.reward_model_values(model, batch.ids.clone(), batch, self.view(), micro);
            (values, GradientsParams::from_grads(loss.mul_scalar(w).backward(), model))
        })
    }

    /// Runs `grads(batch, pairs, weight)` on each micro-batch of `idx` — `weight` is the micro-batch's share
    /// of the step's pairs, by which its loss is scaled so the sum is the mean over all pairs — and adds up
    /// the gradients and the weighted metric values.
    fn accumulate<M: Module>(
        &self,
        model: &M,
        idx: &[usize],
        mut grads: impl FnMut(&Batch, &[usize], f64) -> (Tensor<1>, GradientsParams),
    ) -> (Tensor<1>, GradientsParams, usize) {
        let mut acc = GradientsAccumulator::<M>::new();
        let (mut values, mut tokens) = (None::<Tensor<1>>, 0);
        for micro in idx.chunks(self.config.batch_size) {
            let batch = self.view().batch(micro, self.pad_id, &self.device);
            let w = micro.len() as f64 / idx.len() as f64;
            let (v, g) = grads(&batch, micro, w);
            acc.accumulate(model, g);
            let v = v.mul_scalar(w);
            values = Some(values.map_or(v.clone(), |acc| acc + v));
            tokens += batch.response_tokens;
        }
        (values.expect("at least one micro-batch"), acc.grads(), tokens)
    }

    /// DPO gradients with the LM head in chunks.
    ///
    /// 1. The trunk runs once with a graph, to the final hidden states `h`.
    /// 2. Per-token log-probs come from `h` chunk by chunk without a graph; the loss is built on them as a
    ///    leaf, so its backward gives `w_t = ∂L/∂logp_t` for every token.
    /// 3. [`token_logps_backward`] turns `w` into `∂L/∂h` and `∂L/∂W_head`, chunk by chunk.
    /// 4. One backward of `Σ h ⊙ ∂L/∂h + Σ W ⊙ ∂L/∂W` through the trunk yields every parameter's gradient.
    ///
    /// No `[tokens, vocab]` tensor outlives its chunk, at the price of computing the head's logits twice.
    fn dpo_gradients(&self, model: &Llama, batch: &Batch, idx: &[usize], weight: f64) -> (Tensor<1>, GradientsParams) {
        let [n, t1] = batch.inputs.dims();
        let hidden = model.forward_hidden(batch.inputs.clone(), None);
        let d = hidden.dims()[2];
        let hidden = hidden.reshape([n * t1, d]);
        let head = model.head_weight();
        let (h_in, w_in) = (hidden.clone().inner(), head.clone().inner());
        let tokens = token_logps(h_in.clone(), w_in.clone(), batch.targets.clone(), self.chunk);
        let leaf = tokens.autodiff().require_grad();
        let seq = masked_sum(leaf.clone(), batch.mask.clone().autodiff(), n);
        let (values, loss) = self.lm_values(seq, batch, self.view(), idx);
        let w = leaf.grad(&loss.mul_scalar(weight).backward()).expect("the loss depends on every token log-prob");
        let (d_hidden, d_head) = token_logps_backward(h_in, w_in, batch.targets.clone(), w, self.chunk);
        let surrogate = (hidden * d_hidden.autodiff()).sum() + (head * d_head.autodiff()).sum();
        (values, GradientsParams::from_grads(surrogate.backward(), model))
    }
}

/// Held-out `ratings` whose labels follow `theirs` (the attributes of their file), relabelled in the run's
/// attribute order `run`: an attribute they rate that the run has no head for is an error, one they do not
/// rate is masked.
fn in_attribute_order(
    mut ratings: Vec<TokenizedRating>,
    theirs: &[String],
    run: &[String],
) -> Result<Vec<TokenizedRating>, TrainError> {
    if let Some(a) = theirs.iter().find(|a| !run.contains(a)) {
        let msg = format!("the held-out ratings rate {a:?}, which the training ratings do not ({})", run.join(", "));
        return Err(TrainError::Config { field: "eval", msg });
    }
    let at: Vec<Option<usize>> = run.iter().map(|a| theirs.iter().position(|t| t == a)).collect();
    for r in &mut ratings {
        r.labels = at.iter().map(|i| i.and_then(|i| r.labels[i])).collect();
    }
    Ok(ratings)
}

/// The loss's inputs for the pairs `idx` from their summed log-probs `seq` (`[2k]`, chosen first), with their
/// entries of `reference` (empty: none) and token counts on `seq`'s device.
fn pair_logps(seq: Tensor<1>, batch: &Batch, reference: &[(f32, f32)], idx: &[usize]) -> PairLogps {
    let device = seq.device();
    let k = batch.pairs;
    let vec = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [k]), &device);
    let reference = (!reference.is_empty()).then(|| {
        let (c, r): (Vec<f32>, Vec<f32>) = idx.iter().map(|&i| reference[i]).unzip();
        (vec(c), vec(r))
    });
    PairLogps {
        chosen: seq.clone().narrow(0, 0, k),
        rejected: seq.narrow(0, k, k),
        reference,
        chosen_tokens: vec(batch.response_lens[..k].to_vec()),
        rejected_tokens: vec(batch.response_lens[k..].to_vec()),
    }
}

/// AdamW as TRL configures it (ε = 1e-8, decoupled weight decay).
fn adamw(config: &TrainConfig) -> ModuleOptimizer {
    AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(config.weight_decay as f32).init()
}

/// Numbers the parameters 0, 1, 2, … in module order. Optimizer state is keyed by parameter id, and fresh
/// loads draw random ids: with ids that depend only on the architecture, a checkpoint's AdamW moments find
/// their weights again in a new process.
fn stable_param_ids<M: Module>(module: M) -> M {
    struct Renumber(u64);
    impl ModuleMapper for Renumber {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = param.consume();
            self.0 += 1;
            Param::from_mapped_value(ParamId::from(self.0), value, mapper)
        }
    }
    module.map(&mut Renumber(0))
}

/// Summed response log-probs of a batch's `2k` sequences, chosen first.
fn sequence_logps(model: &Llama, batch: &Batch, chunk: usize) -> Tensor<1> {
    let [n, t1] = batch.inputs.dims();
    let inner = batch.targets.device();
    let hidden = model.forward_hidden(batch.inputs.clone().to_device(&inner), None);
    let d = hidden.dims()[2];
    let tokens = token_logps(hidden.reshape([n * t1, d]), model.head_weight(), batch.targets.clone(), chunk);
    masked_sum(tokens, batch.mask.clone(), n)
}

/// Reference log-probs of every pair, computed once with the frozen model and read back to the host.
async fn reference_logps(
    model: &Llama,
    pairs: &[TokenizedPair],
    batch_size: usize,
    pad: u32,
    chunk: usize,
    device: &Device,
) -> Result<Vec<(f32, f32)>, TrainError> {
    if let Some(cached) =
        pairs.iter().map(|p| Some((p.ref_chosen_logps?, p.ref_rejected_logps?))).collect::<Option<Vec<_>>>()
    {
        return Ok(cached);
    }
    score_pairs(model, pairs, batch_size, pad, chunk, device).await
}

/// Rewards `(chosen, rejected)` of every pair under a one-label reward model, `batch_size` pairs at a time,
/// read back in one transfer. `pad` must be the id the model's head is read by (its `pad_token_id`).
pub async fn score_rewards<M: ScalarReward>(
    model: &M,
    pairs: &[TokenizedPair],
    batch_size: usize,
    pad: u32,
    device: &Device,
) -> Result<Vec<(f32, f32)>, TrainError> {
    let mut parts = Vec::new();
    for group in pairs.chunks(batch_size.max(1)) {
        let batch = Batch::new(&group.iter().collect::<Vec<_>>(), pad, device);
        let r = model.rewards(batch.ids.clone(), &batch.lengths);
        let k = group.len();
        parts.push(Tensor::stack::<2>(vec![r.clone().narrow(0, 0, k), r.narrow(0, k, k)], 1).reshape([2 * k]));
    }
    let values = read_f32(Tensor::cat(parts, 0)).await?;
    Ok(values.chunks(2).map(|c| (c[0], c[1])).collect())
}

/// Reference log-probs of every list's responses, computed once with the frozen model (unless every list
/// carries them) and read back to the host in one transfer.
async fn list_reference_logps(
    model: &Llama,
    lists: &[TokenizedList],
    batch_size: usize,
    pad: u32,
    chunk: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, TrainError> {
    if let Some(cached) = lists.iter().map(|l| l.ref_logps.clone()).collect::<Option<Vec<_>>>() {
        return Ok(cached);
    }
    let parts = lists
        .chunks(batch_size.max(1))
        .map(|group| sequence_logps(model, &Batch::lists(&group.iter().collect::<Vec<_>>(), pad, device), chunk))
        .collect::<Vec<_>>();
    let mut values = read_f32(Tensor::cat(parts, 0)).await?.into_iter();
    Ok(lists.iter().map(|l| values.by_ref().take(l.responses.len()).collect()).collect())
}

/// Summed response log-probs `(chosen, rejected)` of every pair under `model`, `batch_size` pairs at a time,
/// with LM-head chunks of `chunk` rows (see [`chunk_rows`]); read back to the host in one transfer.
pub async fn score_pairs(
    model: &Llama,
    pairs: &[TokenizedPair],
    batch_size: usize,
    pad: u32,
    chunk: usize,
    device: &Device,
) -> Result<Vec<(f32, f32)>, TrainError> {
    let mut parts = Vec::new();
    for group in pairs.chunks(batch_size) {
        let batch = Batch::new(&group.iter().collect::<Vec<_>>(), pad, device);
        let seq = sequence_logps(model, &batch, chunk);
        let k = group.len();
        parts.push(Tensor::stack::<2>(vec![seq.clone().narrow(0, 0, k), seq.narrow(0, k, k)], 1).reshape([2 * k]));
    }
    let values = read_f32(Tensor::cat(parts, 0)).await?;
    Ok(values.chunks(2).map(|c| (c[0], c[1])).collect())
}

/// Summed response log-probs of every example of `data` under `model`, batched as the loop's reference pass
/// batches them (`config.batch_size`, `max_length`, `logits_chunk_bytes`), ignoring values the data carry: pairs
/// (chosen, rejected); KTO examples (completion, KL pair: the prompt with example i − 1's completion); lists, each
/// response.
/// For the reference model these are the values a run caches (`alignlab ref-logps`); `eval` also scores policies.
pub async fn data_logps(
    model: &Llama,
    data: TrainData,
    config: &TrainConfig,
    pad: u32,
    device: &Device,
) -> Result<(Vec<(f32, f32)>, Vec<Vec<f32>>), TrainError> {
    let (mut pairs, Extra { mut lists, .. }) = data.into_parts(config.max_length);
    pairs.iter_mut().for_each(|p| (p.ref_chosen_logps, p.ref_rejected_logps) = (None, None));
    lists.iter_mut().for_each(|l| l.ref_logps = None);
    let (b, chunk) = (config.batch_size, chunk_rows(model.vocab_size(), config.logits_chunk_bytes));
    // on the device form [`Trainer::new`] scores its reference on, so the values are its own bit for bit
    let device = device.clone().autodiff();
    let model = model.clone().fork(&device).valid();
    let (model, device) = (&model, &device);
    let pairs = if pairs.is_empty() { Vec::new() } else { score_pairs(model, &pairs, b, pad, chunk, device).await? };
    Ok((pairs, list_reference_logps(model, &lists, b, pad, chunk, device).await?))
}

/// The mean of per-pair `losses` and DPO's metric values (on the inner device) from the pairs' implicit rewards
/// and log-probs: what every pairwise language-model objective (DPO family, MODPO) logs.
fn dpo_values_of(losses: Tensor<1>, rc: Tensor<1>, rr: Tensor<1>, lp: &PairLogps) -> (Tensor<1>, Tensor<1>) {
    let loss = losses.mean();
    let (rc, rr) = (rc.inner(), rr.inner());
    let (lc, lr) = (lp.chosen.clone().inner(), lp.rejected.clone().inner());
    let accuracy = rc.clone().greater(rr.clone()).float().mean();
    let margin = (rc.clone() - rr.clone()).mean();
    let values = Tensor::cat(
        vec![loss.clone().inner().reshape([1]), rc.mean(), rr.mean(), margin, accuracy, lc.mean(), lr.mean()],
        0,
    );
    (values, loss)
}

fn reward_metric_values(loss: Tensor<1>, rc: Tensor<1>, rr: Tensor<1>) -> Tensor<1> {
    let accuracy = rc.clone().greater(rr.clone()).float().mean();
    let margin = (rc.clone() - rr.clone()).mean();
    let all = Tensor::cat(vec![rc, rr], 0);
    Tensor::cat(vec![loss.reshape([1]), accuracy, margin, all.clone().mean(), all.clone().min(), all.max()], 0)
}

async fn read_f32(t: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    let data = t.into_data_async().await.map_err(|e| TrainError::Read(format!("{e:?}")))?;
    Ok(data.iter::<f32>().collect())
}

/// Global L2 norm of all gradients (returned, before clipping, as TRL logs it) and the gradients scaled by
/// `min(1, max_norm / norm)` — computed on the device, without reading the norm back.
fn clip_grad_norm<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
    device: &Device,
) -> (GradientsParams, Tensor<1>) {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        coef: Tensor<1>,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                let c = self.coef.clone().reshape([1; D]);
                self.grads.register::<D>(param.id, g * c);
            }
        }
    }
    let mut sum = SumSquares { grads: &grads, total: None };
    module.visit(&mut sum);
    let Some(total) = sum.total else {
        return (grads, Tensor::zeros([1], device));
    };
    let norm = total.sqrt();
    if max_norm > 0.0 {
        let coef = (norm.clone() + 1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);
        module.visit(&mut Scale { grads: &mut grads, coef });
    }
    (grads, norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let c = TrainConfig { learning_rate: 1.0, warmup_steps: 2, ..Default::default() };
        let lrs: Vec<f64> = (0..6).map(|s| c.learning_rate_at(s, 6)).collect();
        assert_eq!(lrs, vec![0.5, 1.0, 1.0, 0.75, 0.5, 0.25]);
    }

    #[test]
    fn config_rejects_unknown_keys_and_bad_values() {
        let err = serde_json::from_str::<TrainConfig>(r#"{"learning_rat": 1e-3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `learning_rat`"), "{err}");
        let c: TrainConfig = serde_json::from_str(r#"{"objective": "reward", "beta": 0.5}"#).unwrap();
        assert_eq!((c.objective, c.beta, c.batch_size), (Objective::Reward, 0.5, 2));
        let bad = TrainConfig { beta: -1.0, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("beta"));
    }
}
