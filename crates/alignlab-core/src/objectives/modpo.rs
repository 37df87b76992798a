//! MODPO: multi-objective DPO, Zhou et al. 2023 ("Beyond One-Preference-Fits-All Alignment: Multi-Objective
//! Direct Preference Optimization", arXiv:2310.03708).
//!
//! ```text
//! h(y)     = ℓ_θ(y) − ℓ_ref(y)                       summed response log-probs, as DPO's `sigmoid`
//! r̂(y)     = (1/w_k)·(β·h(y) − w_{−k}ᵀ r_{−k}(y))   the collective implicit reward of objective k
//! sigmoid  −log σ(r̂(y_w) − r̂(y_l))
//!        = −log σ((β/w_k)·[h(y_w) − h(y_l)] − (1/w_k)·w_{−k}ᵀ[r_{−k}(y_w) − r_{−k}(y_l)])    the MODPO loss
//! hinge    max(0, 1 − (r̂(y_w) − r̂(y_l)))           the reference code's other `loss_type`
//! ```
//! The preference pairs are those of the target objective k; `r_{−k}` are the other objectives' margin reward
//! models (Bradley–Terry RMs or DPO implicit rewards) scored on the same pairs, and carry no gradient.
//! w = (w_k, w_{−k}) lies on the simplex with w_k > 0 (the loss scales as 1/w_k: avoid w_k → 0). With one
//! objective (w_k = 1, no margin RMs) MODPO is DPO. The form and the reported rewards follow `modpo_loss` in
//! the authors' code (ZHZisZZ/modpo, `src/trainer/modpo_trainer.py`). A Pareto front trains one policy per
//! weight of [`weight_sweep`].

use crate::objectives::dpo::PairLogps;
use burn::tensor::{Tensor, TensorData, activation};
use serde::{Deserialize, Serialize};

/// How the collective reward margin is turned into a loss (the authors' `loss_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModpoLossType {
    #[default]
    Sigmoid,
    Hinge,
}

/// Objective weights on the simplex: w_k of the objective whose pairs are trained on, w_{−k} of the margin RMs.
#[derive(Clone, Debug, PartialEq)]
pub struct ModpoWeights {
    target: f64,
    others: Vec<f64>,
}

/// Weights that are not on the simplex or leave the target objective out.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModpoError {
    #[error("MODPO weight w_k must be a positive number (the loss scales as 1/w_k), got {0}")]
    TargetNotPositive(f64),
    #[error("MODPO weight w_-k[{index}] must be a non-negative number, got {value}")]
    NegativeOther { index: usize, value: f64 },
    #[error("MODPO weights must sum to 1 (the simplex), got {sum}")]
    NotOnSimplex { sum: f64 },
}

impl ModpoWeights {
    /// `target` = w_k, `others` = w_{−k}, one per margin RM, in the order of the reward columns.
    pub fn new(target: f64, others: Vec<f64>) -> Result<Self, ModpoError> {
        if !(target.is_finite() && target > 0.0) {
            return Err(ModpoError::TargetNotPositive(target));
        }
        if let Some((index, &value)) = others.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
            return Err(ModpoError::NegativeOther { index, value });
        }
        let sum = target + others.iter().sum::<f64>();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(ModpoError::NotOnSimplex { sum });
        }
        Ok(Self { target, others })
    }

    /// One objective: w_k = 1 and no margin RMs (MODPO is then DPO).
    pub fn single() -> Self {
        Self { target: 1.0, others: Vec::new() }
    }

    pub fn target(&self) -> f64 {
        self.target
    }

    pub fn others(&self) -> &[f64] {
        &self.others
    }
}

/// The two-objective sweep for a Pareto front: `(w_k, 1 − w_k)` for w_k = 0.1, 0.2, …, 0.9.
pub fn weight_sweep() -> Vec<ModpoWeights> {
    (1..=9).map(|i| i as f64 / 10.0).map(|w| ModpoWeights { target: w, others: vec![1.0 - w] }).collect()
}

/// The loss of a MODPO run for one target objective.
#[derive(Clone, Debug, PartialEq)]
pub struct ModpoLoss {
    pub loss_type: ModpoLossType,
    /// β; 0.1 in the paper.
    pub beta: f64,
    pub weights: ModpoWeights,
}

