//! Reward models: a backbone and a linear score head with one output per label — one label for a
//! Bradley–Terry reward (TRL's `AutoModelForSequenceClassification` with `num_labels=1`; Ouyang et al. 2022
//! §3.5), k labels for HelpSteer2's attribute regression (one head per attribute, SteerLM).
//!
//! The decoder reads the head at the position transformers' `LlamaForSequenceClassification` reads: the
//! rightmost token that is not `pad_token_id` ([`score_length`]). When pad = eos (SmolLM2) that is the token
//! before the final eos, in alignlab as in transformers and TRL.
//!
//! Saved folders ([`reward_hf_files`], loaded by [`PretrainedReward`]):
//! - decoder: what transformers saves for `LlamaForSequenceClassification` (`Qwen2…` with q/k/v biases):
//!   `config.json` (`architectures`, `id2label` of k labels, `pad_token_id`), `model.safetensors` with the
//!   `model.*` tensors and `score.weight` `[k, d_model]` (no `lm_head`: the classifier has none), the tokenizer.
//! - encoder (MiniLM): transformers has no class for a mean-pooled regression head (`BertForSequenceClassification`
//!   reads a tanh pooler over `[CLS]`), so the folder is the `BertModel` checkpoint (config.json with
//!   `architectures: ["BertModel"]`, `BertModel` tensor names) plus `score.weight` `[k, d_model]` and
//!   `"alignlab_pooling": "mean"` in config.json: load it with `BertModel.from_pretrained`, average the last
//!   hidden states over the attention mask and multiply by `score.weight` (scripts/make-reward-fixture.py does).

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::{Value, json};

use super::bert::{Bert, BertConfig, EncoderRewardModel, Pooling};
use super::llama::{Llama, LlamaConfig, NamedTensor};
use crate::pretrained::{LoadError, ReadFile, dir_reader, hf_weights_source, read_hf_weights};
use crate::tokenizer::Tokenizer;
use crate::weights::hf::{
    CONFIG_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, hf_config_json, llama_config_from_hf,
    tokenizer_config_json,
};
use crate::weights::safetensors::{SafetensorsSource, to_safetensors};
use crate::weights::{WeightError, WeightSource};

/// The head's tensor name in transformers' `*ForSequenceClassification` (and in alignlab's encoder folders).
pub const SCORE_WEIGHT: &str = "score.weight";
/// Most labels a folder may declare (HelpSteer2 has 5; a bound so a hostile config cannot ask for gigabytes).
pub const MAX_LABELS: usize = 1024;

/// A head `[d_model, k]` without bias, initialised to zero so every reward starts at 0 and the first
/// Bradley–Terry loss is ln 2.
pub fn score_head(d_model: usize, labels: usize, device: &Device) -> Linear {
    Linear { weight: Param::from_tensor(Tensor::zeros([d_model, labels], device)), bias: None }
}

/// `score.weight` in transformers' layout `[k, d_model]`.
pub fn score_tensor(head: &Linear) -> NamedTensor {
    let w = head.weight.val();
    let [d, k] = w.dims();
    (SCORE_WEIGHT.into(), vec![k, d], w.transpose().reshape([k * d]))
}

/// The head of `k` labels stored as `score.weight` `[k, d_model]` in `source`.
pub fn score_head_from(
    source: &dyn WeightSource,
    d_model: usize,
    labels: usize,
    device: &Device,
) -> Result<Linear, WeightError> {
    let w = source.tensor(SCORE_WEIGHT, &[labels, d_model])?;
    let w = Tensor::<2>::from_data(TensorData::new(w, [labels, d_model]), device).transpose();
    Ok(Linear { weight: Param::from_tensor(w), bias: None })
}

