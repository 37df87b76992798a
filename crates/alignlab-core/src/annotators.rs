//! Simulated annotators, modelled on AlpacaFarm (Dubois et al. 2023; METHODS.md §2.G): a documented gold reward
//! made of programmatic features of (prompt, response), a seeded pool of noisy annotators who compare two
//! responses through it, and best-of-n curves of the gold reward against a proxy (a trained reward model) that
//! show over-optimisation (Gao et al. 2022). They label candidate pairs when no human is at hand.
//!
//! Gold features of a response y to a prompt x (each is "more of this"; the weights give the sign):
//! ```text
//! constraint      ∈ [0, 1]    verify(verifier, ground_truth, y).score(): the fraction of the record's checks y passes
//!                             (crate::verify: GSM8K's answer, IFEval's instructions); 0 without ground_truth + verifier
//! relevance       ∈ [−1, 1]   cos(e(x), e(y)), e = the mean-pooled, L2-normalised all-MiniLM-L6-v2 embedding
//! length_penalty  ≥ 0         |ln(w / clamp(w, lo, hi))|, w = max(words(y), 1): 0 inside the band [lo, hi] words,
//!                             ln 2 at half the lower bound or at twice the upper one
//! repetition      ∈ [0, 1]    1 − distinct / total lower-cased word trigrams of y (0 below three words)
//! complete        ∈ {0, 1}    y ends a sentence or a block (. ! ? … : ; a closing quote, bracket or code fence),
//!                             i.e. it was not cut off at max_new_tokens; 0 for an empty y
//! gold(x, y) = Σ_k w_k φ_k    default w: constraint 2, relevance 3, length_penalty −1, repetition −2, complete 0.5
//! ```
//! Words are whitespace-separated runs. Annotator j scores with its own weights, f_j = Σ_k w_jk φ_k (the gold
//! weights unless it names others), and judges a pair shown as A (first, on the left) and B (second):
//! ```text
//! P_j(A ≻ B) = σ((f_j(A) − f_j(B)) / T_j + b_pos + b_len·(|A| − |B|))     |·| = words; A is the one shown first
//! T_j = 0 is the limit: 1 if f_j(A) > f_j(B), 0 if f_j(A) < f_j(B), σ(b_pos + b_len·(|A| − |B|)) if equal
//! tie       when |P_j − ½| ≤ τ_j (the annotator's tie band; τ_j = 0: only an exact ½); nothing is drawn
//! otherwise A wins with probability P_j, then the label flips with probability p_j (AlpacaFarm: 0.25)
//! strength  from the annotator's certainty |P_j − ½| (before the flip): < 0.1 → 1 "slightly better",
//!           < 0.3 → 2 "better", else 3 "much better" (DESIGN.md §3's 1..3, the 7-point scale's halves)
//! ```
//! METHODS.md writes the position term as b_pos·[A shown first]; here A is by definition the one shown first, so
//! b_pos > 0 favours the left response and b_pos < 0 the right one. Each pair of a candidate set is labelled by one
//! annotator drawn uniformly from the training pool (AlpacaFarm's p_sim^ann), or by one named annotator; the
//! order shown is drawn too and logged as `swapped` (the chosen response was on the right). The evaluation
//! annotator (default: the noise-free gold, T = 0) gives the reference labels agreement is measured against.
//!
//! Listwise labels rank a set by Plackett–Luce sampling of the utilities u_i = f_j(y_i)/T_j + b_len·|y_i|
//! (Gumbel-max: sort u_i + Gumbel noise; its pairwise marginals are the σ above without position bias or
//! flips; T_j = 0 sorts by f_j).
//!
//! Randomness comes from [`SplitMix64`] streams derived from one seed, so the same seed, pool and candidates give
//! the same labels on every surface.
//!
//! Best-of-n (Gao et al. 2022 §2; Nakano et al. 2021 app. G): of K candidates with proxy rewards r_(1) ≤ … ≤ r_(K)
//! (sorted ascending; equal proxies rank by index, the later index higher), a uniformly drawn n-subset picks the
//! i-th (1-based) with probability C(i − 1, n − 1) / C(K, n) (it must be in the subset with n − 1 of the i − 1
//! below it), so
//! ```text
//! E[gold of the best-of-n pick] = Σ_i C(i − 1, n − 1) / C(K, n) · gold_(i)        (unbiased, every subset used)
//! KL_bon(n) = ln n − (n − 1)/n                                                      (Gao et al. eq. 1)
//! ```
//! and the same weights give the proxy reward of the pick.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{DataErrorKind, ReadOptions, ReadReport, Text, read_records};
use crate::model::bert::{Bert, Pooling};
use crate::rng::SplitMix64;
use crate::tokenizer::Tokenizer;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Why annotation could not go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnnotateError {
    #[error("pool config: {0}")]
    Config(String),
    #[error("candidate set {set}: {source}")]
    Verify { set: usize, source: crate::verify::VerifyError },
    #[error(
        "the pool weighs relevance, which needs the all-MiniLM-L6-v2 encoder (models/all-MiniLM-L6-v2), and none \
         was given"
    )]
    NoEncoder,
    #[error("embedding with the encoder: {0}")]
    Encoder(String),
    #[error("no annotator named \"{0}\" in the pool")]
    UnknownAnnotator(String),
    #[error("{0}")]
    Mismatch(String),
}

