//! Reward models from pairwise preferences, TRL's `RewardTrainer` plus HelpSteer2-Preference's Scaled BT:
//!
//! ```text
//! bradley_terry  L = −log σ(r_w − r_l)               Bradley & Terry 1952; Ouyang et al. 2022 Eq. 1
//! margin         L = −log σ(r_w − r_l − s/3)          Llama 2 (Touvron et al. 2023 Eq. 2): strength s ∈ {1,2,3}
//!                                                     gives its margins {1/3, 2/3, 1}
//! scaled_bt      L = −s · log σ(r_w − r_l)            Scaled BT (Wang et al. 2024, HelpSteer2-Preference)
//! + centering    c · (r_w + r_l)²                     TRL's `center_rewards_coefficient` (Eisenstein et al. 2023)
//! ```
//! A pair without a strength is a plain Bradley–Terry term (margin 0, scale 1).
//!
//! Ratings train a model of k heads by regression (SteerLM; HelpSteer2's attributes, labels 0–4):
//!
//! ```text
//! regression  L = Σ_a m_a · (r_a(x, y) − label_a)²     m_a = 1 where the record rates attribute a, else 0
//! ```
//! summed over attributes as METHODS.md §A1 writes it (a mean over attributes would only rescale the
//! learning rate by 1/k); the loop averages it over examples.

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

/// How preference strength enters the pairwise loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardLossType {
    #[default]
    BradleyTerry,
    Margin,
    ScaledBt,
}

/// The pairwise reward-model loss of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RewardLoss {
    pub loss_type: RewardLossType,
    pub center_rewards_coefficient: f64,
}

impl RewardLoss {
    /// Per-pair loss from the rewards of the chosen and rejected responses and the pairs' strengths (0 where
    /// a pair has none), all `[pairs]`.
    pub fn forward(&self, chosen: Tensor<1>, rejected: Tensor<1>, strength: Tensor<1>) -> Tensor<1> {
        let diff = chosen.clone() - rejected.clone();
        let has = strength.clone().greater_elem(0.0).float();
        let loss = match self.loss_type {
            RewardLossType::BradleyTerry => activation::log_sigmoid(diff).neg(),
            RewardLossType::Margin => activation::log_sigmoid(diff - strength.div_scalar(3.0)).neg(),
            RewardLossType::ScaledBt => {
                let scale = strength + has.neg().add_scalar(1.0); // s, or 1 without a strength
                activation::log_sigmoid(diff).neg() * scale
            }
        };
        if self.center_rewards_coefficient == 0.0 {
            return loss;
        }
        loss + (chosen + rejected).square().mul_scalar(self.center_rewards_coefficient)
    }
}

