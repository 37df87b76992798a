//! KL(π‖π_ref) of a policy to its reference, estimated on responses sampled from the policy (the
//! `objective/kl` of TRL's online trainers, METHODS.md's KL-regularised objective).
//!
//! For a prompt x and responses y⁽¹⁾…y⁽ⁿ⁾ ~ π(·|x), the estimate is
//! `KL̂(x) = 1/n Σ_i Σ_t [log π(y_t⁽ⁱ⁾|x, y_<t⁽ⁱ⁾) − log π_ref(y_t⁽ⁱ⁾|x, y_<t⁽ⁱ⁾)]`, an unbiased estimate of the
//! KL between the two models' distributions over responses of at most `max_new_tokens` tokens (a response cut
//! at the limit is the event "these first tokens", whose log-ratio is exactly that sum). Responses are
//! sampled at temperature 1 without top-k/top-p, so they come from π itself; both log-probs are the masked
//! sequence log-probs of [`crate::objectives::logprob`], scored with a teacher-forced forward pass.
//!
//! Unlike the rest of `eval/`, this runs models: it samples with [`crate::generate`] and reads the summed
//! log-probs back once, at the end.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::Text;
use crate::generate::{GenerateError, GenerateOptions, generate};
use crate::model::llama::Llama;
use crate::objectives::logprob::{chunk_rows, masked_sum, token_logps};
use crate::tokenizer::{Tokenizer, TokenizerError};

#[derive(Debug, thiserror::Error)]
pub enum KlError {
    #[error("no prompts to estimate the KL on")]
    NoPrompts,
    #[error("KL option {field}: {reason}")]
    Options { field: &'static str, reason: String },
    #[error("the policy has {policy} tokens and the reference {reference}: they must share a vocabulary")]
    VocabMismatch { policy: usize, reference: usize },
    #[error("sampling from the policy: {0}")]
    Generate(#[from] GenerateError),
    #[error("reading the log-probs back from the device failed: {0}")]
    Read(String),
}

/// How to sample for the estimate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KlOptions {
    /// Responses sampled per prompt (one batch).
    pub samples: usize,
    /// Most tokens per response.
    pub max_new_tokens: usize,
    /// A response ends after any of these (the model's end-of-turn token, usually); it is scored.
    pub stop_tokens: Vec<u32>,
    /// Seed of the sampler.
    pub seed: u64,
    /// Bytes of one chunk of LM-head logits while scoring (see [`chunk_rows`]).
    pub logits_chunk_bytes: usize,
}

impl Default for KlOptions {
    fn default() -> Self {
        KlOptions { samples: 4, max_new_tokens: 64, stop_tokens: Vec::new(), seed: 0, logits_chunk_bytes: 64 << 20 }
    }
}

/// The estimate, under TRL's names where TRL has them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KlReport {
    /// Mean over prompts of the per-prompt estimate, in nats.
    #[serde(rename = "objective/kl")]
    pub kl: f64,
    /// Mean over samples of `−log π(y|x)` (TRL's estimate of the policy's sequence entropy).
    #[serde(rename = "objective/entropy")]
    pub entropy: f64,
    /// Mean number of response tokens (a stop token included).
    #[serde(rename = "completions/mean_length")]
    pub mean_length: f64,
    /// The estimate of each prompt, in order.
    pub per_prompt: Vec<f64>,
    pub samples_per_prompt: usize,
}

