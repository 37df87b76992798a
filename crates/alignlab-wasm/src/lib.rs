//! The wasm-bindgen surface of alignlab: conversions between JS values and the core, nothing else.
//! WebGPU where the page (or Node with the `webgpu` package) offers an adapter, the flex CPU backend
//! otherwise; JS probes for an adapter before asking for WebGPU, because wgpu aborts the instance without one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use alignlab_core::data::{ReadOptions, read_preferences, tokenize_pair};
use alignlab_core::eval::agreement::{self, LabelValue, Level};
use alignlab_core::eval::preference;
use alignlab_core::generate::{Event, GenerateOptions};
use alignlab_core::model::llama::{Llama, LlamaConfig};
use alignlab_core::model::reward::{RewardModel, score_length};
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::tokenizer::{Message, Tokenizer};
use alignlab_core::train::{Backbone, Objective, TrainConfig, TrainData, Trainer as CoreTrainer, TrainerState};
use alignlab_core::weights::safetensors::{SafetensorsSource, to_safetensors};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use js_sys::Promise;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

thread_local! {
    static BACKEND: RefCell<Option<(Device, &'static str)>> = const { RefCell::new(None) };
}

fn backend() -> (Device, &'static str) {
    BACKEND.with(|b| b.borrow().clone()).unwrap_or_else(|| (Device::flex(), "cpu"))
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_err)
}

/// Chooses the device for everything created afterwards: `"webgpu"` or `"cpu"`. Returns the one in use.
#[wasm_bindgen(js_name = backendInit)]
pub async fn backend_init(prefer: String) -> Result<String, JsError> {
    let chosen = match prefer.as_str() {
        "webgpu" => {
            let device = Device::wgpu_options()
                .graphics_api(burn::tensor::wgpu::WgpuBackend::WebGpu)
                .init_async()
                .await
                .map_err(|e| JsError::new(&format!("WebGPU initialisation failed: {e:?}")))?;
            (device, "webgpu")
        }
        "cpu" => (Device::flex(), "cpu"),
        other => return Err(JsError::new(&format!("backend {other:?}: expected \"webgpu\" or \"cpu\""))),
    };
    BACKEND.with(|b| *b.borrow_mut() = Some(chosen.clone()));
    Ok(chosen.1.to_string())
}

/// The bytes of the tiny random demo model (a GGUF file); the same bytes for a seed on every surface.
#[wasm_bindgen(js_name = tinyGguf)]
pub fn tiny_gguf_bytes(seed: u32) -> Vec<u8> {
    tiny_gguf(seed as u64)
}

struct Inner {
    model: Llama,
    config: LlamaConfig,
    tokenizer: Tokenizer,
}

/// A language model with its tokenizer.
#[wasm_bindgen]
pub struct Model {
    inner: Rc<Inner>,
}

#[derive(Serialize)]
struct Info {
    arch: &'static str,
    n_layers: usize,
    d_model: usize,
    n_heads: usize,
    n_kv_heads: usize,
    vocab_size: usize,
    params: usize,
    backend: &'static str,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct GenerateJs {
    max_new_tokens: Option<usize>,
    chat_template: Option<bool>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    repetition_penalty: Option<f32>,
    stop: Option<Vec<String>>,
    seed: Option<u64>,
    /// Given: resolve to an array of `n` completions; absent: to one string.
    n: Option<usize>,
    batch_size: Option<usize>,
}

#[wasm_bindgen]
impl Model {
    /// Loads a Llama-family GGUF file.
    #[wasm_bindgen(js_name = fromGguf)]
    pub fn from_gguf(bytes: Vec<u8>) -> Result<Model, JsError> {
        let (device, _) = backend();
        let p = Pretrained::from_gguf(bytes, &device).map_err(js_err)?;
        Ok(Model { inner: Rc::new(Inner { model: p.model, config: p.config, tokenizer: p.tokenizer }) })
    }

    /// Loads a Hugging Face folder given as parallel lists of file names and contents (config.json,
    /// tokenizer.json, model.safetensors or its index and shards, …): files picked in a page, or fetched by name.
    #[wasm_bindgen(js_name = fromHfFiles)]
    pub fn from_hf_files(names: Vec<String>, contents: js_sys::Array) -> Result<Model, JsError> {
        if names.len() != contents.length() as usize {
            return Err(JsError::new("fromHfFiles: names and contents differ in length"));
        }
        let files = names.into_iter().zip(contents.iter().map(|c| js_sys::Uint8Array::new(&c).to_vec()));
        let (device, _) = backend();
        let p = Pretrained::from_hf_files(files, &device).map_err(js_err)?;
        Ok(Model { inner: Rc::new(Inner { model: p.model, config: p.config, tokenizer: p.tokenizer }) })
    }

