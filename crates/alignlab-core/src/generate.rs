//! Text generation with a KV cache: greedy decoding and sampling (temperature, top-k, top-p, CTRL's
//! repetition penalty), stop tokens and stop strings, `n` samples per prompt, seeded, batched.
//!
//! Each step is one forward of one position per sample and one read back of the last position's logits
//! (asynchronous, so it works on wasm). The token is chosen on the host from those logits with
//! [`SplitMix64`], never with a backend's RNG: a seed gives the same tokens on every backend that computes
//! the same logits (a near-tie can still go either way where two backends' logits differ in the last bits).
//!
//! The sequences (each prompt's `n` samples, prompt after prompt) are decoded `batch_size` at a time, one
//! forward per step for the whole batch. Prompts of different lengths are left-padded and the padding is
//! masked out of attention, with RoPE positions counted from each row's first real token
//! ([`Llama::forward_hidden_padded`]), so a row's tokens are the ones it gets alone: the batch size changes
//! the speed, not the output (up to float rounding deciding a near-tie). A sequence that finishes leaves the
//! batch (its rows of the KV cache are dropped).
//!
//! The sampling math is in plain functions over `f32` slices ([`apply_repetition_penalty`],
//! [`distribution`], [`draw`], [`argmax`]), in the order transformers applies its logits processors:
//! repetition penalty, then temperature, top-k, top-p.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::llama::{KvCache, Llama};
use crate::rng::SplitMix64;
use crate::tokenizer::Tokenizer;

/// Most samples per prompt, and most sequences per batch: one step holds `batch_size × vocab` logits on the host.
pub const MAX_SAMPLES: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("prompt {prompt} is empty: generation needs at least one token to condition on")]
    EmptyPrompt { prompt: usize },
    #[error("prompt {prompt}: token id {id} is outside the vocabulary of {vocab} tokens")]
    BadToken { prompt: usize, id: u32, vocab: usize },
    #[error("generation option {field}: {reason}")]
    Options { field: &'static str, reason: String },
    #[error("stop strings need decoded text: pass a detokenizer (the model's tokenizer) to generate")]
    StopNeedsText,
    #[error("the model produced a logit of {value} at step {step}: sampling needs finite logits")]
    NotFinite { step: usize, value: f32 },
    #[error("reading the logits back from the device failed: {0}")]
    Read(String),
    #[error("decoding the generated tokens failed: {0}")]
    Decode(String),
}

/// How to generate. The names are transformers' `GenerationConfig`'s where it has them; `stop` is the stop
/// strings (OpenAI's and vLLM's name, the CLI's `--stop`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateOptions {
    /// Most tokens to produce per sample.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 is greedy decoding (top-k, top-p and the seed are then moot).
    pub temperature: f32,
    /// Keep only the k most likely tokens (ties broken towards the lower id); 0 keeps all.
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability is at least `top_p`
    /// (after top-k, renormalised); 1 keeps all.
    pub top_p: f32,
    /// CTRL's repetition penalty (Keskar et al. 2019, as transformers applies it): the logit of every token
    /// already in the prompt or the output is divided by it when positive and multiplied when negative;
    /// 1 is off.
    pub repetition_penalty: f32,
    /// A sample ends after producing any of these (the model's end-of-turn token, usually); it is kept in
    /// [`Sample::tokens`].
    pub stop_tokens: Vec<u32>,
    /// A sample ends once its decoded text contains any of these; the text is cut before it.
    pub stop: Vec<String>,
    /// Samples per prompt.
    pub n: usize,
    /// Most sequences (prompts × samples) decoded together in one forward per step.
    pub batch_size: usize,
    /// Seed of the host-side sampler; sample `i` of prompt `p` draws from its own stream, so it does not
    /// depend on `n` or on the other prompts.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            stop_tokens: Vec::new(),
            stop: Vec::new(),
            n: 1,
            batch_size: 8,
            seed: 0,
        }
    }
}

