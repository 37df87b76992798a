//! Agreement between annotators, and between a model (a reward model, an LLM judge) and them: Cohen's κ,
//! Fleiss' κ, Krippendorff's α, per-item agreement and majority votes.
//!
//! Ratings are a table of items × rater slots: `units[i][r]` is rater `r`'s label for item `i`, `None` where
//! rater `r` did not label it. Labels are anything [`Label`]: small integers, strings, or [`LabelValue`] (what
//! JSON gives).
//!
//! ```text
//! Cohen (1960), two raters:       κ = (p_o − p_e) / (1 − p_e),   p_o = Σ_c n_cc / n,   p_e = Σ_c (n_c· / n)(n_·c / n)
//! Fleiss (1971), m raters/item:   P_i = Σ_j n_ij (n_ij − 1) / (n_i (n_i − 1)),   P̄ = mean_i P_i,
//!                                 p_j = Σ_i n_ij / Σ_i n_i,   P̄_e = Σ_j p_j²,   κ = (P̄ − P̄_e) / (1 − P̄_e)
//! Krippendorff (2011, "Computing Krippendorff's Alpha-Reliability"), any raters, missing values:
//!     coincidences  o_ck = Σ_u Σ_{i≠j} [v_ui = c] [v_uj = k] / (m_u − 1)   over units u with m_u ≥ 2 values
//!     n_c = Σ_k o_ck,   n = Σ_c n_c,   α = 1 − (n − 1) Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck
//! ```
//! The κ's are undefined when every rating is the same category (chance agreement 1) and α when there is no
//! variation (D_e = 0): both are [`EvalError::NoVariation`], not NaN.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::EvalError;

/// A category a rater can give. Its order is the scale's order (ordinal α) and the order of printed tables;
/// [`Label::numeric`] is the value interval and ratio α measure distances on.
pub trait Label: Ord + Clone + fmt::Debug {
    fn numeric(&self) -> Option<f64> {
        None
    }
}

macro_rules! numeric_labels {
    ($($t:ty),*) => {$(
        impl Label for $t {
            fn numeric(&self) -> Option<f64> {
                Some(*self as f64)
            }
        }
    )*};
}
numeric_labels!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
impl Label for bool {}
impl Label for char {}
impl Label for String {}
impl Label for &str {}

/// A label as JSON gives it: an integer or a string. Integers sort before strings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(untagged)]
pub enum LabelValue {
    Int(i64),
    Text(String),
}

impl Label for LabelValue {
    fn numeric(&self) -> Option<f64> {
        match self {
            LabelValue::Int(i) => Some(*i as f64),
            LabelValue::Text(_) => None,
        }
    }
}

/// The level of measurement, which picks Krippendorff's difference function δ²_ck (2011, §"difference
/// functions"). Serde names are the lower-case words.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// δ² = [c ≠ k]: categories are only equal or not (preference labels, tags).
    #[default]
    Nominal,
    /// δ²_ck = (Σ_{g=c..k} n_g − (n_c + n_k)/2)²: ranks, in the labels' order (Likert scales, strengths).
    Ordinal,
    /// δ² = (c − k)²: numeric labels with meaningful differences.
    Interval,
    /// δ² = ((c − k)/(c + k))²: non-negative numeric labels with a meaningful zero.
    Ratio,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Nominal => "nominal",
            Level::Ordinal => "ordinal",
            Level::Interval => "interval",
            Level::Ratio => "ratio",
        }
    }

    /// δ²_ck between the sorted categories `labels`, row-major; `n_c` are the pairable values per category.
    fn squared_differences<L: Label>(self, labels: &[&L], n_c: &[f64]) -> Result<Vec<f64>, EvalError> {
        let k = labels.len();
        let matrix =
            |delta: &dyn Fn(usize, usize) -> f64| -> Vec<f64> { (0..k * k).map(|i| delta(i / k, i % k)).collect() };
        let values = || -> Result<Vec<f64>, EvalError> {
            let not_numeric = |l: &&L| EvalError::NotNumeric { level: self.name(), label: format!("{l:?}") };
            labels.iter().map(|l| l.numeric().ok_or_else(|| not_numeric(l))).collect()
        };
        Ok(match self {
            Level::Nominal => matrix(&|c, d| if c == d { 0.0 } else { 1.0 }),
            Level::Ordinal => {
                // cum[i] = n_0 + … + n_{i−1}, so Σ_{g=c..d} n_g = cum[d + 1] − cum[c] for c ≤ d.
                let cum: Vec<f64> = std::iter::once(0.0)
                    .chain(n_c.iter().scan(0.0, |s, n| {
                        *s += n;
                        Some(*s)
                    }))
                    .collect();
                matrix(&|c, d| {
                    let (lo, hi) = (c.min(d), c.max(d));
                    (cum[hi + 1] - cum[lo] - (n_c[lo] + n_c[hi]) / 2.0).powi(2)
                })
            }
            Level::Interval => {
                let v = values()?;
                matrix(&|c, d| (v[c] - v[d]).powi(2))
            }
            Level::Ratio => {
                let v = values()?;
                if let Some(i) = v.iter().position(|&x| x < 0.0) {
                    return Err(EvalError::NegativeRatio { label: format!("{:?}", labels[i]) });
                }
                matrix(&|c, d| if v[c] + v[d] == 0.0 { 0.0 } else { ((v[c] - v[d]) / (v[c] + v[d])).powi(2) })
            }
        })
    }
}

