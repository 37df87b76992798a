//! The DPO family: one loss over the response log-probs of preference pairs, switched by TRL's `loss_type`.
//!
//! ```text
//! ℓ(y)    = log π_θ(y|x), or ℓ(y)/|y| for the length-normalised types (TRL's `average_log_prob`)
//! h(y)    = ℓ_θ(y) − ℓ_ref(y)  (reference-free types: h(y) = ℓ_θ(y))
//! Δ       = h(y_w) − h(y_l);   S_ε(z) = −(1 − ε)·log σ(z) − ε·log σ(−z)   (cDPO label smoothing, ε = 0: plain)
//!
//! sigmoid  S_ε(βΔ)                                    DPO, Rafailov et al. 2023 Eq. 7; cDPO with ε > 0
//! robust   [S_0(βΔ)·(1 − ε) − S_0(−βΔ)·ε] / (1 − 2ε)  rDPO, Chowdhury et al. 2024 Eq. 7
//! hinge    max(0, 1 − βΔ)                             SLiC-HF, Zhao et al. 2023
//! ipo      (Δ − 1/(2β))², length-normalised            IPO, Azar et al. 2023 Eq. 17 (β is τ)
//! dpo_norm S_ε(βΔ), length-normalised                 Tülu 3's length-normalised DPO (Lambert et al. 2024)
//! simpo    S_ε(βΔ − γ), length-normalised, no ref     SimPO, Meng et al. 2024 Eq. 6
//! cpo      S_ε(βΔ) + α·NLL(y_w), no reference         CPO, Xu et al. 2024 Eq. 8
//! orpo     NLL(y_w) − β·log σ(odds_w − odds_l), odds(y) = ℓ − log(1 − e^ℓ), length-normalised, no ref
//!                                                      ORPO, Hong et al. 2024 Eq. 6 (β is λ, as in TRL)
//! sft      NLL(y_w) = −ℓ_θ(y_w)/|y_w|                 the chosen response's mean token NLL
//!
//! implicit reward r̂(y) = β·h(y), with the first loss type's normalisation (TRL reports the same)
//! ```
//! Several types combine as `Σ_k w_k·L_k` (TRL's `loss_type = [...]` with `loss_weights`).

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

/// A member of the DPO family, named as TRL's `loss_type` (CPOTrainer's for `simpo`/`cpo`, open-instruct's for
/// `dpo_norm`, ORPOTrainer for `orpo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpoLossType {
    #[default]
    Sigmoid,
    Robust,
    Hinge,
    Ipo,
    DpoNorm,
    Simpo,
    Cpo,
    Orpo,
    Sft,
}

impl DpoLossType {
    /// Whether the loss compares against a frozen reference model (the others train without one, which
    /// halves the memory in a browser).
    pub fn uses_reference(self) -> bool {
        matches!(self, Self::Sigmoid | Self::Robust | Self::Hinge | Self::Ipo | Self::DpoNorm)
    }

    /// Whether the loss sees per-token mean log-probs instead of sums.
    fn length_normalized(self) -> bool {
        matches!(self, Self::Ipo | Self::DpoNorm | Self::Simpo | Self::Orpo)
    }
}

/// The loss of a run: the weighted loss types and their hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DpoLoss {
    /// `(loss_type, weight)`; at least one.
    pub terms: Vec<(DpoLossType, f64)>,
    pub beta: f64,
    /// ε of cDPO and rDPO.
    pub label_smoothing: f64,
    /// SimPO's target margin γ.
    pub simpo_gamma: f64,
    /// CPO's weight α of the chosen NLL.
    pub cpo_alpha: f64,
}

/// Response log-probs of a batch of pairs, each `[pairs]`: summed over response tokens, and the token counts.
pub struct PairLogps {
    pub chosen: Tensor<1>,
    pub rejected: Tensor<1>,
    /// The frozen reference's; `None` when no loss term uses it.
    pub reference: Option<(Tensor<1>, Tensor<1>)>,
    pub chosen_tokens: Tensor<1>,
    pub rejected_tokens: Tensor<1>,
}