/// One value per gold feature: a response's features, or an annotator's weights on them (missing keys are 0).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Features {
    pub constraint: f64,
    pub relevance: f64,
    pub length_penalty: f64,
    pub repetition: f64,
    pub complete: f64,
}

impl Features {
    /// `Σ_k self_k · other_k`.
    pub fn dot(&self, other: &Features) -> f64 {
        self.values().iter().zip(other.values()).map(|(a, b)| a * b).sum()
    }

    /// The values in the order of [`Features::NAMES`].
    pub fn values(&self) -> [f64; 5] {
        [self.constraint, self.relevance, self.length_penalty, self.repetition, self.complete]
    }

    pub const NAMES: [&str; 5] = ["constraint", "relevance", "length_penalty", "repetition", "complete"];
}

/// The gold reward: its weights and the length band of `length_penalty`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GoldReward {
    pub weights: Features,
    /// Fewest words that cost no length penalty.
    pub min_words: usize,
    /// Most words that cost no length penalty.
    pub max_words: usize,
}

impl Default for GoldReward {
    fn default() -> Self {
        GoldReward {
            weights: Features {
                constraint: 2.0,
                relevance: 3.0,
                length_penalty: -1.0,
                repetition: -2.0,
                complete: 0.5,
            },
            min_words: 10,
            max_words: 300,
        }
    }
}

/// One simulated annotator (see the module doc for how its parameters enter P_j).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Annotator {
    pub name: String,
    /// Its weights on the gold features; absent: the gold weights.
    #[serde(default)]
    pub weights: Option<Features>,
    /// Rationality T_j (≥ 0; 0 = deterministic).
    #[serde(default = "one")]
    pub temperature: f64,
    /// b_pos, logits added in favour of the response shown first.
    #[serde(default)]
    pub position_bias: f64,
    /// b_len, logits per word of length difference (> 0 prefers the longer response).
    #[serde(default)]
    pub length_bias: f64,
    /// Probability p_j that the label is flipped after it is drawn.
    #[serde(default)]
    pub flip: f64,
    /// τ_j: a pair with |P_j − ½| ≤ τ_j is labelled a tie.
    #[serde(default)]
    pub tie_band: f64,
}

fn one() -> f64 {
    1.0
}

impl Annotator {
    /// The noise-free gold annotator: gold weights, T = 0, no bias, no flips.
    pub fn gold() -> Annotator {
        Annotator {
            name: "gold".into(),
            weights: None,
            temperature: 0.0,
            position_bias: 0.0,
            length_bias: 0.0,
            flip: 0.0,
            tie_band: 0.0,
        }
    }

    /// f_j of a response's features.
    pub fn score(&self, gold: &GoldReward, features: &Features) -> f64 {
        self.weights.as_ref().unwrap_or(&gold.weights).dot(features)
    }

    /// P_j(A ≻ B) for A shown first with score `fa` and `words_a` words, B second.
    pub fn preference_probability(&self, fa: f64, fb: f64, words_a: usize, words_b: usize) -> f64 {
        let bias = self.position_bias + self.length_bias * (words_a as f64 - words_b as f64);
        let logit = if self.temperature > 0.0 {
            (fa - fb) / self.temperature + bias
        } else if fa > fb {
            f64::INFINITY
        } else if fa < fb {
            f64::NEG_INFINITY
        } else {
            bias
        };
        sigmoid(logit)
    }
}

/// `1 / (1 + e^(−x))`, exact at ±∞ and without overflow.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// A pool: the gold reward, the training annotators and the evaluation annotator. TOML or JSON with these keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    #[serde(default)]
    pub gold: GoldReward,
    /// The training annotators; each pair is labelled by one drawn uniformly.
    pub annotators: Vec<Annotator>,
    /// The annotator whose labels the others are compared with (default: [`Annotator::gold`]).
    #[serde(default = "Annotator::gold")]
    pub evaluation: Annotator,
}

/// Most annotators a pool may have (a bound for config files).
pub const MAX_ANNOTATORS: usize = 1024;

impl Default for PoolConfig {
    fn default() -> Self {
        Self::alpaca_farm()
    }
}

