//! What a policy's implicit rewards make of unpaired (KTO) examples: TRL's KTO metrics over a whole data set,
//! the sign accuracy of the rewards against the labels, and their AUROC.
//!
//! ```text
//! r̂_i            = β·(log π(y_i|x_i) − log π_ref(y_i|x_i))               the implicit reward of example i
//! rewards/chosen = mean of r̂ over the desirable examples, rewards/rejected over the undesirable ones
//! rewards/margins = rewards/chosen − rewards/rejected;  logps/… the same means of log π(y|x)
//! kl             = max(0, mean_i [log π(y_j|x_i) − log π_ref(y_j|x_i)])   z0 on the KL pairs (j = i − 1)
//! sign_accuracy  = mean_i ( [r̂_i > 0] desirable, [r̂_i < 0] undesirable; ½ at r̂_i = 0 )
//! ```
//! The names are those TRL's `KTOTrainer` logs after dividing its `…_sum` metrics by `count/…` (its `log`),
//! with `count/chosen`, `count/rejected` kept; `sign_accuracy` (overall and per label) and `auroc` (desirable
//! as positives) are ours: TRL's KTO logs no accuracy. At policy = reference every r̂ is 0 and the sign accuracy
//! is ½, chance, as the pairwise accuracy of [`super::preference`].

use serde::Serialize;

use super::preference::auroc;
use super::{EvalError, check_finite};

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct UnpairedMetrics {
    /// Desirable examples.
    #[serde(rename = "count/chosen")]
    pub count_chosen: usize,
    /// Undesirable examples.
    #[serde(rename = "count/rejected")]
    pub count_rejected: usize,
    /// Mean β·r of the desirable examples (absent without any, as in TRL).
    #[serde(rename = "rewards/chosen", skip_serializing_if = "Option::is_none")]
    pub chosen: Option<f64>,
    #[serde(rename = "rewards/rejected", skip_serializing_if = "Option::is_none")]
    pub rejected: Option<f64>,
    #[serde(rename = "rewards/margins", skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    #[serde(rename = "logps/chosen", skip_serializing_if = "Option::is_none")]
    pub logps_chosen: Option<f64>,
    #[serde(rename = "logps/rejected", skip_serializing_if = "Option::is_none")]
    pub logps_rejected: Option<f64>,
    /// KTO's reference point z0 (absent when no KL pairs were scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
    /// Share of examples whose reward has their label's sign, 0 counting half.
    pub sign_accuracy: f64,
    #[serde(rename = "sign_accuracy/chosen", skip_serializing_if = "Option::is_none")]
    pub sign_accuracy_chosen: Option<f64>,
    #[serde(rename = "sign_accuracy/rejected", skip_serializing_if = "Option::is_none")]
    pub sign_accuracy_rejected: Option<f64>,
    /// AUROC of the rewards with the desirable examples as positives (absent unless both labels occur).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
}