/// Per-pair losses and implicit rewards (the rewards carry no gradient).
pub struct DpoOutput {
    pub losses: Tensor<1>,
    pub chosen_rewards: Tensor<1>,
    pub rejected_rewards: Tensor<1>,
}

impl DpoLoss {
    pub fn uses_reference(&self) -> bool {
        self.terms.iter().any(|(t, _)| t.uses_reference())
    }

    /// The weighted loss of each pair.
    pub fn forward(&self, lp: &PairLogps) -> DpoOutput {
        let (beta, eps) = (self.beta, self.label_smoothing);
        let mut losses: Option<Tensor<1>> = None;
        for &(kind, weight) in &self.terms {
            let (hw, hl) = self.log_ratios(lp, kind);
            let delta = hw.clone() - hl.clone();
            let nll_chosen = || lp.chosen.clone().neg() / lp.chosen_tokens.clone();
            let l = match kind {
                DpoLossType::Sigmoid | DpoLossType::DpoNorm => smoothed(delta.mul_scalar(beta), eps),
                DpoLossType::Robust => {
                    let z = delta.mul_scalar(beta);
                    (smoothed(z.clone(), 0.0).mul_scalar(1.0 - eps) - smoothed(z.neg(), 0.0).mul_scalar(eps))
                        .div_scalar(1.0 - 2.0 * eps)
                }
                DpoLossType::Hinge => delta.mul_scalar(-beta).add_scalar(1.0).clamp_min(0.0),
                DpoLossType::Ipo => delta.sub_scalar(1.0 / (2.0 * beta)).square(),
                DpoLossType::Simpo => smoothed(delta.mul_scalar(beta).sub_scalar(self.simpo_gamma), eps),
                DpoLossType::Cpo => smoothed(delta.mul_scalar(beta), eps) + nll_chosen().mul_scalar(self.cpo_alpha),
                DpoLossType::Orpo => {
                    let odds = |l: Tensor<1>| l.clone() - l.exp().neg().log1p();
                    nll_chosen() - activation::log_sigmoid(odds(hw) - odds(hl)).mul_scalar(beta)
                }
                DpoLossType::Sft => nll_chosen(),
            };
            let l = l.mul_scalar(weight);
            losses = Some(match losses {
                Some(acc) => acc + l,
                None => l,
            });
        }
        let first = self.terms.first().map_or(DpoLossType::Sigmoid, |t| t.0);
        let (hw, hl) = self.log_ratios(lp, first);
        DpoOutput {
            losses: losses.unwrap_or_else(|| lp.chosen.zeros_like()),
            chosen_rewards: hw.detach().mul_scalar(beta),
            rejected_rewards: hl.detach().mul_scalar(beta),
        }
    }

    /// `h(y_w), h(y_l)` as `kind` defines them.
    fn log_ratios(&self, lp: &PairLogps, kind: DpoLossType) -> (Tensor<1>, Tensor<1>) {
        let (mut w, mut l) = (lp.chosen.clone(), lp.rejected.clone());
        if kind.uses_reference()
            && let Some((rw, rl)) = &lp.reference
        {
            w = w - rw.clone();
            l = l - rl.clone();
        }
        if kind.length_normalized() {
            w = w / lp.chosen_tokens.clone();
            l = l / lp.rejected_tokens.clone();
        }
        (w, l)
    }
}