impl PoolConfig {
    /// The default pool, after AlpacaFarm's p_sim^ann (13 prompted LLM annotators with different styles, biases
    /// and rationality, plus 25 % label flips): eight annotators that weigh the gold features differently, two of
    /// them with a position bias and two with a length bias (one for longer, one for shorter answers), two that
    /// call near-even pairs ties, all with 25 % flips. The evaluation annotator is the noise-free gold.
    pub fn alpaca_farm() -> PoolConfig {
        let gold = GoldReward::default();
        let w = gold.weights;
        let annotator = |name: &str, weights: Option<Features>, temperature: f64| Annotator {
            name: name.into(),
            weights,
            temperature,
            position_bias: 0.0,
            length_bias: 0.0,
            flip: 0.25,
            tie_band: 0.0,
        };
        let annotators = vec![
            annotator("gold-like", None, 0.5),
            annotator("relevance", Some(Features { relevance: 5.0, complete: 0.5, ..Features::default() }), 0.5),
            annotator("rule-follower", Some(Features { constraint: 4.0, ..w }), 0.3),
            Annotator { length_bias: 0.01, ..annotator("verbose", None, 0.5) },
            Annotator { length_bias: -0.01, ..annotator("concise", None, 0.5) },
            Annotator { position_bias: 0.4, ..annotator("first-position", None, 0.7) },
            Annotator { position_bias: -0.3, tie_band: 0.05, ..annotator("second-position", None, 0.7) },
            Annotator {
                tie_band: 0.05,
                ..annotator("fluency", Some(Features { repetition: -5.0, complete: 2.0, relevance: 1.0, ..w }), 0.7)
            },
        ];
        PoolConfig { gold, annotators, evaluation: Annotator::gold() }
    }

    /// Checks every number and name; the error says which annotator and field.
    pub fn validate(&self) -> Result<(), AnnotateError> {
        let bad = |msg: String| Err(AnnotateError::Config(msg));
        let finite = |what: String, w: &Features| -> Result<(), AnnotateError> {
            match Features::NAMES.iter().zip(w.values()).find(|(_, v)| !v.is_finite()) {
                Some((name, v)) => Err(AnnotateError::Config(format!("{what}.{name} is {v}, not a finite number"))),
                None => Ok(()),
            }
        };
        finite("gold.weights".into(), &self.gold.weights)?;
        if self.gold.min_words == 0 || self.gold.min_words > self.gold.max_words {
            return bad(format!(
                "gold: the length band needs 1 ≤ min_words ≤ max_words, found {}..{}",
                self.gold.min_words, self.gold.max_words
            ));
        }
        if self.annotators.is_empty() || self.annotators.len() > MAX_ANNOTATORS {
            return bad(format!("annotators: {} given; a pool has 1 to {MAX_ANNOTATORS}", self.annotators.len()));
        }
        let mut names = std::collections::HashSet::new();
        for (i, a) in self.annotators.iter().chain([&self.evaluation]).enumerate() {
            let at =
                if i < self.annotators.len() { format!("annotators[{i}] \"{}\"", a.name) } else { "evaluation".into() };
            if a.name.trim().is_empty() {
                return bad(format!("{at}: empty name"));
            }
            if i < self.annotators.len() && !names.insert(a.name.as_str()) {
                return bad(format!("{at}: the name is used twice"));
            }
            if let Some(w) = &a.weights {
                finite(format!("{at}.weights"), w)?;
            }
            if !(a.temperature.is_finite() && a.temperature >= 0.0) {
                return bad(format!("{at}: temperature is {}, must be a finite number ≥ 0", a.temperature));
            }
            if !(a.position_bias.is_finite() && a.length_bias.is_finite()) {
                return bad(format!("{at}: position_bias and length_bias must be finite"));
            }
            if !(0.0..=1.0).contains(&a.flip) {
                return bad(format!("{at}: flip is {}, must be a probability in [0, 1]", a.flip));
            }
            if !(0.0..=0.5).contains(&a.tie_band) {
                return bad(format!("{at}: tie_band is {}, must be in [0, 0.5]", a.tie_band));
            }
        }
        Ok(())
    }

    /// Whether any annotator (or the gold reward) weighs `relevance`, so that the encoder is needed.
    pub fn uses_relevance(&self) -> bool {
        self.gold.weights.relevance != 0.0
            || self.annotators.iter().chain([&self.evaluation]).any(|a| a.weights.is_some_and(|w| w.relevance != 0.0))
    }

    /// The index of the training annotator called `name`.
    pub fn index_of(&self, name: &str) -> Result<usize, AnnotateError> {
        self.annotators.iter().position(|a| a.name == name).ok_or_else(|| AnnotateError::UnknownAnnotator(name.into()))
    }