/// The metrics of examples with implicit rewards `rewards` (β·r), policy log-probs `logps` and labels
/// `desirable`; `kl_ratios` are the policy − reference log-probs of the KL pairs (one per example, or none).
pub fn unpaired_metrics(
    rewards: &[f64],
    logps: &[f64],
    desirable: &[bool],
    kl_ratios: Option<&[f64]>,
) -> Result<UnpairedMetrics, EvalError> {
    let n = rewards.len();
    if n == 0 {
        return Err(EvalError::NoItems);
    }
    check_finite("rewards", rewards, n)?;
    check_finite("logps", logps, n)?;
    if desirable.len() != n {
        return Err(EvalError::LengthMismatch { what: "desirable", expected: n, found: desirable.len() });
    }
    if let Some(k) = kl_ratios {
        check_finite("kl_ratios", k, n)?;
    }
    // The mean of `xs` over the examples labelled `label`, `None` without any.
    let mean_of = |xs: &[f64], label: bool| {
        let picked: Vec<f64> = xs.iter().zip(desirable).filter(|(_, d)| **d == label).map(|(x, _)| *x).collect();
        (!picked.is_empty()).then(|| picked.iter().sum::<f64>() / picked.len() as f64)
    };
    let sign_correct: Vec<f64> = rewards
        .iter()
        .zip(desirable)
        .map(|(&r, &d)| {
            if r == 0.0 {
                0.5
            } else if (r > 0.0) == d {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let (chosen, rejected) = (mean_of(rewards, true), mean_of(rewards, false));
    let count_chosen = desirable.iter().filter(|&&d| d).count();
    Ok(UnpairedMetrics {
        count_chosen,
        count_rejected: n - count_chosen,
        chosen,
        rejected,
        margin: chosen.zip(rejected).map(|(c, r)| c - r),
        logps_chosen: mean_of(logps, true),
        logps_rejected: mean_of(logps, false),
        kl: kl_ratios.map(|k| (k.iter().sum::<f64>() / n as f64).max(0.0)),
        sign_accuracy: sign_correct.iter().sum::<f64>() / n as f64,
        sign_accuracy_chosen: mean_of(&sign_correct, true),
        sign_accuracy_rejected: mean_of(&sign_correct, false),
        auroc: auroc(rewards, desirable).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kto_metrics_by_hand() {
        // Desirable: rewards 0.4 (right sign), −0.2 (wrong); undesirable: −0.6 (right), 0 (tie, half).
        let rewards = [0.4, -0.2, -0.6, 0.0];
        let logps = [-10.0, -12.0, -20.0, -30.0];
        let desirable = [true, true, false, false];
        // KL pairs' log-ratios −1, 3, 0, 2: mean 1 → z0 = 1.
        let m = unpaired_metrics(&rewards, &logps, &desirable, Some(&[-1.0, 3.0, 0.0, 2.0])).unwrap();
        assert_eq!((m.count_chosen, m.count_rejected), (2, 2));
        // rewards/chosen (0.4 − 0.2)/2 = 0.1; rewards/rejected (−0.6 + 0)/2 = −0.3; margin 0.4.
        assert!((m.chosen.unwrap() - 0.1).abs() < 1e-12 && (m.rejected.unwrap() + 0.3).abs() < 1e-12);
        assert!((m.margin.unwrap() - 0.4).abs() < 1e-12);
        assert_eq!((m.logps_chosen, m.logps_rejected), (Some(-11.0), Some(-25.0)));
        assert_eq!(m.kl, Some(1.0));
        // Sign: 1 + 0 + 1 + ½ = 2.5 of 4; desirable (1 + 0)/2, undesirable (1 + ½)/2.
        assert_eq!((m.sign_accuracy, m.sign_accuracy_chosen, m.sign_accuracy_rejected), (0.625, Some(0.5), Some(0.75)));
        // AUROC, positives 0.4 and −0.2 against −0.6 and 0: 0.4 beats both, −0.2 beats −0.6 only → 3/4.
        assert_eq!(m.auroc, Some(0.75));
        // A negative mean log-ratio clamps z0 at 0, as the loss does.
        let m = unpaired_metrics(&rewards, &logps, &desirable, Some(&[-1.0, -3.0, 0.0, 2.0])).unwrap();
        assert_eq!(m.kl, Some(0.0));
    }

    #[test]
    fn json_names_are_trls_and_one_label_leaves_the_other_out() {
        let m = unpaired_metrics(&[0.5, 0.0], &[-1.0, -2.0], &[true, true], None).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["rewards/chosen"], 0.25);
        assert_eq!(json["count/chosen"], 2);
        assert_eq!(json["sign_accuracy"], 0.75);
        for absent in ["rewards/rejected", "rewards/margins", "logps/rejected", "kl", "auroc", "sign_accuracy/rejected"]
        {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(unpaired_metrics(&[], &[], &[], None), Err(EvalError::NoItems));
        assert_eq!(
            unpaired_metrics(&[1.0], &[1.0], &[true, false], None),
            Err(EvalError::LengthMismatch { what: "desirable", expected: 1, found: 2 })
        );
        let e = unpaired_metrics(&[1.0], &[f64::INFINITY], &[true], None).unwrap_err();
        assert_eq!(e.to_string(), "logps[0] is inf, not a finite number");
    }
}