/// `−(1 − ε)·log σ(z) − ε·log σ(−z)`.
fn smoothed(z: Tensor<1>, eps: f64) -> Tensor<1> {
    let loss = activation::log_sigmoid(z.clone()).mul_scalar(-(1.0 - eps));
    if eps == 0.0 { loss } else { loss - activation::log_sigmoid(z.neg()).mul_scalar(eps) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::assert_pair_gradients;
    use burn::tensor::{Device, TensorData};
    use std::f64::consts::LN_2;

    fn t(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn values(x: Tensor<1>) -> Vec<f64> {
        x.into_data().iter::<f32>().map(f64::from).collect()
    }

    fn loss(kind: DpoLossType, beta: f64) -> DpoLoss {
        DpoLoss { terms: vec![(kind, 1.0)], beta, label_smoothing: 0.0, simpo_gamma: 0.0, cpo_alpha: 1.0 }
    }

    /// One pair: policy (−10, −12), reference (−11, −11), response lengths 4 and 5.
    fn pair(d: &Device) -> PairLogps {
        PairLogps {
            chosen: t(&[-10.0], d),
            rejected: t(&[-12.0], d),
            reference: Some((t(&[-11.0], d), t(&[-11.0], d))),
            chosen_tokens: t(&[4.0], d),
            rejected_tokens: t(&[5.0], d),
        }
    }

    #[test]
    fn every_loss_type_matches_hand_computation() {
        // Sums: h_w = −10 + 11 = 1, h_l = −12 + 11 = −1, Δ = 2. Means: h_w = −10/4 + 11/4 = 0.25,
        // h_l = −12/5 + 11/5 = −0.2, Δ = 0.45. Reference-free means: ℓ_w = −2.5, ℓ_l = −2.4. NLL(y_w) = 2.5.
        use DpoLossType::*;
        let cases: [(DpoLossType, f64, f64, f64, f64); 10] = [
            // (type, β, ε, γ, expected)
            (Sigmoid, 0.1, 0.0, 0.0, 0.598138869), // ln(1 + e^−0.2)
            (Sigmoid, 0.1, 0.1, 0.0, 0.618138869), // 0.9·ln(1 + e^−0.2) + 0.1·ln(1 + e^0.2)
            (Robust, 0.1, 0.1, 0.0, 0.573138869),  // [0.9·0.598138869 − 0.1·0.798138869] / 0.8
            (Hinge, 0.1, 0.0, 0.0, 0.8),           // max(0, 1 − 0.1·2)
            (Ipo, 0.1, 0.0, 0.0, 20.7025),         // (0.45 − 1/0.2)² = (−4.55)²
            (DpoNorm, 0.1, 0.0, 0.0, 0.670900284), // ln(1 + e^−0.045)
            (Simpo, 2.0, 0.0, 1.0, 1.463282467),   // z = 2·(−2.5 + 2.4) − 1 = −1.2: ln(1 + e^1.2)
            (Cpo, 0.1, 0.0, 0.0, 3.098138869),     // z = 0.1·(−10 + 12) = 0.2: ln(1 + e^−0.2) + 2.5
            // odds_w = −2.5 − ln(1 − e^−2.5) = −2.414349516, odds_l = −2.4 − ln(1 − e^−2.4) = −2.304900049,
            // 2.5 + 0.1·ln(1 + e^0.109449467)
            (Orpo, 0.1, 0.0, 0.0, 2.574936857),
            (Sft, 0.1, 0.0, 0.0, 2.5),
        ];
        let d = Device::flex();
        for (kind, beta, eps, gamma, expected) in cases {
            let l = DpoLoss { label_smoothing: eps, simpo_gamma: gamma, ..loss(kind, beta) };
            let got = values(l.forward(&pair(&d)).losses)[0];
            assert!((got - expected).abs() < 2e-5, "{kind:?} ε={eps}: {got} vs {expected}");
        }
        // Implicit rewards follow the first type: β·h with sums for sigmoid, with means for ipo.
        let out = loss(Sigmoid, 0.1).forward(&pair(&d));
        assert!((values(out.chosen_rewards)[0] - 0.1).abs() < 1e-6);
        assert!((values(out.rejected_rewards)[0] + 0.1).abs() < 1e-6);
        let out = loss(Ipo, 0.1).forward(&pair(&d));
        assert!((values(out.chosen_rewards)[0] - 0.025).abs() < 1e-6);
        // Weighted combination: 1·sigmoid + 0.5·sft = 0.598138869 + 1.25.
        let combo = DpoLoss { terms: vec![(Sigmoid, 1.0), (Sft, 0.5)], ..loss(Sigmoid, 0.1) };
        assert!((values(combo.forward(&pair(&d)).losses)[0] - 1.848138869).abs() < 2e-5);
    }

    #[test]
    fn identities_at_policy_equal_to_reference() {
        // Δ = 0: sigmoid, cDPO, rDPO and dpo_norm give ln 2 (cDPO: (1−ε)ln2 + ε ln2; rDPO: (1−2ε)ln2/(1−2ε)),
        // hinge gives 1, IPO gives 1/(4β²).
        let d = Device::flex();
        let lp = t(&[-12.5, -3.0, -40.0], &d);
        let same = || PairLogps {
            chosen: lp.clone(),
            rejected: lp.clone() - 1.0,
            reference: Some((lp.clone(), lp.clone() - 1.0)),
            chosen_tokens: t(&[5.0, 1.0, 30.0], &d),
            rejected_tokens: t(&[4.0, 2.0, 20.0], &d),
        };
        use DpoLossType::*;
        for (kind, eps, expected) in [
            (Sigmoid, 0.0, LN_2),
            (Sigmoid, 0.2, LN_2),
            (Robust, 0.2, LN_2),
            (DpoNorm, 0.0, LN_2),
            (Hinge, 0.0, 1.0),
            (Ipo, 0.0, 25.0),
        ] {
            let l = DpoLoss { label_smoothing: eps, ..loss(kind, 0.1) };
            for v in values(l.forward(&same()).losses) {
                assert!((v - expected).abs() < 1e-5, "{kind:?} ε={eps}: {v} vs {expected}");
            }
        }
    }

    #[test]
    fn simpo_without_margin_or_normalisation_is_cpo_without_nll() {
        // With one-token responses the means are the sums; γ = 0 and α = 0 leave the same logistic term.
        let d = Device::flex();
        let lp = PairLogps {
            chosen: t(&[-1.5, -0.2, -3.0], &d),
            rejected: t(&[-2.5, -0.1, -1.0], &d),
            reference: None,
            chosen_tokens: t(&[1.0; 3], &d),
            rejected_tokens: t(&[1.0; 3], &d),
        };
        let simpo = values(loss(DpoLossType::Simpo, 2.0).forward(&lp).losses);
        let cpo = values(DpoLoss { cpo_alpha: 0.0, ..loss(DpoLossType::Cpo, 2.0) }.forward(&lp).losses);
        for (a, b) in simpo.iter().zip(&cpo) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn gradients_match_finite_differences_for_every_loss_type() {
        let d = Device::flex().autodiff();
        let (pc, pr) = ([-10.0f32, -4.0], [-12.0f32, -3.5]);
        let batch = |pc: Tensor<1>, pr: Tensor<1>| PairLogps {
            chosen: pc,
            rejected: pr,
            reference: Some((t(&[-11.0, -4.2], &d), t(&[-11.0, -3.0], &d))),
            chosen_tokens: t(&[4.0, 3.0], &d),
            rejected_tokens: t(&[5.0, 2.0], &d),
        };
        use DpoLossType::*;
        for kind in [Sigmoid, Robust, Hinge, Ipo, DpoNorm, Simpo, Cpo, Orpo, Sft] {
            // β = 0.3 keeps the hinge away from its kink (βΔ = 0.6 and 0.21).
            let l = DpoLoss { label_smoothing: 0.1, simpo_gamma: 0.3, ..loss(kind, 0.3) };
            let total = |c: &[f32], r: &[f32]| values(l.forward(&batch(t(c, &d), t(r, &d))).losses.sum())[0];
            let (ct, rt) = (t(&pc, &d).require_grad(), t(&pr, &d).require_grad());
            let grads = l.forward(&batch(ct.clone(), rt.clone())).losses.sum().backward();
            // `sft` ignores the rejected response: no gradient there, i.e. zeros.
            let grad = |x: &Tensor<1>| x.grad(&grads).map_or(vec![0.0; 2], values);
            let analytic = [grad(&ct), grad(&rt)];
            let [c, r] = &analytic;
            assert_pair_gradients(total, &pc, &pr, [c, r], 2e-4, &format!("{kind:?}"));
        }
    }
}