    /// The tiny random demo model.
    pub fn tiny(seed: u32) -> Result<Model, JsError> {
        Model::from_gguf(tiny_gguf(seed as u64))
    }

    pub fn info(&self) -> Result<JsValue, JsError> {
        let c = &self.inner.config;
        to_js(&Info {
            arch: "llama",
            n_layers: c.n_layers,
            d_model: c.d_model,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            vocab_size: c.vocab_size,
            params: c.num_params(),
            backend: backend().1,
        })
    }

    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.inner.tokenizer.encode(text).map_err(js_err)
    }

    pub fn decode(&self, ids: Vec<u32>) -> Result<String, JsError> {
        self.inner.tokenizer.decode(&ids, false).map_err(js_err)
    }

    #[wasm_bindgen(js_name = applyChatTemplate)]
    pub fn apply_chat_template(&self, messages: JsValue, add_generation_prompt: bool) -> Result<String, JsError> {
        let messages: Vec<Message> = serde_wasm_bindgen::from_value(messages).map_err(js_err)?;
        self.inner.tokenizer.apply_chat_template(&messages, add_generation_prompt).map_err(js_err)
    }

    /// Completion of `prompt` (greedy, or sampled with `temperature` > 0); `on_token(piece, sample)` receives
    /// each decoded piece as it becomes final.
    pub fn generate(
        &self,
        prompt: String,
        options: JsValue,
        on_token: Option<js_sys::Function>,
    ) -> Result<Promise, JsError> {
        let opts: GenerateJs = if options.is_undefined() || options.is_null() {
            GenerateJs::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(js_err)?
        };
        let inner = self.inner.clone();
        Ok(promise(async move { generate(inner, prompt, opts, on_token).await }))
    }

    /// The weights as Hugging Face-named safetensors bytes.
    #[wasm_bindgen(js_name = toSafetensors)]
    pub fn to_safetensors(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
            let bytes = to_safetensors(inner.model.named_tensors(), meta).await.map_err(js_err)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// A model with this one's architecture and tokenizer and the weights of a safetensors file (e.g. a
    /// checkpoint of a run that started from this model); every tensor must be there with its shape.
    #[wasm_bindgen(js_name = withSafetensors)]
    pub fn with_safetensors(&self, bytes: Vec<u8>) -> Result<Model, JsError> {
        let (device, _) = backend();
        let source = SafetensorsSource::parse(&bytes).map_err(js_err)?;
        let model = Llama::from_source(&self.inner.config, &source, &device).map_err(js_err)?;
        let inner = Inner { model, config: self.inner.config.clone(), tokenizer: self.inner.tokenizer.clone() };
        Ok(Model { inner: Rc::new(inner) })
    }
}

/// Runs a future as a JS promise; errors become JS `Error`s.
fn promise(f: impl std::future::Future<Output = Result<JsValue, JsError>> + 'static) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move { f.await.map_err(JsValue::from) })
}

async fn generate(
    inner: Rc<Inner>,
    prompt: String,
    opts: GenerateJs,
    on_token: Option<js_sys::Function>,
) -> Result<JsValue, JsError> {
    let tok = &inner.tokenizer;
    let text = if opts.chat_template.unwrap_or(false) {
        tok.apply_chat_template(&[Message { role: "user".into(), content: prompt }], true).map_err(js_err)?
    } else {
        prompt
    };
    let ids = tok.encode(&text).map_err(js_err)?;
    let defaults = GenerateOptions::default();
    let options = GenerateOptions {
        max_new_tokens: opts.max_new_tokens.unwrap_or(32),
        temperature: opts.temperature.unwrap_or(defaults.temperature),
        top_k: opts.top_k.unwrap_or(defaults.top_k),
        top_p: opts.top_p.unwrap_or(defaults.top_p),
        repetition_penalty: opts.repetition_penalty.unwrap_or(defaults.repetition_penalty),
        stop_tokens: tok.eos_id().into_iter().collect(),
        stop: opts.stop.unwrap_or_default(),
        n: opts.n.unwrap_or(1),
        batch_size: opts.batch_size.unwrap_or(defaults.batch_size),
        seed: opts.seed.unwrap_or(defaults.seed),
    };
    let samples = alignlab_core::generate::generate(&inner.model, &[ids], &options, Some(tok), |e| {
        if let (Some(f), Event::Token { sample, text, .. }) = (&on_token, e)
            && !text.is_empty()
        {
            let _ = f.call2(&JsValue::NULL, &JsValue::from_str(text), &JsValue::from(sample as u32));
        }
    })
    .await
    .map_err(js_err)?;
    let texts: Vec<String> = samples.into_iter().flatten().map(|s| s.text.unwrap_or_default()).collect();
    match opts.n {
        Some(_) => to_js(&texts),
        None => Ok(JsValue::from_str(&texts[0])),
    }
}