    /// The gold reward of a response's features.
    pub fn gold_reward(&self, features: &Features) -> f64 {
        self.gold.weights.dot(features)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Features

/// Whitespace-separated words.
pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// `|ln(w / clamp(w, lo, hi))|` with w = max(words, 1).
pub fn length_penalty(words: usize, min_words: usize, max_words: usize) -> f64 {
    let w = words.max(1) as f64;
    (w / w.clamp(min_words as f64, max_words.max(min_words) as f64)).ln().abs()
}

/// `1 − distinct / total` of the lower-cased word trigrams; 0 below three words.
pub fn repetition(text: &str) -> f64 {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    if words.len() < 3 {
        return 0.0;
    }
    let trigrams: Vec<&[String]> = words.windows(3).collect();
    let distinct: std::collections::HashSet<&[String]> = trigrams.iter().copied().collect();
    1.0 - distinct.len() as f64 / trigrams.len() as f64
}

/// 1 when the trimmed text ends a sentence or a block, else 0 (see the module doc).
pub fn complete(text: &str) -> f64 {
    let t = text.trim_end();
    let ends = t.ends_with("```") || t.chars().last().is_some_and(|c| ".!?…:;\"'”’)]}".contains(c));
    f64::from(u8::from(ends))
}

/// The features computed from the response alone (relevance and constraint are 0: they need the encoder and
/// the record).
pub fn text_features(response: &str, gold: &GoldReward) -> Features {
    Features {
        length_penalty: length_penalty(words(response), gold.min_words, gold.max_words),
        repetition: repetition(response),
        complete: complete(response),
        ..Features::default()
    }
}

/// The text a feature reads: plain text as it is, a conversation's contents joined by newlines.
pub fn plain(text: &Text) -> String {
    match text {
        Text::Plain(s) => s.clone(),
        Text::Chat(m) => m.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n"),
    }
}

/// Longest input the relevance encoder reads, in word pieces with `[CLS]` and `[SEP]`: all-MiniLM-L6-v2's
/// `max_seq_length` in sentence-transformers (longer texts are cut there, as it does).
pub const RELEVANCE_MAX_TOKENS: usize = 256;

/// L2-normalised mean-pooled sentence embeddings of `texts` (sentence-transformers' all-MiniLM-L6-v2 recipe),
/// `batch` texts per forward pass, read back once per batch.
pub async fn sentence_embeddings(
    bert: &Bert,
    tokenizer: &Tokenizer,
    texts: &[String],
    batch: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, AnnotateError> {
    let max = RELEVANCE_MAX_TOKENS.min(bert.max_len());
    let mut ids = Vec::with_capacity(texts.len());
    for t in texts {
        let mut v = tokenizer.encode_with(t, true).map_err(|e| AnnotateError::Encoder(e.to_string()))?;
        if v.len() > max {
            let sep = *v.last().expect("longer than max");
            v.truncate(max - 1);
            v.push(sep);
        }
        ids.push(v);
    }
    // Similar lengths together: less padding per batch.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let d = bert.d_model();
    let ids = &ids;
    let mut out = vec![Vec::new(); texts.len()];
    for group in order.chunks(batch.max(1)) {
        let t = group.iter().map(|&i| ids[i].len()).max().unwrap_or(1).max(1);
        let flat: Vec<i64> =
            group.iter().flat_map(|&i| (0..t).map(move |j| ids[i].get(j).map_or(0, |&x| x as i64))).collect();
        let lengths: Vec<usize> = group.iter().map(|&i| ids[i].len()).collect();
        let x = Tensor::<2, Int>::from_data(TensorData::new(flat, [group.len(), t]), device);
        let e = bert.sentence_embeddings(x, &lengths, Pooling::Mean);
        let data = e.into_data_async().await.map_err(|e| AnnotateError::Encoder(format!("{e:?}")))?;
        let values: Vec<f32> = data.iter::<f32>().collect();
        for (&i, row) in group.iter().zip(values.chunks(d)) {
            out[i] = row.to_vec();
        }
    }
    Ok(out)
}

/// The encoder that scores relevance: all-MiniLM-L6-v2 and its tokenizer ([`crate::model::bert::bert_tokenizer`]).
pub struct Encoder<'a> {
    pub bert: &'a Bert,
    pub tokenizer: &'a Tokenizer,
    pub device: &'a Device,
}

// ---------------------------------------------------------------------------------------------------------------
// Candidate sets

/// A candidate set: the output of `alignlab generate --n K --out` (`{"prompt", "responses": [...]}`, DESIGN.md §3's
/// listwise record without a ranking), optionally with `ground_truth` + `verifier` (§3's verifiable record).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CandidateSet {
    pub prompt: Text,
    pub responses: Vec<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// 1-based line in the file it was read from.
    #[serde(default, skip_serializing)]
    pub line: usize,
}

/// Reads candidate sets (JSONL or a JSON array): 1 to `opts.max_responses` responses of the prompt's kind
/// (strings, or message lists), `ground_truth` and `verifier` both present or both absent. Errors name the file
/// and line (or are skipped and counted with `opts.skip_bad_lines`).
pub fn read_candidate_sets(
    source: &str,
    text: &str,
    opts: &ReadOptions,
) -> Result<ReadReport<CandidateSet>, crate::data::DataError> {
    read_records(source, text, opts, |raw| parse_candidate_set(raw, opts), |r, line| r.line = line)
}

fn parse_candidate_set(raw: &str, opts: &ReadOptions) -> Result<CandidateSet, DataErrorKind> {
    if raw.len() > opts.max_line_bytes {
        return Err(DataErrorKind::LineTooLong { len: raw.len(), max: opts.max_line_bytes });
    }
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| DataErrorKind::InvalidJson { column: e.column(), message: e.to_string() })?;
    if !value.is_object() {
        return Err(DataErrorKind::NotAnObject { found: if value.is_array() { "an array" } else { "a scalar" } });
    }
    for field in ["prompt", "responses"] {
        if value.get(field).is_none_or(Value::is_null) {
            return Err(DataErrorKind::MissingField(field));
        }
    }
    if !value["responses"].is_array() {
        return Err(DataErrorKind::WrongType { field: "responses", expected: "a list of responses" });
    }
    let k = value["responses"].as_array().map_or(0, Vec::len);
    if !(1..=opts.max_responses).contains(&k) {
        let reason = format!("has {k} responses; a candidate set takes 1 to {}", opts.max_responses);
        return Err(DataErrorKind::InvalidField { field: "responses", reason });
    }
    let set: CandidateSet = serde_json::from_value(value).map_err(|e| DataErrorKind::InvalidField {
        field: "responses",
        reason: format!("{e} (prompt and responses are strings or lists of {{role, content}} messages)"),
    })?;
    if set.responses.iter().any(|r| r.is_chat() != set.prompt.is_chat()) {
        let reason = "the prompt and every response must all be strings or all be message lists".into();
        return Err(DataErrorKind::InvalidField { field: "responses", reason });
    }
    if set.ground_truth.is_some() != set.verifier.is_some() {
        let reason = "\"ground_truth\" and \"verifier\" come together".into();
        return Err(DataErrorKind::InvalidField { field: "verifier", reason });
    }
    Ok(set)
}