/// Per-example regression loss `Σ_a m_a·(r_a − y_a)²` from scores, labels and a mask, all `[n, k]` (the
/// mask is 1 where a label exists; a missing label's entry in `labels` is ignored). Returns `[n]`.
pub fn regression_loss(scores: Tensor<2>, labels: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    let [n, _] = scores.dims();
    ((scores - labels).square() * mask).sum_dim(1).reshape([n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn values(x: Tensor<1>) -> Vec<f64> {
        x.into_data().iter::<f32>().map(f64::from).collect()
    }

    #[test]
    fn every_loss_type_matches_hand_computation() {
        // Pairs: (r_w, r_l, s) = (1.5, 0.5, 3), (1.5, 0.5, 1.5), (−1, 2, none), (1.5, 0.5, none).
        // BT: −log σ(1) = ln(1 + e^−1) = 0.313261688; −log σ(−3) = ln(1 + e^3) = 3.048587352.
        // margin: s = 3 → m = 1, −log σ(0) = ln 2; s = 1.5 → m = 0.5, ln(1 + e^−0.5) = 0.474076984.
        // scaled: 3·0.313261688 = 0.939785063, 1.5·0.313261688 = 0.469892531, unscaled without strength.
        // centering c = 0.01 adds 0.01·(1.5 + 0.5)² = 0.04 and 0.01·(−1 + 2)² = 0.01.
        let d = Device::flex();
        let (rw, rl, s) = (t(&[1.5, 1.5, -1.0, 1.5], &d), t(&[0.5, 0.5, 2.0, 0.5], &d), t(&[3.0, 1.5, 0.0, 0.0], &d));
        let (bt, far) = (0.313261688, 3.048587352);
        use RewardLossType::*;
        for (loss_type, c, want) in [
            (BradleyTerry, 0.0, [bt, bt, far, bt]),
            (Margin, 0.0, [std::f64::consts::LN_2, 0.474076984, far, bt]),
            (ScaledBt, 0.0, [0.939785063, 0.469892531, far, bt]),
            (BradleyTerry, 0.01, [bt + 0.04, bt + 0.04, far + 0.01, bt + 0.04]),
        ] {
            let got = values(RewardLoss { loss_type, center_rewards_coefficient: c }.forward(
                rw.clone(),
                rl.clone(),
                s.clone(),
            ));
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 2e-6, "{loss_type:?} c={c}: {got:?} vs {want:?}");
            }
        }
    }

    fn t2(v: &[f32], cols: usize, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len() / cols, cols]), device)
    }

    #[test]
    fn regression_matches_hand_computation() {
        // Two examples, three attributes; the second lacks its third label (mask 0, label ignored).
        // (1.5 − 2)² + (0 − 1)² + (3 − 4)² = 0.25 + 1 + 1 = 2.25;  (−1 − 0)² + (2.5 − 2.5)² = 1.
        let d = Device::flex();
        let scores = t2(&[1.5, 0.0, 3.0, -1.0, 2.5, 7.0], 3, &d);
        let labels = t2(&[2.0, 1.0, 4.0, 0.0, 2.5, 0.0], 3, &d);
        let mask = t2(&[1.0, 1.0, 1.0, 1.0, 1.0, 0.0], 3, &d);
        let got = values(regression_loss(scores, labels, mask));
        assert!((got[0] - 2.25).abs() < 1e-6 && (got[1] - 1.0).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn regression_gradient_matches_finite_differences() {
        let d = Device::flex().autodiff();
        let s = [0.3f32, -1.2, 2.0, 0.7];
        let (labels, mask) = (t2(&[1.0, 0.0, 4.0, 2.0], 2, &d), t2(&[1.0, 1.0, 0.0, 1.0], 2, &d));
        let total = |s: &[f32]| values(regression_loss(t2(s, 2, &d), labels.clone(), mask.clone()).sum())[0];
        let x = t2(&s, 2, &d).require_grad();
        let loss = regression_loss(x.clone(), labels.clone(), mask.clone()).sum();
        let g: Vec<f64> = x.grad(&loss.backward()).unwrap().into_data().iter::<f32>().map(f64::from).collect();
        // ∂/∂r = 2·m·(r − y): the masked entry (index 2) has none.
        assert_eq!(g[2], 0.0);
        for i in 0..4 {
            let (mut up, mut down) = (s, s);
            up[i] += 1e-2;
            down[i] -= 1e-2;
            let fd = (total(&up) - total(&down)) / 2e-2;
            assert!((fd - g[i]).abs() < 1e-3, "{i}: fd {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let d = Device::flex().autodiff();
        let (rc, rr, s) = ([0.3f32, -1.2, 2.0], [0.1f32, 0.4, -0.5], [2.0f32, 0.0, 3.0]);
        for loss_type in [RewardLossType::BradleyTerry, RewardLossType::Margin, RewardLossType::ScaledBt] {
            let loss = RewardLoss { loss_type, center_rewards_coefficient: 0.05 };
            let total = |rc: &[f32]| values(loss.forward(t(rc, &d), t(&rr, &d), t(&s, &d)).sum())[0];
            let x = t(&rc, &d).require_grad();
            let g = values(x.grad(&loss.forward(x.clone(), t(&rr, &d), t(&s, &d)).sum().backward()).unwrap());
            for i in 0..3 {
                let (mut up, mut down) = (rc, rc);
                up[i] += 1e-2;
                down[i] -= 1e-2;
                let fd = (total(&up) - total(&down)) / 2e-2;
                assert!((fd - g[i]).abs() < 1e-4, "{loss_type:?} {i}: fd {fd} vs {}", g[i]);
            }
        }
    }
}
