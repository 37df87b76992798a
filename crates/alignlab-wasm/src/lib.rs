//! The wasm-bindgen surface of alignlab: conversions between JS values and the core, nothing else.
//! WebGPU where the page (or Node with the `webgpu` package) offers an adapter, the flex CPU backend
//! otherwise; JS probes for an adapter before asking for WebGPU, because wgpu aborts the instance without one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use alignlab_core::data::{ReadOptions, read_preferences, tokenize_pair, train_eval_split};
use alignlab_core::eval::agreement::{self, LabelValue, Level};
use alignlab_core::eval::preference;
use alignlab_core::generate::{GenerateOptions, greedy};
use alignlab_core::model::llama::{Llama, LlamaConfig};
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::tokenizer::{Message, Tokenizer};
use alignlab_core::train::{TrainConfig, Trainer as CoreTrainer};
use alignlab_core::weights::safetensors::to_safetensors;
use burn::module::Module;
use burn::tensor::Device;
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

    /// Greedy completion of `prompt`; `on_token` receives each decoded piece as it is produced.
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
        Ok(promise(async move { generate(inner, prompt, opts, on_token).await.map(JsValue::from) }))
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
) -> Result<String, JsError> {
    let tok = &inner.tokenizer;
    let text = if opts.chat_template.unwrap_or(false) {
        tok.apply_chat_template(&[Message { role: "user".into(), content: prompt }], true).map_err(js_err)?
    } else {
        prompt
    };
    let ids = tok.encode(&text).map_err(js_err)?;
    let options = GenerateOptions {
        max_new_tokens: opts.max_new_tokens.unwrap_or(32),
        stop_tokens: tok.eos_id().into_iter().collect(),
    };
    let mut produced: Vec<u32> = Vec::new();
    let mut shown = String::new();
    let out = greedy(&inner.model, &ids, &options, |id| {
        produced.push(id);
        if let (Some(f), Ok(text)) = (&on_token, tok.decode(&produced, true)) {
            // Stream only whole characters: a byte-level token can end inside a UTF-8 sequence.
            if text.len() > shown.len() && !text.ends_with('\u{FFFD}') {
                let piece = text[shown.len()..].to_string();
                let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&piece));
                shown = text;
            }
        }
    })
    .await
    .map_err(js_err)?;
    tok.decode(&out, true).map_err(js_err)
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

#[wasm_bindgen]
impl Trainer {
    /// Reads and tokenizes `data_jsonl`, then prepares the run (for DPO: the reference log-probs).
    pub fn create(model: &Model, config: JsValue, data_jsonl: String) -> Result<Promise, JsError> {
        let config: TrainConfig = serde_wasm_bindgen::from_value(config).map_err(js_err)?;
        config.validate().map_err(js_err)?;
        let report = read_preferences("data.jsonl", &data_jsonl, &ReadOptions::default()).map_err(js_err)?;
        let topts = config.tokenize_options();
        let tok = model.inner.tokenizer.clone();
        let pairs = report
            .records
            .iter()
            .filter(|r| !r.tie)
            .map(|r| tokenize_pair(&tok, r, &topts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(js_err)?;
        let pad = tok.pad_id().or(tok.eos_id()).unwrap_or(0);
        let (device, _) = backend();
        let (llama, llama_config) = (model.inner.model.clone(), model.inner.config.clone());
        let (pairs, held_out) = train_eval_split(pairs, config.eval_split, config.seed);
        Ok(promise(async move {
            let mut trainer = CoreTrainer::new(llama, pairs, config, pad, &device).await.map_err(js_err)?;
            trainer.set_eval_pairs(held_out).await.map_err(js_err)?;
            let t = Trainer { inner: Rc::new(RefCell::new(Some(trainer))), config: llama_config, tokenizer: tok };
            Ok(t.into())
        }))
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