/// The ratings with each label replaced by its index among the sorted labels that occur.
struct Coded<'a, L> {
    labels: Vec<&'a L>,
    items: Vec<Vec<Option<usize>>>,
}

impl<'a, L: Label> Coded<'a, L> {
    fn new<U: AsRef<[Option<L>]>>(units: &'a [U]) -> Self {
        let labels: Vec<&L> =
            units.iter().flat_map(|u| u.as_ref().iter().flatten()).collect::<BTreeSet<_>>().into_iter().collect();
        let index = |l: &L| labels.binary_search(&l).expect("every label was collected");
        let items = units.iter().map(|u| u.as_ref().iter().map(|v| v.as_ref().map(&index)).collect()).collect();
        Coded { labels, items }
    }

    /// n_ic: how many raters gave item i category c.
    fn counts(&self) -> impl Iterator<Item = Vec<usize>> + '_ {
        self.items.iter().map(|item| {
            let mut n = vec![0; self.labels.len()];
            item.iter().flatten().for_each(|&c| n[c] += 1);
            n
        })
    }
}

/// Fraction of ordered rater pairs on one item that agree, Σ_c n_c (n_c − 1) / (m (m − 1)): Fleiss' P_i.
/// `None` with fewer than two ratings.
fn pair_agreement(counts: &[usize]) -> Option<f64> {
    let m: usize = counts.iter().sum();
    (m >= 2).then(|| counts.iter().map(|&n| n * n.saturating_sub(1)).sum::<usize>() as f64 / (m * (m - 1)) as f64)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Cohen's κ between two raters over nominal labels; items where either label is missing are skipped.
/// Symmetric in `a` and `b`.
pub fn cohen_kappa<L: Label>(a: &[Option<L>], b: &[Option<L>]) -> Result<f64, EvalError> {
    const METRIC: &str = "Cohen's kappa";
    if a.len() != b.len() {
        return Err(EvalError::LengthMismatch { what: "second rater's labels", expected: a.len(), found: b.len() });
    }
    if a.is_empty() {
        return Err(EvalError::NoItems);
    }
    let pairs: Vec<[Option<L>; 2]> =
        a.iter().zip(b).filter(|(x, y)| x.is_some() && y.is_some()).map(|(x, y)| [x.clone(), y.clone()]).collect();
    if pairs.is_empty() {
        return Err(EvalError::NoPairableItems { metric: METRIC });
    }
    let coded = Coded::new(&pairs);
    let k = coded.labels.len();
    let (mut agree, mut row, mut col) = (0u64, vec![0u64; k], vec![0u64; k]);
    for item in &coded.items {
        let (x, y) = (item[0].expect("both present"), item[1].expect("both present"));
        agree += u64::from(x == y);
        row[x] += 1;
        col[y] += 1;
    }
    // κ = (n·agree − Σ_c row_c col_c) / (n² − Σ_c row_c col_c): p_o and p_e times n², exact in integers.
    let n = pairs.len() as u64;
    let chance: u64 = row.iter().zip(&col).map(|(r, c)| r * c).sum();
    if chance == n * n {
        return Err(EvalError::NoVariation { metric: METRIC });
    }
    Ok(((n * agree) as f64 - chance as f64) / (n * n - chance) as f64)
}

/// Fleiss' κ over all items with two or more ratings.
///
/// Fleiss (1971) assumes the same number of ratings m per item. With varying counts (missing ratings) this
/// uses each item's own n_i in P_i, averages P_i over the items unweighted, and pools all their ratings for
/// p_j; items with fewer than two ratings are skipped. With equal counts that is Fleiss (1971) exactly. For
/// tables with many missing ratings prefer [`krippendorff_alpha`], which is built for them.
pub fn fleiss_kappa<L: Label, U: AsRef<[Option<L>]>>(units: &[U]) -> Result<f64, EvalError> {
    const METRIC: &str = "Fleiss' kappa";
    if units.is_empty() {
        return Err(EvalError::NoItems);
    }
    let coded = Coded::new(units);
    let counts: Vec<Vec<usize>> = coded.counts().filter(|n| n.iter().sum::<usize>() >= 2).collect();
    let Some(p_bar) = mean(counts.iter().filter_map(|n| pair_agreement(n))) else {
        return Err(EvalError::NoPairableItems { metric: METRIC });
    };
    let totals: Vec<usize> = (0..coded.labels.len()).map(|j| counts.iter().map(|n| n[j]).sum()).collect();
    if totals.iter().filter(|&&t| t > 0).count() < 2 {
        return Err(EvalError::NoVariation { metric: METRIC });
    }
    let all: usize = totals.iter().sum();
    let p_e: f64 = totals.iter().map(|&t| (t as f64 / all as f64).powi(2)).sum();
    Ok((p_bar - p_e) / (1.0 - p_e))
}

/// Krippendorff's α at the given level of measurement, from the coincidence matrix (Krippendorff 2011).
/// Missing ratings are allowed; units with fewer than two values are not pairable and are skipped.
pub fn krippendorff_alpha<L: Label, U: AsRef<[Option<L>]>>(units: &[U], level: Level) -> Result<f64, EvalError> {
    const METRIC: &str = "Krippendorff's alpha";
    if units.is_empty() {
        return Err(EvalError::NoItems);
    }
    let coded = Coded::new(units);
    let k = coded.labels.len();
    let mut o = vec![0.0; k * k];
    let mut n_c = vec![0usize; k];
    for counts in coded.counts() {
        let m: usize = counts.iter().sum();
        if m < 2 {
            continue;
        }
        // Each ordered pair of values (i ≠ j) in the unit adds 1/(m_u − 1) to o_{v_i v_j}.
        for c in 0..k {
            n_c[c] += counts[c];
            for d in 0..k {
                let pairs = counts[c] * if c == d { counts[c].saturating_sub(1) } else { counts[d] };
                o[c * k + d] += pairs as f64 / (m - 1) as f64;
            }
        }
    }
    let n: usize = n_c.iter().sum();
    if n == 0 {
        return Err(EvalError::NoPairableItems { metric: METRIC });
    }
    let n_c: Vec<f64> = n_c.into_iter().map(|x| x as f64).collect();
    let delta = level.squared_differences(&coded.labels, &n_c)?;
    let observed: f64 = o.iter().zip(&delta).map(|(o, d)| o * d).sum();
    let expected: f64 = (0..k * k).map(|i| n_c[i / k] * n_c[i % k] * delta[i]).sum();
    if expected == 0.0 {
        return Err(EvalError::NoVariation { metric: METRIC });
    }
    Ok(1.0 - (n - 1) as f64 * observed / expected)
}

/// Per item, the fraction of rater pairs that agree (1 = unanimous); `None` for items with fewer than two
/// ratings. This is what a page filters on ("agreement ≥ x") and sorts disagreements by.
pub fn item_agreement<L: Label, U: AsRef<[Option<L>]>>(units: &[U]) -> Vec<Option<f64>> {
    Coded::new(units).counts().map(|n| pair_agreement(&n)).collect()
}

/// The label strictly more raters gave than any other; `None` for a tie for first place or no ratings.
pub fn majority<L: Label>(ratings: &[Option<L>]) -> Option<L> {
    let coded = Coded::new(std::slice::from_ref(&ratings));
    let counts = coded.counts().next()?;
    let best = *counts.iter().max()?;
    let mut winners = counts.iter().enumerate().filter(|&(_, &n)| n == best);
    match (winners.next(), winners.next()) {
        (Some((c, _)), None) if best > 0 => Some(coded.labels[c].clone()),
        _ => None,
    }
}

/// One rater's labels: column `r` of the table (missing where a row is shorter).
fn column<L: Label, U: AsRef<[Option<L>]>>(units: &[U], r: usize) -> Vec<Option<L>> {
    units.iter().map(|u| u.as_ref().get(r).cloned().flatten()).collect()
}

fn raters<L, U: AsRef<[Option<L>]>>(units: &[U]) -> usize {
    units.iter().map(|u| u.as_ref().len()).max().unwrap_or(0)
}

/// Cohen's κ between every pair of rater slots (the matrix papers print); `None` where a pair is undefined
/// (no shared items, or no variation). The diagonal is a rater against itself: 1 where defined.
pub fn pairwise_cohen_kappa<L: Label, U: AsRef<[Option<L>]>>(units: &[U]) -> Vec<Vec<Option<f64>>> {
    let columns: Vec<Vec<Option<L>>> = (0..raters(units)).map(|r| column(units, r)).collect();
    columns.iter().map(|a| columns.iter().map(|b| cohen_kappa(a, b).ok()).collect()).collect()
}

/// Mean of the off-diagonal entries of a [`pairwise_cohen_kappa`] matrix that are defined.
fn mean_off_diagonal(matrix: &[Vec<Option<f64>>]) -> Option<f64> {
    mean(matrix.iter().enumerate().flat_map(|(r, row)| row.iter().skip(r + 1).flatten().copied()))
}

/// The agreement of a table at a glance: what the CLI prints and the page's agreement panel shows.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct AgreementReport {
    /// Rows of the table.
    pub items: usize,
    /// Rater slots (the longest row).
    pub raters: usize,
    /// Labels given (cells that are not missing).
    pub ratings: usize,
    /// Items with two or more ratings, all equal.
    pub unanimous: usize,
    /// Items with two or more ratings that are not all equal.
    pub disagreements: usize,
    /// Mean per-item agreement over items with two or more ratings: the observed agreement, Fleiss' P̄.
    pub mean_item_agreement: f64,
    /// `None` where undefined (one category only).
    pub fleiss_kappa: Option<f64>,
    /// Nominal α; `None` where undefined (one category only).
    pub krippendorff_alpha: Option<f64>,
    /// Rater × rater Cohen's κ, as [`pairwise_cohen_kappa`].
    pub cohen_kappa: Vec<Vec<Option<f64>>>,
    /// Mean of the defined pairwise κ's between distinct raters.
    pub mean_cohen_kappa: Option<f64>,
}