/// One response with what the annotators see of it.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Candidate {
    pub text: Text,
    pub features: Features,
    pub words: usize,
}

/// A candidate set with every response's features.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredSet {
    pub prompt: Text,
    pub candidates: Vec<Candidate>,
    pub source: Option<String>,
    pub category: Option<String>,
}

/// Computes every response's gold features. `encoder` scores relevance (required when the pool weighs it;
/// without it relevance is 0); `ground_truth` + `verifier` give the constraint feature through
/// [`crate::verify::verify`].
pub async fn score_sets(
    sets: &[CandidateSet],
    pool: &PoolConfig,
    encoder: Option<&Encoder<'_>>,
) -> Result<Vec<ScoredSet>, AnnotateError> {
    if encoder.is_none() && pool.uses_relevance() {
        return Err(AnnotateError::NoEncoder);
    }
    let relevance = match encoder {
        Some(enc) => {
            let mut texts = Vec::new();
            for s in sets {
                texts.push(plain(&s.prompt));
                texts.extend(s.responses.iter().map(plain));
            }
            let e = sentence_embeddings(enc.bert, enc.tokenizer, &texts, 16, enc.device).await?;
            let mut at = 0;
            let mut out = Vec::with_capacity(sets.len());
            for s in sets {
                let p = &e[at];
                out.push(e[at + 1..at + 1 + s.responses.len()].iter().map(|r| cosine(p, r)).collect::<Vec<f64>>());
                at += 1 + s.responses.len();
            }
            Some(out)
        }
        None => None,
    };
    let mut out = Vec::with_capacity(sets.len());
    for (si, s) in sets.iter().enumerate() {
        let mut candidates = Vec::with_capacity(s.responses.len());
        for (ri, r) in s.responses.iter().enumerate() {
            let text = plain(r);
            let mut features = text_features(&text, &pool.gold);
            if let (Some(v), Some(gt)) = (&s.verifier, &s.ground_truth) {
                let verdict =
                    crate::verify::verify(v, gt, &text).map_err(|source| AnnotateError::Verify { set: si, source })?;
                features.constraint = verdict.score();
            }
            features.relevance = relevance.as_ref().map_or(0.0, |rel| rel[si][ri]);
            candidates.push(Candidate { text: r.clone(), features, words: words(&text) });
        }
        out.push(ScoredSet {
            prompt: s.prompt.clone(),
            candidates,
            source: s.source.clone(),
            category: s.category.clone(),
        });
    }
    Ok(out)
}