/// The other objectives' margin-RM rewards of each pair's responses, each `[pairs, M]`, M = `weights.others().len()`.
pub struct MarginRewards {
    pub chosen: Tensor<2>,
    pub rejected: Tensor<2>,
}

/// Per-pair losses and collective implicit rewards r̂ (the rewards carry no gradient).
pub struct ModpoOutput {
    pub losses: Tensor<1>,
    pub chosen_rewards: Tensor<1>,
    pub rejected_rewards: Tensor<1>,
}

impl ModpoLoss {
    /// The loss of each pair. `lp.reference` is required; the token counts are not used. `margins` is `None`
    /// exactly when there are no other objectives.
    ///
    /// # Shapes
    /// - log-probs: `[pairs]`; margin rewards: `[pairs, M]`; outputs: `[pairs]`
    ///
    /// # Panics
    /// Without a reference, or when the margin rewards do not match the weights.
    pub fn forward(&self, lp: &PairLogps, margins: Option<&MarginRewards>) -> ModpoOutput {
        let (ref_w, ref_l) = lp.reference.clone().expect("MODPO needs the reference log-probs");
        let (hw, hl) = (lp.chosen.clone() - ref_w, lp.rejected.clone() - ref_l);
        let (beta, wk) = (self.beta, self.weights.target);
        // w_{−k}ᵀ r_{−k}(y), [pairs], or None without other objectives.
        let weighted = |r: &Tensor<2>| {
            let [pairs, m] = r.dims();
            let w = Tensor::<2>::from_data(
                TensorData::new(self.weights.others.iter().map(|&w| w as f32).collect(), [1, m]),
                &r.device(),
            );
            (r.clone().detach() * w.expand([pairs, m])).sum_dim(1).reshape([pairs])
        };
        let m = self.weights.others.len();
        let margin = match margins {
            Some(r) => {
                assert!(
                    r.chosen.dims()[1] == m && r.rejected.dims()[1] == m,
                    "MODPO: {m} weights w_-k but margin rewards of {:?} and {:?}",
                    r.chosen.dims(),
                    r.rejected.dims()
                );
                Some((weighted(&r.chosen), weighted(&r.rejected)))
            }
            None => {
                assert!(m == 0, "MODPO: {m} weights w_-k but no margin rewards");
                None
            }
        };
        // z = (β/w_k)·Δh − (1/w_k)·w_{−k}ᵀΔr
        let mut z = (hw.clone() - hl.clone()).mul_scalar(beta / wk);
        if let Some((mw, ml)) = &margin {
            z = z - (mw.clone() - ml.clone()).div_scalar(wk);
        }
        let losses = match self.loss_type {
            ModpoLossType::Sigmoid => activation::log_sigmoid(z).neg(),
            ModpoLossType::Hinge => z.neg().add_scalar(1.0).clamp_min(0.0),
        };
        let reward = |h: Tensor<1>, r: Option<Tensor<1>>| {
            let h = h.detach().mul_scalar(beta);
            match r {
                Some(r) => (h - r).div_scalar(wk),
                None => h.div_scalar(wk),
            }
        };
        let (mw, ml) = margin.map_or((None, None), |(w, l)| (Some(w), Some(l)));
        ModpoOutput { losses, chosen_rewards: reward(hw, mw), rejected_rewards: reward(hl, ml) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::assert_pair_gradients;
    use crate::objectives::dpo::{DpoLoss, DpoLossType};
    use burn::tensor::Device;

    fn t(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn t2(v: &[f32], cols: usize, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len() / cols, cols]), device)
    }

    fn values(x: Tensor<1>) -> Vec<f64> {
        x.into_data().iter::<f32>().map(f64::from).collect()
    }

    /// One pair: policy (−10, −12), reference (−11, −11), so h_w = 1, h_l = −1.
    fn pair(d: &Device) -> PairLogps {
        PairLogps {
            chosen: t(&[-10.0], d),
            rejected: t(&[-12.0], d),
            reference: Some((t(&[-11.0], d), t(&[-11.0], d))),
            chosen_tokens: t(&[4.0], d),
            rejected_tokens: t(&[5.0], d),
        }
    }