/// All the nominal agreement measures of a table. Errors only when no item has two ratings.
pub fn agreement_report<L: Label, U: AsRef<[Option<L>]>>(units: &[U]) -> Result<AgreementReport, EvalError> {
    if units.is_empty() {
        return Err(EvalError::NoItems);
    }
    let per_item = item_agreement(units);
    let Some(mean_item_agreement) = mean(per_item.iter().flatten().copied()) else {
        return Err(EvalError::NoPairableItems { metric: "agreement" });
    };
    let cohen = pairwise_cohen_kappa(units);
    Ok(AgreementReport {
        items: units.len(),
        raters: raters(units),
        ratings: units.iter().map(|u| u.as_ref().iter().flatten().count()).sum(),
        unanimous: per_item.iter().filter(|a| **a == Some(1.0)).count(),
        disagreements: per_item.iter().filter(|a| a.is_some_and(|a| a < 1.0)).count(),
        mean_item_agreement,
        fleiss_kappa: fleiss_kappa(units).ok(),
        krippendorff_alpha: krippendorff_alpha(units, Level::Nominal).ok(),
        mean_cohen_kappa: mean_off_diagonal(&cohen),
        cohen_kappa: cohen,
    })
}

/// How well a model's labels (a reward model's preferred side, an LLM judge's verdict) agree with the raters,
/// to set beside the raters' agreement among themselves (the "human-human ceiling", METHODS.md §4).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ModelAgreement {
    /// Cohen's κ between the model and each rater slot; `None` where undefined.
    pub cohen_kappa: Vec<Option<f64>>,
    /// Mean of the defined per-rater κ's: compare with [`AgreementReport::mean_cohen_kappa`].
    pub mean_cohen_kappa: Option<f64>,
    /// Fraction of the items with a strict majority label and a model label where the model gives that label.
    pub majority_accuracy: Option<f64>,
    /// How many items `majority_accuracy` is over.
    pub majority_items: usize,
}

