//! LiPO: preference optimisation on ranked lists of K responses per prompt, as learning-to-rank.
//!
//! ```text
//! s_i   = β·(ℓ_θ(y_i) − ℓ_ref(y_i)),  i = 1..K      ℓ = summed response log-prob;  labels ψ_i (higher = better)
//! pairs = {(i, j): ψ_i > ψ_j}, both present        equal ψ is a tie and makes no pair
//!
//! lambda         Σ_pairs Δ_ij·(−log σ(s_i − s_j))      LiPO-λ, Liu et al. 2024 (arXiv:2402.01878)
//!                Δ_ij = |G_i − G_j|·|1/D(τ_i) − 1/D(τ_j)|,  G = 2^ψ − 1,  D(τ) = log2(1 + τ)
//!                τ_i = rank of s_i among the list's present responses by the CURRENT s, descending,
//!                1-based; Δ is detached (the LambdaLoss NDCG weight, Wang et al. 2018)
//! pair_logistic  Σ_pairs −log σ(s_i − s_j)              Δ = 1: DPO summed over all ordered pairs (DPO_BT)
//! pair_hinge     Σ_pairs max(0, 1 − (s_i − s_j))        SLiC-HF's hinge over all pairs
//! list_mle       Σ_i [log Σ_{m ∈ {i} ∪ worse(i)} e^{s_m} − s_i]
//!                Plackett–Luce over the label order (ListMLE, Xia et al. 2008; DPO_PL), worse(i) = {m: ψ_i > ψ_m}
//! softmax        −Σ_i softmax(ψ)_i·log softmax(s)_i     ListNet top-1 (Cao et al. 2007)
//! ```
//! Normalisation: each list's loss is the SUM over its pairs (positions for `list_mle` and `softmax`), as in
//! the paper; the trainer averages lists. A list of K has up to K(K−1)/2 pairs, so the loss grows with K (β
//! and the learning rate of a K = 2 DPO run carry over per pair, not per list). With K = 2 and one pair,
//! `pair_logistic` and `list_mle` are DPO's sigmoid loss and `pair_hinge` DPO's hinge, exactly.
//!
//! Departures, each deliberate:
//! - τ among equal current scores: TF-Ranking shuffles ties (`sorted_ranks(..., shuffle_ties=True)`); here the
//!   earlier position ranks first, so the loss is deterministic. At policy = reference all s are equal and τ is
//!   the list order; ranks that tied would make every Δ zero and LiPO-λ untrainable from its start.
//! - Ties in ψ for `list_mle`: the plain Plackett–Luce likelihood needs a strict order; here each response
//!   competes only with the strictly worse ones (tied responses leave each other's denominators), so a tie
//!   compares nothing, as for the pair losses. Without ties this is ListMLE exactly.
//! - A list without a single pair (all ties, or one response) contributes 0 for every type, `softmax`
//!   included (its cross-entropy would otherwise be log K at best and pull the tied scores together).
//! - Padding (mask false) is removed before anything is computed: a padded list has the loss, gradients and
//!   metrics of the shorter list, whatever the padded entries hold (NaN included).

use burn::tensor::{Bool, Tensor, TensorData, activation};
use serde::{Deserialize, Serialize};
use std::f64::consts::LN_2;

/// A LiPO loss over lists; `lambda` is the paper's LiPO-λ, the others are its learning-to-rank baselines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LipoLossType {
    #[default]
    Lambda,
    PairLogistic,
    PairHinge,
    ListMle,
    Softmax,
}

/// The listwise loss of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LipoLoss {
    pub loss_type: LipoLossType,
    /// β of `s = β·h`; the paper uses 0.05.
    pub beta: f64,
}

impl Default for LipoLoss {
    fn default() -> Self {
        Self { loss_type: LipoLossType::Lambda, beta: 0.05 }
    }
}

/// Response log-probs of a batch of lists, each `[lists, K]`.
pub struct ListLogps {
    /// The policy's summed response log-probs.
    pub policy: Tensor<2>,
    /// The frozen reference's (or precomputed ones).
    pub reference: Tensor<2>,
    /// Labels ψ, higher = better; equal values are ties. Carry no gradient. `lambda` gains are 2^ψ − 1, so keep ψ
    /// on a small scale (win rates in [0, 1] as in the paper, or ratings); past ψ ≈ 127 they overflow f32.
    pub labels: Tensor<2>,
    /// `true` for a response, `false` for padding of a list shorter than K; `None`: every list is full.
    pub mask: Option<Tensor<2, Bool>>,
}