/// A training run (DPO or reward model) over JSONL preference pairs.
#[wasm_bindgen]
pub struct Trainer {
    inner: Rc<RefCell<Option<CoreTrainer>>>,
    config: LlamaConfig,
    tokenizer: Tokenizer,
}

fn busy() -> JsError {
    JsError::new("the trainer is busy with another call; await the previous promise first")
}

fn bad_weights(e: String) -> JsError {
    JsError::new(&format!("checkpoint weights: {e}"))
}

#[wasm_bindgen]
impl Trainer {
    /// Reads and tokenizes `data_jsonl`, then prepares the run (for DPO: the reference log-probs).
    pub fn create(model: &Model, config: JsValue, data_jsonl: String) -> Result<Promise, JsError> {
        Trainer::start(model, config, data_jsonl, None)
    }

    /// Continues a checkpointed run with the same config and data and the run's `state` (`Trainer.state()`):
    /// the same step, data order and reference log-probs. The network is `weights` (`Trainer.weights()`: a
    /// policy, or a reward model with its head) on `model`'s architecture, or without them `model` itself (a
    /// policy). AdamW starts afresh at the saved step: WebGPU cannot read its moments back synchronously, and
    /// loading the core's burnpack optimizer record aborted the wasm instance here even on the CPU backend.
    /// Runs without held-out pairs only: the state does not carry their reference log-probs.
    pub fn resume(
        model: &Model,
        config: JsValue,
        data_jsonl: String,
        state: String,
        weights: Option<Vec<u8>>,
    ) -> Result<Promise, JsError> {
        let bad = |e: String| JsError::new(&format!("checkpoint state: {e}"));
        let mut value: serde_json::Value = serde_json::from_str(&state).map_err(|e| bad(e.to_string()))?;
        // the RNG state is a u64, written as a decimal string by `state()` (a JS number would round it)
        if let Some(rng) = value.get("rng").and_then(|v| v.as_str()).map(str::to_string) {
            value["rng"] = rng.parse::<u64>().map_err(|e| bad(format!("rng {rng:?}: {e}")))?.into();
        }
        let state: TrainerState = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        Trainer::start(model, config, data_jsonl, Some((state, weights)))
    }

    fn start(
        model: &Model,
        config: JsValue,
        data_jsonl: String,
        resume: Option<(TrainerState, Option<Vec<u8>>)>,
    ) -> Result<Promise, JsError> {
        let config: TrainConfig = serde_wasm_bindgen::from_value(config).map_err(js_err)?;
        config.validate().map_err(js_err)?;
        if resume.is_some() && config.eval_split > 0.0 {
            return Err(JsError::new("resuming a run with held-out pairs (evalSplit) is not supported yet"));
        }
        let topts = config.tokenize_options();
        let tok = model.inner.tokenizer.clone();
        // pairs (ties left out), unpaired examples (KTO) or ranked lists (LiPO), as the objective reads them
        let (data, _) =
            TrainData::read("data.jsonl", &data_jsonl, config.objective, &ReadOptions::default(), &tok, &topts)
                .map_err(js_err)?;
        let pad = tok.pad_id().or(tok.eos_id()).unwrap_or(0);
        let (device, _) = backend();
        let llama_config = model.inner.config.clone();
        let (resume, weights) = resume.map_or((None, None), |(state, weights)| (Some(state), weights));
        let backbone: Backbone = match (weights, config.objective) {
            (None, Objective::Reward | Objective::Regression) if resume.is_some() => {
                return Err(JsError::new("resuming a reward model needs its checkpoint's weights (with the head)"));
            }
            (None, _) => model.inner.model.clone().into(),
            (Some(bytes), objective) => {
                let source = SafetensorsSource::parse(&bytes).map_err(|e| bad_weights(e.to_string()))?;
                match objective {
                    Objective::Reward | Objective::Regression => {
                        RewardModel::from_source(&llama_config, &source, &device).map(Backbone::Reward)
                    }
                    _ => Llama::from_source(&llama_config, &source, &device).map(Backbone::from),
                }
                .map_err(|e| bad_weights(e.to_string()))?
            }
        };
        let (mut data, held_out) = data.split(config.eval_split, config.seed);
        if let Some(state) = &resume {
            // the reference log-probs are the starting policy's: never recomputed from the moved weights
            data.use_reference_of(state);
        }
        Ok(promise(async move {
            let mut trainer = CoreTrainer::new(backbone, data, config, pad, &device).await.map_err(js_err)?;
            trainer.set_eval_data(held_out).await.map_err(js_err)?;
            if let Some(state) = resume {
                // a fresh optimizer has no moments: its record holds no tensor, so nothing is read or loaded
                let fresh = trainer.optimizer_state().map_err(js_err)?;
                trainer.restore(state, fresh).map_err(js_err)?;
            }
            let t = Trainer { inner: Rc::new(RefCell::new(Some(trainer))), config: llama_config, tokenizer: tok };
            Ok(t.into())
        }))
    }