/// The model's labels `model[i]` (`None` where it gave none) against the raters' table.
pub fn model_agreement<L: Label, U: AsRef<[Option<L>]>>(
    model: &[Option<L>],
    units: &[U],
) -> Result<ModelAgreement, EvalError> {
    if model.len() != units.len() {
        return Err(EvalError::LengthMismatch { what: "model labels", expected: units.len(), found: model.len() });
    }
    if units.is_empty() {
        return Err(EvalError::NoItems);
    }
    let cohen_kappa: Vec<Option<f64>> =
        (0..raters(units)).map(|r| self::cohen_kappa(model, &column(units, r)).ok()).collect();
    let hits: Vec<bool> =
        model.iter().zip(units).filter_map(|(m, u)| Some(m.as_ref()? == &majority(u.as_ref())?)).collect();
    Ok(ModelAgreement {
        mean_cohen_kappa: mean(cohen_kappa.iter().flatten().copied()),
        cohen_kappa,
        majority_accuracy: mean(hits.iter().map(|&h| f64::from(u8::from(h)))),
        majority_items: hits.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    /// Items × raters from rows of integers, 0 meaning missing.
    fn table<const R: usize>(rows: &[[u8; R]]) -> Vec<Vec<Option<u8>>> {
        rows.iter().map(|r| r.iter().map(|&v| (v != 0).then_some(v)).collect()).collect()
    }

    /// Two raters' labels from a confusion table: `cells[x][y]` items got x from the first rater and y from
    /// the second.
    fn from_confusion(cells: &[&[usize]]) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
        let mut pairs = vec![];
        for (x, row) in cells.iter().enumerate() {
            for (y, &n) in row.iter().enumerate() {
                pairs.extend(std::iter::repeat_n((Some(x), Some(y)), n));
            }
        }
        pairs.into_iter().unzip()
    }

    /// Fleiss (1971) Table 1: 30 patients, 6 psychiatrists each, diagnoses 1 depression, 2 personality
    /// disorder, 3 schizophrenia, 4 neurosis, 5 other (as in R's irr::diagnoses).
    const FLEISS_1971: [[u8; 6]; 30] = [
        [4, 4, 4, 4, 4, 4],
        [2, 2, 2, 5, 5, 5],
        [2, 3, 3, 3, 3, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4],
        [1, 1, 3, 3, 3, 3],
        [3, 3, 3, 3, 5, 5],
        [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4],
        [5, 5, 5, 5, 5, 5],
        [1, 4, 4, 4, 4, 4],
        [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3],
        [1, 4, 4, 4, 4, 4],
        [2, 2, 4, 4, 4, 5],
        [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5],
        [1, 1, 1, 1, 1, 2],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 4, 4, 4, 4, 4],
        [2, 2, 4, 5, 5, 5],
        [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5],
        [2, 2, 2, 2, 2, 4],
        [1, 1, 1, 1, 5, 5],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3],
        [5, 5, 5, 5, 5, 5],
    ];

    /// Krippendorff (2011) §C, "nominal data, any number of observers, missing values": observers A–D
    /// (columns) × units 1–12 (rows), 0 = missing.
    const KRIPPENDORFF_2011: [[u8; 4]; 12] = [
        [1, 1, 0, 1],
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [0, 5, 5, 5],
        [0, 0, 1, 1],
        [0, 3, 0, 0],
    ];

    #[test]
    fn cohen_kappa_matches_sas_example() {
        // Confusion table [[0,4,1],[0,8,0],[0,1,5]]: SAS PROC FREQ prints κ = 0.4842 (quoted in statsmodels'
        // test_inter_rater.py). By hand: n = 19, agreements 0 + 8 + 5 = 13, first rater's totals 5, 8, 6,
        // second's 0, 13, 6, Σ row·col = 0 + 104 + 36 = 140; κ = (19·13 − 140)/(19² − 140) = 107/221.
        let (a, b) = from_confusion(&[&[0, 4, 1], &[0, 8, 0], &[0, 1, 5]]);
        let kappa = cohen_kappa(&a, &b).unwrap();
        assert!((kappa - 107.0 / 221.0).abs() < EPS, "{kappa}");
        assert!((kappa - 0.4842).abs() < 5e-5);
    }

    #[test]
    fn cohen_kappa_on_strings_skips_missing_items() {
        // Wikipedia's "Cohen's kappa" example: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15.
        // p_o = 35/50 = 0.7; first says yes 25/50, second 30/50: p_e = 0.5·0.6 + 0.5·0.4 = 0.5; κ = 0.2/0.5 = 0.4.
        let mut a = vec![];
        let mut b = vec![];
        for (x, y, n) in [("yes", "yes", 20), ("yes", "no", 5), ("no", "yes", 10), ("no", "no", 15)] {
            a.extend(std::iter::repeat_n(Some(x), n));
            b.extend(std::iter::repeat_n(Some(y), n));
        }
        assert!((cohen_kappa(&a, &b).unwrap() - 0.4).abs() < EPS);
        // Items only one rater labelled change nothing.
        a.extend([Some("yes"), None, None]);
        b.extend([None, Some("no"), None]);
        assert!((cohen_kappa(&a, &b).unwrap() - 0.4).abs() < EPS);
        assert!((cohen_kappa(&b, &a).unwrap() - 0.4).abs() < EPS, "κ is symmetric");
    }

    #[test]
    fn fleiss_kappa_reproduces_fleiss_1971() {
        // Fleiss (1971) reports κ = 0.430 (R irr::kappam.fleiss: 0.4302445). By hand: category totals
        // 26, 26, 30, 55, 43 of 180 ratings, P̄_e = (26² + 26² + 30² + 55² + 43²)/180² = 7126/32400;
        // Σ_ij n_ij² = 680, P̄ = (680 − 30·6)/(30·6·5) = 5/9; κ = (5/9 − 7126/32400)/(1 − 7126/32400) = 5437/12637.
        let kappa = fleiss_kappa(&table(&FLEISS_1971)).unwrap();
        assert!((kappa - 5437.0 / 12637.0).abs() < EPS, "{kappa}");
        assert!((kappa - 0.430).abs() < 5e-4);
    }

    #[test]
    fn fleiss_kappa_skips_items_with_one_rating() {
        let mut units = table(&FLEISS_1971);
        let kappa = fleiss_kappa(&units).unwrap();
        units.push(vec![Some(1), None, None, None, None, None]);
        assert!((fleiss_kappa(&units).unwrap() - kappa).abs() < EPS);
    }

    #[test]
    fn krippendorff_alpha_reproduces_krippendorff_2011() {
        // Krippendorff (2011) §C gives α = 0.743 nominal, 0.815 ordinal, 0.849 interval, 0.797 ratio.
        // Nominal by hand: unit 12 (one value) is not pairable, n = 40 values; coincidence diagonal
        // o_11..o_55 = 7, 10, 8, 4, 3 (Σ 32), n_c = 9, 13, 10, 5, 3 (Σ n_c² = 384);
        // α = 1 − (n − 1)(n − Σ o_cc)/(n² − Σ n_c²) = 1 − 39·8/1216 = 113/152.
        // The other levels' exact values are fractions of the same matrix, computed with Python's `fractions`
        // module; the paper's 3 decimals are asserted as well.
        let units = table(&KRIPPENDORFF_2011);
        for (level, exact, paper) in [
            (Level::Nominal, 113.0 / 152.0, 0.743),
            (Level::Ordinal, 108577.0 / 133160.0, 0.815),
            (Level::Interval, 951.0 / 1120.0, 0.849),
            (Level::Ratio, 18222619.0 / 22852465.0, 0.797),
        ] {
            let alpha = krippendorff_alpha(&units, level).unwrap();
            assert!((alpha - exact).abs() < EPS, "{level:?}: {alpha}");
            assert!((alpha - paper).abs() < 5e-4, "{level:?}: {alpha}");
        }
    }

    #[test]
    fn perfect_agreement_is_one() {
        let units = table(&[[1, 1, 1], [2, 2, 0], [3, 3, 3], [1, 0, 1]]);
        assert_eq!(fleiss_kappa(&units), Ok(1.0));
        for level in [Level::Nominal, Level::Ordinal, Level::Interval, Level::Ratio] {
            assert_eq!(krippendorff_alpha(&units, level), Ok(1.0), "{level:?}");
        }
        let a = column(&units, 0);
        assert_eq!(cohen_kappa(&a, &a), Ok(1.0));
        assert!(item_agreement(&units).iter().all(|a| *a == Some(1.0)));
    }

    #[test]
    fn permuting_raters_leaves_agreement_unchanged() {
        let units = table(&KRIPPENDORFF_2011);
        let permuted: Vec<Vec<Option<u8>>> = units.iter().map(|u| vec![u[2], u[0], u[3], u[1]]).collect();
        for level in [Level::Nominal, Level::Ordinal, Level::Interval, Level::Ratio] {
            let (x, y) = (krippendorff_alpha(&units, level).unwrap(), krippendorff_alpha(&permuted, level).unwrap());
            assert!((x - y).abs() < EPS, "{level:?}");
        }
        let fleiss = table(&FLEISS_1971);
        let reversed: Vec<Vec<Option<u8>>> = fleiss.iter().map(|u| u.iter().rev().copied().collect()).collect();
        assert!((fleiss_kappa(&fleiss).unwrap() - fleiss_kappa(&reversed).unwrap()).abs() < EPS);
        let (a, b) = (column(&fleiss, 0), column(&fleiss, 5));
        assert_eq!(cohen_kappa(&a, &b), cohen_kappa(&b, &a));
    }

    #[test]
    fn relabelling_categories_leaves_nominal_agreement_unchanged() {
        let numbers = table(&FLEISS_1971);
        let names = ["depression", "personality", "schizophrenia", "neurosis", "other"];
        let words: Vec<Vec<Option<&str>>> =
            numbers.iter().map(|u| u.iter().map(|v| v.map(|v| names[v as usize - 1])).collect()).collect();
        assert!((fleiss_kappa(&numbers).unwrap() - fleiss_kappa(&words).unwrap()).abs() < EPS);
        let (x, y) = (
            krippendorff_alpha(&numbers, Level::Nominal).unwrap(),
            krippendorff_alpha(&words, Level::Nominal).unwrap(),
        );
        assert!((x - y).abs() < EPS);
    }

    #[test]
    fn degenerate_tables_are_errors() {
        let empty: Vec<Vec<Option<u8>>> = vec![];
        assert_eq!(fleiss_kappa(&empty), Err(EvalError::NoItems));
        assert_eq!(krippendorff_alpha(&empty, Level::Nominal), Err(EvalError::NoItems));
        assert_eq!(cohen_kappa::<u8>(&[], &[]), Err(EvalError::NoItems));
        assert_eq!(agreement_report(&empty), Err(EvalError::NoItems));

        let one_category = table(&[[2, 2], [2, 2], [2, 0]]);
        assert!(matches!(fleiss_kappa(&one_category), Err(EvalError::NoVariation { .. })));
        assert!(matches!(krippendorff_alpha(&one_category, Level::Nominal), Err(EvalError::NoVariation { .. })));
        let a = column(&one_category, 0);
        assert!(matches!(cohen_kappa(&a, &a), Err(EvalError::NoVariation { .. })));
        // Two raters each always giving their own category: p_e = 0, so κ is defined (and 0).
        assert_eq!(cohen_kappa(&[Some(1), Some(1)], &[Some(2), Some(2)]), Ok(0.0));

        let lonely = table(&[[1, 0], [0, 2]]);
        assert!(matches!(fleiss_kappa(&lonely), Err(EvalError::NoPairableItems { .. })));
        assert!(matches!(krippendorff_alpha(&lonely, Level::Nominal), Err(EvalError::NoPairableItems { .. })));
        assert!(matches!(
            cohen_kappa(&column(&lonely, 0), &column(&lonely, 1)),
            Err(EvalError::NoPairableItems { .. })
        ));

        assert_eq!(
            cohen_kappa(&[Some(1)], &[Some(1), Some(2)]),
            Err(EvalError::LengthMismatch { what: "second rater's labels", expected: 1, found: 2 })
        );
        let words = vec![vec![Some("a"), Some("b")], vec![Some("a"), Some("a")]];
        let err = krippendorff_alpha(&words, Level::Interval).unwrap_err();
        assert_eq!(err, EvalError::NotNumeric { level: "interval", label: "\"a\"".into() });
        assert_eq!(err.to_string(), "the interval distance needs numeric labels; \"a\" is not a number");
        let negative = vec![vec![Some(-1), Some(2)], vec![Some(2), Some(2)]];
        assert!(matches!(krippendorff_alpha(&negative, Level::Ratio), Err(EvalError::NegativeRatio { .. })));
    }

    #[test]
    fn item_agreement_is_the_fraction_of_agreeing_rater_pairs() {
        // [1,1,2]: of the 3 pairs only (1,1) agrees → 1/3; [1,-,2] → 0; [3,3,3] → 1; one rating → None.
        let units = table(&[[1, 1, 2], [1, 0, 2], [3, 3, 3], [1, 0, 0]]);
        assert_eq!(item_agreement(&units), vec![Some(1.0 / 3.0), Some(0.0), Some(1.0), None]);
    }

    #[test]
    fn majority_needs_a_strict_winner() {
        assert_eq!(majority(&[Some(1), Some(2), Some(1)]), Some(1));
        assert_eq!(majority(&[Some(1), Some(2), None]), None);
        assert_eq!(majority::<u8>(&[None, None]), None);
        assert_eq!(majority(&[Some("tie")]), Some("tie"));
    }

    #[test]
    fn model_agreement_compares_with_each_rater_and_the_majority() {
        // Raters 1 and 2 agree on items 0–3; the model copies rater 1 except on item 3.
        let units = table(&[[1, 1], [2, 2], [1, 1], [2, 2], [1, 2]]);
        let model = [Some(1), Some(2), Some(1), Some(1), Some(1)];
        let got = model_agreement(&model, &units).unwrap();
        // vs rater 1: agreements 4/5; the model says 1 four times in 5, rater 1 three times:
        // p_e = 0.8·0.6 + 0.2·0.4 = 0.56, κ = (0.8 − 0.56)/(1 − 0.56) = 6/11.
        assert!((got.cohen_kappa[0].unwrap() - 6.0 / 11.0).abs() < EPS);
        // Item 4 has no majority: 3 of the 4 majority items match.
        assert_eq!((got.majority_items, got.majority_accuracy), (4, Some(0.75)));
        assert!(model_agreement(&model[..4], &units).is_err());
    }

    #[test]
    fn agreement_report_counts_and_serialises() {
        // Per item: 1/3, 1/3, 1 and (one rating) none.
        let units = table(&[[1, 1, 2], [1, 1, 2], [2, 2, 2], [1, 0, 0]]);
        let report = agreement_report(&units).unwrap();
        assert_eq!((report.items, report.raters, report.ratings), (4, 3, 10));
        assert_eq!((report.unanimous, report.disagreements), (1, 2));
        assert!((report.mean_item_agreement - 5.0 / 9.0).abs() < EPS);
        assert_eq!(report.cohen_kappa[0][0], Some(1.0));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["cohen_kappa"][2][2], serde_json::Value::Null, "rater 3 has one category only");
        assert!(json["fleiss_kappa"].is_f64() && json["krippendorff_alpha"].is_f64());
    }

    #[test]
    fn label_values_read_from_json() {
        let units: Vec<Vec<Option<LabelValue>>> = serde_json::from_str(r#"[[1, 2, null], ["tie", "tie", 1]]"#).unwrap();
        assert_eq!(units[1][2], Some(LabelValue::Int(1)));
        assert_eq!(item_agreement(&units), vec![Some(0.0), Some(1.0 / 3.0)]);
        assert!(krippendorff_alpha(&units, Level::Interval).is_err());
        assert_eq!(serde_json::from_str::<Level>(r#""ordinal""#).unwrap(), Level::Ordinal);
    }
}