/// Samples `options.samples` responses per prompt (token ids, chat template applied) from `policy` and
/// estimates KL(π‖π_ref) against `reference` (module doc).
pub async fn kl_to_reference<P: AsRef<[u32]>>(
    policy: &Llama,
    reference: &Llama,
    prompts: &[P],
    options: &KlOptions,
) -> Result<KlReport, KlError> {
    if prompts.is_empty() {
        return Err(KlError::NoPrompts);
    }
    if options.max_new_tokens == 0 {
        return Err(KlError::Options { field: "max_new_tokens", reason: "must be at least 1".into() });
    }
    let (pv, rv) = (policy.vocab_size(), reference.vocab_size());
    if pv != rv {
        return Err(KlError::VocabMismatch { policy: pv, reference: rv });
    }
    let sampling = GenerateOptions {
        max_new_tokens: options.max_new_tokens,
        temperature: 1.0,
        stop_tokens: options.stop_tokens.clone(),
        n: options.samples,
        seed: options.seed,
        ..Default::default()
    };
    let sampled = generate(policy, prompts, &sampling, None, |_| {}).await?;
    let chunk = chunk_rows(pv, options.logits_chunk_bytes);
    let mut parts = Vec::with_capacity(2 * prompts.len());
    for (prompt, samples) in prompts.iter().zip(&sampled) {
        let responses: Vec<&[u32]> = samples.iter().map(|s| s.tokens.as_slice()).collect();
        let batch = ResponseBatch::new(prompt.as_ref(), &responses, &policy.embed_tokens.val().device());
        parts.push(batch.logps(policy, chunk));
        parts.push(batch.logps(reference, chunk));
    }
    let data = Tensor::cat(parts, 0).into_data_async().await.map_err(|e| KlError::Read(format!("{e:?}")))?;
    let values: Vec<f64> = data.iter::<f32>().map(f64::from).collect();
    let n = options.samples;
    let mut per_prompt = Vec::with_capacity(prompts.len());
    let mut entropy = 0.0;
    for pair in values.chunks(2 * n) {
        let (pol, reference) = pair.split_at(n);
        per_prompt.push(pol.iter().zip(reference).map(|(p, r)| p - r).sum::<f64>() / n as f64);
        entropy -= pol.iter().sum::<f64>() / n as f64;
    }
    let count = prompts.len() as f64;
    let tokens: usize = sampled.iter().flatten().map(|s| s.tokens.len()).sum();
    Ok(KlReport {
        kl: per_prompt.iter().sum::<f64>() / count,
        entropy: entropy / count,
        mean_length: tokens as f64 / (count * n as f64),
        per_prompt,
        samples_per_prompt: n,
    })
}

/// The ids a prompt is continued from: messages, and plain text with `chat_template`, through the model's chat
/// template with the generation prompt; plain text otherwise as it is; the bos id in front when the tokenizer asks
/// for it (or the prompt is empty), as in training. Every surface samples the KL's prompts (and `generate` its
/// prompts) through here, so they agree on the ids.
pub fn prompt_ids(tok: &Tokenizer, prompt: &Text, chat_template: bool) -> Result<Vec<u32>, TokenizerError> {
    let text = match prompt {
        Text::Plain(p) if !chat_template => p.clone(),
        _ => tok.apply_chat_template(&prompt.to_messages("user"), true)?,
    };
    let mut ids = tok.encode(&text)?;
    if let Some(bos) = tok.bos_id()
        && (tok.add_bos() || ids.is_empty())
        && ids.first() != Some(&bos)
    {
        ids.insert(0, bos);
    }
    Ok(ids)
}

/// `prompt ++ response` for each response, right-padded, with the mask of response targets.
struct ResponseBatch {
    /// `[n, t−1]` model inputs.
    inputs: Tensor<2, Int>,
    /// `[n·(t−1)]` next-token targets.
    targets: Tensor<1, Int>,
    /// `[n·(t−1)]` 1 where the target is a response token.
    mask: Tensor<1>,
    n: usize,
}

