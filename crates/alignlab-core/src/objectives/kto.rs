//! KTO: Kahneman–Tversky optimisation on unpaired examples, Ethayarajh et al. 2024 (arXiv:2402.01306), as
//! TRL's `KTOTrainer` with `loss_type="kto"`.
//!
//! ```text
//! r    = ℓ_θ(y|x) − ℓ_ref(y|x)                       summed response log-probs of each (prompt, completion)
//! z0   = max(0, mean_j [ℓ_θ(y_j|x_i) − ℓ_ref(y_j|x_i)]), detached     over mismatched pairs j ≠ i (TRL: `kl`)
//! v    = λ_D·σ(β(r − z0))   desirable                   the value function, Eq. 7 as TRL cites it
//!        λ_U·σ(β(z0 − r))   undesirable
//! L    = λ_y − v  = λ_y·σ(−β·(±)(r − z0))             per example; TRL averages the batch
//! reward r̂ = β·r                                        TRL's `rewards/chosen` (desirable), `rewards/rejected`
//! ```
//! β = `beta` (0.1), λ_D = `desirable_weight`, λ_U = `undesirable_weight` (both 1), TRL's names. The paper
//! keeps λ_D·n_D / (λ_U·n_U) ∈ [1, 4/3] ([`KtoLoss::desirable_ratio`]). The mismatched pairs are TRL's KL
//! dataset: in each batch, prompt i with the completion of example i − 1 ([`kl_completion_index`]); z0 is
//! their mean log-ratio, clamped at 0 and detached, and is logged as `kl`.

use burn::tensor::{Bool, Tensor, activation};

/// The KTO loss of a run, with TRL's parameter names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KtoLoss {
    pub beta: f64,
    /// λ_D, the weight of desirable examples.
    pub desirable_weight: f64,
    /// λ_U, the weight of undesirable examples.
    pub undesirable_weight: f64,
}

impl Default for KtoLoss {
    fn default() -> Self {
        Self { beta: 0.1, desirable_weight: 1.0, undesirable_weight: 1.0 }
    }
}

/// Response log-probs of a batch of unpaired examples.
pub struct KtoLogps {
    /// The policy's summed log-prob of each example's completion, `[n]`.
    pub policy: Tensor<1>,
    /// The frozen reference's (or precomputed ones), `[n]`.
    pub reference: Tensor<1>,
    /// `true` for a desirable example, `[n]`.
    pub desirable: Tensor<1, Bool>,
    /// Policy and reference log-probs of the mismatched (prompt i, completion j ≠ i) pairs, `[m]` each (TRL's
    /// `KL_completion`, usually m = n). `None`: z0 = 0, as TRL without a KL estimate (`calculate_KL = False`).
    pub mismatched: Option<(Tensor<1>, Tensor<1>)>,
}

/// Per-example losses, rewards β·r and the KL estimate z0; all but `losses` are detached.
pub struct KtoOutput {
    /// `[n]`.
    pub losses: Tensor<1>,
    /// β·r of each example, `[n]`; split by `desirable` for TRL's `rewards/chosen` and `rewards/rejected`.
    pub rewards: Tensor<1>,
    /// z0, `[1]`: TRL's `kl`.
    pub kl: Tensor<1>,
}

impl KtoLoss {
    /// The loss of each example.
    ///
    /// # Shapes
    /// - `policy`, `reference`, `desirable`: `[n]`; `mismatched`: `[m]` each; outputs as [`KtoOutput`]
    pub fn forward(&self, lp: &KtoLogps) -> KtoOutput {
        let r = lp.policy.clone() - lp.reference.clone();
        let kl = match &lp.mismatched {
            Some((p, q)) => (p.clone() - q.clone()).mean().clamp_min(0.0).detach(),
            None => Tensor::zeros([1], &r.device()),
        };
        let [n] = r.dims();
        let desirable = lp.desirable.clone().float();
        // sign = +1 desirable, −1 undesirable; λ_y − λ_y·σ(β·sign·(r − z0)) = λ_y·σ(−β·sign·(r − z0)).
        let sign = desirable.clone().mul_scalar(2.0).sub_scalar(1.0);
        let weight = desirable
            .clone()
            .mul_scalar(self.desirable_weight - self.undesirable_weight)
            .add_scalar(self.undesirable_weight);
        let z = (r.clone() - kl.clone().expand([n])).mul(sign).mul_scalar(-self.beta);
        KtoOutput { losses: activation::sigmoid(z) * weight, rewards: r.detach().mul_scalar(self.beta), kl }
    }

    /// λ_D·n_D / (λ_U·n_U); the paper recommends [1, 4/3] (TRL warns outside it). Infinite without undesirable
    /// examples.
    pub fn desirable_ratio(&self, n_desirable: usize, n_undesirable: usize) -> f64 {
        (self.desirable_weight * n_desirable as f64) / (self.undesirable_weight * n_undesirable as f64)
    }
}

