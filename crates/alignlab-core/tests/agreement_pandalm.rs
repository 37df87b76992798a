//! Agreement of the three human annotators of the PandaLM test set (999 pairs, labels 0 = tie, 1/2 = that
//! response is better), and of the two judges shipped with it, against the published and independently
//! computed numbers.
//!
//! The data is found in `$ALIGNLAB_DATA` (default: `../shared/data` beside the workspace), like
//! tests/real_files.rs: a missing file fails the test with what to do.
//!
//! Expected values: the PandaLM README's Cohen's κ table (two decimals), and full-precision values printed by
//! `python3 scripts/pandalm_agreement.py` (standard library only, written independently of this crate: κ from
//! p_o/p_e, α from pairable values rather than a coincidence matrix).

use alignlab_core::eval::agreement::{agreement_report, model_agreement};
use serde::Deserialize;

mod common;
use common::data_path;

fn read<T: for<'de> Deserialize<'de>>(file: &str) -> Vec<T> {
    let path = data_path(&format!("pandalm-human-pairwise/{file}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
struct Row {
    idx: u64,
    annotator1: u8,
    annotator2: u8,
    annotator3: u8,
}

/// The annotators' labels, items × raters, in file order.
fn annotators() -> (Vec<u64>, Vec<[Option<u8>; 3]>) {
    read::<Row>("testset-v1.json")
        .into_iter()
        .map(|r| (r.idx, [Some(r.annotator1), Some(r.annotator2), Some(r.annotator3)]))
        .unzip()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, expected {want} ± {tol}");
}

#[test]
fn pandalm_annotators_agree_as_published() {
    let (_, units) = annotators();
    let report = agreement_report(&units).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());

    // SOURCE.md: 999 pairs, 879 with three equal labels, 120 with disagreement (never three different ones,
    // so each of those has item agreement 1/3): mean = (879 + 120/3)/999 = 919/999.
    assert_eq!((report.items, report.raters, report.ratings), (999, 3, 2997));
    assert_eq!((report.unanimous, report.disagreements), (879, 120));
    close(report.mean_item_agreement, 919.0 / 999.0, 1e-12, "mean item agreement");

    // PandaLM README, "We calculate the IAA of each annotator using Cohen's kappa": 1–2 0.85, 1–3 0.88, 2–3 0.86.
    // scripts/pandalm_agreement.py: 0.8520226785167023, 0.8789438112500385, 0.8616614540762907.
    let k = &report.cohen_kappa;
    for (i, j, readme, script) in
        [(0, 1, 0.85, 0.8520226785167023), (0, 2, 0.88, 0.8789438112500385), (1, 2, 0.86, 0.8616614540762907)]
    {
        let kappa = k[i][j].unwrap();
        close(kappa, readme, 0.005, &format!("κ(annotator{}, annotator{}) vs README", i + 1, j + 1));
        close(kappa, script, 1e-12, &format!("κ(annotator{}, annotator{}) vs script", i + 1, j + 1));
        assert_eq!(k[j][i], k[i][j]);
    }
    close(report.mean_cohen_kappa.unwrap(), 0.8642093146143438, 1e-12, "mean pairwise κ");
    // Not published; scripts/pandalm_agreement.py.
    close(report.fleiss_kappa.unwrap(), 0.8641753649975505, 1e-12, "Fleiss' κ");
    close(report.krippendorff_alpha.unwrap(), 0.8642206851960816, 1e-12, "Krippendorff's α (nominal)");
    // With every item rated by all raters, D_o = 1 − P̄ and D_e = (1 − P̄_e)·n/(n − 1) over the n = 2997 values,
    // so α = κ + (1 − κ)/n exactly: α's expected disagreement draws pairs without replacement.
    let (kappa, alpha) = (report.fleiss_kappa.unwrap(), report.krippendorff_alpha.unwrap());
    close(alpha, kappa + (1.0 - kappa) / 2997.0, 1e-12, "α from Fleiss' κ");
}

#[derive(Deserialize)]
struct GptRow {
    idx: u64,
    gpt_result: String,
}

#[derive(Deserialize)]
struct PandaRow {
    idx: u64,
    pandalm_result: u8,
}

/// Judges agree far less with the annotators than the annotators with each other (κ ≈ 0.86).
#[test]
fn pandalm_judges_against_the_annotators() {
    let (idx, units) = annotators();
    // GPT-3.5 answers "1", "2", "Tie" (→ 0) or "garbage" (→ no label), joined by idx.
    let gpt: std::collections::HashMap<u64, Option<u8>> = read::<GptRow>("gpt-3.5-turbo-testset-v1.json")
        .into_iter()
        .map(|r| {
            let label = match r.gpt_result.as_str() {
                "1" => Some(1),
                "2" => Some(2),
                "Tie" => Some(0),
                _ => None,
            };
            (r.idx, label)
        })
        .collect();
    let panda: std::collections::HashMap<u64, Option<u8>> =
        read::<PandaRow>("pandalm-7b-testset-v1.json").into_iter().map(|r| (r.idx, Some(r.pandalm_result))).collect();

    for (name, labels, kappas, mean, majority, items) in [
        (
            "gpt-3.5-turbo",
            &gpt,
            [0.4793706557872469, 0.47110457587078136, 0.48285828594076585],
            0.4777778391995981,
            0.715605749486653,
            974,
        ),
        (
            "pandalm-7b",
            &panda,
            [0.41909267221475405, 0.4118896899856884, 0.4411634080437753],
            0.42404859008140594,
            // SOURCE.md: PandaLM-7B's exact agreement with the human majority is 66.8%.
            0.6676676676676677,
            999,
        ),
    ] {
        let model: Vec<Option<u8>> = idx.iter().map(|i| labels[i]).collect();
        let got = model_agreement(&model, &units).unwrap();
        println!("{name}: {}", serde_json::to_string(&got).unwrap());
        for (r, want) in kappas.into_iter().enumerate() {
            close(got.cohen_kappa[r].unwrap(), want, 1e-12, &format!("{name} κ vs annotator{}", r + 1));
        }
        close(got.mean_cohen_kappa.unwrap(), mean, 1e-12, &format!("{name} mean κ"));
        close(got.majority_accuracy.unwrap(), majority, 1e-12, &format!("{name} majority accuracy"));
        assert_eq!(got.majority_items, items, "{name}");
    }
}
