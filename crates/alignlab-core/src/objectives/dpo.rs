//! Direct Preference Optimization (Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model
//! is Secretly a Reward Model", Eq. 7), TRL's `DPOTrainer`:
//!
//! ```text
//! h(x, y) = log π_θ(y|x) − log π_ref(y|x)            (log-ratio against the frozen reference)
//! Δ       = h(x, y_w) − h(x, y_l)
//! sigmoid: L = −(1 − ε)·log σ(βΔ) − ε·log σ(−βΔ)     (ε = label_smoothing: cDPO; ε = 0 is DPO)
//! implicit reward r̂(x, y) = β·h(x, y)
//! ```
//! Other members of the family join [`DpoLossType`] as further arms of the one `match` in [`dpo_loss`].

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

/// The DPO-family loss, named as TRL's `loss_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpoLossType {
    /// `−log σ(βΔ)`, with optional label smoothing (cDPO).
    #[default]
    Sigmoid,
}

/// Per-pair losses and implicit rewards (the rewards carry no gradient).
pub struct DpoOutput {
    pub losses: Tensor<1>,
    pub chosen_rewards: Tensor<1>,
    pub rejected_rewards: Tensor<1>,
}

/// The DPO loss of each pair from the summed response log-probs of policy and reference, all `[pairs]`.
pub fn dpo_loss(
    policy_chosen: Tensor<1>,
    policy_rejected: Tensor<1>,
    reference_chosen: Tensor<1>,
    reference_rejected: Tensor<1>,
    beta: f64,
    label_smoothing: f64,
    loss_type: DpoLossType,
) -> DpoOutput {
    let chosen_logratio = policy_chosen - reference_chosen;
    let rejected_logratio = policy_rejected - reference_rejected;
    let delta = chosen_logratio.clone() - rejected_logratio.clone();
    let losses = match loss_type {
        DpoLossType::Sigmoid => {
            let z = delta.mul_scalar(beta);
            activation::log_sigmoid(z.clone()).mul_scalar(-(1.0 - label_smoothing))
                - activation::log_sigmoid(z.neg()).mul_scalar(label_smoothing)
        }
    };
    DpoOutput {
        losses,
        chosen_rewards: chosen_logratio.detach().mul_scalar(beta),
        rejected_rewards: rejected_logratio.detach().mul_scalar(beta),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn scalar(x: Tensor<1>) -> f64 {
        x.into_data().iter::<f32>().collect::<Vec<f32>>()[0] as f64
    }

    #[test]
    fn dpo_loss_is_ln2_when_policy_equals_reference() {
        let d = Device::flex();
        let lp = t(&[-12.5, -3.0, -40.0], &d);
        let out = dpo_loss(lp.clone(), lp.clone() - 1.0, lp.clone(), lp - 1.0, 0.1, 0.0, DpoLossType::Sigmoid);
        for l in out.losses.into_data().iter::<f32>().collect::<Vec<f32>>() {
            assert!((l as f64 - std::f64::consts::LN_2).abs() < 1e-6, "{l}");
        }
    }

    #[test]
    fn dpo_loss_matches_hand_computation() {
        // policy (−10, −12), reference (−11, −11), β = 0.1: Δ = (−10+11) − (−12+11) = 2, βΔ = 0.2,
        // L = −log σ(0.2) = ln(1 + e^−0.2) = 0.598138869; rewards 0.1·1 = 0.1 and 0.1·(−1) = −0.1.
        let d = Device::flex();
        let out = dpo_loss(
            t(&[-10.0], &d),
            t(&[-12.0], &d),
            t(&[-11.0], &d),
            t(&[-11.0], &d),
            0.1,
            0.0,
            DpoLossType::Sigmoid,
        );
        assert!((scalar(out.losses) - 0.598138869).abs() < 1e-6);
        assert!((scalar(out.chosen_rewards) - 0.1).abs() < 1e-6);
        assert!((scalar(out.rejected_rewards) + 0.1).abs() < 1e-6);
        // cDPO, ε = 0.1: 0.9·ln(1+e^−0.2) + 0.1·ln(1+e^0.2) = 0.9·0.598138869 + 0.1·0.798138869 = 0.618138869
        let out = dpo_loss(
            t(&[-10.0], &d),
            t(&[-12.0], &d),
            t(&[-11.0], &d),
            t(&[-11.0], &d),
            0.1,
            0.1,
            DpoLossType::Sigmoid,
        );
        assert!((scalar(out.losses) - 0.618138869).abs() < 1e-6);
    }

    #[test]
    fn dpo_gradient_matches_finite_differences() {
        let d = Device::flex().autodiff();
        let (pc, pr, rc, rr) = ([-10.0f32, -4.0], [-12.0f32, -3.5], [-11.0f32, -4.2], [-11.0f32, -3.0]);
        let loss_at = |pc: &[f32], pr: &[f32]| -> f64 {
            let out = dpo_loss(t(pc, &d), t(pr, &d), t(&rc, &d), t(&rr, &d), 0.5, 0.1, DpoLossType::Sigmoid);
            scalar(out.losses.sum())
        };
        let pct = t(&pc, &d).require_grad();
        let prt = t(&pr, &d).require_grad();
        let out = dpo_loss(pct.clone(), prt.clone(), t(&rc, &d), t(&rr, &d), 0.5, 0.1, DpoLossType::Sigmoid);
        let grads = out.losses.sum().backward();
        let gc = pct.grad(&grads).unwrap().into_data().iter::<f32>().collect::<Vec<f32>>();
        let gr = prt.grad(&grads).unwrap().into_data().iter::<f32>().collect::<Vec<f32>>();
        let eps = 1e-2f32;
        for i in 0..2 {
            let (mut up, mut down) = (pc, pc);
            up[i] += eps;
            down[i] -= eps;
            let fd = (loss_at(&up, &pr) - loss_at(&down, &pr)) / (2.0 * eps as f64);
            assert!((fd - gc[i] as f64).abs() < 1e-4, "chosen {i}: fd {fd} vs {}", gc[i]);
            let (mut up, mut down) = (pr, pr);
            up[i] += eps;
            down[i] -= eps;
            let fd = (loss_at(&pc, &up) - loss_at(&pc, &down)) / (2.0 * eps as f64);
            assert!((fd - gr[i] as f64).abs() < 1e-4, "rejected {i}: fd {fd} vs {}", gr[i]);
        }
    }
}
