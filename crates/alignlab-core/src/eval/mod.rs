//! Evaluation metrics on plain numbers: agreement between annotators (and between a model and them), and
//! reward-model / preference metrics (accuracy, AUROC, calibration). METHODS.md §3 item 7 and §4 list what the
//! lab offers; each file cites the formula it implements.
//!
//! No tensors here: a surface reads scores back from the device once and hands slices to these functions, and
//! every result serialises to JSON for the CLI and the page. Degenerate input is an [`EvalError`], never a
//! panic or a silent NaN. The exceptions are `kl`, which samples from the models it compares, and `implicit`,
//! which scores a data set under a policy and its reference and hands the rewards to the metrics here.

pub mod agreement;
pub mod implicit;
pub mod kl;
pub mod preference;
pub mod ranking;
pub mod unpaired;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("no items to evaluate")]
    NoItems,
    #[error("{what}: expected {expected} values (one per item), found {found}")]
    LengthMismatch { what: &'static str, expected: usize, found: usize },
    #[error("{metric} needs at least one item rated by two or more raters")]
    NoPairableItems { metric: &'static str },
    #[error(
        "{metric} is undefined: every rating is the same category, so chance agreement is 1 and there is no \
         variation to agree on"
    )]
    NoVariation { metric: &'static str },
    #[error("{what}[{index}] is {value}, not a finite number")]
    NotFinite { what: &'static str, index: usize, value: f64 },
    #[error("{what}[{index}] is {value}, outside [0, 1]")]
    NotAProbability { what: &'static str, index: usize, value: f64 },
    #[error("AUROC needs both classes: found {positives} positive and {negatives} negative labels")]
    OneClass { positives: usize, negatives: usize },
    #[error("every list is one tie group: no ordered pair (ψ_i > ψ_j) to rank")]
    NoOrderedPairs,
    #[error("the number of calibration bins must be at least 1")]
    NoBins,
    #[error("the {level} distance needs numeric labels; {label} is not a number")]
    NotNumeric { level: &'static str, label: String },
    #[error("the ratio distance needs non-negative values; {label} is negative")]
    NegativeRatio { label: String },
}

/// Checks that `values` has one finite number per item.
pub(crate) fn check_finite(what: &'static str, values: &[f64], expected: usize) -> Result<(), EvalError> {
    if values.len() != expected {
        return Err(EvalError::LengthMismatch { what, expected, found: values.len() });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EvalError::NotFinite { what, index, value: values[index] }),
        None => Ok(()),
    }
}
