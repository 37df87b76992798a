//! Reward models from pairwise preferences: the Bradley–Terry model (Bradley & Terry 1952; Ouyang et al.
//! 2022, Eq. 1), TRL's `RewardTrainer`:
//!
//! ```text
//! L = −log σ(r(x, y_w) − r(x, y_l) − m)      m = margin (0, or from preference strength as in Llama 2)
//! ```

use burn::tensor::{Tensor, activation};

/// Per-pair Bradley–Terry loss from the rewards of the chosen and rejected responses, `[pairs]`.
pub fn bradley_terry_loss(chosen: Tensor<1>, rejected: Tensor<1>, margin: Option<Tensor<1>>) -> Tensor<1> {
    let diff = chosen - rejected;
    let diff = match margin {
        Some(m) => diff - m,
        None => diff,
    };
    activation::log_sigmoid(diff).neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    #[test]
    fn bradley_terry_matches_hand_computation() {
        // r_w − r_l = 1: −log σ(1) = ln(1 + e^−1) = 0.313261687; with margin 1: −log σ(0) = ln 2;
        // a wrong ordering by 3: ln(1 + e^3) = 3.048587352.
        let d = Device::flex();
        let got = bradley_terry_loss(t(&[1.5, 1.5, -1.0], &d), t(&[0.5, 0.5, 2.0], &d), Some(t(&[0.0, 1.0, 0.0], &d)));
        let got = got.into_data().iter::<f32>().collect::<Vec<f32>>();
        for (g, want) in got.iter().zip([0.313261687, std::f64::consts::LN_2, 3.048587352]) {
            assert!((*g as f64 - want).abs() < 1e-6, "{g} vs {want}");
        }
    }

    #[test]
    fn bradley_terry_gradient_matches_finite_differences() {
        let d = Device::flex().autodiff();
        let (rc, rr) = ([0.3f32, -1.2, 2.0], [0.1f32, 0.4, -0.5]);
        let loss_at = |rc: &[f32]| -> f64 {
            bradley_terry_loss(t(rc, &d), t(&rr, &d), None).sum().into_data().iter::<f32>().collect::<Vec<f32>>()[0]
                as f64
        };
        let x = t(&rc, &d).require_grad();
        let grads = bradley_terry_loss(x.clone(), t(&rr, &d), None).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().iter::<f32>().collect::<Vec<f32>>();
        for i in 0..3 {
            let (mut up, mut down) = (rc, rc);
            up[i] += 1e-2;
            down[i] -= 1e-2;
            let fd = (loss_at(&up) - loss_at(&down)) / 2e-2;
            // analytic: −σ(−(r_w − r_l))
            let analytic = -1.0 / (1.0 + ((rc[i] - rr[i]) as f64).exp());
            assert!(
                (fd - g[i] as f64).abs() < 1e-4 && (analytic - g[i] as f64).abs() < 1e-5,
                "{i}: {fd} {analytic} {}",
                g[i]
            );
        }
    }
}