/// A one-label head `Σ_a c_a · W_a` from a head of k labels: how a regression model starts a Bradley–Terry
/// one (HelpSteer2-Preference's recipe: the helpfulness head, `c = e_helpfulness`, or a weighted sum).
pub fn combine_heads(head: &Linear, weights: &[f64]) -> Result<Linear, WeightError> {
    let w = head.weight.val();
    let [d, k] = w.dims();
    if weights.len() != k || weights.iter().any(|c| !c.is_finite()) {
        return Err(WeightError::Config(format!("{} finite head weights are needed for a head of {k} labels", k)));
    }
    let c = Tensor::<2>::from_data(TensorData::new(weights.iter().map(|&c| c as f32).collect(), [k, 1]), &w.device());
    debug_assert_eq!(w.dims()[0], d);
    Ok(Linear { weight: Param::from_tensor(w.matmul(c)), bias: None })
}

/// The length transformers' sequence classifiers read a right-padded sequence at: one past the rightmost
/// token that is not `pad` (0 when every token is `pad`; the head then reads position 0, as transformers'
/// `argmax` over an all-zero mask does).
pub fn score_length(seq: &[u32], pad: u32) -> usize {
    seq.iter().rposition(|&t| t != pad).map_or(0, |i| i + 1)
}

/// A decoder reward model: the backbone (without its LM head, which a classifier does not use) and a head
/// of k labels read at the last non-pad token.
#[derive(Module, Debug)]
pub struct RewardModel {
    pub backbone: Llama,
    /// `[d_model, k]`.
    pub score: Linear,
}

impl RewardModel {
    /// One label, zero-initialised.
    pub fn new(backbone: Llama, device: &Device) -> Self {
        Self::with_labels(backbone, 1, device)
    }

    /// `labels` zero-initialised outputs (attribute regression).
    pub fn with_labels(mut backbone: Llama, labels: usize, device: &Device) -> Self {
        backbone.lm_head = None;
        let score = score_head(backbone.d_model(), labels, device);
        Self { backbone, score }
    }

    /// The tensors of a saved reward model: the backbone (`model.*`; an `lm_head.weight` is ignored) and
    /// `score.weight` `[k, d_model]`, k read from its shape.
    pub fn from_source(config: &LlamaConfig, source: &SafetensorsSource, device: &Device) -> Result<Self, WeightError> {
        let labels = labels_of(source, config.d_model)?;
        let config = LlamaConfig { tie_word_embeddings: true, ..config.clone() };
        let backbone = Llama::from_source(&config, source, device)?;
        let score = score_head_from(source, config.d_model, labels, device)?;
        Ok(Self { backbone, score })
    }

    pub fn num_labels(&self) -> usize {
        self.score.weight.dims()[1]
    }

    /// Scores `[batch, k]` of right-padded sequences `ids: [batch, seq]`, read at `lengths[i] − 1` (see
    /// [`score_length`]).
    pub fn scores(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let hidden = self.backbone.forward_hidden(ids, None);
        let d = hidden.dims()[2];
        let last: Vec<i64> = lengths.iter().enumerate().map(|(i, &len)| (i * t + len.clamp(1, t) - 1) as i64).collect();
        let last = Tensor::<1, Int>::from_data(TensorData::new(last, [b]), &device);
        self.score.forward(hidden.reshape([b * t, d]).select(0, last))
    }

    /// The first label's reward of each sequence, `[batch]`.
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<1> {
        first_label(self.scores(ids, lengths))
    }

    /// Backbone tensors (no `lm_head`) plus `score.weight` `[k, d_model]`, named as transformers'
    /// `LlamaForSequenceClassification`.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out: Vec<NamedTensor> =
            self.backbone.named_tensors().into_iter().filter(|(n, _, _)| n != "lm_head.weight").collect();
        out.push(score_tensor(&self.score));
        out
    }

    /// The same backbone with a one-label head `Σ_a c_a · W_a` (see [`combine_heads`]).
    pub fn combined(self, weights: &[f64]) -> Result<Self, WeightError> {
        let score = combine_heads(&self.score, weights)?;
        Ok(Self { backbone: self.backbone, score })
    }
}