/// Per-list losses and metrics; everything but `losses` is detached.
pub struct LipoOutput {
    /// `[lists]`.
    pub losses: Tensor<1>,
    /// The implicit rewards `s = β·h`, `[lists, K]`, 0 at padding.
    pub scores: Tensor<2>,
    /// Mean `s` of the responses with the list's highest label, `[lists]`.
    pub best_rewards: Tensor<1>,
    /// Mean `s` of the responses with the list's lowest label, `[lists]`.
    pub worst_rewards: Tensor<1>,
    /// Number of pairs ψ_i > ψ_j per list, `[lists]`.
    pub pairs: Tensor<1>,
    /// Of those, the pairs with s_i > s_j (a tie in s is wrong, as TRL's `rewards/accuracies`), `[lists]`.
    pub correct_pairs: Tensor<1>,
}

impl LipoOutput {
    /// Pairwise accuracy of s against ψ over the whole batch, `[1]`: Σ correct / Σ pairs (0 without pairs).
    pub fn pair_accuracy(&self) -> Tensor<1> {
        self.correct_pairs.clone().sum() / self.pairs.clone().sum().clamp_min(1.0)
    }
}

/// Fill value that drops an entry from a log-sum-exp (`exp` of it is 0 in f32, and it stays finite).
const DROPPED: f64 = -1e30;

impl LipoLoss {
    /// The loss of each list.
    ///
    /// # Shapes
    /// - every input: `[lists, K]`; output `losses`: `[lists]`
    pub fn forward(&self, lp: &ListLogps) -> LipoOutput {
        let [lists, k] = lp.policy.dims();
        let device = lp.policy.device();
        let pad = lp.mask.clone().map(Tensor::bool_not);
        let clean = |x: Tensor<2>| match &pad {
            Some(p) => x.mask_fill(p.clone(), 0.0),
            None => x,
        };
        let valid = match &lp.mask {
            Some(m) => m.clone().float(),
            None => Tensor::ones([lists, k], &device),
        };
        let dropped = valid.clone().lower_elem(0.5);
        let s = clean((lp.policy.clone() - lp.reference.clone()).mul_scalar(self.beta));
        let psi = clean(lp.labels.clone().detach());
        let (col, row) = (|x: Tensor<2>| col(x, k), |x: Tensor<2>| row(x, k));
        let sum_pairs = |x: Tensor<3>| x.sum_dim(2).sum_dim(1).reshape([lists]);

        // P_ij = [ψ_i > ψ_j]·[i present]·[j present], the pairs every type but `softmax` sums over.
        let pairs = col(psi.clone()).greater(row(psi.clone())).float() * col(valid.clone()) * row(valid.clone());
        let diff = col(s.clone()) - row(s.clone()); // s_i − s_j at [list, i, j]
        let losses = match self.loss_type {
            LipoLossType::Lambda => {
                let tau = ranks(s.clone().detach(), valid.clone());
                let inv_d = tau.add_scalar(1.0).log().recip().mul_scalar(LN_2) * valid.clone(); // 1/log2(1 + τ)
                let gain = psi.clone().mul_scalar(LN_2).exp().sub_scalar(1.0); // 2^ψ − 1
                let delta = (col(gain.clone()) - row(gain)).abs() * (col(inv_d.clone()) - row(inv_d)).abs();
                sum_pairs(pairs.clone() * delta * logistic(diff.clone()))
            }
            LipoLossType::PairLogistic => sum_pairs(pairs.clone() * logistic(diff.clone())),
            LipoLossType::PairHinge => sum_pairs(pairs.clone() * diff.clone().neg().add_scalar(1.0).clamp_min(0.0)),
            LipoLossType::ListMle => {
                // The denominator of response i: itself and the strictly worse responses.
                let eye = Tensor::<2>::eye(k, &device).unsqueeze_dim::<3>(0).expand([lists, k, k]);
                let out = (pairs.clone() + eye).lower_elem(0.5);
                let lse = logsumexp(row(s.clone()), out).reshape([lists, k]);
                ((lse - s.clone()) * valid.clone()).sum_dim(1).reshape([lists])
            }
            LipoLossType::Softmax => {
                let lse = |x: Tensor<2>| logsumexp(x, dropped.clone()).expand([lists, k]);
                let target = (psi.clone().mask_fill(dropped.clone(), DROPPED) - lse(psi.clone())).exp();
                let log_q = s.clone() - lse(s.clone());
                let has_pair = sum_pairs(pairs.clone()).greater_elem(0.0).float();
                (target * log_q * valid.clone()).sum_dim(1).reshape([lists]).neg() * has_pair
            }
        };

        let sd = s.detach();
        let correct = pairs.clone() * diff.detach().greater_elem(0.0).float();
        let extreme = |best: bool| {
            // Labels of padding pushed past every real one, so max/min see only present responses.
            let masked = psi.clone().mask_fill(dropped.clone(), if best { DROPPED } else { -DROPPED });
            let edge = if best { masked.clone().max_dim(1) } else { masked.clone().min_dim(1) };
            let at = masked.equal(edge.expand([lists, k])).float() * valid.clone();
            (sd.clone() * at.clone()).sum_dim(1).reshape([lists]) / at.sum_dim(1).reshape([lists]).clamp_min(1.0)
        };
        LipoOutput {
            losses,
            best_rewards: extreme(true),
            worst_rewards: extreme(false),
            pairs: sum_pairs(pairs),
            correct_pairs: sum_pairs(correct),
            scores: sd,
        }
    }
}

