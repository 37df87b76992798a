//! Metric names, TRL's, so that people's dashboards and habits carry over. One record per logged step; the
//! CLI writes them as JSONL, the npm package hands them to callbacks, the page charts them.

use std::collections::BTreeMap;

pub const STEP: &str = "step";
pub const EPOCH: &str = "epoch";
pub const LOSS: &str = "loss";
pub const LEARNING_RATE: &str = "learning_rate";
pub const GRAD_NORM: &str = "grad_norm";
pub const NUM_TOKENS: &str = "num_tokens";
pub const REWARDS_CHOSEN: &str = "rewards/chosen";
pub const REWARDS_REJECTED: &str = "rewards/rejected";
pub const REWARDS_MARGINS: &str = "rewards/margins";
pub const REWARDS_ACCURACIES: &str = "rewards/accuracies";
pub const LOGPS_CHOSEN: &str = "logps/chosen";
pub const LOGPS_REJECTED: &str = "logps/rejected";
pub const ACCURACY: &str = "accuracy";
pub const MARGIN: &str = "margin";
pub const MEAN_REWARD: &str = "mean_reward";
pub const MIN_REWARD: &str = "min_reward";
pub const MAX_REWARD: &str = "max_reward";

/// One logged step: metric name → value.
pub type Metrics = BTreeMap<String, f64>;

/// KTO's reference point z0 (TRL's KTOTrainer name).
pub const KL: &str = "kl";
/// Per-example sums and counts as TRL's KTOTrainer logs them; [`finish`] turns them into `rewards/chosen`,
/// `rewards/rejected`, `logps/chosen`, `logps/rejected` (means over the desirable / undesirable examples).
pub const REWARDS_CHOSEN_SUM: &str = "rewards/chosen_sum";
pub const REWARDS_REJECTED_SUM: &str = "rewards/rejected_sum";
pub const LOGPS_CHOSEN_SUM: &str = "logps/chosen_sum";
pub const LOGPS_REJECTED_SUM: &str = "logps/rejected_sum";
pub const COUNT_CHOSEN: &str = "count/chosen";
pub const COUNT_REJECTED: &str = "count/rejected";
/// LiPO's ordered pairs (ψ_i > ψ_j) and those the implicit rewards order the same way; [`finish`] turns them into
/// `rewards/accuracies`.
pub const COUNT_PAIRS: &str = "count/pairs";
pub const COUNT_CORRECT_PAIRS: &str = "count/correct_pairs";

/// Divides the sums some objectives log by their counts and drops both, as TRL's `KTOTrainer.log` does.
///
/// - KTO: `rewards/chosen` = β·h averaged over the desirable examples (absent without any), `rewards/rejected`
///   over the undesirable ones, the same for `logps/`; `rewards/margins` = chosen − rejected when both exist;
///   `kl` is z0.
/// - LiPO (lists of K responses): `rewards/chosen` and `rewards/rejected` are the mean implicit reward β·h of
///   each list's best- and worst-labelled responses, `rewards/margins` their difference, and
///   `rewards/accuracies` the share of ordered pairs (ψ_i > ψ_j) with β·h_i > β·h_j — with K = 2, DPO's values.
///
/// Sums and counts arrive divided by the batch's examples, so weighted means over batches keep the ratio exact.
pub fn finish(m: &mut Metrics) {
    for split in ["chosen", "rejected"] {
        let Some(count) = m.remove(&format!("count/{split}")) else { continue };
        for metric in ["rewards", "logps"] {
            if let Some(sum) = m.remove(&format!("{metric}/{split}_sum"))
                && count > 0.0
            {
                m.insert(format!("{metric}/{split}"), sum / count);
            }
        }
    }
    if !m.contains_key(REWARDS_MARGINS)
        && let (Some(c), Some(r)) = (m.get(REWARDS_CHOSEN), m.get(REWARDS_REJECTED))
    {
        m.insert(REWARDS_MARGINS.into(), c - r);
    }
    if let Some(pairs) = m.remove(COUNT_PAIRS) {
        let correct = m.remove(COUNT_CORRECT_PAIRS).unwrap_or(0.0);
        if pairs > 0.0 {
            m.insert(REWARDS_ACCURACIES.into(), correct / pairs);
        }
    }
}
