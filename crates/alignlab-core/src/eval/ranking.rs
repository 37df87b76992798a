//! What a policy's implicit rewards make of ranked lists (LiPO data): how well the rewards s_i = β·h_i order each
//! list's responses against its labels ψ (higher = better, equal = tie).
//!
//! ```text
//! rewards/accuracies = Σ_lists Σ_{ψ_i > ψ_j} ([s_i > s_j] + ½ [s_i = s_j]) / Σ_lists #{ψ_i > ψ_j}
//! rewards/chosen     = mean over lists of the mean s of the responses with the list's highest ψ
//! rewards/rejected   = the same for the lowest ψ;   rewards/margins = chosen − rejected
//! kendall_tau        = mean over lists of Kendall's τ_b(s, ψ) = (C − D) / √((n₀ − n_ψ)(n₀ − n_s))
//!                      n₀ = K(K−1)/2 pairs, n_ψ / n_s pairs tied in ψ / in s; lists where it is 0/0 are left out
//! ndcg               = mean over lists of DCG(s) / DCG(ψ),  DCG = Σ_i G_i / log₂(1 + pos_i),  G_i = 2^(ψ_i − min ψ) − 1
//! ```
//! The pairs and names are LiPO's training metrics (`metrics::finish`), with one difference: a tie in s counts
//! half here, as everywhere in `eval/` (TRL's `rewards/accuracies` counts it wrong), so a policy equal to its
//! reference scores ½. The gains are LiPO-λ's 2^ψ − 1 shifted so that each list's worst response gains 0 (labels
//! from a ranking are in [0, 1] with minimum 0 already; scores may be negative). Tied rewards share the mean
//! discount of the positions they occupy (tie-aware DCG, McSherry & Najork 2008), so no tie-break decides.

use serde::Serialize;

use super::{EvalError, check_finite};

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RankingMetrics {
    #[serde(rename = "count/lists")]
    pub lists: usize,
    /// Ordered pairs ψ_i > ψ_j over all lists.
    #[serde(rename = "count/pairs")]
    pub pairs: usize,
    /// Of those, the pairs whose rewards are equal.
    pub ties: usize,
    #[serde(rename = "rewards/accuracies")]
    pub accuracy: f64,
    #[serde(rename = "rewards/chosen")]
    pub chosen: f64,
    #[serde(rename = "rewards/rejected")]
    pub rejected: f64,
    #[serde(rename = "rewards/margins")]
    pub margin: f64,
    /// Mean τ_b over the lists where it is defined; `None` when it is nowhere (e.g. every reward tied).
    pub kendall_tau: Option<f64>,
    /// Lists that entered `kendall_tau`.
    pub kendall_tau_lists: usize,
    /// Mean NDCG over the lists with a positive ideal DCG (not all labels tied).
    pub ndcg: f64,
}

