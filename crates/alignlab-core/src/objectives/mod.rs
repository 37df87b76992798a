//! Training objectives. `logprob` holds the one kernel most methods share (masked sequence log-probs,
//! computed in chunks of tokens); each family of losses has a file of its own, named as in the papers.

pub mod dpo;
pub mod kto;
pub mod lipo;
pub mod logprob;
pub mod modpo;
pub mod reward;

/// Central finite differences (step 1e-2) of a loss of the chosen and rejected log-probs, compared entry by
/// entry with `analytic` (the autodiff gradients w.r.t. chosen and rejected): the check each pairwise loss
/// file runs for every one of its types.
#[cfg(test)]
pub(crate) fn assert_pair_gradients(
    loss: impl Fn(&[f32], &[f32]) -> f64,
    chosen: &[f32],
    rejected: &[f32],
    analytic: [&[f64]; 2],
    tol: f64,
    what: &str,
) {
    let eps = 1e-2f32;
    for (side, analytic) in analytic.iter().enumerate() {
        for (i, &want) in analytic.iter().enumerate() {
            let at = |step: f32| {
                let (mut c, mut r) = (chosen.to_vec(), rejected.to_vec());
                if side == 0 {
                    c[i] += step
                } else {
                    r[i] += step
                }
                loss(&c, &r)
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            assert!((fd - want).abs() < tol, "{what} side {side} [{i}]: fd {fd} vs {want}");
        }
    }
}