    /// Two margin RMs: r(y_w) = (1, 0.5), r(y_l) = (0, 1.5).
    fn margins(d: &Device) -> MarginRewards {
        MarginRewards { chosen: t2(&[1.0, 0.5], 2, d), rejected: t2(&[0.0, 1.5], 2, d) }
    }

    fn modpo(loss_type: ModpoLossType, beta: f64, target: f64, others: Vec<f64>) -> ModpoLoss {
        ModpoLoss { loss_type, beta, weights: ModpoWeights::new(target, others).unwrap() }
    }

    #[test]
    fn loss_matches_hand_computation() {
        // β = 0.1, Δh = 1 − (−1) = 2, Δr = (1 − 0, 0.5 − 1.5) = (1, −1).
        // w = (0.5; 0.3, 0.2): w_{−k}ᵀΔr = 0.3 − 0.2 = 0.1, z = (0.1·2 − 0.1)/0.5 = 0.2 → ln(1 + e^−0.2).
        // w = (0.25; 0.45, 0.3): w_{−k}ᵀΔr = 0.45 − 0.3 = 0.15, z = (0.2 − 0.15)/0.25 = 0.2 → the same.
        // w = (0.25; 0.5, 0.25): 0.5 − 0.25 = 0.25, z = (0.2 − 0.25)/0.25 = −0.2 → ln(1 + e^0.2).
        // Hinge at w = (0.5; 0.3, 0.2): max(0, 1 − 0.2).
        let d = Device::flex();
        use ModpoLossType::*;
        for (kind, target, others, expected) in [
            (Sigmoid, 0.5, vec![0.3, 0.2], 0.598138869),
            (Sigmoid, 0.25, vec![0.45, 0.3], 0.598138869),
            (Sigmoid, 0.25, vec![0.5, 0.25], 0.798138869),
            (Hinge, 0.5, vec![0.3, 0.2], 0.8),
        ] {
            let got = values(modpo(kind, 0.1, target, others.clone()).forward(&pair(&d), Some(&margins(&d))).losses);
            assert!((got[0] - expected).abs() < 1e-6, "{kind:?} {target} {others:?}: {got:?} vs {expected}");
        }
        // Collective rewards at w = (0.5; 0.3, 0.2): r̂_w = (0.1·1 − (0.3·1 + 0.2·0.5))/0.5 = −0.6,
        // r̂_l = (0.1·(−1) − (0.3·0 + 0.2·1.5))/0.5 = −0.8; their difference is z = 0.2.
        let out = modpo(Sigmoid, 0.1, 0.5, vec![0.3, 0.2]).forward(&pair(&d), Some(&margins(&d)));
        assert!((values(out.chosen_rewards)[0] + 0.6).abs() < 1e-6);
        assert!((values(out.rejected_rewards)[0] + 0.8).abs() < 1e-6);
    }