/// TRL's KL dataset within a batch of `n`: prompt i takes the completion of example `(i − 1) mod n`
/// (`[completions[-1]] + completions[:-1]`). Needs n ≥ 2 for the pairs to be mismatched.
pub fn kl_completion_index(n: usize) -> Vec<usize> {
    (0..n).map(|i| (i + n - 1) % n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn mask(v: &[bool], device: &Device) -> Tensor<1, Bool> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn values(x: Tensor<1>) -> Vec<f64> {
        x.into_data().iter::<f32>().map(f64::from).collect()
    }

    /// Policy (−10, −12, −5), reference (−11, −11, −5.5): r = (1, −1, 0.5); the first is desirable.
    fn batch(d: &Device, mismatched: Option<([f32; 3], [f32; 3])>) -> KtoLogps {
        KtoLogps {
            policy: t(&[-10.0, -12.0, -5.0], d),
            reference: t(&[-11.0, -11.0, -5.5], d),
            desirable: mask(&[true, false, false], d),
            mismatched: mismatched.map(|(p, q)| (t(&p, d), t(&q, d))),
        }
    }

    #[test]
    fn loss_matches_hand_computation() {
        // β = 0.1, λ_D = 1, λ_U = 1.5.
        // Mismatched log-ratios (1, 0.2, 0.9): z0 = 2.1/3 = 0.7.
        //   desirable r = 1:      1 − σ(0.1·(1 − 0.7))        = σ(−0.03)       = 0.492500562
        //   undesirable r = −1:   1.5·(1 − σ(0.1·(0.7 + 1)))  = 1.5·σ(−0.17)   = 0.686403089
        //   undesirable r = 0.5:  1.5·(1 − σ(0.1·(0.7 − 0.5))) = 1.5·σ(−0.02)  = 0.742500250
        // Mismatched log-ratios (−1, −0.5, 0.3): mean −0.4, z0 = max(0, −0.4) = 0; no estimate: z0 = 0 as well.
        //   1 − σ(0.1) = 0.475020813;  1.5·σ(0.1·(−1)) = 0.712531219;  1.5·σ(0.1·0.5) = 0.768746095
        let d = Device::flex();
        let loss = KtoLoss { beta: 0.1, desirable_weight: 1.0, undesirable_weight: 1.5 };
        let at_zero = [0.475020813, 0.712531219, 0.768746095];
        for (mismatched, kl, want) in [
            (Some(([-20.0, -18.0, -15.0], [-21.0, -18.2, -15.9])), 0.7, [0.492500562, 0.686403089, 0.742500250]),
            (Some(([-20.0, -18.0, -15.0], [-19.0, -17.5, -15.3])), 0.0, at_zero),
            (None, 0.0, at_zero),
        ] {
            let out = loss.forward(&batch(&d, mismatched));
            let got = values(out.losses);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{mismatched:?}: {got:?} vs {want:?}");
            }
            assert!((values(out.kl)[0] - kl).abs() < 1e-6);
            let rewards = values(out.rewards);
            for (g, w) in rewards.iter().zip([0.1, -0.1, 0.05]) {
                assert!((g - w).abs() < 1e-6, "rewards {rewards:?}");
            }
        }
    }

    #[test]
    fn policy_equal_to_reference_costs_half_the_weight() {
        // r = 0 and z0 = 0: λ − λ·σ(0) = λ/2 for each example.
        let d = Device::flex();
        let lp = t(&[-12.5, -3.0, -40.0, -7.0], &d);
        let kl = t(&[-9.0, -4.0, -30.0, -2.0], &d);
        let loss = KtoLoss { beta: 0.3, desirable_weight: 1.2, undesirable_weight: 0.8 };
        let out = loss.forward(&KtoLogps {
            policy: lp.clone(),
            reference: lp,
            desirable: mask(&[true, false, true, false], &d),
            mismatched: Some((kl.clone(), kl)),
        });
        assert_eq!(values(out.kl), [0.0]);
        for (g, w) in values(out.losses).iter().zip([0.6, 0.4, 0.6, 0.4]) {
            assert!((g - w).abs() < 1e-7, "{g} vs {w}");
        }
    }

    #[test]
    fn gradients_match_finite_differences_and_skip_the_kl_estimate() {
        let d = Device::flex().autodiff();
        let p0 = [-10.0f32, -12.0, -5.0, -7.0];
        let (q, kl_q) = ([-11.0f32, -11.0, -5.5, -6.0], [-21.0f32, -18.2, -15.9, -8.0]);
        let kl_p = t(&[-20.0, -18.0, -15.0, -7.5], &d).require_grad();
        for (dw, uw, estimate) in [(1.0, 1.0, true), (1.0, 1.5, true), (2.0, 0.5, false)] {
            let loss = KtoLoss { beta: 0.4, desirable_weight: dw, undesirable_weight: uw };
            let batch = |p: Tensor<1>| KtoLogps {
                policy: p,
                reference: t(&q, &d),
                desirable: mask(&[true, false, false, true], &d),
                mismatched: estimate.then(|| (kl_p.clone(), t(&kl_q, &d))),
            };
            let total = |p: &[f32]| values(loss.forward(&batch(t(p, &d))).losses.sum())[0];
            let x = t(&p0, &d).require_grad();
            let grads = loss.forward(&batch(x.clone())).losses.sum().backward();
            let g = values(x.grad(&grads).unwrap());
            // z0 is detached: the mismatched log-probs get no gradient.
            assert!(kl_p.grad(&grads).is_none_or(|g| values(g).iter().all(|g| *g == 0.0)));
            for i in 0..4 {
                let (mut up, mut down) = (p0, p0);
                up[i] += 1e-2;
                down[i] -= 1e-2;
                let fd = (total(&up) - total(&down)) / 2e-2;
                assert!((fd - g[i]).abs() < 1e-4, "λ=({dw}, {uw}) [{i}]: fd {fd} vs {}", g[i]);
            }
        }
    }

    #[test]
    fn kl_pairs_shift_completions_by_one() {
        assert_eq!(kl_completion_index(4), [3, 0, 1, 2]);
        assert!(kl_completion_index(5).iter().enumerate().all(|(i, j)| i != *j));
        let loss = KtoLoss::default();
        assert!((loss.desirable_ratio(4, 3) - 4.0 / 3.0).abs() < 1e-12);
    }
}