impl ResponseBatch {
    fn new(prompt: &[u32], responses: &[&[u32]], device: &burn::tensor::Device) -> Self {
        let n = responses.len();
        let t = prompt.len() + responses.iter().map(|r| r.len()).max().unwrap_or(0);
        let t = t.max(2);
        let (mut inputs, mut targets, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for r in responses {
            // Padding is on the right, after every real token: causality keeps it out of their log-probs.
            let mut seq: Vec<i64> = prompt.iter().chain(*r).map(|&id| id as i64).collect();
            seq.resize(t, 0);
            inputs.extend_from_slice(&seq[..t - 1]);
            targets.extend_from_slice(&seq[1..]);
            mask.extend((1..t).map(|j| if j >= prompt.len() && j < prompt.len() + r.len() { 1.0f32 } else { 0.0 }));
        }
        ResponseBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, t - 1]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n * (t - 1)]), device),
            mask: Tensor::from_data(TensorData::new(mask, [n * (t - 1)]), device),
            n,
        }
    }

    /// Summed response log-probs under `model`, `[n]`.
    fn logps(&self, model: &Llama, chunk: usize) -> Tensor<1> {
        let [n, t1] = self.inputs.dims();
        let hidden = model.forward_hidden(self.inputs.clone(), None);
        let d = hidden.dims()[2];
        let tokens = token_logps(hidden.reshape([n * t1, d]), model.head_weight(), self.targets.clone(), chunk);
        masked_sum(tokens, self.mask.clone(), self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretrained::Pretrained;
    use crate::tiny::tiny_gguf;
    use burn::tensor::{Device, activation};

    fn tiny(seed: u64) -> Pretrained {
        Pretrained::from_gguf(tiny_gguf(seed), &Device::flex()).expect("the tiny model loads")
    }

    fn prompts(p: &Pretrained) -> Vec<Vec<u32>> {
        ["<|im_start|>user\nhi<|im_end|>\n", "Once upon a time"]
            .iter()
            .map(|t| p.tokenizer.encode(t).unwrap())
            .collect()
    }

    #[test]
    fn kl_of_a_model_to_itself_is_exactly_zero() {
        let p = tiny(0);
        let opts = KlOptions { samples: 3, max_new_tokens: 5, stop_tokens: vec![2], seed: 1, ..Default::default() };
        let r = pollster::block_on(kl_to_reference(&p.model, &p.model.clone(), &prompts(&p), &opts)).unwrap();
        assert_eq!(r.kl, 0.0);
        assert_eq!(r.per_prompt, [0.0, 0.0]);
        assert!(r.entropy > 0.0 && r.mean_length > 0.0 && r.mean_length <= 5.0, "{r:?}");
    }

    /// Next-token distribution after `prompt`, in f64.
    fn next_token_probs(model: &Llama, prompt: &[u32]) -> Vec<f64> {
        let ids: Vec<i64> = prompt.iter().map(|&i| i as i64).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, prompt.len()]), &Device::flex());
        let hidden = model.forward_hidden(ids, None).narrow(1, prompt.len() - 1, 1).reshape([1, model.d_model()]);
        let logp = activation::log_softmax(hidden.matmul(model.head_weight().transpose()), 1);
        logp.into_data().iter::<f32>().map(|x| (x as f64).exp()).collect()
    }

    #[test]
    fn one_token_estimate_converges_to_the_exact_kl() {
        // With max_new_tokens = 1 the KL is Σ_v p(v) log p(v)/q(v) over the vocabulary, p and q the two models'
        // next-token distributions. The estimate is a mean of N i.i.d. log-ratios with variance
        // σ² = Σ p (log p/q)² − KL² (computed here exactly), so its standard error is σ/√N; the tolerance is 5
        // of them. The seed is fixed, so the test cannot flake.
        // The random tiny models are nearly uniform (KL ≈ 0.03 between two seeds, about 0.12 σ); with their
        // final norm's gain raised 4× their logits are 4× larger, the KL ≈ 0.5 nats and 2000 samples resolve it.
        let sharpen = |seed| {
            let mut p = tiny(seed);
            p.model.norm.gamma = p.model.norm.gamma.map(|g| g.mul_scalar(4.0));
            p
        };
        let (policy, reference) = (sharpen(0), sharpen(1));
        let prompts = prompts(&policy);
        let n = 2000;
        let opts = KlOptions { samples: n, max_new_tokens: 1, seed: 7, ..Default::default() };
        let r = pollster::block_on(kl_to_reference(&policy.model, &reference.model, &prompts, &opts)).unwrap();
        assert_eq!(r.mean_length, 1.0);
        for (prompt, &estimate) in prompts.iter().zip(&r.per_prompt) {
            let p = next_token_probs(&policy.model, prompt);
            let q = next_token_probs(&reference.model, prompt);
            let ratio: Vec<f64> = p.iter().zip(&q).map(|(p, q)| (p / q).ln()).collect();
            let exact: f64 = p.iter().zip(&ratio).map(|(p, r)| p * r).sum();
            let second: f64 = p.iter().zip(&ratio).map(|(p, r)| p * r * r).sum();
            let stderr = ((second - exact * exact) / n as f64).sqrt();
            assert!(exact > 10.0 * stderr, "the two models must differ measurably (KL {exact}, σ/√N {stderr})");
            eprintln!("prompt of {} tokens: estimate {estimate:.4}, exact {exact:.4}, σ/√N {stderr:.4}", prompt.len());
            assert!((estimate - exact).abs() < 5.0 * stderr, "estimate {estimate} vs exact {exact} (σ/√N {stderr})");
        }
    }

    #[test]
    fn bad_options_and_mismatched_models_are_named() {
        let p = tiny(0);
        let opts = KlOptions { max_new_tokens: 0, ..Default::default() };
        let e = pollster::block_on(kl_to_reference(&p.model, &p.model, &prompts(&p), &opts)).unwrap_err();
        assert_eq!(e.to_string(), "KL option max_new_tokens: must be at least 1");
        let none: &[Vec<u32>] = &[];
        let e = pollster::block_on(kl_to_reference(&p.model, &p.model, none, &KlOptions::default())).unwrap_err();
        assert!(matches!(e, KlError::NoPrompts));
    }
}