/// The metrics of lists with rewards `rewards[l][i]` and labels `labels[l][i]`.
pub fn ranking_metrics(rewards: &[Vec<f64>], labels: &[Vec<f64>]) -> Result<RankingMetrics, EvalError> {
    if rewards.is_empty() {
        return Err(EvalError::NoItems);
    }
    if labels.len() != rewards.len() {
        return Err(EvalError::LengthMismatch { what: "labels", expected: rewards.len(), found: labels.len() });
    }
    for (s, psi) in rewards.iter().zip(labels) {
        check_finite("rewards", s, s.len())?;
        check_finite("labels", psi, s.len())?;
    }
    let (mut pairs, mut ties, mut correct) = (0usize, 0usize, 0.0);
    let (mut chosen, mut rejected) = (0.0, 0.0);
    let (mut taus, mut ndcgs) = (Vec::new(), Vec::new());
    for (s, psi) in rewards.iter().zip(labels) {
        for i in 0..s.len() {
            for j in 0..s.len() {
                if psi[i] > psi[j] {
                    pairs += 1;
                    ties += usize::from(s[i] == s[j]);
                    correct += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        chosen += mean_at_label(s, psi, f64::max);
        rejected += mean_at_label(s, psi, f64::min);
        taus.extend(kendall_tau_b(s, psi));
        ndcgs.extend(ndcg(s, psi));
    }
    if pairs == 0 {
        return Err(EvalError::NoOrderedPairs);
    }
    let n = rewards.len() as f64;
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    Ok(RankingMetrics {
        lists: rewards.len(),
        pairs,
        ties,
        accuracy: correct / pairs as f64,
        chosen: chosen / n,
        rejected: rejected / n,
        margin: (chosen - rejected) / n,
        kendall_tau: (!taus.is_empty()).then(|| mean(&taus)),
        kendall_tau_lists: taus.len(),
        // A list with an ordered pair has two labels apart, so a positive ideal DCG: ndcgs is not empty.
        ndcg: mean(&ndcgs),
    })
}

/// The mean of `s` over the responses whose label is the list's `pick` (max or min) of the labels.
fn mean_at_label(s: &[f64], psi: &[f64], pick: fn(f64, f64) -> f64) -> f64 {
    let edge = psi.iter().copied().reduce(pick).unwrap_or(0.0);
    let at: Vec<f64> = s.iter().zip(psi).filter(|(_, p)| **p == edge).map(|(x, _)| *x).collect();
    at.iter().sum::<f64>() / at.len().max(1) as f64
}

/// Kendall's τ_b of `s` against `psi`; `None` when either is constant (0/0).
pub fn kendall_tau_b(s: &[f64], psi: &[f64]) -> Option<f64> {
    let (mut concordant, mut discordant, mut tied_psi, mut tied_s, mut n0) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..s.len() {
        for j in i + 1..s.len() {
            n0 += 1.0;
            let (ds, dp) = (s[i] - s[j], psi[i] - psi[j]);
            tied_psi += f64::from(u8::from(dp == 0.0));
            tied_s += f64::from(u8::from(ds == 0.0));
            if ds * dp > 0.0 {
                concordant += 1.0;
            } else if ds * dp < 0.0 {
                discordant += 1.0;
            }
        }
    }
    let denominator = ((n0 - tied_psi) * (n0 - tied_s)).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) / denominator)
}

/// NDCG of the order of `s` against gains 2^(ψ − min ψ) − 1, tie-aware (module doc); `None` when every label is
/// the same (no gain to rank).
pub fn ndcg(s: &[f64], psi: &[f64]) -> Option<f64> {
    let low = psi.iter().copied().fold(f64::INFINITY, f64::min);
    let gains: Vec<f64> = psi.iter().map(|p| (p - low).exp2() - 1.0).collect();
    let ideal = dcg(psi, &gains);
    (ideal > 0.0).then(|| dcg(s, &gains) / ideal)
}

/// Σ gain × discount with positions by `order` descending; equal `order` values share their positions' mean
/// discount.
fn dcg(order: &[f64], gains: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..order.len()).collect();
    idx.sort_by(|&a, &b| order[b].total_cmp(&order[a]));
    let discount = |pos: usize| 1.0 / ((pos + 2) as f64).log2(); // 0-based position
    let mut total = 0.0;
    let mut start = 0;
    while start < idx.len() {
        let end = start + idx[start..].iter().take_while(|&&i| order[i] == order[idx[start]]).count();
        let shared = (start..end).map(discount).sum::<f64>() / (end - start) as f64;
        total += idx[start..end].iter().map(|&i| gains[i]).sum::<f64>() * shared;
        start = end;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    #[test]
    fn perfect_reversed_and_tied_lists_by_hand() {
        let psi = vec![1.0, 0.5, 0.0];
        // Gains 2^1 − 1 = 1, 2^0.5 − 1 = 0.41421…, 0. Ideal DCG = 1/log2 2 + 0.41421/log2 3 = 1.26135.
        let g = 2f64.sqrt() - 1.0;
        let ideal = 1.0 + g / 3f64.log2();
        // Perfect order (rewards 3, 2, 1 would do; here 0.3, 0.2, −0.1).
        let m = ranking_metrics(&[vec![0.3, 0.2, -0.1]], std::slice::from_ref(&psi)).unwrap();
        assert_eq!((m.pairs, m.accuracy, m.kendall_tau, m.ties), (3, 1.0, Some(1.0), 0));
        assert!((m.ndcg - 1.0).abs() < EPS);
        assert!((m.chosen - 0.3).abs() < EPS && (m.rejected + 0.1).abs() < EPS && (m.margin - 0.4).abs() < EPS);
        // Reversed: accuracy 0, τ = −1; DCG puts gain 0 first, g second, 1 third: g/log2 3 + 1/log2 4.
        let m = ranking_metrics(&[vec![1.0, 2.0, 3.0]], std::slice::from_ref(&psi)).unwrap();
        assert_eq!((m.accuracy, m.kendall_tau), (0.0, Some(-1.0)));
        assert!((m.ndcg - (g / 3f64.log2() + 0.5) / ideal).abs() < EPS, "{}", m.ndcg);
        // All rewards tied (policy = reference): accuracy ½, τ undefined, and each response gets the mean
        // discount (1 + 1/log2 3 + 1/2)/3, so NDCG = (1 + g)·that / ideal.
        let m = ranking_metrics(&[vec![0.0; 3]], std::slice::from_ref(&psi)).unwrap();
        assert_eq!((m.accuracy, m.kendall_tau, m.kendall_tau_lists, m.ties), (0.5, None, 0, 3));
        let shared = (1.0 + 1.0 / 3f64.log2() + 0.5) / 3.0;
        assert!((m.ndcg - (1.0 + g) * shared / ideal).abs() < EPS, "{}", m.ndcg);
    }

    #[test]
    fn ties_in_labels_make_no_pair_and_tau_b_corrects_for_them() {
        // ψ = [1, 1, 0]: pairs (0, 2) and (1, 2) only. Rewards [0.5, 0.1, 0.2]: 0.5 > 0.2 right, 0.1 < 0.2 wrong.
        let m = ranking_metrics(&[vec![0.5, 0.1, 0.2]], &[vec![1.0, 1.0, 0.0]]).unwrap();
        assert_eq!((m.pairs, m.accuracy), (2, 0.5));
        // τ_b: pairs (0,1) tied in ψ, (0,2) concordant, (1,2) discordant: C − D = 0 → τ_b = 0.
        assert_eq!(m.kendall_tau, Some(0.0));
        // rewards/chosen: mean of the two ψ = 1 responses, (0.5 + 0.1)/2 = 0.3; rejected 0.2.
        assert!((m.chosen - 0.3).abs() < EPS && (m.rejected - 0.2).abs() < EPS);
        // τ_b with one tie in each: s = [1, 1, 2, 3], ψ = [0, 1, 1, 2]: n0 = 6, ties in ψ 1, in s 1;
        // pairs (0,1) tied s; (0,2) C; (0,3) C; (1,2) tied ψ; (1,3) C; (2,3) C → C = 4, D = 0, τ_b = 4/√(5·5) = 0.8.
        assert!((kendall_tau_b(&[1.0, 1.0, 2.0, 3.0], &[0.0, 1.0, 1.0, 2.0]).unwrap() - 0.8).abs() < EPS);
    }

    #[test]
    fn lists_of_two_give_the_pairwise_accuracy() {
        // Three lists of two, right, wrong, tied: (1 + 0 + ½)/3 = 0.5, as reward_metrics of the same pairs.
        let rewards = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![2.0, 2.0]];
        let labels = vec![vec![1.0, 0.0]; 3];
        let m = ranking_metrics(&rewards, &labels).unwrap();
        let pairwise = super::super::preference::reward_metrics(&[1.0, 0.0, 2.0], &[0.0, 1.0, 2.0], 10).unwrap();
        assert_eq!(m.accuracy, pairwise.accuracy);
        assert_eq!((m.lists, m.pairs, m.margin), (3, 3, pairwise.margin));
    }

    #[test]
    fn negative_scores_are_shifted_and_bad_input_is_named() {
        // Scores −2 and −3 as labels: gains 2^1 − 1 = 1 and 0; the right order gives NDCG 1.
        assert_eq!(ndcg(&[1.0, 0.0], &[-2.0, -3.0]), Some(1.0));
        assert_eq!(ndcg(&[1.0, 0.0], &[0.5, 0.5]), None);
        assert_eq!(ranking_metrics(&[vec![1.0, 2.0]], &[vec![0.0, 0.0]]), Err(EvalError::NoOrderedPairs));
        assert_eq!(ranking_metrics(&[], &[]), Err(EvalError::NoItems));
        let e = ranking_metrics(&[vec![1.0, f64::NAN]], &[vec![1.0, 0.0]]).unwrap_err();
        assert_eq!(e.to_string(), "rewards[1] is NaN, not a finite number");
        assert!(matches!(ranking_metrics(&[vec![1.0, 2.0]], &[vec![1.0]]), Err(EvalError::LengthMismatch { .. })));
    }
}