/// `x[list, i]` at `[list, i, j]`.
fn col(x: Tensor<2>, k: usize) -> Tensor<3> {
    let [lists, _] = x.dims();
    x.unsqueeze_dim::<3>(2).expand([lists, k, k])
}

/// `x[list, j]` at `[list, i, j]`.
fn row(x: Tensor<2>, k: usize) -> Tensor<3> {
    let [lists, _] = x.dims();
    x.unsqueeze_dim::<3>(1).expand([lists, k, k])
}

/// `−log σ(z)`, stable.
fn logistic<const D: usize>(z: Tensor<D>) -> Tensor<D> {
    activation::log_sigmoid(z).neg()
}

/// `log Σ_j exp x_j` over the last dimension (kept, of size 1), leaving out the entries where `out` is true;
/// at least one entry per row must stay. The max is detached: it cancels, and only steadies the exponent.
fn logsumexp<const D: usize>(x: Tensor<D>, out: Tensor<D, Bool>) -> Tensor<D> {
    let dims = x.dims();
    let x = x.mask_fill(out, DROPPED);
    let max = x.clone().detach().max_dim(D - 1);
    (x - max.clone().expand(dims)).exp().sum_dim(D - 1).log() + max
}

/// τ: 1-based rank of each present score within its list, descending; equal scores rank by position (earlier
/// first). `τ_i = 1 + #{m present: s_m > s_i} + #{m present, m < i: s_m = s_i}`; padding gets some τ ≥ 1.
///
/// # Shapes
/// - `s`, `valid` (1 present, 0 padding): `[lists, K]`
fn ranks(s: Tensor<2>, valid: Tensor<2>) -> Tensor<2> {
    let [lists, k] = s.dims();
    let earlier: Vec<f32> = (0..k * k).map(|x| if x % k < x / k { 1.0 } else { 0.0 }).collect(); // [i, m]: m < i
    let earlier = Tensor::<2>::from_data(TensorData::new(earlier, [k, k]), &s.device())
        .unsqueeze_dim::<3>(0)
        .expand([lists, k, k]);
    let (si, sm) = (col(s.clone(), k), row(s, k));
    let ahead = sm.clone().greater(si.clone()).float() + sm.equal(si).float() * earlier;
    (ahead * row(valid, k)).sum_dim(2).reshape([lists, k]).add_scalar(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::dpo::{DpoLoss, DpoLossType, PairLogps};
    use burn::tensor::Device;

    fn t2(v: &[&[f32]], device: &Device) -> Tensor<2> {
        let k = v[0].len();
        Tensor::from_data(TensorData::new(v.concat(), [v.len(), k]), device)
    }

    fn m2(v: &[&[bool]], device: &Device) -> Tensor<2, Bool> {
        let k = v[0].len();
        Tensor::from_data(TensorData::new(v.concat(), [v.len(), k]), device)
    }

    fn t1(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn values<const D: usize>(x: Tensor<D>) -> Vec<f64> {
        x.into_data().iter::<f32>().map(f64::from).collect()
    }

    const ALL: [LipoLossType; 5] = [
        LipoLossType::Lambda,
        LipoLossType::PairLogistic,
        LipoLossType::PairHinge,
        LipoLossType::ListMle,
        LipoLossType::Softmax,
    ];

    fn loss(loss_type: LipoLossType, beta: f64) -> LipoLoss {
        LipoLoss { loss_type, beta }
    }

    /// One list of three: β = 0.5, h = (0.4, 1.0, −0.6) so s = (0.2, 0.5, −0.3); ψ = (2, 1, 1), a tie between
    /// the last two, so the pairs are (0, 1) and (0, 2).
    fn three(d: &Device) -> ListLogps {
        ListLogps {
            policy: t2(&[&[-9.6, -5.0, -12.6]], d),
            reference: t2(&[&[-10.0, -6.0, -12.0]], d),
            labels: t2(&[&[2.0, 1.0, 1.0]], d),
            mask: None,
        }
    }

    #[test]
    fn ranks_follow_current_scores_with_ties_by_position() {
        // s = (0.5, 0.2, 0.5, pad 9, −1): 0.5 at 0 ranks 1, 0.5 at 2 ranks 2 (tie, later), 0.2 ranks 3, −1 ranks 4;
        // the padded 9 outranks nobody.
        let d = Device::flex();
        let tau = values(ranks(t2(&[&[0.5, 0.2, 0.5, 9.0, -1.0]], &d), t2(&[&[1.0, 1.0, 1.0, 0.0, 1.0]], &d)));
        assert_eq!([tau[0], tau[1], tau[2], tau[4]], [1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn every_loss_type_matches_hand_computation() {
        // Ranks by s = (0.2, 0.5, −0.3): τ = (2, 1, 3); 1/D: τ=1 → 1/log2 2 = 1, τ=2 → 1/log2 3 = 0.630929754,
        // τ=3 → 1/log2 4 = 0.5. G = 2^ψ − 1 = (3, 1, 1).
        // Δ_01 = |3 − 1|·|0.630929754 − 1| = 0.738140493, Δ_02 = |3 − 1|·|0.630929754 − 0.5| = 0.261859507.
        // −log σ(0.2 − 0.5) = ln(1 + e^0.3) = 0.854355244, −log σ(0.2 + 0.3) = ln(1 + e^−0.5) = 0.474076984.
        // list_mle: only response 0 has worse ones: ln(e^0.2 + e^0.5 + e^−0.3) − 0.2 = 1.283968749 − 0.2.
        // softmax: p = (e², e, e)/(e² + 2e) = (0.576116885, 0.211941558, 0.211941558), log q = s − 1.283968749,
        // 0.576116885·1.083968749 + 0.211941558·(0.783968749 + 1.583968749).
        let cases = [
            (LipoLossType::Lambda, 0.738140493 * 0.854355244 + 0.261859507 * 0.474076984), // 0.754775767
            (LipoLossType::PairLogistic, 0.854355244 + 0.474076984),                       // 1.328432229
            (LipoLossType::PairHinge, (1.0 - (0.2 + 0.3)) + (1.0 - (0.2 - 0.5))),          // 0.5 + 1.3
            (LipoLossType::ListMle, 1.083968749),
            (LipoLossType::Softmax, 1.126357061),
        ];
        let d = Device::flex();
        for (kind, expected) in cases {
            let got = values(loss(kind, 0.5).forward(&three(&d)).losses)[0];
            assert!((got - expected).abs() < 1e-5, "{kind:?}: {got} vs {expected}");
        }
        // Metrics: best = s_0 = 0.2, worst = mean(s_1, s_2) = 0.1, two pairs of which (0, 2) is right.
        let out = loss(LipoLossType::Lambda, 0.5).forward(&three(&d));
        assert!((values(out.pair_accuracy())[0] - 0.5).abs() < 1e-6);
        assert!((values(out.best_rewards)[0] - 0.2).abs() < 1e-6);
        assert!((values(out.worst_rewards)[0] - 0.1).abs() < 1e-6);
        assert_eq!(values(out.pairs), [2.0]);
        assert_eq!(values(out.correct_pairs), [1.0]);
    }

    /// Three lists of two as DPO pairs: chosen first. The reference log-probs differ per list.
    fn two(d: &Device) -> (ListLogps, PairLogps) {
        let (pc, pr, rc, rr) =
            ([-10.0f32, -4.0, -7.0], [-12.0f32, -3.5, -7.0], [-11.0f32, -4.2, -6.0], [-11.0f32, -3.0, -8.0]);
        let zip = |a: [f32; 3], b: [f32; 3]| -> Vec<f32> { a.iter().zip(&b).flat_map(|(x, y)| [*x, *y]).collect() };
        let lists = ListLogps {
            policy: Tensor::from_data(TensorData::new(zip(pc, pr), [3, 2]), d),
            reference: Tensor::from_data(TensorData::new(zip(rc, rr), [3, 2]), d),
            labels: t2(&[&[1.0, 0.0], &[1.0, 0.0], &[1.0, 0.0]], d),
            mask: None,
        };
        let pairs = PairLogps {
            chosen: t1(&pc, d),
            rejected: t1(&pr, d),
            reference: Some((t1(&rc, d), t1(&rr, d))),
            chosen_tokens: t1(&[1.0; 3], d),
            rejected_tokens: t1(&[1.0; 3], d),
        };
        (lists, pairs)
    }

    fn dpo(kind: DpoLossType, beta: f64) -> DpoLoss {
        DpoLoss { terms: vec![(kind, 1.0)], beta, label_smoothing: 0.0, simpo_gamma: 0.0, cpo_alpha: 0.0 }
    }

    fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{what}: {a:?} vs {b:?}");
        }
    }

    #[test]
    fn lists_of_two_are_dpo() {
        // pair_logistic and list_mle with K = 2 are DPO's sigmoid loss; pair_hinge is DPO's hinge.
        let d = Device::flex();
        let (lists, pairs) = two(&d);
        let sigmoid = values(dpo(DpoLossType::Sigmoid, 0.3).forward(&pairs).losses);
        let hinge = values(dpo(DpoLossType::Hinge, 0.3).forward(&pairs).losses);
        for (kind, want) in [
            (LipoLossType::PairLogistic, &sigmoid),
            (LipoLossType::ListMle, &sigmoid),
            (LipoLossType::PairHinge, &hinge),
        ] {
            assert_close(&values(loss(kind, 0.3).forward(&lists).losses), want, 1e-6, &format!("{kind:?}"));
        }
        // The implicit rewards agree with DPO's too.
        let out = loss(LipoLossType::PairLogistic, 0.3).forward(&lists);
        let dout = dpo(DpoLossType::Sigmoid, 0.3).forward(&pairs);
        assert_close(&values(out.best_rewards), &values(dout.chosen_rewards), 1e-6, "chosen rewards");
        assert_close(&values(out.worst_rewards), &values(dout.rejected_rewards), 1e-6, "rejected rewards");
    }

    #[test]
    fn lambda_with_lists_of_two_is_dpo_times_its_weight() {
        // K = 2: τ is {1, 2} in some order, so |1/D(1) − 1/D(2)| = 1 − 1/log2 3 = 0.369070246.
        // ψ = (1, 0): |G_1 − G_2| = 1; ψ = (2, 0.5): |3 − (√2 − 1)| = 2.585786438.
        let d = Device::flex();
        let (mut lists, pairs) = two(&d);
        let sigmoid = values(dpo(DpoLossType::Sigmoid, 0.3).forward(&pairs).losses);
        for (psi, gap) in [((1.0, 0.0), 1.0), ((2.0, 0.5), 2.585786438)] {
            let r: [f32; 2] = [psi.0, psi.1];
            lists.labels = t2(&[&r, &r, &r], &d);
            let want: Vec<f64> = sigmoid.iter().map(|l| gap * 0.369070246 * l).collect();
            let got = values(loss(LipoLossType::Lambda, 0.3).forward(&lists).losses);
            assert_close(&got, &want, 1e-6, &format!("ψ = {psi:?}"));
        }
    }

    #[test]
    fn padded_lists_equal_the_shorter_lists() {
        // The list of `three` with padding slotted in at positions 1 and 4 (junk values, NaN included), next to
        // the unpadded list; losses, gradients and metrics must match.
        let d = Device::flex().autodiff();
        let base = three(&d);
        let padded_policy = [-9.6f32, f32::NAN, -5.0, -12.6, 7.0];
        let padded = |policy: Tensor<2>| ListLogps {
            policy,
            reference: t2(&[&[-10.0, 3.0, -6.0, -12.0, -1e6]], &d),
            labels: t2(&[&[2.0, 9.0, 1.0, 1.0, f32::NAN]], &d),
            mask: Some(m2(&[&[true, false, true, true, false]], &d)),
        };
        for kind in ALL {
            let l = loss(kind, 0.5);
            let x = t2(&[&padded_policy], &d).require_grad();
            let out = l.forward(&padded(x.clone()));
            let grads = out.losses.clone().sum().backward();
            let g = values(x.grad(&grads).unwrap());
            let y = base.policy.clone().require_grad();
            let short = l.forward(&ListLogps { policy: y.clone(), ..three(&d) });
            let gs = values(y.grad(&short.losses.clone().sum().backward()).unwrap());
            assert_close(&values(out.losses), &values(short.losses), 1e-6, &format!("{kind:?} loss"));
            assert_close(&[g[0], g[2], g[3]], &gs, 1e-6, &format!("{kind:?} gradient"));
            assert_eq!([g[1], g[4]], [0.0, 0.0], "{kind:?}: padding gets no gradient");
            assert_close(&values(out.best_rewards), &values(short.best_rewards), 1e-6, "best");
            assert_close(&values(out.worst_rewards), &values(short.worst_rewards), 1e-6, "worst");
            assert_eq!(values(out.pairs), values(short.pairs));
        }
    }

    #[test]
    fn lists_without_pairs_give_zero_loss_never_nan() {
        // An all-tie list, a list of one present response (padded), and a batch of K = 1.
        let d = Device::flex().autodiff();
        for kind in ALL {
            let x = t2(&[&[-3.0, -1.0, -2.0], &[-4.0, 0.0, 0.0]], &d).require_grad();
            let out = loss(kind, 0.5).forward(&ListLogps {
                policy: x.clone(),
                reference: t2(&[&[-2.0, -2.5, -1.0], &[-5.0, 0.0, 0.0]], &d),
                labels: t2(&[&[0.7, 0.7, 0.7], &[1.0, 0.0, 0.0]], &d),
                mask: Some(m2(&[&[true, true, true], &[true, false, false]], &d)),
            });
            let g = values(x.grad(&out.losses.clone().sum().backward()).unwrap());
            assert_eq!(values(out.pair_accuracy()), [0.0]);
            assert_eq!(values(out.losses), [0.0, 0.0], "{kind:?}");
            assert!(g.iter().all(|g| *g == 0.0), "{kind:?}: {g:?}");

            let one = loss(kind, 0.5).forward(&ListLogps {
                policy: t2(&[&[-3.0], &[-1.0]], &d),
                reference: t2(&[&[-2.0], &[-1.5]], &d),
                labels: t2(&[&[1.0], &[0.0]], &d),
                mask: None,
            });
            assert_eq!(values(one.losses), [0.0, 0.0], "{kind:?} K = 1");
        }
    }

    #[test]
    fn gradients_match_finite_differences_for_every_loss_type() {
        // Two lists of four with a tie in ψ and one padded entry; scores distinct and away from the hinge's
        // kinks, and no rank changes under ±ε.
        let d = Device::flex().autodiff();
        let p0 = [-10.0f32, -4.0, -7.5, -6.0, -9.0, -3.0, -5.0, -8.0];
        let batch = |p: Tensor<2>| ListLogps {
            policy: p,
            reference: t2(&[&[-11.0, -4.2, -6.0, -6.3], &[-8.0, -3.3, -5.9, -7.0]], &d),
            labels: t2(&[&[3.0, 1.0, 1.0, 0.0], &[0.2, 0.9, 0.5, 0.0]], &d),
            mask: Some(m2(&[&[true, true, true, true], &[true, true, true, false]], &d)),
        };
        let tensor = |p: &[f32]| Tensor::<2>::from_data(TensorData::new(p.to_vec(), [2, 4]), &d);
        for kind in ALL {
            let l = loss(kind, 0.7);
            let total = |p: &[f32]| values(l.forward(&batch(tensor(p))).losses.sum())[0];
            let x = tensor(&p0).require_grad();
            let g = values(x.grad(&l.forward(&batch(x.clone())).losses.sum().backward()).unwrap());
            let eps = 1e-2f32;
            for i in 0..8 {
                let at = |step: f32| {
                    let mut p = p0;
                    p[i] += step;
                    total(&p)
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
                assert!((fd - g[i]).abs() < 2e-4, "{kind:?} [{i}]: fd {fd} vs {}", g[i]);
            }
        }
    }

    #[test]
    fn loss_type_names_are_snake_case() {
        let names: Vec<String> = ALL.iter().map(|k| serde_json::to_string(k).unwrap()).collect();
        assert_eq!(names, ["\"lambda\"", "\"pair_logistic\"", "\"pair_hinge\"", "\"list_mle\"", "\"softmax\""]);
        assert_eq!(serde_json::from_str::<LipoLossType>("\"list_mle\"").unwrap(), LipoLossType::ListMle);
    }
}
