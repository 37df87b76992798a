//! A data set's implicit rewards β·(log π − log π_ref) under a policy and its reference, and their metrics:
//! pairs ([`super::preference`]), unpaired KTO examples ([`super::unpaired`]) and ranked lists
//! ([`super::ranking`]). What `alignlab eval --data` and the npm `evaluate` print.
//!
//! Both models score the data with the loop's own pass ([`crate::train::data_logps`]: the same tokenisation,
//! batching and KTO KL pairs as training), so a policy equal to its reference gives rewards of exactly 0.

use serde::Serialize;

use super::EvalError;
use super::preference::{RewardMetrics, reward_metrics};
use super::ranking::{RankingMetrics, ranking_metrics};
use super::unpaired::{UnpairedMetrics, unpaired_metrics};
use crate::convert::Format;
use crate::data::{ReadOptions, read_records};
use crate::model::llama::Llama;
use crate::train::{TrainConfig, TrainData, TrainError, data_logps};

#[derive(Debug, thiserror::Error)]
pub enum ImplicitError {
    #[error("the policy has {policy} tokens and the reference {reference}: they must share a vocabulary")]
    VocabMismatch { policy: usize, reference: usize },
    #[error("token id {id} on line {line} is outside the models' vocabulary of {vocab}")]
    BadToken { id: u32, line: usize, vocab: usize },
    #[error("rated responses carry no preference: implicit rewards are evaluated on pairs, unpaired examples or lists")]
    Ratings,
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// The implicit rewards β·(log π − log π_ref) of every example, in data order.
#[derive(Clone, Debug, PartialEq)]
pub enum ImplicitRewards {
    Pairs {
        chosen: Vec<f64>,
        rejected: Vec<f64>,
    },
    /// KTO examples: rewards, the policy's log-probs, labels, and log π − log π_ref of each KL pair.
    Unpaired {
        rewards: Vec<f64>,
        logps: Vec<f64>,
        desirable: Vec<bool>,
        kl_ratios: Vec<f64>,
    },
    /// Lists: each response's reward, and the list's labels ψ.
    Lists {
        rewards: Vec<Vec<f64>>,
        labels: Vec<Vec<f64>>,
    },
}

/// The metrics of [`ImplicitRewards`], one JSON object of TRL's names (no tag: the keys tell the kind).
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum ImplicitMetrics {
    Pairs(RewardMetrics),
    Unpaired(UnpairedMetrics),
    Lists(RankingMetrics),
}

/// Scores `data` under `policy` and `reference` with `config`'s β, batch size, `max_length` (KTO's KL pairs) and
/// logits chunks.
pub async fn implicit_rewards(
    policy: &Llama,
    reference: &Llama,
    data: TrainData,
    config: &TrainConfig,
    pad: u32,
    device: &burn::tensor::Device,
) -> Result<ImplicitRewards, ImplicitError> {
    let (vocab, rv) = (policy.vocab_size(), reference.vocab_size());
    if vocab != rv {
        return Err(ImplicitError::VocabMismatch { policy: vocab, reference: rv });
    }
    let tokens: Vec<(usize, &[u32])> = match &data {
        TrainData::Pairs(p) => {
            p.iter().flat_map(|p| [&p.prompt, &p.chosen, &p.rejected].map(|t| (p.line, &t[..]))).collect()
        }
        TrainData::Unpaired(e) => e.iter().flat_map(|e| [&e.prompt, &e.completion].map(|t| (e.line, &t[..]))).collect(),
        TrainData::Lists(l) => {
            l.iter().flat_map(|l| std::iter::once(&l.prompt).chain(&l.responses).map(|t| (l.line, &t[..]))).collect()
        }
        TrainData::Ratings { .. } => return Err(ImplicitError::Ratings),
    };
    for (line, ids) in tokens {
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ImplicitError::BadToken { id, line, vocab });
        }
    }
    let beta = config.beta;
    let (pol, reference) = (
        data_logps(policy, data.clone(), config, pad, device).await?,
        data_logps(reference, data.clone(), config, pad, device).await?,
    );
    let ratio = |p: f32, r: f32| f64::from(p) - f64::from(r);
    let pairs = || pol.0.iter().zip(&reference.0);
    Ok(match data {
        TrainData::Pairs(_) => ImplicitRewards::Pairs {
            chosen: pairs().map(|(p, r)| beta * ratio(p.0, r.0)).collect(),
            rejected: pairs().map(|(p, r)| beta * ratio(p.1, r.1)).collect(),
        },
        TrainData::Unpaired(ex) => ImplicitRewards::Unpaired {
            rewards: pairs().map(|(p, r)| beta * ratio(p.0, r.0)).collect(),
            logps: pol.0.iter().map(|p| f64::from(p.0)).collect(),
            desirable: ex.iter().map(|e| e.label).collect(),
            kl_ratios: pairs().map(|(p, r)| ratio(p.1, r.1)).collect(),
        },
        TrainData::Lists(lists) => ImplicitRewards::Lists {
            rewards: pol
                .1
                .iter()
                .zip(&reference.1)
                .map(|(p, r)| p.iter().zip(r).map(|(&p, &r)| beta * ratio(p, r)).collect())
                .collect(),
            labels: lists.iter().map(|l| l.labels.iter().map(|&x| f64::from(x)).collect()).collect(),
        },
        TrainData::Ratings { .. } => unreachable!("refused above"),
    })
}

impl ImplicitRewards {
    /// The metrics of the rewards; `num_bins` calibration bins for pairs.
    pub fn metrics(&self, num_bins: usize) -> Result<ImplicitMetrics, EvalError> {
        Ok(match self {
            Self::Pairs { chosen, rejected } => ImplicitMetrics::Pairs(reward_metrics(chosen, rejected, num_bins)?),
            Self::Unpaired { rewards, logps, desirable, kl_ratios } => {
                // z0 needs mismatched pairs: with one example its "KL pair" is itself.
                let kl = (kl_ratios.len() >= 2).then_some(kl_ratios.as_slice());
                ImplicitMetrics::Unpaired(unpaired_metrics(rewards, logps, desirable, kl)?)
            }
            Self::Lists { rewards, labels } => ImplicitMetrics::Lists(ranking_metrics(rewards, labels)?),
        })
    }
}

/// The format of a data file from its first record's keys ([`Format::detect`]), also knowing LLaMA-Factory's
/// KTO records `{"messages", "label"}`; `None` for an empty file or unknown keys.
pub fn detect_format(source: &str, text: &str) -> Option<Format> {
    let opts = ReadOptions { max_records: Some(1), ..Default::default() };
    let first =
        read_records(source, text, &opts, |raw| Ok::<_, crate::data::DataErrorKind>(raw.to_string()), |_, _| {})
            .ok()?
            .records
            .pop()?;
    Format::detect(&first).or_else(|| {
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&first).ok()?;
        obj.contains_key("label").then_some(Format::Unpaired)
    })
}