    /// The run's position (step, data order, RNG, reference log-probs) as JSON for a checkpoint; the RNG
    /// state, a u64, as a decimal string.
    pub fn state(&self) -> Result<String, JsError> {
        let guard = self.inner.borrow();
        let state = guard.as_ref().ok_or_else(busy)?.state();
        let rng = state.rng.to_string();
        let mut value = serde_json::to_value(state).map_err(js_err)?;
        value["rng"] = rng.into();
        Ok(value.to_string())
    }

    /// The trained weights (policy or reward model, with `score.weight`) as safetensors bytes, for a
    /// checkpoint or a download.
    pub fn weights(&self) -> Promise {
        let cell = self.inner.clone();
        promise(async move {
            let trainer = cell.borrow_mut().take().ok_or_else(busy)?;
            let tensors = match (trainer.policy(), trainer.reward_model(), trainer.encoder_reward_model()) {
                (Some(m), _, _) => Ok(m.named_tensors()),
                (_, Some(m), _) => Ok(m.named_tensors()),
                (_, _, Some(m)) => Ok(m.named_tensors()),
                _ => Err(JsError::new("the trainer holds no model")),
            };
            let step = trainer.step_count();
            *cell.borrow_mut() = Some(trainer);
            let meta =
                HashMap::from([("format".to_string(), "pt".to_string()), ("step".to_string(), step.to_string())]);
            let bytes = to_safetensors(tensors?, meta).await.map_err(js_err)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Rewards of `responses` to `prompt` under a reward-model run's current model, tokenised as its training
    /// pairs were (same chat template and length limits).
    #[wasm_bindgen(js_name = scoreResponses)]
    pub fn score_responses(&self, prompt: String, responses: Vec<String>) -> Promise {
        let cell = self.inner.clone();
        let tok = self.tokenizer.clone();
        promise(async move {
            let trainer = cell.borrow_mut().take().ok_or_else(busy)?;
            let result = score_responses(&trainer, &tok, prompt, responses).await;
            *cell.borrow_mut() = Some(trainer);
            Ok(js_sys::Float32Array::from(result?.as_slice()).into())
        })
    }

    /// Runs up to `n` optimizer steps; resolves to one metrics object per step (TRL names).
    pub fn step(&self, n: u32) -> Promise {
        let cell = self.inner.clone();
        promise(async move {
            let mut trainer = cell.borrow_mut().take().ok_or_else(busy)?;
            let result = trainer.steps(n as usize).await;
            *cell.borrow_mut() = Some(trainer);
            to_js(&result.map_err(js_err)?)
        })
    }

    /// Metrics over the whole training set, without updating the model.
    pub fn evaluate(&self) -> Promise {
        let cell = self.inner.clone();
        promise(async move {
            let trainer = cell.borrow_mut().take().ok_or_else(busy)?;
            let result = trainer.evaluate().await;
            *cell.borrow_mut() = Some(trainer);
            to_js(&result.map_err(js_err)?)
        })
    }

    /// Metrics over the held-out pairs (`evalSplit`) under TRL's `eval_` names; null without held-out pairs.
    #[wasm_bindgen(js_name = evaluateHeldOut)]
    pub fn evaluate_held_out(&self) -> Promise {
        let cell = self.inner.clone();
        promise(async move {
            let trainer = cell.borrow_mut().take().ok_or_else(busy)?;
            let result = trainer.evaluate_held_out().await;
            *cell.borrow_mut() = Some(trainer);
            to_js(&result.map_err(js_err)?)
        })
    }

    #[wasm_bindgen(js_name = stepCount)]
    pub fn step_count(&self) -> Result<u32, JsError> {
        Ok(self.inner.borrow().as_ref().ok_or_else(busy)?.step_count() as u32)
    }

    #[wasm_bindgen(js_name = totalSteps)]
    pub fn total_steps(&self) -> Result<u32, JsError> {
        Ok(self.inner.borrow().as_ref().ok_or_else(busy)?.total_steps() as u32)
    }

    /// A Model holding a copy of the current policy (DPO runs).
    pub fn policy(&self) -> Result<Model, JsError> {
        let guard = self.inner.borrow();
        let trainer = guard.as_ref().ok_or_else(busy)?;
        let model =
            trainer.policy().ok_or_else(|| JsError::new("a reward-model run has no policy to generate with"))?;
        let (device, _) = backend();
        Ok(Model {
            inner: Rc::new(Inner {
                model: model.valid().fork(&device),
                config: self.config.clone(),
                tokenizer: self.tokenizer.clone(),
            }),
        })
    }
}

async fn score_responses(
    trainer: &CoreTrainer,
    tok: &Tokenizer,
    prompt: String,
    responses: Vec<String>,
) -> Result<Vec<f32>, JsError> {
    let model = trainer.reward_model().ok_or_else(|| JsError::new("only a reward-model run scores responses"))?;
    if responses.is_empty() {
        return Ok(Vec::new());
    }
    // each response as the chosen side of a pair with itself: the training tokenisation, truncation included
    let jsonl: String = responses
        .iter()
        .map(|r| serde_json::json!({ "prompt": prompt, "chosen": r, "rejected": r }).to_string() + "\n")
        .collect();
    let report = read_preferences("responses", &jsonl, &ReadOptions::default()).map_err(js_err)?;
    let topts = trainer.config().tokenize_options();
    let seqs = report
        .records
        .iter()
        .map(|r| tokenize_pair(tok, r, &topts).map(|p| [p.prompt, p.chosen].concat()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(js_err)?;
    let pad = tok.pad_id().or(tok.eos_id()).unwrap_or(0);
    let t = seqs.iter().map(Vec::len).max().unwrap_or(1);
    let ids: Vec<i64> = seqs.iter().flat_map(|s| (0..t).map(|j| s.get(j).copied().unwrap_or(pad) as i64)).collect();
    // read where training reads: the last token that is not pad (pad may be eos, which ends every response)
    let lengths: Vec<usize> = seqs.iter().map(|s| score_length(s, pad)).collect();
    let (device, _) = backend();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [seqs.len(), t]), &device);
    let rewards = model.valid().forward(ids, &lengths);
    let data = rewards.into_data_async().await.map_err(|e| JsError::new(&format!("reading rewards: {e:?}")))?;
    Ok(data.iter::<f32>().collect())
}

/// The core's training options with their defaults (snake_case keys): the one list every surface follows.
#[wasm_bindgen(js_name = defaultTrainConfig)]
pub fn default_train_config() -> Result<JsValue, JsError> {
    to_js(&TrainConfig::default())
}

/// Ratings as JS gives them: items × raters, each a number, a string or null (missing).
fn ratings(value: JsValue) -> Result<Vec<Vec<Option<LabelValue>>>, JsError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| {
        JsError::new(&format!("ratings must be an array of rows of labels (integers, strings or null): {e}"))
    })
}

/// Agreement of a ratings table: Fleiss' κ, Krippendorff's α (at `level`: "nominal", "ordinal", "interval"
/// or "ratio"), pairwise Cohen's κ, per-item agreement and the items with disagreement.
#[wasm_bindgen(js_name = agreementReport)]
pub fn agreement_report(table: JsValue, level: Option<String>) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Report {
        #[serde(flatten)]
        report: agreement::AgreementReport,
        level: Level,
        alpha: Option<f64>,
        item_agreement: Vec<Option<f64>>,
    }
    let units = ratings(table)?;
    let level: Level = match level {
        Some(l) => serde_json::from_value(serde_json::Value::String(l)).map_err(js_err)?,
        None => Level::default(),
    };
    let report = agreement::agreement_report(&units).map_err(js_err)?;
    let alpha = agreement::krippendorff_alpha(&units, level).ok();
    to_js(&Report { report, level, alpha, item_agreement: agreement::item_agreement(&units) })
}

