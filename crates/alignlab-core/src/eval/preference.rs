//! Reward-model and preference metrics from the scores a model gave to (chosen, rejected) pairs: pairwise
//! accuracy (overall and per group), margins, calibration (ECE with a reliability table), and AUROC of scores
//! against binary labels (METHODS.md §4 "Reward models"). The scores are RM rewards, or DPO's implicit
//! rewards β·h_θ.
//!
//! ```text
//! accuracy  = mean_i ( [r_c,i > r_r,i] + ½ [r_c,i = r_r,i] )
//! margin_i  = r_c,i − r_r,i,   p_i = σ(margin_i) = P(chosen ≻ rejected) under Bradley–Terry
//! ECE       = Σ_b (n_b / N) |acc_b − conf_b|,   confidence c_i = max(p_i, 1 − p_i) = σ(|margin_i|),
//!             correct_i = [p_i > ½] (+ ½ at p_i = ½),   equal-width bins on [½, 1]   (MORE, METHODS.md §A3)
//! AUROC     = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋),   Mann–Whitney U from the midranks R₊ of the positives
//! ```
//! Ties count as half everywhere: a tie is a coin flip. TRL's `rewards/accuracies` counts a tie as wrong
//! (`chosen > rejected`), so a reward model that scores everything alike gets 0 there and 0.5 (chance) here;
//! [`RewardMetrics::ties`] says how many there were, and TRL's number is `accuracy − ties / (2 · count)`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{EvalError, check_finite};

/// Ten bins on [0.5, 1], as in METHODS.md §A3.
pub const DEFAULT_BINS: usize = 10;

/// One row of a reliability table: the pairs whose confidence fell in `[lower, upper)` (the last bin
/// includes 1).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean confidence σ(|margin|) in the bin; `None` for an empty bin.
    pub mean_confidence: Option<f64>,
    /// Fraction of the bin's pairs ranked the right way round (ties half); `None` for an empty bin.
    pub accuracy: Option<f64>,
}

/// Expected calibration error and the reliability table it is computed from. Empty bins are kept so that a
/// chart has a fixed x axis.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Calibration {
    pub ece: f64,
    pub reliability: Vec<ReliabilityBin>,
}

/// Calibration of the Bradley–Terry probabilities p = σ(margin) that the chosen response is preferred.
///
/// Every pair's true label is "chosen", so binning p itself would give accuracy 1 in every bin; instead each
/// pair is scored by its predicted side: confidence max(p, 1 − p), correct when p > ½ (METHODS.md §A3).
pub fn calibration(margins: &[f64], num_bins: usize) -> Result<Calibration, EvalError> {
    if margins.is_empty() {
        return Err(EvalError::NoItems);
    }
    check_finite("margins", margins, margins.len())?;
    if num_bins == 0 {
        return Err(EvalError::NoBins);
    }
    let width = 0.5 / num_bins as f64;
    // Per bin: count, Σ confidence, Σ correct.
    let mut sums = vec![(0usize, 0.0, 0.0); num_bins];
    for &m in margins {
        let confidence = 1.0 / (1.0 + (-m.abs()).exp());
        let bin = (((confidence - 0.5) / width) as usize).min(num_bins - 1);
        let s = &mut sums[bin];
        *s = (s.0 + 1, s.1 + confidence, s.2 + pair_correct(m, 0.0));
    }
    let reliability: Vec<ReliabilityBin> = sums
        .iter()
        .enumerate()
        .map(|(b, &(count, confidence, correct))| ReliabilityBin {
            lower: 0.5 + b as f64 * width,
            upper: 0.5 + (b + 1) as f64 * width,
            count,
            mean_confidence: (count > 0).then(|| confidence / count as f64),
            accuracy: (count > 0).then(|| correct / count as f64),
        })
        .collect();
    let ece =
        reliability.iter().filter_map(|b| Some(b.count as f64 * (b.accuracy? - b.mean_confidence?).abs())).sum::<f64>()
            / margins.len() as f64;
    Ok(Calibration { ece, reliability })
}