/// Cosine of two L2-normalised vectors (their dot product), in f64.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

// ---------------------------------------------------------------------------------------------------------------
// Judgements

/// One annotator's verdict on a pair shown as (first, second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judgement {
    /// P_j(first ≻ second) before the flip.
    pub p_first: f64,
    /// Some(true): the first shown wins; Some(false): the second; None: a tie.
    pub first_wins: Option<bool>,
    /// The drawn label was flipped (noise).
    pub flipped: bool,
    /// 1..3 from |P − ½| (None for a tie).
    pub strength: Option<f32>,
}

/// Strength 1..3 from the certainty |P − ½| (bands in the module doc).
pub fn strength(p: f64) -> f32 {
    match (p - 0.5).abs() {
        c if c < 0.1 => 1.0,
        c if c < 0.3 => 2.0,
        _ => 3.0,
    }
}

/// `a` judges `first` (shown on the left) against `second`. Draws two uniforms from `rng` whatever the outcome
/// (label, then flip), so that the streams of different pairs never shift against each other.
pub fn judge(
    a: &Annotator,
    gold: &GoldReward,
    first: &Candidate,
    second: &Candidate,
    rng: &mut SplitMix64,
) -> Judgement {
    let p = a.preference_probability(
        a.score(gold, &first.features),
        a.score(gold, &second.features),
        first.words,
        second.words,
    );
    let (u_label, u_flip) = (rng.next_f64(), rng.next_f64());
    if (p - 0.5).abs() <= a.tie_band {
        return Judgement { p_first: p, first_wins: None, flipped: false, strength: None };
    }
    let drawn = u_label < p;
    let flipped = u_flip < a.flip;
    Judgement { p_first: p, first_wins: Some(drawn != flipped), flipped, strength: Some(strength(p)) }
}

/// A simulated preference pair in DESIGN.md §3's format.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SimulatedPair {
    pub prompt: Text,
    pub chosen: Text,
    pub rejected: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<f32>,
    /// The annotator judged both alike (chosen/rejected are then in the order shown).
    #[serde(default)]
    pub tie: bool,
    pub annotator: String,
    /// The chosen response was shown on the right.
    pub swapped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// A label with where it came from: the set, the two responses (by index), who judged and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    pub set: usize,
    /// Indices of the responses shown first and second.
    pub first: usize,
    pub second: usize,
    /// Index into [`PoolConfig::annotators`].
    pub annotator: usize,
    pub judgement: Judgement,
}

impl Labelled {
    /// The winning response's index; None for a tie.
    pub fn winner(&self) -> Option<usize> {
        self.judgement.first_wins.map(|f| if f { self.first } else { self.second })
    }

    /// The label as the pair's canonical order (i < j) reads it: 1 = the lower index wins, 2 = the higher, 0 =
    /// tie — the PandaLM convention, for agreement tables.
    pub fn canonical(&self) -> u8 {
        match self.winner() {
            None => 0,
            Some(w) if w == self.first.min(self.second) => 1,
            Some(_) => 2,
        }
    }

    /// The §3 record.
    pub fn to_pair(&self, sets: &[ScoredSet], pool: &PoolConfig) -> SimulatedPair {
        let s = &sets[self.set];
        let (chosen, rejected, swapped) = match self.judgement.first_wins {
            Some(true) | None => (self.first, self.second, false),
            Some(false) => (self.second, self.first, true),
        };
        SimulatedPair {
            prompt: s.prompt.clone(),
            chosen: s.candidates[chosen].text.clone(),
            rejected: s.candidates[rejected].text.clone(),
            strength: self.judgement.strength,
            tie: self.judgement.first_wins.is_none(),
            annotator: pool.annotators[self.annotator].name.clone(),
            swapped,
            source: s.source.clone(),
            category: s.category.clone(),
        }
    }
}

/// Who labels: one annotator drawn per pair from the training pool, or one named annotator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Pool,
    One(usize),
}

/// Labels every pair (i < j, in index order) of every set with at least two responses. Per pair, from one
/// stream seeded by `seed`: the annotator (for [`Who::Pool`]), the order shown (½ each), then the judgement's
/// two uniforms.
pub fn label_pairs(pool: &PoolConfig, sets: &[ScoredSet], who: Who, seed: u64) -> Vec<Labelled> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    for (si, s) in sets.iter().enumerate() {
        for i in 0..s.candidates.len() {
            for j in i + 1..s.candidates.len() {
                out.push(label_one(pool, s, si, (i, j), who, &mut rng));
            }
        }
    }
    out
}