/// Agreement between a model's labels (one per item) and each rater, and with the raters' majority.
#[wasm_bindgen(js_name = modelAgreement)]
pub fn model_agreement(model: JsValue, table: JsValue) -> Result<JsValue, JsError> {
    let model: Vec<Option<LabelValue>> = serde_wasm_bindgen::from_value(model).map_err(js_err)?;
    to_js(&agreement::model_agreement(&model, &ratings(table)?).map_err(js_err)?)
}

/// Reward-model metrics from the rewards of chosen and rejected responses: accuracy, margins, ECE with its
/// reliability table; grouped by `groups` (e.g. each pair's category) when given.
#[wasm_bindgen(js_name = rewardMetrics)]
pub fn reward_metrics(
    chosen: Vec<f64>,
    rejected: Vec<f64>,
    groups: Option<Vec<String>>,
    num_bins: Option<u32>,
) -> Result<JsValue, JsError> {
    let bins = num_bins.map_or(preference::DEFAULT_BINS, |b| b as usize);
    match groups {
        Some(g) => to_js(&preference::reward_metrics_by_group(&chosen, &rejected, &g, bins).map_err(js_err)?),
        None => to_js(&preference::reward_metrics(&chosen, &rejected, bins).map_err(js_err)?),
    }
}

/// Area under the ROC curve of `scores` for binary `labels` (1 = positive).
#[wasm_bindgen]
pub fn auroc(scores: Vec<f64>, labels: Vec<u8>) -> Result<f64, JsError> {
    let labels: Vec<bool> = labels.iter().map(|&l| l != 0).collect();
    preference::auroc(&scores, &labels).map_err(js_err)
}