impl GenerateOptions {
    /// Checks every field, naming the one that is out of range.
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |field, reason: String| Err(GenerateError::Options { field, reason });
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature", format!("{} is not a finite number ≥ 0", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("{} is outside (0, 1]", self.top_p));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad("repetition_penalty", format!("{} is not a finite number > 0", self.repetition_penalty));
        }
        if self.n == 0 || self.n > MAX_SAMPLES {
            return bad("n", format!("{} is outside 1..={MAX_SAMPLES}", self.n));
        }
        if self.batch_size == 0 || self.batch_size > MAX_SAMPLES {
            return bad("batch_size", format!("{} is outside 1..={MAX_SAMPLES}", self.batch_size));
        }
        if let Some(i) = self.stop.iter().position(String::is_empty) {
            return bad("stop", format!("stop string {i} is empty"));
        }
        Ok(())
    }
}

/// Turns generated ids into text, for stop strings and streaming; the model's [`Tokenizer`] is one.
pub trait Detokenize {
    fn detokenize(&self, ids: &[u32]) -> Result<String, String>;
}

impl Detokenize for Tokenizer {
    /// Special tokens (the end-of-turn token) are left out of the text.
    fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        self.decode(ids, true).map_err(|e| e.to_string())
    }
}

/// Why a sample ended (OpenAI's and vLLM's `finish_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token or a stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

/// One generated continuation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The new tokens: a stop token, or the tokens that completed a stop string, included.
    pub tokens: Vec<u32>,
    /// The decoded text, cut before a stop string; `None` when no detokenizer was given.
    pub text: Option<String>,
    pub finish_reason: FinishReason,
}