/// 1 when the chosen response scored higher, ½ for a tie, 0 otherwise.
fn pair_correct(chosen: f64, rejected: f64) -> f64 {
    match chosen.partial_cmp(&rejected) {
        Some(std::cmp::Ordering::Greater) => 1.0,
        Some(std::cmp::Ordering::Equal) => 0.5,
        _ => 0.0,
    }
}

/// What a reward model (or a DPO policy's implicit reward) makes of a set of preference pairs. JSON names are
/// TRL's where TRL logs the quantity (`rewards/…`, DESIGN.md §4); the others are ours: `count` (pairs),
/// `ties`, `rewards/margins_std` (population standard deviation of the margins), `ece` and `reliability`
/// (see [`calibration`]).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RewardMetrics {
    pub count: usize,
    /// Fraction of pairs with chosen > rejected, ties counting half.
    #[serde(rename = "rewards/accuracies")]
    pub accuracy: f64,
    /// Pairs with chosen = rejected.
    pub ties: usize,
    /// Mean score of the chosen responses.
    #[serde(rename = "rewards/chosen")]
    pub chosen: f64,
    /// Mean score of the rejected responses.
    #[serde(rename = "rewards/rejected")]
    pub rejected: f64,
    /// Mean of chosen − rejected.
    #[serde(rename = "rewards/margins")]
    pub margin: f64,
    /// Population standard deviation (divided by `count`) of chosen − rejected: 0 for one pair, not undefined.
    #[serde(rename = "rewards/margins_std")]
    pub margin_std: f64,
    #[serde(flatten)]
    pub calibration: Calibration,
}

/// All pairwise metrics of scores `chosen[i]`, `rejected[i]` for pair i, with `num_bins` calibration bins.
pub fn reward_metrics(chosen: &[f64], rejected: &[f64], num_bins: usize) -> Result<RewardMetrics, EvalError> {
    if chosen.is_empty() {
        return Err(EvalError::NoItems);
    }
    check_finite("chosen", chosen, chosen.len())?;
    check_finite("rejected", rejected, chosen.len())?;
    let n = chosen.len() as f64;
    let margins: Vec<f64> = chosen.iter().zip(rejected).map(|(c, r)| c - r).collect();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / n;
    let margin = mean(&margins);
    Ok(RewardMetrics {
        count: chosen.len(),
        accuracy: chosen.iter().zip(rejected).map(|(&c, &r)| pair_correct(c, r)).sum::<f64>() / n,
        ties: chosen.iter().zip(rejected).filter(|(c, r)| c == r).count(),
        chosen: mean(chosen),
        rejected: mean(rejected),
        margin,
        margin_std: (margins.iter().map(|m| (m - margin).powi(2)).sum::<f64>() / n).sqrt(),
        calibration: calibration(&margins, num_bins)?,
    })
}

/// [`reward_metrics`] per value of a string key (`category`, `source`, `objective`): `groups[i]` is pair i's.
pub fn reward_metrics_by_group<G: AsRef<str>>(
    chosen: &[f64],
    rejected: &[f64],
    groups: &[G],
    num_bins: usize,
) -> Result<BTreeMap<String, RewardMetrics>, EvalError> {
    if chosen.is_empty() {
        return Err(EvalError::NoItems);
    }
    if groups.len() != chosen.len() {
        return Err(EvalError::LengthMismatch { what: "groups", expected: chosen.len(), found: groups.len() });
    }
    // Check the whole input first so that an error names the pair's index in it, not in its group.
    check_finite("chosen", chosen, chosen.len())?;
    check_finite("rejected", rejected, chosen.len())?;
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g.as_ref()).or_default().push(i);
    }
    members
        .into_iter()
        .map(|(group, idx)| {
            let pick = |xs: &[f64]| idx.iter().map(|&i| xs[i]).collect::<Vec<f64>>();
            Ok((group.to_string(), reward_metrics(&pick(chosen), &pick(rejected), num_bins)?))
        })
        .collect()
}