/// Options of `klToReference` (the core's `KlOptions`, plus how prompts are wrapped).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct KlJs {
    samples: Option<usize>,
    max_new_tokens: Option<usize>,
    seed: Option<u64>,
    /// Plain-text prompts through the chat template (message lists always are), as `eval --chat-template`.
    chat_template: bool,
}

/// KL(policy‖reference) on responses sampled from `policy` for `prompts` (strings or `{role, content}` lists):
/// TRL's `objective/kl`, `objective/entropy`, `completions/mean_length`, and the estimate per prompt; the
/// numbers of `alignlab eval --kl-prompts` for the same models, prompts and seed.
#[wasm_bindgen(js_name = klToReference)]
pub fn kl_to_reference(
    policy: &Model,
    reference: &Model,
    prompts: JsValue,
    options: JsValue,
) -> Result<Promise, JsError> {
    use alignlab_core::data::Text;
    use alignlab_core::eval::kl::{self, KlOptions};
    let prompts: Vec<Text> = serde_wasm_bindgen::from_value(prompts)
        .map_err(|e| JsError::new(&format!("prompts must be an array of strings or of message lists: {e}")))?;
    let opts: KlJs = if options.is_undefined() || options.is_null() {
        KlJs::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(js_err)?
    };
    let tok = &policy.inner.tokenizer;
    let ids = prompts.iter().map(|p| kl::prompt_ids(tok, p, opts.chat_template)).collect::<Result<Vec<_>, _>>();
    let defaults = KlOptions::default();
    let options = KlOptions {
        samples: opts.samples.unwrap_or(defaults.samples),
        max_new_tokens: opts.max_new_tokens.unwrap_or(defaults.max_new_tokens),
        stop_tokens: tok.eos_id().into_iter().collect(),
        seed: opts.seed.unwrap_or(defaults.seed),
        ..defaults
    };
    let (policy, reference) = (policy.inner.clone(), reference.inner.clone());
    let ids = ids.map_err(js_err)?;
    Ok(promise(async move {
        to_js(&kl::kl_to_reference(&policy.model, &reference.model, &ids, &options).await.map_err(js_err)?)
    }))
}