fn first_label(scores: Tensor<2>) -> Tensor<1> {
    let [b, _] = scores.dims();
    scores.narrow(1, 0, 1).reshape([b])
}

/// k of a saved `score.weight` `[k, d_model]`.
fn labels_of(source: &SafetensorsSource, d_model: usize) -> Result<usize, WeightError> {
    let (shape, _) = source.get(SCORE_WEIGHT)?;
    match shape[..] {
        [k, d] if d == d_model && (1..=MAX_LABELS).contains(&k) => Ok(k),
        _ => Err(WeightError::Config(format!(
            "{SCORE_WEIGHT} has shape {shape:?}; a reward head is [labels ≤ {MAX_LABELS}, d_model = {d_model}]"
        ))),
    }
}

/// A model that scores each sequence of a right-padded batch: what the reward loop trains.
pub trait ScalarReward: Module {
    /// `[batch, k]` scores read at `lengths` (see each model).
    fn scores(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2>;

    /// The first label's score `[batch]`: the reward of a one-label (Bradley–Terry) model.
    fn rewards(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<1> {
        first_label(self.scores(ids, lengths))
    }
}

impl ScalarReward for RewardModel {
    fn scores(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2> {
        RewardModel::scores(self, ids, lengths)
    }
}

impl ScalarReward for EncoderRewardModel {
    fn scores(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2> {
        self.score.forward(self.backbone.embed(ids, lengths, self.pooling))
    }
}

/// A reward model of either backbone, as loaded from a folder.
pub enum AnyRewardModel {
    Decoder(RewardModel, LlamaConfig),
    Encoder(EncoderRewardModel, BertConfig),
}

impl AnyRewardModel {
    /// `[batch, k]` scores (see [`ScalarReward::scores`]).
    pub fn scores(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2> {
        match self {
            Self::Decoder(m, _) => ScalarReward::scores(m, ids, lengths),
            Self::Encoder(m, _) => ScalarReward::scores(m, ids, lengths),
        }
    }

    pub fn num_labels(&self) -> usize {
        match self {
            Self::Decoder(m, _) => m.num_labels(),
            Self::Encoder(m, _) => m.score.weight.dims()[1],
        }
    }
}

/// A saved reward model with its tokenizer, the pad id its head is read by, and the names of its labels.
pub struct PretrainedReward {
    pub model: AnyRewardModel,
    pub tokenizer: Tokenizer,
    pub pad_id: u32,
    pub labels: Vec<String>,
}

impl PretrainedReward {
    /// Loads a folder written by [`reward_hf_files`] or by transformers (`LlamaForSequenceClassification`,
    /// `Qwen2ForSequenceClassification`, single file or sharded).
    pub fn from_hf_dir(dir: impl AsRef<Path>, device: &Device) -> Result<Self, LoadError> {
        Self::from_reader(&mut dir_reader(dir.as_ref()), device)
    }

    /// The same from file name → contents.
    pub fn from_hf_files(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let mut files: HashMap<String, Vec<u8>> = files.into_iter().collect();
        Self::from_reader(&mut |name| Ok(files.remove(name)), device)
    }

    fn from_reader(read: &mut ReadFile, device: &Device) -> Result<Self, LoadError> {
        let config_bytes = read(CONFIG_FILE)?.ok_or_else(|| LoadError::MissingFile(CONFIG_FILE.into()))?;
        let json: Value =
            serde_json::from_slice(&config_bytes).map_err(|e| WeightError::Json(e.to_string()).in_file(CONFIG_FILE))?;
        let labels = label_names(&json).map_err(|e| e.in_file(CONFIG_FILE))?;
        let tokenizer_json = read(TOKENIZER_FILE)?.ok_or_else(|| LoadError::MissingFile(TOKENIZER_FILE.into()))?;
        let (files, weight_map) = read_hf_weights(read)?;
        let source = hf_weights_source(&files, weight_map)?;
        let (model, tokenizer) = if json["model_type"] == "bert" {
            let config = BertConfig::from_hf_json(&config_bytes).map_err(|e| e.in_file(CONFIG_FILE))?;
            let pooling = match json.get("alignlab_pooling").and_then(Value::as_str) {
                None | Some("mean") => Pooling::Mean,
                Some("cls") => Pooling::Cls,
                Some(other) => {
                    let msg = format!("alignlab_pooling {other:?} is not mean or cls");
                    return Err(WeightError::Config(msg).in_file(CONFIG_FILE).into());
                }
            };
            let bert = Bert::from_source(&config, &source, device)?;
            let k = labels_of(&source, config.d_model)?;
            let score = score_head_from(&source, config.d_model, k, device)?;
            let tokenizer = crate::model::bert::bert_tokenizer(&tokenizer_json)?;
            (AnyRewardModel::Encoder(EncoderRewardModel { backbone: bert, score, pooling }, config), tokenizer)
        } else {
            let config = llama_config_from_hf(&config_bytes).map_err(|e| e.in_file(CONFIG_FILE))?;
            let tokenizer = Tokenizer::from_hf(&tokenizer_json, read(TOKENIZER_CONFIG_FILE)?.as_deref())?;
            (AnyRewardModel::Decoder(RewardModel::from_source(&config, &source, device)?, config), tokenizer)
        };
        let ignorable = ["lm_head.weight", "embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"];
        let unused: Vec<String> = source
            .unused()
            .into_iter()
            .filter(|n| !ignorable.contains(&n.as_str()) && !n.ends_with(".rotary_emb.inv_freq"))
            .collect();
        if !unused.is_empty() {
            return Err(WeightError::Unused { names: unused }.in_file(WEIGHTS_FILE).into());
        }
        let k = model.num_labels();
        let labels = match labels {
            Some(l) if l.len() == k => l,
            Some(l) => {
                let msg = format!("{} labels in id2label but {SCORE_WEIGHT} has {k} rows", l.len());
                return Err(WeightError::Config(msg).in_file(CONFIG_FILE).into());
            }
            None => (0..k).map(|i| format!("LABEL_{i}")).collect(),
        };
        let pad_id = match json.get("pad_token_id").filter(|v| !v.is_null()) {
            Some(v) => v.as_u64().and_then(|p| u32::try_from(p).ok()).ok_or_else(|| {
                WeightError::Config(format!("pad_token_id = {v} is not a token id")).in_file(CONFIG_FILE)
            })?,
            None => tokenizer.pad_id().or(tokenizer.eos_id()).unwrap_or(0),
        };
        Ok(Self { model, tokenizer, pad_id, labels })
    }

    pub fn num_labels(&self) -> usize {
        self.labels.len()
    }
}

/// The labels of `id2label` in id order, or `None` without one.
fn label_names(json: &Value) -> Result<Option<Vec<String>>, WeightError> {
    let Some(map) = json.get("id2label").and_then(Value::as_object) else { return Ok(None) };
    if map.len() > MAX_LABELS {
        return Err(WeightError::Config(format!("id2label has {} labels, more than {MAX_LABELS}", map.len())));
    }
    let mut names = vec![None; map.len()];
    for (id, name) in map {
        let i = id.parse::<usize>().ok().filter(|&i| i < map.len());
        let (Some(i), Some(name)) = (i, name.as_str()) else {
            return Err(WeightError::Config(format!("id2label entry {id:?}: {name} is not id → name for ids 0..k")));
        };
        names[i] = Some(name.to_string());
    }
    let names: Option<Vec<String>> = names.into_iter().collect();
    names.map(Some).ok_or_else(|| WeightError::Config("id2label must name each id 0..k once".into()))
}

/// `id2label` / `label2id` of `labels`.
fn label_maps(labels: &[String]) -> (Value, Value) {
    let id2label: serde_json::Map<String, Value> =
        labels.iter().enumerate().map(|(i, l)| (i.to_string(), Value::from(l.as_str()))).collect();
    let label2id: serde_json::Map<String, Value> =
        labels.iter().enumerate().map(|(i, l)| (l.clone(), Value::from(i))).collect();
    (Value::Object(id2label), Value::Object(label2id))
}

/// `config.json` of a BERT encoder (transformers' `BertConfig` keys).
pub fn bert_config_json(config: &BertConfig) -> Value {
    json!({
        "model_type": "bert",
        "architectures": ["BertModel"],
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "intermediate_size": config.d_ff,
        "hidden_act": "gelu",
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "layer_norm_eps": config.layer_norm_eps,
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "torch_dtype": "float32",
    })
}

/// The folder of a reward model (see the module docs): `config.json`, `model.safetensors`, and for a decoder
/// `tokenizer.json` + `tokenizer_config.json`. An encoder's tokenizer files are the base folder's, copied by
/// the caller (alignlab's BERT tokenizer drops the file's fixed-length padding, which a copy keeps).
/// `labels` names the k outputs (`LABEL_0…` when empty); `pad` is the id the head is read by.
pub async fn reward_hf_files(
    model: &AnyRewardModel,
    tokenizer: Option<&Tokenizer>,
    pad: u32,
    labels: &[String],
) -> Result<Vec<(String, Vec<u8>)>, WeightError> {
    let (tensors, k, mut config) = match model {
        AnyRewardModel::Decoder(m, config) => {
            let (bos, eos) = tokenizer.map_or((None, None), |t| (t.bos_id(), t.eos_id()));
            let mut c: Value = serde_json::from_str(&hf_config_json(config, bos, eos))
                .map_err(|e| WeightError::Json(e.to_string()))?;
            let arch =
                if config.qkv_bias { "Qwen2ForSequenceClassification" } else { "LlamaForSequenceClassification" };
            c["architectures"] = json!([arch]);
            (m.named_tensors(), m.num_labels(), c)
        }
        AnyRewardModel::Encoder(m, config) => {
            let mut c = bert_config_json(config);
            c["alignlab_pooling"] = json!(if m.pooling == Pooling::Cls { "cls" } else { "mean" });
            let mut t = m.backbone.named_tensors();
            t.push(score_tensor(&m.score));
            (t, m.score.weight.dims()[1], c)
        }
    };
    let labels: Vec<String> =
        if labels.is_empty() { (0..k).map(|i| format!("LABEL_{i}")).collect() } else { labels.to_vec() };
    if labels.len() != k {
        return Err(WeightError::Config(format!("{} label names for a head of {k} outputs", labels.len())));
    }
    let (id2label, label2id) = label_maps(&labels);
    config["num_labels"] = json!(k);
    config["id2label"] = id2label;
    config["label2id"] = label2id;
    config["pad_token_id"] = json!(pad);
    if k > 1 {
        config["problem_type"] = json!("regression");
    }
    let metadata = [("format".to_string(), "pt".to_string())].into_iter().collect();
    let mut files = vec![
        (CONFIG_FILE.to_string(), serde_json::to_string_pretty(&config).unwrap_or_default().into_bytes()),
        (WEIGHTS_FILE.to_string(), to_safetensors(tensors, metadata).await?),
    ];
    if let (AnyRewardModel::Decoder(_, config), Some(t)) = (model, tokenizer) {
        let json = t.inner().to_string(true).map_err(|e| WeightError::Json(format!("{TOKENIZER_FILE}: {e}")))?;
        files.push((TOKENIZER_FILE.to_string(), json.into_bytes()));
        let mut tc: Value = serde_json::from_str(&tokenizer_config_json(t, config.max_position_embeddings))
            .map_err(|e| WeightError::Json(e.to_string()))?;
        if tc["pad_token"].is_null() {
            tc["pad_token"] = t.id_to_token(pad).map_or(Value::Null, Value::from);
        }
        files.push((
            TOKENIZER_CONFIG_FILE.to_string(),
            serde_json::to_string_pretty(&tc).unwrap_or_default().into_bytes(),
        ));
    }
    Ok(files)
}