/// Area under the ROC curve of `scores` separating `labels` true (e.g. correct solutions) from false: the
/// probability that a random positive outscores a random negative, ties counting half (midranks).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64, EvalError> {
    if labels.len() != scores.len() {
        return Err(EvalError::LengthMismatch { what: "labels", expected: scores.len(), found: labels.len() });
    }
    if scores.is_empty() {
        return Err(EvalError::NoItems);
    }
    check_finite("scores", scores, scores.len())?;
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(EvalError::OneClass { positives, negatives });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Walk runs of equal scores; positions start..end (0-based) share the midrank (start + 1 + end) / 2.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let end = start + order[start..].iter().take_while(|&&i| scores[i] == scores[order[start]]).count();
        let run_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += run_positives as f64 * (start + 1 + end) as f64 / 2.0;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;

    const EPS: f64 = 1e-12;

    /// The margin whose Bradley–Terry probability is `p`: σ⁻¹(p).
    fn logit(p: f64) -> f64 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn accuracy_counts_ties_as_half() {
        // Pairs: 2>1 right, 1=1 tie, 0<1 wrong, 3>0 right → (1 + ½ + 0 + 1)/4 = 0.625.
        let m = reward_metrics(&[2.0, 1.0, 0.0, 3.0], &[1.0, 1.0, 1.0, 0.0], DEFAULT_BINS).unwrap();
        assert_eq!((m.accuracy, m.ties, m.count), (0.625, 1, 4));
        // Margins 1, 0, −1, 3: mean 0.75; deviations 0.25, −0.75, −1.75, 2.25, squares sum
        // 0.0625 + 0.5625 + 3.0625 + 5.0625 = 8.75, population std √(8.75/4).
        assert!((m.margin - 0.75).abs() < EPS);
        assert!((m.margin_std - (8.75f64 / 4.0).sqrt()).abs() < EPS);
        assert_eq!((m.chosen, m.rejected), (1.5, 0.75));
    }

    #[test]
    fn reliability_table_by_hand() {
        // p = 0.5 (tie), 0.75, 0.25 (wrong side), 0.85, 0.95; confidences 0.5, 0.75, 0.75, 0.85, 0.95.
        // 5 bins of width 0.1 on [0.5, 1]:
        //   [0.5, 0.6): 1 pair, conf 0.5,  acc ½ (the tie)      |gap| 0
        //   [0.6, 0.7): empty
        //   [0.7, 0.8): 2 pairs, conf 0.75, acc (1 + 0)/2 = 0.5 |gap| 0.25
        //   [0.8, 0.9): 1 pair, conf 0.85, acc 1                |gap| 0.15
        //   [0.9, 1.0]: 1 pair, conf 0.95, acc 1                |gap| 0.05
        // ECE = (1·0 + 2·0.25 + 1·0.15 + 1·0.05)/5 = 0.14.
        let margins: Vec<f64> = [0.5, 0.75, 0.25, 0.85, 0.95].into_iter().map(logit).collect();
        let c = calibration(&margins, 5).unwrap();
        assert!((c.ece - 0.14).abs() < 1e-9, "{}", c.ece);
        let counts: Vec<usize> = c.reliability.iter().map(|b| b.count).collect();
        assert_eq!(counts, [1, 0, 2, 1, 1]);
        assert_eq!((c.reliability[1].mean_confidence, c.reliability[1].accuracy), (None, None));
        assert_eq!(c.reliability[2].accuracy, Some(0.5));
        assert!((c.reliability[3].mean_confidence.unwrap() - 0.85).abs() < 1e-9);
        assert!((c.reliability[4].upper - 1.0).abs() < EPS);
    }

    #[test]
    fn huge_margins_land_in_the_last_bin() {
        let c = calibration(&[1e6, -1e6], DEFAULT_BINS).unwrap();
        assert_eq!(c.reliability[DEFAULT_BINS - 1].count, 2);
        // conf 1, acc ½ → ECE ½.
        assert!((c.ece - 0.5).abs() < EPS);
    }

    #[test]
    fn metrics_group_by_key() {
        let chosen = [1.0, 2.0, 0.0, 5.0];
        let rejected = [0.0, 3.0, 0.0, 1.0];
        let groups = ["math", "chat", "chat", "math"];
        let by = reward_metrics_by_group(&chosen, &rejected, &groups, DEFAULT_BINS).unwrap();
        assert_eq!(by.keys().collect::<Vec<_>>(), ["chat", "math"]);
        // chat: 2<3 wrong, 0=0 tie → 0.25; math: both right → 1.
        assert_eq!((by["chat"].accuracy, by["chat"].count, by["math"].accuracy), (0.25, 2, 1.0));
        assert!(matches!(
            reward_metrics_by_group(&chosen, &rejected, &groups[..3], 10),
            Err(EvalError::LengthMismatch { what: "groups", .. })
        ));
    }

    #[test]
    fn json_names_are_trls() {
        let m = reward_metrics(&[1.0, 2.0], &[0.0, 3.0], 4).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        for key in
            [metrics::REWARDS_ACCURACIES, metrics::REWARDS_MARGINS, metrics::REWARDS_CHOSEN, metrics::REWARDS_REJECTED]
        {
            assert!(json[key].is_f64(), "{key} missing from {json}");
        }
        assert!(json["ece"].is_f64());
        assert_eq!(json["reliability"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn auroc_by_hand() {
        // scikit-learn's roc_auc_score example: negatives 0.1, 0.4; positives 0.35, 0.8. Positive beats
        // negative in 3 of the 4 pairs (0.35 < 0.4) → 0.75.
        assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Ok(0.75));
        // With a tie: scores 1, 2, 2, 3 → midranks 1, 2.5, 2.5, 4; positives are the second 2 and the 3:
        // R₊ = 6.5, U = 6.5 − 2·3/2 = 3.5, AUROC = 3.5/(2·2) = 0.875 (pairs: 1 + ½ + 1 + 1 of 4).
        assert_eq!(auroc(&[1.0, 2.0, 2.0, 3.0], &[false, true, false, true]), Ok(0.875));
    }

    #[test]
    fn auroc_of_reversed_scores_is_one_minus() {
        let scores = [0.3, 0.1, 0.3, 0.9, 0.5, 0.1, 0.7, 0.3];
        let labels = [true, false, false, true, true, false, false, true];
        let reversed: Vec<f64> = scores.iter().map(|s| -s).collect();
        let (a, b) = (auroc(&scores, &labels).unwrap(), auroc(&reversed, &labels).unwrap());
        assert!((a + b - 1.0).abs() < EPS, "{a} + {b}");
        assert_eq!(auroc(&[4.0, 4.0, 4.0], &[true, false, true]), Ok(0.5), "all tied is chance");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), Err(EvalError::OneClass { positives: 2, negatives: 0 }));
        assert_eq!(auroc(&[], &[]), Err(EvalError::NoItems));
        assert_eq!(reward_metrics(&[], &[], 10), Err(EvalError::NoItems));
        assert_eq!(
            reward_metrics(&[1.0, 2.0], &[1.0], 10),
            Err(EvalError::LengthMismatch { what: "rejected", expected: 2, found: 1 })
        );
        let nan = reward_metrics(&[1.0, f64::NAN], &[1.0, 0.0], 10).unwrap_err();
        assert_eq!(nan.to_string(), "chosen[1] is NaN, not a finite number");
        assert_eq!(calibration(&[1.0], 0), Err(EvalError::NoBins));
    }
}