fn label_one(
    pool: &PoolConfig,
    s: &ScoredSet,
    si: usize,
    (i, j): (usize, usize),
    who: Who,
    rng: &mut SplitMix64,
) -> Labelled {
    let annotator = match who {
        Who::Pool => rng.below(pool.annotators.len()),
        Who::One(a) => a,
    };
    let (first, second) = if rng.next_f64() < 0.5 { (i, j) } else { (j, i) };
    let judgement = judge(&pool.annotators[annotator], &pool.gold, &s.candidates[first], &s.candidates[second], rng);
    Labelled { set: si, first, second, annotator, judgement }
}

/// Ranks every set with one annotator (Plackett–Luce by Gumbel-max; see the module doc), as §3's listwise
/// record `{"prompt", "responses", "ranking", "annotator"}` with tie groups where utilities are equal (T = 0).
pub fn rank_sets(pool: &PoolConfig, sets: &[ScoredSet], who: Who, seed: u64) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed ^ 0x1157_5eed);
    sets.iter()
        .map(|s| {
            let a = &pool.annotators[match who {
                Who::Pool => rng.below(pool.annotators.len()),
                Who::One(a) => a,
            }];
            let utility: Vec<f64> = s
                .candidates
                .iter()
                .map(|c| {
                    let f = a.score(&pool.gold, &c.features);
                    let u = if a.temperature > 0.0 { f / a.temperature } else { f };
                    let gumbel = -(-(1.0 - rng.next_f64()).ln()).ln();
                    let noise = if a.temperature > 0.0 { gumbel } else { 0.0 };
                    u + a.length_bias * c.words as f64 + noise
                })
                .collect();
            let mut order: Vec<usize> = (0..utility.len()).collect();
            order.sort_by(|&x, &y| utility[y].total_cmp(&utility[x]).then(x.cmp(&y)));
            let mut ranking: Vec<Value> = Vec::new();
            let mut k = 0;
            while k < order.len() {
                let group: Vec<usize> =
                    order[k..].iter().copied().take_while(|&m| utility[m] == utility[order[k]]).collect();
                k += group.len();
                ranking.push(if group.len() == 1 { group[0].into() } else { group.into() });
            }
            let mut rec = serde_json::json!({
                "prompt": s.prompt,
                "responses": s.candidates.iter().map(|c| &c.text).collect::<Vec<_>>(),
                "ranking": ranking,
                "annotator": a.name,
            });
            for (key, v) in [("source", &s.source), ("category", &s.category)] {
                if let Some(v) = v {
                    rec[key] = v.as_str().into();
                }
            }
            rec
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Agreement

/// How simulated labels agree with the evaluation annotator and among themselves.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct LabelReport {
    pub pairs: usize,
    pub ties: usize,
    /// Labels the flip noise turned around.
    pub flipped: usize,
    /// Fraction of the labels whose chosen response was shown on the left.
    pub chosen_shown_first: f64,
    /// Pairs per training annotator.
    pub per_annotator: std::collections::BTreeMap<String, usize>,
    /// Fraction of the pairs the evaluation annotator does not call a tie where the label is not a tie and
    /// picks the same response (ties count ½).
    pub agreement_with_evaluation: Option<f64>,
    /// Cohen's κ of the labels (1 / 2 / 0 = tie in index order) against the evaluation annotator's.
    pub kappa_with_evaluation: Option<f64>,
    /// The same pairs labelled again by independently drawn annotators (a second opinion, with its own
    /// stream): the pool's agreement with itself, the analogue of human-human agreement.
    pub pool_pool_agreement: Option<f64>,
}

/// The evaluation annotator's labels of the same pairs (same order shown), from its own stream.
pub fn evaluation_labels(pool: &PoolConfig, sets: &[ScoredSet], labels: &[Labelled], seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ 0xE7A1_0A7E);
    labels
        .iter()
        .map(|l| {
            let s = &sets[l.set];
            let j = judge(&pool.evaluation, &pool.gold, &s.candidates[l.first], &s.candidates[l.second], &mut rng);
            Labelled { judgement: j, ..l.clone() }.canonical()
        })
        .collect()
}