    #[test]
    fn one_objective_is_dpo() {
        let d = Device::flex();
        let lp = PairLogps {
            chosen: t(&[-10.0, -4.0, -7.0], &d),
            rejected: t(&[-12.0, -3.5, -7.0], &d),
            reference: Some((t(&[-11.0, -4.2, -6.0], &d), t(&[-11.0, -3.0, -8.0], &d))),
            chosen_tokens: t(&[4.0, 3.0, 1.0], &d),
            rejected_tokens: t(&[5.0, 2.0, 1.0], &d),
        };
        for (kind, dpo_kind) in
            [(ModpoLossType::Sigmoid, DpoLossType::Sigmoid), (ModpoLossType::Hinge, DpoLossType::Hinge)]
        {
            let dpo = DpoLoss {
                terms: vec![(dpo_kind, 1.0)],
                beta: 0.3,
                label_smoothing: 0.0,
                simpo_gamma: 0.0,
                cpo_alpha: 0.0,
            }
            .forward(&lp);
            // No other objectives; and one other objective at weight 0 (its rewards then do not matter).
            let single = ModpoLoss { loss_type: kind, beta: 0.3, weights: ModpoWeights::single() }.forward(&lp, None);
            let zero = modpo(kind, 0.3, 1.0, vec![0.0]).forward(
                &lp,
                Some(&MarginRewards { chosen: t2(&[5.0, -1.0, 2.0], 1, &d), rejected: t2(&[0.0, 3.0, 7.0], 1, &d) }),
            );
            for out in [single, zero] {
                for (got, want) in [
                    (out.losses, dpo.losses.clone()),
                    (out.chosen_rewards, dpo.chosen_rewards.clone()),
                    (out.rejected_rewards, dpo.rejected_rewards.clone()),
                ] {
                    for (a, b) in values(got).iter().zip(values(want)) {
                        assert!((a - b).abs() < 1e-6, "{kind:?}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn equal_margin_rewards_rescale_beta_by_the_weight() {
        // Δr = 0: z = (β/w_k)·Δh, i.e. DPO with β' = β/w_k = 0.1/0.4 = 0.25.
        let d = Device::flex();
        let r = t2(&[0.3, -2.0], 2, &d);
        let out = modpo(ModpoLossType::Sigmoid, 0.1, 0.4, vec![0.35, 0.25])
            .forward(&pair(&d), Some(&MarginRewards { chosen: r.clone(), rejected: r }));
        // ln(1 + e^(−0.25·2))
        assert!((values(out.losses)[0] - 0.474076984).abs() < 1e-6);
    }

    #[test]
    fn weights_are_validated() {
        assert_eq!(ModpoWeights::new(0.0, vec![1.0]), Err(ModpoError::TargetNotPositive(0.0)));
        assert!(matches!(ModpoWeights::new(f64::NAN, vec![]), Err(ModpoError::TargetNotPositive(_))));
        assert_eq!(ModpoWeights::new(1.2, vec![-0.2]), Err(ModpoError::NegativeOther { index: 0, value: -0.2 }));
        assert!(matches!(ModpoWeights::new(0.5, vec![0.3]), Err(ModpoError::NotOnSimplex { .. })));
        assert!(ModpoWeights::new(0.3, vec![0.5, 0.2]).is_ok());
        let sweep = weight_sweep();
        assert_eq!(sweep.len(), 9);
        for (i, w) in sweep.iter().enumerate() {
            assert!((w.target() - (i + 1) as f64 / 10.0).abs() < 1e-12);
            assert_eq!(ModpoWeights::new(w.target(), w.others().to_vec()).as_ref(), Ok(w));
        }
    }

    #[test]
    fn gradients_match_finite_differences_for_every_loss_type() {
        let d = Device::flex().autodiff();
        let (pc, pr) = ([-10.0f32, -4.0], [-12.0f32, -3.5]);
        let rw = t2(&[1.0, 0.5, -0.2, 0.4], 2, &d).require_grad();
        let rl = t2(&[0.0, 1.5, 0.3, 0.1], 2, &d);
        let batch = |pc: Tensor<1>, pr: Tensor<1>| PairLogps {
            chosen: pc,
            rejected: pr,
            reference: Some((t(&[-11.0, -4.2], &d), t(&[-11.0, -3.0], &d))),
            chosen_tokens: t(&[1.0; 2], &d),
            rejected_tokens: t(&[1.0; 2], &d),
        };
        for kind in [ModpoLossType::Sigmoid, ModpoLossType::Hinge] {
            // z = (0.1·2 − (0.5·1 + 0.2·(−1)))/0.3 = −0.333 and (0.1·0.7 − (0.5·(−0.5) + 0.2·0.3))/0.3 = 0.867:
            // both on the hinge's sloped side, away from its kink at 1.
            let l = modpo(kind, 0.1, 0.3, vec![0.5, 0.2]);
            let m = MarginRewards { chosen: rw.clone(), rejected: rl.clone() };
            let total = |c: &[f32], r: &[f32]| values(l.forward(&batch(t(c, &d), t(r, &d)), Some(&m)).losses.sum())[0];
            let (ct, rt) = (t(&pc, &d).require_grad(), t(&pr, &d).require_grad());
            let grads = l.forward(&batch(ct.clone(), rt.clone()), Some(&m)).losses.sum().backward();
            assert!(
                rw.grad(&grads).is_none_or(|g| values(g.reshape([4])).iter().all(|g| *g == 0.0)),
                "margin RMs get no gradient"
            );
            let analytic = [values(ct.grad(&grads).unwrap()), values(rt.grad(&grads).unwrap())];
            let [c, r] = &analytic;
            assert_pair_gradients(total, &pc, &pr, [c, r], 2e-4, &format!("{kind:?}"));
        }
    }
}
