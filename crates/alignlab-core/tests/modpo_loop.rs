//! MODPO in the training loop (tiny model, CPU): with one objective it is DPO step for step, a margin RM at
//! weight 0 changes nothing, margin rewards enter the first loss as the formula says, and a run without the
//! margin rewards its weights ask for is refused.

use alignlab_core::data::{ReadOptions, TokenizedPair, read_preferences, tokenize_pair};
use alignlab_core::metrics;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Objective, TrainConfig, Trainer};
use burn::tensor::Device;

const PAIRS: &str = include_str!("../../../tests/fixtures/truthfulqa/pairs.jsonl");

fn config(objective: Objective, weights: Option<Vec<f64>>) -> TrainConfig {
    TrainConfig {
        objective,
        modpo_weights: weights,
        learning_rate: 1e-3,
        batch_size: 2,
        max_steps: Some(3),
        max_length: 128,
        max_prompt_length: 64,
        seed: 1,
        ..Default::default()
    }
}

fn pairs(p: &Pretrained, c: &TrainConfig) -> Vec<TokenizedPair> {
    let report = read_preferences("pairs.jsonl", PAIRS, &ReadOptions::default()).unwrap();
    report.records.iter().take(6).map(|r| tokenize_pair(&p.tokenizer, r, &c.tokenize_options()).unwrap()).collect()
}

fn trainer(c: TrainConfig) -> Trainer {
    let p = Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).unwrap();
    let data = pairs(&p, &c);
    pollster::block_on(Trainer::new(p.model, data, c, 2, &Device::flex())).unwrap()
}

fn losses(t: &mut Trainer) -> Vec<f64> {
    pollster::block_on(t.steps(3)).unwrap().iter().map(|m| m[metrics::LOSS]).collect()
}

#[test]
fn modpo_with_one_objective_is_dpo_in_the_loop() {
    let dpo = losses(&mut trainer(config(Objective::Dpo, None)));
    let single = losses(&mut trainer(config(Objective::Modpo, None)));
    // One margin RM at weight 0: its (arbitrary) rewards do not enter the loss.
    let mut zero = trainer(config(Objective::Modpo, Some(vec![1.0, 0.0])));
    let margins: Vec<Vec<(f32, f32)>> = (0..6).map(|i| vec![(i as f32, -2.0 * i as f32)]).collect();
    zero.set_margin_rewards(margins, None).unwrap();
    let zero = losses(&mut zero);
    assert!((dpo[0] - std::f64::consts::LN_2).abs() < 1e-6, "policy = reference at step 1: {dpo:?}");
    for run in [&single, &zero] {
        for (a, b) in run.iter().zip(&dpo) {
            assert!((a - b).abs() < 1e-6, "MODPO {run:?} vs DPO {dpo:?}");
        }
    }
}

#[test]
fn margin_rewards_enter_the_first_loss_as_the_formula_says() {
    // Step 1: policy = reference, so h = 0 and z = −(1/w_k)·w_{−k}·Δr. With w = (0.25; 0.75) and every pair's
    // margin RM giving (chosen, rejected) = (1, 0.5), Δr = 0.5: z = −0.75·0.5/0.25 = −1.5, and the loss is
    // −log σ(−1.5) = ln(1 + e^1.5) = 1.701413.
    let mut t = trainer(config(Objective::Modpo, Some(vec![0.25, 0.75])));
    t.set_margin_rewards(vec![vec![(1.0, 0.5)]; 6], None).unwrap();
    let first = losses(&mut t)[0];
    assert!((first - 1.701413).abs() < 1e-5, "{first}");
}

#[test]
fn missing_or_misshaped_margin_rewards_are_refused() {
    let mut t = trainer(config(Objective::Modpo, Some(vec![0.5, 0.5])));
    let e = pollster::block_on(t.steps(1)).unwrap_err().to_string();
    assert!(e.contains("modpo_weights") && e.contains("set_margin_rewards"), "{e}");
    let e = t.set_margin_rewards(vec![vec![(1.0, 0.5), (0.0, 0.0)]; 6], None).unwrap_err().to_string();
    assert!(e.contains("1 margin RMs"), "{e}");
    let bad = TrainConfig { modpo_weights: Some(vec![0.5, 0.3]), ..config(Objective::Modpo, None) };
    assert!(bad.validate().unwrap_err().to_string().contains("simplex"));
}