/// Agreement of `labels` (from [`label_pairs`] with `seed`) with the evaluation annotator and with a second,
/// independent draw from the pool.
pub fn label_report(pool: &PoolConfig, sets: &[ScoredSet], labels: &[Labelled], seed: u64) -> LabelReport {
    let ours: Vec<u8> = labels.iter().map(Labelled::canonical).collect();
    let reference = evaluation_labels(pool, sets, labels, seed);
    let mut rng = SplitMix64::new(seed ^ 0x5EC0_0D0B);
    let second: Vec<u8> = labels
        .iter()
        .map(|l| {
            let lo = l.first.min(l.second);
            let hi = l.first.max(l.second);
            label_one(pool, &sets[l.set], l.set, (lo, hi), Who::Pool, &mut rng).canonical()
        })
        .collect();
    let matches = |a: &[u8], b: &[u8], skip_ref_ties: bool| -> Option<f64> {
        let scored: Vec<f64> = a
            .iter()
            .zip(b)
            .filter(|(_, y)| !(skip_ref_ties && **y == 0))
            .map(|(x, y)| {
                if x == y {
                    1.0
                } else if *x == 0 || *y == 0 {
                    0.5
                } else {
                    0.0
                }
            })
            .collect();
        (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64)
    };
    let wrap = |v: &[u8]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
    let mut per_annotator = std::collections::BTreeMap::new();
    for l in labels {
        *per_annotator.entry(pool.annotators[l.annotator].name.clone()).or_insert(0) += 1;
    }
    let decided: Vec<&Labelled> = labels.iter().filter(|l| l.judgement.first_wins.is_some()).collect();
    LabelReport {
        pairs: labels.len(),
        ties: labels.len() - decided.len(),
        flipped: labels.iter().filter(|l| l.judgement.flipped).count(),
        chosen_shown_first: decided.iter().filter(|l| l.judgement.first_wins == Some(true)).count() as f64
            / decided.len().max(1) as f64,
        per_annotator,
        agreement_with_evaluation: matches(&ours, &reference, true),
        kappa_with_evaluation: crate::eval::agreement::cohen_kappa(&wrap(&ours), &wrap(&reference)).ok(),
        pool_pool_agreement: matches(&ours, &second, false),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Best-of-n

/// `C(n, k)` in f64 (exact for the small K of candidate sets).
fn binomial(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The probability that a uniformly drawn n-subset of K candidates picks each one by proxy (see the module
/// doc), in the candidates' own order. Empty when n is 0 or more than K.
pub fn best_of_n_weights(proxy: &[f64], n: usize) -> Vec<f64> {
    let k = proxy.len();
    if n == 0 || n > k {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| proxy[a].total_cmp(&proxy[b]).then(a.cmp(&b)));
    let total = binomial(k, n);
    let mut w = vec![0.0; k];
    for (rank, &i) in order.iter().enumerate() {
        w[i] = binomial(rank, n - 1) / total;
    }
    w
}

/// (expected gold, expected proxy) of the best-of-n pick by proxy; None when n is 0 or more than K.
pub fn best_of_n(proxy: &[f64], gold: &[f64], n: usize) -> Option<(f64, f64)> {
    let w = best_of_n_weights(proxy, n);
    if w.is_empty() || gold.len() != proxy.len() {
        return None;
    }
    let dot = |v: &[f64]| w.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    Some((dot(gold), dot(proxy)))
}

/// One point of a best-of-n curve: means over the sets with at least n candidates.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct BonPoint {
    pub n: usize,
    /// ln n − (n − 1)/n.
    pub kl_bon: f64,
    /// Mean gold reward of the proxy's pick.
    pub gold: f64,
    /// Mean proxy reward of the proxy's pick.
    pub proxy: f64,
    /// Mean gold reward of the gold's own best-of-n pick (the ceiling).
    pub gold_oracle: f64,
    pub sets: usize,
}

/// Best-of-n over n = 1, 2, 4, … up to the largest set, with `(proxy, gold)` rewards per set.
pub fn bon_curve(sets: &[(Vec<f64>, Vec<f64>)]) -> Result<Vec<BonPoint>, AnnotateError> {
    if let Some(i) = sets.iter().position(|(p, g)| p.len() != g.len()) {
        return Err(AnnotateError::Mismatch(format!(
            "set {i}: {} proxy rewards, {} gold",
            sets[i].0.len(),
            sets[i].1.len()
        )));
    }
    let k_max = sets.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    let mut n = 1;
    while n <= k_max {
        let picks: Vec<((f64, f64), f64)> =
            sets.iter().filter_map(|(p, g)| Some((best_of_n(p, g, n)?, best_of_n(g, g, n)?.0))).collect();
        let m = picks.len() as f64;
        out.push(BonPoint {
            n,
            kl_bon: (n as f64).ln() - (n as f64 - 1.0) / n as f64,
            gold: picks.iter().map(|((g, _), _)| g).sum::<f64>() / m,
            proxy: picks.iter().map(|((_, p), _)| p).sum::<f64>() / m,
            gold_oracle: picks.iter().map(|(_, o)| o).sum::<f64>() / m,
            sets: picks.len(),
        });
        n *= 2;
    }
    Ok(out)
}