/// Options of `evaluateData`: β and the tokenisation and batching of a run (snake_case, as `TrainConfig`).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EvalJs {
    beta: f64,
    batch_size: usize,
    max_length: usize,
    max_prompt_length: usize,
    max_list_length: usize,
    chat_template: bool,
    num_bins: usize,
}

impl Default for EvalJs {
    fn default() -> Self {
        let c = TrainConfig::default();
        EvalJs {
            beta: c.beta,
            batch_size: 4,
            max_length: c.max_length,
            max_prompt_length: c.max_prompt_length,
            max_list_length: c.max_list_length,
            chat_template: c.chat_template,
            num_bins: preference::DEFAULT_BINS,
        }
    }
}

/// The implicit rewards β·(log π − log π_ref) of `policy` against `reference` on JSONL data (pairs, unpaired
/// KTO examples or ranked lists, detected from the first record) and their metrics under TRL's names, as
/// `alignlab eval --data`: `{format, examples, overall}`.
#[wasm_bindgen(js_name = evaluateData)]
pub fn evaluate_data(
    policy: &Model,
    reference: &Model,
    data_jsonl: String,
    options: JsValue,
) -> Result<Promise, JsError> {
    use alignlab_core::data::TokenizeOptions;
    use alignlab_core::eval::implicit::{detect_format, implicit_rewards};
    use alignlab_core::ref_logps::objective_for;
    let o: EvalJs = if options.is_undefined() || options.is_null() {
        EvalJs::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(js_err)?
    };
    let format = detect_format("data.jsonl", &data_jsonl).ok_or_else(|| {
        JsError::new("data.jsonl: cannot tell its format from the first record (pairs, unpaired examples or lists)")
    })?;
    let objective = objective_for(format).ok_or_else(|| {
        JsError::new(&format!("data.jsonl holds {format:?} records: evaluate pairs, unpaired examples or lists"))
    })?;
    let topts = TokenizeOptions {
        max_length: o.max_length,
        max_prompt_length: o.max_prompt_length,
        chat_template: o.chat_template,
        max_list_length: o.max_list_length,
        ..Default::default()
    };
    let tok = policy.inner.tokenizer.clone();
    let (data, _) =
        TrainData::read("data.jsonl", &data_jsonl, objective, &ReadOptions::default(), &tok, &topts).map_err(js_err)?;
    let config =
        TrainConfig { beta: o.beta, batch_size: o.batch_size.max(1), max_length: o.max_length, ..Default::default() };
    let pad = tok.pad_id().or(tok.eos_id()).unwrap_or(0);
    let (policy, reference) = (policy.inner.clone(), reference.inner.clone());
    Ok(promise(async move {
        let (device, _) = backend();
        let examples = data.len();
        let rewards =
            implicit_rewards(&policy.model, &reference.model, data, &config, pad, &device).await.map_err(js_err)?;
        let overall = rewards.metrics(o.num_bins).map_err(js_err)?;
        to_js(&serde_json::json!({ "format": format, "examples": examples, "overall": overall }))
    }))
}

/// KTO metrics of unpaired examples from their implicit rewards, the policy's log-probs, labels (1 = desirable)
/// and optionally the log-ratios of their KL pairs.
#[wasm_bindgen(js_name = unpairedMetrics)]
pub fn unpaired_metrics(
    rewards: Vec<f64>,
    logps: Vec<f64>,
    desirable: Vec<u8>,
    kl_ratios: Option<Vec<f64>>,
) -> Result<JsValue, JsError> {
    use alignlab_core::eval::unpaired;
    let desirable: Vec<bool> = desirable.iter().map(|&d| d != 0).collect();
    to_js(&unpaired::unpaired_metrics(&rewards, &logps, &desirable, kl_ratios.as_deref()).map_err(js_err)?)
}

/// Ranking metrics of lists from each response's implicit reward and label (arrays of arrays).
#[wasm_bindgen(js_name = rankingMetrics)]
pub fn ranking_metrics(rewards: JsValue, labels: JsValue) -> Result<JsValue, JsError> {
    use alignlab_core::eval::ranking;
    let lists = |v: JsValue, what: &str| -> Result<Vec<Vec<f64>>, JsError> {
        serde_wasm_bindgen::from_value(v)
            .map_err(|e| JsError::new(&format!("{what} must be an array of arrays of numbers: {e}")))
    };
    to_js(&ranking::ranking_metrics(&lists(rewards, "rewards")?, &lists(labels, "labels")?).map_err(js_err)?)
}