/// What [`generate`] reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// Sample `sample` of prompt `prompt` produced token `id`. `text` is the text that became final with it:
    /// empty without a detokenizer, and held back while it ends inside a character or could be the start of
    /// a stop string; the pieces of a sample concatenate to its [`Sample::text`].
    Token { prompt: usize, sample: usize, id: u32, text: &'a str },
    /// Every sample of prompt `prompt` is finished.
    Done { prompt: usize, samples: &'a [Sample] },
}

/// Generates `options.n` continuations of each prompt (token ids, the chat template already applied).
///
/// `text` decodes tokens for stop strings and streamed text (required when `options.stop` is not empty).
/// Returns, per prompt, its samples in order.
pub async fn generate<P: AsRef<[u32]>>(
    model: &Llama,
    prompts: &[P],
    options: &GenerateOptions,
    text: Option<&dyn Detokenize>,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Vec<Vec<Sample>>, GenerateError> {
    options.validate()?;
    if !options.stop.is_empty() && text.is_none() {
        return Err(GenerateError::StopNeedsText);
    }
    let vocab = model.vocab_size();
    for (prompt, ids) in prompts.iter().enumerate() {
        let ids = ids.as_ref();
        if ids.is_empty() {
            return Err(GenerateError::EmptyPrompt { prompt });
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(GenerateError::BadToken { prompt, id, vocab });
        }
    }
    let rows: Vec<(usize, usize)> = (0..prompts.len()).flat_map(|p| (0..options.n).map(move |s| (p, s))).collect();
    let mut all: Vec<Vec<Sample>> = prompts.iter().map(|_| Vec::with_capacity(options.n)).collect();
    let mut done = 0;
    for batch in rows.chunks(options.batch_size) {
        let samples = generate_batch(model, prompts, batch, options, text, &mut on_event).await?;
        // Rows are in (prompt, sample) order, so each prompt's samples arrive in order.
        for (&(prompt, _), sample) in batch.iter().zip(samples) {
            all[prompt].push(sample);
        }
        while done < prompts.len() && all[done].len() == options.n {
            on_event(Event::Done { prompt: done, samples: &all[done] });
            done += 1;
        }
    }
    Ok(all)
}

/// The random stream of sample `sample` of prompt `prompt`: the seed offset by a SplitMix64 hash of the
/// pair, so that streams neither coincide nor overlap in practice.
fn sample_rng(seed: u64, prompt: usize, sample: usize) -> SplitMix64 {
    let key = SplitMix64::new(((prompt as u64) << 32) ^ sample as u64).next_u64();
    SplitMix64::new(seed ^ key)
}

/// The state of one sample while it is generated.
struct Slot<'p> {
    prompt: usize,
    sample: usize,
    ids: &'p [u32],
    rng: SplitMix64,
    tokens: Vec<u32>,
    finished: Option<FinishReason>,
    /// The decoded text (cut at a stop string once found).
    text: String,
    /// The part of `text` already streamed.
    streamed: usize,
}

/// Generates the sequences `rows` (`(prompt, sample)` pairs) as one batch: the prompts left-padded to the
/// longest, one forward per step, finished rows dropped from the batch. Returns the samples in `rows`' order.
async fn generate_batch<P: AsRef<[u32]>>(
    model: &Llama,
    prompts: &[P],
    rows: &[(usize, usize)],
    options: &GenerateOptions,
    detok: Option<&dyn Detokenize>,
    on_event: &mut impl FnMut(Event<'_>),
) -> Result<Vec<Sample>, GenerateError> {
    let mut slots: Vec<Slot> = rows
        .iter()
        .map(|&(prompt, sample)| Slot {
            prompt,
            sample,
            ids: prompts[prompt].as_ref(),
            rng: sample_rng(options.seed, prompt, sample),
            tokens: Vec::new(),
            finished: None,
            text: String::new(),
            streamed: 0,
        })
        .collect();
    let device = model.embed_tokens.val().device();
    let head = model.head_weight();
    let mut cache = KvCache::new();
    let mut width = slots.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    // Left padding of each live row; the padding's token id is irrelevant (masked out), 0 is in every vocabulary.
    let mut pad: Vec<usize> = slots.iter().map(|s| width - s.ids.len()).collect();
    let mut input: Vec<i64> = slots
        .iter()
        .flat_map(|s| std::iter::repeat_n(0, width - s.ids.len()).chain(s.ids.iter().map(|&i| i as i64)))
        .collect();
    // The slots still in the batch, in batch-row order.
    let mut live: Vec<usize> = (0..slots.len()).collect();
    let mut scratch = Vec::new();
    for step in 0..options.max_new_tokens {
        let b = live.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(std::mem::take(&mut input), [b, width]), &device);
        let hidden = model.forward_hidden_padded(ids, Some(pad.as_slice()), Some(&mut cache));
        let d = hidden.dims()[2];
        let last = hidden.narrow(1, width - 1, 1).reshape([b, d]);
        // `head · lastᵀ`, then the small `[vocab, b]` result transposed: `last · headᵀ` would make CPU backends
        // copy the whole `[vocab, d]` head into a transposed layout at every step.
        let logits = head.clone().matmul(last.transpose()).transpose();
        let data = logits.into_data_async().await.map_err(|e| GenerateError::Read(format!("{e:?}")))?;
        let logits: Vec<f32> = data.iter::<f32>().collect();
        let row_len = logits.len() / b;
        for (row, &i) in live.iter().enumerate() {
            let slot = &mut slots[i];
            let logits = &logits[row * row_len..(row + 1) * row_len];
            let id = choose(logits, slot.ids, &slot.tokens, options, &mut slot.rng, &mut scratch)
                .map_err(|value| GenerateError::NotFinite { step, value })?;
            slot.tokens.push(id);
            if options.stop_tokens.contains(&id) {
                slot.finished = Some(FinishReason::Stop);
            } else if slot.tokens.len() == options.max_new_tokens {
                slot.finished = Some(FinishReason::Length);
            }
            let piece = match detok {
                Some(d) => advance_text(slot, d, &options.stop)?,
                None => String::new(),
            };
            on_event(Event::Token { prompt: slot.prompt, sample: slot.sample, id, text: &piece });
        }
        let kept: Vec<usize> = (0..b).filter(|&row| slots[live[row]].finished.is_none()).collect();
        if kept.is_empty() {
            break;
        }
        if kept.len() < b {
            cache.select_rows(&kept);
            pad = kept.iter().map(|&row| pad[row]).collect();
            live = kept.iter().map(|&row| live[row]).collect();
        }
        input = live.iter().map(|&i| *slots[i].tokens.last().expect("a live row has a token") as i64).collect();
        width = 1;
    }
    Ok(slots
        .into_iter()
        .map(|s| Sample {
            tokens: s.tokens,
            text: detok.map(|_| s.text),
            finish_reason: s.finished.unwrap_or(FinishReason::Length),
        })
        .collect())
}

/// The next token from one row of logits: greedy at temperature 0, a draw otherwise. `Err` carries a NaN or
/// +∞ logit, or −∞ when every logit is −∞.
fn choose(
    row: &[f32],
    prompt: &[u32],
    output: &[u32],
    options: &GenerateOptions,
    rng: &mut SplitMix64,
    scratch: &mut Vec<f32>,
) -> Result<u32, f32> {
    if let Some(&bad) = row.iter().find(|x| x.is_nan() || **x == f32::INFINITY) {
        return Err(bad);
    }
    if row.iter().all(|&x| x == f32::NEG_INFINITY) {
        return Err(f32::NEG_INFINITY);
    }
    let logits = if options.repetition_penalty != 1.0 {
        scratch.clear();
        scratch.extend_from_slice(row);
        apply_repetition_penalty(scratch, prompt.iter().chain(output).copied(), options.repetition_penalty);
        &scratch[..]
    } else {
        row
    };
    if options.temperature == 0.0 {
        return Ok(argmax(logits));
    }
    let dist = distribution(logits, options.temperature, options.top_k, options.top_p);
    Ok(draw(&dist, rng.next_f64()))
}

/// Updates a sample's text after a new token (finding a stop string, which finishes it) and returns the
/// piece that became final.
fn advance_text(slot: &mut Slot<'_>, detok: &dyn Detokenize, stop: &[String]) -> Result<String, GenerateError> {
    let mut full = detok.detokenize(&slot.tokens).map_err(GenerateError::Decode)?;
    if let Some(cut) = find_stop(&full, stop) {
        full.truncate(cut);
        slot.finished = Some(FinishReason::Stop);
    }
    let stable = if slot.finished.is_some() { full.len() } else { stable_len(&full, stop) };
    // Decoding a longer sequence can rewrite the end of the shorter one's text (a replacement character
    // becoming a whole one): stream only while what was streamed is still a prefix.
    let shown = &slot.text[..slot.streamed];
    let piece = if stable > slot.streamed && full.starts_with(shown) {
        let piece = full[slot.streamed..stable].to_string();
        slot.streamed = stable;
        piece
    } else {
        String::new()
    };
    slot.text = full;
    Ok(piece)
}

/// Byte offset of the earliest occurrence of any stop string in `text`.
fn find_stop(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// Length of the prefix of `text` that is final: without trailing replacement characters (a character cut
/// between tokens) and without the longest end that could be the start of a stop string.
fn stable_len(text: &str, stop: &[String]) -> usize {
    let text = text.trim_end_matches('\u{FFFD}');
    let held = stop
        .iter()
        .flat_map(|s| (1..s.len()).filter(|&k| s.is_char_boundary(k) && text.ends_with(&s[..k])))
        .max()
        .unwrap_or(0);
    text.len() - held
}

/// CTRL's repetition penalty in place: for each distinct id in `previous`, its logit is divided by `penalty`
/// when positive and multiplied by it when negative (so `penalty > 1` always makes it less likely). Ids
/// outside `logits` are ignored.
pub fn apply_repetition_penalty(logits: &mut [f32], previous: impl IntoIterator<Item = u32>, penalty: f32) {
    let mut ids: Vec<u32> = previous.into_iter().filter(|&id| (id as usize) < logits.len()).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let x = &mut logits[id as usize];
        *x = if *x > 0.0 { *x / penalty } else { *x * penalty };
    }
}

/// Index of the largest logit, the lowest index among equals.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The sampling distribution of `logits` (finite or −∞, at least one finite): `softmax(logits / temperature)`
/// restricted to the `top_k` most likely tokens (0: all; ties broken towards the lower id, so exactly k are
/// kept), renormalised, then to the smallest set of most likely tokens whose mass is at least `top_p` (1: all),
/// renormalised. Returns `(id, probability)` of the kept tokens; computed in f64.
pub fn distribution(logits: &[f32], temperature: f32, top_k: usize, top_p: f32) -> Vec<(u32, f64)> {
    let t = temperature as f64;
    let mut kept: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .filter(|(_, x)| **x > f32::NEG_INFINITY)
        .map(|(i, &x)| (i as u32, x as f64 / t))
        .collect();
    let more_likely = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if top_k > 0 && top_k < kept.len() {
        kept.select_nth_unstable_by(top_k - 1, more_likely);
        kept.truncate(top_k);
    }
    let max = kept.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    kept.iter_mut().for_each(|c| c.1 = (c.1 - max).exp());
    normalise(&mut kept);
    if top_p < 1.0 {
        kept.sort_unstable_by(more_likely);
        let (mut mass, mut keep) = (0.0, 0);
        for c in &kept {
            mass += c.1;
            keep += 1;
            if mass >= top_p as f64 {
                break;
            }
        }
        kept.truncate(keep);
        normalise(&mut kept);
    }
    kept
}

fn normalise(dist: &mut [(u32, f64)]) {
    let total: f64 = dist.iter().map(|c| c.1).sum();
    dist.iter_mut().for_each(|c| c.1 /= total);
}

/// The id at which the cumulative probability first exceeds `u ∈ [0, 1)` (inverse-CDF sampling); the last
/// id when rounding leaves `u` past the total. `dist` must not be empty.
pub fn draw(dist: &[(u32, f64)], u: f64) -> u32 {
    let target = u * dist.iter().map(|c| c.1).sum::<f64>();
    let mut cumulative = 0.0;
    for &(id, p) in dist {
        cumulative += p;
        if target < cumulative {
            return id;
        }
    }
    dist.last().expect("a distribution has at least one token").0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretrained::Pretrained;
    use crate::tiny::tiny_gguf;
    use burn::tensor::Device;

    fn probs(dist: &[(u32, f64)]) -> Vec<(u32, f64)> {
        let mut d = dist.to_vec();
        d.sort_by_key(|c| c.0);
        d
    }

    fn assert_dist(got: &[(u32, f64)], want: &[(u32, f64)]) {
        let got = probs(got);
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0, "{got:?} vs {want:?}");
            assert!((g.1 - w.1).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    /// ln of [0.5, 0.3, 0.15, 0.05]: a softmax at temperature 1 gives these probabilities back.
    fn four() -> Vec<f32> {
        [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect()
    }

    #[test]
    fn temperature_scales_logits_before_the_softmax() {
        // logits [0, ln 2] at T = 2: softmax([0, ln2/2]) ∝ [1, √2] → [1/(1+√2), √2/(1+√2)] = [0.414214, 0.585786].
        let logits = [0.0, 2f32.ln()];
        assert_dist(&distribution(&logits, 2.0, 0, 1.0), &[(0, 0.414_213_56), (1, 0.585_786_44)]);
        // T = 1 gives [1/3, 2/3]; T = 0.5: ∝ [1, 4] → [0.2, 0.8].
        assert_dist(&distribution(&logits, 1.0, 0, 1.0), &[(0, 1.0 / 3.0), (1, 2.0 / 3.0)]);
        assert_dist(&distribution(&logits, 0.5, 0, 1.0), &[(0, 0.2), (1, 0.8)]);
    }

    #[test]
    fn top_k_keeps_exactly_k_and_renormalises() {
        // k = 2 of [0.5, 0.3, 0.15, 0.05]: {0, 1}, renormalised by 0.8 → [0.625, 0.375].
        assert_dist(&distribution(&four(), 1.0, 2, 1.0), &[(0, 0.625), (1, 0.375)]);
        // Ties: logits [1, 3, 3, 2]; k = 2 keeps the two 3s, k = 1 the lower id of them (exactly one).
        let tied = [1.0f32, 3.0, 3.0, 2.0];
        assert_dist(&distribution(&tied, 1.0, 2, 1.0), &[(1, 0.5), (2, 0.5)]);
        assert_dist(&distribution(&tied, 1.0, 1, 1.0), &[(1, 1.0)]);
        // k ≥ vocabulary keeps everything.
        assert_eq!(distribution(&tied, 1.0, 9, 1.0).len(), 4);
    }

    #[test]
    fn top_p_keeps_the_smallest_set_with_enough_mass() {
        // Cumulative mass of [0.5, 0.3, 0.15, 0.05] in order: 0.5, 0.8, 0.95, 1.0.
        // p = 0.45: 0.5 ≥ 0.45 → {0}.
        assert_dist(&distribution(&four(), 1.0, 0, 0.45), &[(0, 1.0)]);
        // p = 0.75: 0.5 < 0.75 ≤ 0.8 → {0, 1}, renormalised by 0.8 → [0.625, 0.375].
        assert_dist(&distribution(&four(), 1.0, 0, 0.75), &[(0, 0.625), (1, 0.375)]);
        // p = 0.9: 0.8 < 0.9 ≤ 0.95 → {0, 1, 2} / 0.95 → [0.526316, 0.315789, 0.157895].
        assert_dist(&distribution(&four(), 1.0, 0, 0.9), &[(0, 0.5 / 0.95), (1, 0.3 / 0.95), (2, 0.15 / 0.95)]);
        // p = 0.99: all four.
        assert_eq!(distribution(&four(), 1.0, 0, 0.99).len(), 4);
        // After top-k = 3 the masses are [0.5, 0.3, 0.15] / 0.95 = [0.526, 0.316, 0.158]: p = 0.8 needs
        // 0.526 + 0.316 = 0.842 ≥ 0.8 → {0, 1} → [0.625, 0.375].
        assert_dist(&distribution(&four(), 1.0, 3, 0.8), &[(0, 0.625), (1, 0.375)]);
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits_once_per_token() {
        let mut logits = [2.0f32, -1.0, 0.5, 3.0];
        // Token 1 appears twice and is penalised once; 7 is outside the vocabulary and ignored.
        apply_repetition_penalty(&mut logits, [0, 1, 1, 7], 2.0);
        assert_eq!(logits, [1.0, -2.0, 0.5, 3.0]);
    }

    #[test]
    fn negative_infinity_is_never_drawn_and_argmax_takes_the_first_maximum() {
        let logits = [f32::NEG_INFINITY, 0.0, 0.0];
        assert_dist(&distribution(&logits, 1.0, 0, 1.0), &[(1, 0.5), (2, 0.5)]);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }

    #[test]
    fn draw_inverts_the_cumulative_distribution() {
        let dist = [(7, 0.25), (3, 0.75)];
        assert_eq!(draw(&dist, 0.0), 7);
        assert_eq!(draw(&dist, 0.249), 7);
        assert_eq!(draw(&dist, 0.25), 3);
        assert_eq!(draw(&dist, 0.999_999), 3);
    }

    #[test]
    fn seeded_draws_have_the_distributions_frequencies() {
        // softmax([0.5, 0.3, 0.15, 0.05] after top-k 3) = [0.5, 0.3, 0.15] / 0.95. With N = 200 000 draws the
        // standard error of a frequency is √(p(1−p)/N) ≤ 0.0012; the bound is 5 of them (a random seed would
        // exceed it with probability < 3e-6 per token). The seed is fixed, so the test cannot flake.
        let dist = distribution(&four(), 1.0, 3, 1.0);
        let n = 200_000;
        let mut rng = SplitMix64::new(2024);
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[draw(&dist, rng.next_f64()) as usize] += 1;
        }
        assert_eq!(counts[3], 0, "top-k removed token 3");
        for &(id, p) in &dist {
            let freq = counts[id as usize] as f64 / n as f64;
            let bound = 5.0 * (p * (1.0 - p) / n as f64).sqrt();
            assert!((freq - p).abs() < bound, "token {id}: frequency {freq} vs p {p} (bound {bound})");
        }
    }

    #[test]
    fn stop_strings_are_held_back_while_they_could_start() {
        let stop = vec!["\nUser:".to_string()];
        assert_eq!(stable_len("Hi\nUs", &stop), 2);
        assert_eq!(stable_len("Hi\nUx", &stop), 5);
        assert_eq!(stable_len("Hi \u{FFFD}", &stop), 3);
        assert_eq!(find_stop("a\nUser: b", &stop), Some(1));
        assert_eq!(find_stop("abc", &stop), None);
    }

    #[test]
    fn bad_options_name_the_field() {
        let opts = GenerateOptions { top_p: 0.0, ..Default::default() };
        assert_eq!(opts.validate().unwrap_err().to_string(), "generation option top_p: 0 is outside (0, 1]");
        let opts = GenerateOptions { temperature: -1.0, ..Default::default() };
        assert!(opts.validate().unwrap_err().to_string().contains("temperature"));
        let opts = GenerateOptions { n: 0, ..Default::default() };
        assert!(opts.validate().unwrap_err().to_string().contains("option n"));
        let opts = GenerateOptions { stop: vec!["".into()], ..Default::default() };
        assert!(opts.validate().unwrap_err().to_string().contains("stop string 0 is empty"));
    }

    fn tiny() -> Pretrained {
        Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).expect("the tiny model loads")
    }

    fn run(p: &Pretrained, prompts: &[Vec<u32>], opts: &GenerateOptions) -> Vec<Vec<Sample>> {
        pollster::block_on(generate(&p.model, prompts, opts, Some(&p.tokenizer), |_| {})).unwrap()
    }

    #[test]
    fn samples_are_seeded_independent_of_n_and_streamed_in_pieces() {
        let p = tiny();
        let prompt = p.tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n").unwrap();
        let opts = GenerateOptions { max_new_tokens: 10, temperature: 1.0, n: 3, seed: 5, ..Default::default() };
        let a = run(&p, std::slice::from_ref(&prompt), &opts);
        assert_eq!(a, run(&p, std::slice::from_ref(&prompt), &opts), "same seed, same samples");
        assert_eq!(a[0].len(), 3);
        assert!(a[0][0].tokens != a[0][1].tokens, "samples of one prompt differ");
        let other = run(&p, std::slice::from_ref(&prompt), &GenerateOptions { seed: 6, ..opts.clone() });
        assert_ne!(a[0][0].tokens, other[0][0].tokens, "another seed, other samples");
        // Sample 0 does not depend on how many samples run beside it.
        let one = run(&p, std::slice::from_ref(&prompt), &GenerateOptions { n: 1, ..opts.clone() });
        assert_eq!(one[0][0].tokens, a[0][0].tokens);
        // The streamed pieces of a sample add up to its text.
        let mut pieces = vec![String::new(); 3];
        let mut done = 0;
        let streamed = pollster::block_on(generate(&p.model, &[prompt], &opts, Some(&p.tokenizer), |e| match e {
            Event::Token { sample, text, .. } => pieces[sample].push_str(text),
            Event::Done { samples, .. } => done += samples.len(),
        }))
        .unwrap();
        assert_eq!(done, 3);
        for (s, piece) in streamed[0].iter().zip(&pieces) {
            assert_eq!(s.text.as_deref(), Some(piece.as_str()));
            assert_eq!(s.finish_reason, FinishReason::Length);
        }
    }

    #[test]
    fn temperature_zero_is_greedy_and_stops_end_samples() {
        let p = tiny();
        let prompt = p.tokenizer.encode("<|im_start|>user\nhello<|im_end|>\n").unwrap();
        let greedy = GenerateOptions { max_new_tokens: 8, n: 2, seed: 1, ..Default::default() };
        let g = run(&p, std::slice::from_ref(&prompt), &greedy);
        assert_eq!(g[0][0], g[0][1], "greedy samples are identical");
        // The greedy tokens are the argmax of the full forward at each step.
        let mut seq = prompt.clone();
        for &id in &g[0][0].tokens {
            let ids: Vec<i64> = seq.iter().map(|&i| i as i64).collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq.len()]), &Device::flex());
            let h = p.model.forward_hidden(ids, None).narrow(1, seq.len() - 1, 1).reshape([1, 64]);
            let logits: Vec<f32> = h.matmul(p.model.head_weight().transpose()).into_data().iter::<f32>().collect();
            assert_eq!(argmax(&logits), id);
            seq.push(id);
        }
        // A stop token ends the sample and is kept.
        let t = g[0][0].tokens[2];
        let s = run(&p, std::slice::from_ref(&prompt), &GenerateOptions { stop_tokens: vec![t], ..greedy.clone() });
        assert_eq!(s[0][0].tokens.last(), Some(&t));
        assert_eq!(s[0][0].finish_reason, FinishReason::Stop);
        // Stop strings, with a detokenizer that spells each id as one letter so the text is known: a stop
        // string made of the letters of tokens 2 and 3 ends the sample at its first occurrence, and the text
        // is cut before it.
        let letters: String = g[0][0].tokens.iter().map(|&id| Letters::letter(id)).collect();
        let needle = letters[2..4].to_string();
        let cut = letters.find(&needle).unwrap();
        let opts = GenerateOptions { stop: vec![needle.clone()], ..greedy };
        let mut pieces = String::new();
        let s = pollster::block_on(generate(&p.model, &[prompt], &opts, Some(&Letters), |e| {
            if let Event::Token { text, .. } = e {
                pieces.push_str(text)
            }
        }))
        .unwrap();
        assert_eq!(s[0][0].text.as_deref(), Some(&letters[..cut]), "cut before {needle:?}");
        assert_eq!(pieces, letters[..cut], "the stop string is never streamed");
        assert_eq!(s[0][0].tokens, g[0][0].tokens[..cut + 2]);
        assert_eq!(s[0][0].finish_reason, FinishReason::Stop);
    }

    #[test]
    fn batched_rows_equal_their_unbatched_runs() {
        let p = tiny();
        // Prompts of 2, 11 and 5 tokens, so batches are left-padded by different amounts.
        let prompts: Vec<Vec<u32>> =
            vec![vec![5, 70], vec![1, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130], vec![9, 8, 200, 3, 4]];
        let sampled = GenerateOptions { max_new_tokens: 12, temperature: 1.0, n: 2, seed: 9, ..Default::default() };
        let greedy = GenerateOptions { temperature: 0.0, n: 1, ..sampled.clone() };
        // A stop token taken from one unbatched sample, so that rows finish at different steps.
        let first = run(&p, &prompts, &GenerateOptions { batch_size: 1, ..sampled.clone() });
        let stopped = GenerateOptions { stop_tokens: vec![first[0][1].tokens[3]], ..sampled.clone() };
        for opts in [greedy, sampled, stopped] {
            let alone = run(&p, &prompts, &GenerateOptions { batch_size: 1, ..opts.clone() });
            // 6 rows in batches of 4 (one batch holds samples of two prompts) and all 6 in one.
            for batch_size in [4, 6] {
                let batched = run(&p, &prompts, &GenerateOptions { batch_size, ..opts.clone() });
                assert_eq!(batched, alone, "batch size {batch_size}, {opts:?}");
            }
            if !opts.stop_tokens.is_empty() {
                let lengths: Vec<usize> = alone.iter().flatten().map(|s| s.tokens.len()).collect();
                assert!(lengths.iter().any(|&l| l < 12) && lengths.contains(&12), "rows end apart: {lengths:?}");
            }
        }
        // Events: every token of every row, and one Done per prompt, in prompt order.
        let (mut tokens, mut done) = (0, Vec::new());
        let opts = GenerateOptions { max_new_tokens: 3, n: 2, batch_size: 4, ..Default::default() };
        pollster::block_on(generate(&p.model, &prompts, &opts, None, |e| match e {
            Event::Token { .. } => tokens += 1,
            Event::Done { prompt, samples } => done.push((prompt, samples.len())),
        }))
        .unwrap();
        assert_eq!((tokens, done), (3 * 6, vec![(0, 2), (1, 2), (2, 2)]));
        let bad = GenerateOptions { batch_size: 0, ..opts };
        assert!(bad.validate().unwrap_err().to_string().contains("option batch_size"));
    }

    /// Spells id `i` as the letter `a + i mod 26`.
    struct Letters;

    impl Letters {
        fn letter(id: u32) -> char {
            (b'a' + (id % 26) as u8) as char
        }
    }

    impl Detokenize for Letters {
        fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
            Ok(ids.iter().map(|&id| Letters::letter(id)).collect())
        }
    }

    #[test]
    fn several_prompts_get_their_own_streams_and_bad_prompts_are_named() {
        let p = tiny();
        let a = p.tokenizer.encode("abc").unwrap();
        let opts = GenerateOptions { max_new_tokens: 6, temperature: 1.0, seed: 3, ..Default::default() };
        let out = run(&p, &[a.clone(), a.clone()], &opts);
        assert_ne!(out[0][0].tokens, out[1][0].tokens, "prompt 1 does not replay prompt 0's draws");
        let err = pollster::block_on(generate(&p.model, &[a, vec![]], &opts, None, |_| {})).unwrap_err();
        assert_eq!(err.to_string(), "prompt 1 is empty: generation needs at least one token to condition on");
        let err = pollster::block_on(generate(&p.model, &[vec![1, 9999]], &opts, None, |_| {})).unwrap_err();
        assert!(err.to_string().contains("token id 9999"), "{err}");
        let stop = GenerateOptions { stop: vec!["x".into()], ..opts };
        let err = pollster::block_on(generate(&p.model, &[vec![1]], &stop, None, |_| {})).unwrap_err();
        assert!(matches!(err, GenerateError::StopNeedsText));
    }
}
