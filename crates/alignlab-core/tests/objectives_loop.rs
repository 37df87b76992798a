//! KTO and LiPO in the one training loop, on the tiny random model (CPU, exact): their step-0 identities,
//! that training moves their metrics the right way, LiPO with lists of two = DPO, and resume.

use alignlab_core::data::{
    ReadOptions, TokenizedCompletion, TokenizedList, TokenizedPair, pairs_to_unpaired, read_preferences,
    tokenize_completion, tokenize_pair,
};
use alignlab_core::metrics::{self, Metrics};
use alignlab_core::model::llama::Llama;
use alignlab_core::objectives::lipo::LipoLossType;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Objective, TrainConfig, TrainData, Trainer, TrainerState};
use alignlab_core::weights::safetensors::{SafetensorsSource, to_safetensors};
use burn::tensor::Device;

const PAIRS: &str = include_str!("../../../tests/fixtures/truthfulqa/pairs.jsonl");

fn tiny() -> Pretrained {
    Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).unwrap()
}

fn config(objective: Objective) -> TrainConfig {
    TrainConfig {
        objective,
        learning_rate: 2e-3,
        batch_size: 4,
        max_steps: Some(20),
        max_length: 160,
        max_prompt_length: 80,
        ..Default::default()
    }
}

/// The first `n` TruthfulQA pairs, tokenised.
fn pairs(p: &Pretrained, n: usize, c: &TrainConfig) -> Vec<TokenizedPair> {
    let recs = read_preferences("pairs.jsonl", PAIRS, &ReadOptions::default()).unwrap().records;
    recs.iter().take(n).map(|r| tokenize_pair(&p.tokenizer, r, &c.tokenize_options()).unwrap()).collect()
}

/// The first `n` TruthfulQA pairs unpaired as TRL does: n desirable, then n undesirable examples.
fn unpaired(p: &Pretrained, n: usize, c: &TrainConfig) -> Vec<TokenizedCompletion> {
    let recs = read_preferences("pairs.jsonl", PAIRS, &ReadOptions::default()).unwrap().records;
    let u = pairs_to_unpaired(&recs[..n]);
    u.iter().map(|r| tokenize_completion(&p.tokenizer, r, &c.tokenize_options()).unwrap()).collect()
}

/// Pairs as lists of two, chosen first, labels (1, 0).
fn as_lists(pairs: &[TokenizedPair]) -> Vec<TokenizedList> {
    pairs
        .iter()
        .map(|p| TokenizedList {
            prompt: p.prompt.clone(),
            responses: vec![p.chosen.clone(), p.rejected.clone()],
            labels: vec![1.0, 0.0],
            line: p.line,
            ref_logps: None,
        })
        .collect()
}

fn trainer(p: &Pretrained, data: impl Into<TrainData>, c: TrainConfig) -> Trainer {
    pollster::block_on(Trainer::new(p.model.clone(), data, c, 2, &Device::flex())).unwrap()
}

fn margin(m: &Metrics) -> f64 {
    m[metrics::REWARDS_CHOSEN] - m[metrics::REWARDS_REJECTED]
}

#[test]
fn kto_at_policy_equal_to_reference_costs_half_the_weights_then_learns() {
    // Policy = reference: r = 0 and z0 = 0, so every example costs λ_y − λ_y·σ(0) = λ_y/2. Eight desirable
    // examples with λ_D = 1 and eight undesirable with λ_U = 1.5: (8·0.5 + 8·0.75)/16 = 0.625.
    let p = tiny();
    let c = TrainConfig { undesirable_weight: 1.5, ..config(Objective::Kto) };
    let data = unpaired(&p, 8, &c);
    assert_eq!(data.iter().filter(|e| e.label).count(), 8);
    let mut t = trainer(&p, data, c);
    let before = pollster::block_on(t.evaluate()).unwrap();
    assert!((before[metrics::LOSS] - 0.625).abs() < 1e-6, "{before:?}");
    for name in [metrics::KL, metrics::REWARDS_CHOSEN, metrics::REWARDS_REJECTED, metrics::REWARDS_MARGINS] {
        assert_eq!(before[name], 0.0, "{name}");
    }
    assert!(before[metrics::LOGPS_CHOSEN] < 0.0 && before[metrics::LOGPS_REJECTED] < 0.0);
    assert!(!before.keys().any(|k| k.ends_with("_sum") || k.starts_with("count/")), "{before:?}");
    // The first step's batch of 4 costs the same per example: its loss is a mix of 0.5 and 0.75.
    let first = &pollster::block_on(t.steps(1)).unwrap()[0];
    let n_d = (0..=4).find(|d| ((*d as f64 * 0.5 + (4 - d) as f64 * 0.75) / 4.0 - first[metrics::LOSS]).abs() < 1e-6);
    assert!(n_d.is_some(), "step-0 loss {} is no mix of λ/2", first[metrics::LOSS]);
    // Training, with the weights at the paper's balance (λ_D·n_D = λ_U·n_U; at λ_U = 1.5 the undesirable side
    // dominates, and pushing every log-prob down wins, rewards/chosen included).
    let c = TrainConfig { undesirable_weight: 1.0, ..t.config().clone() };
    let mut t = trainer(&p, unpaired(&p, 8, &c), c);
    let before = pollster::block_on(t.evaluate()).unwrap();
    assert!((before[metrics::LOSS] - 0.5).abs() < 1e-6, "{before:?}");
    let ms = pollster::block_on(t.steps(20)).unwrap();
    let after = pollster::block_on(t.evaluate()).unwrap();
    eprintln!("KTO before {before:?}\nafter {after:?}\nlast step {:?}", ms.last().unwrap());
    assert!(
        after[metrics::LOSS] < before[metrics::LOSS] - 0.01,
        "loss {} → {}",
        before[metrics::LOSS],
        after[metrics::LOSS]
    );
    assert!(margin(&after) > 0.1, "rewards/chosen − rewards/rejected = {}", margin(&after));
    assert!((after[metrics::REWARDS_MARGINS] - margin(&after)).abs() < 1e-9);
    assert!(after[metrics::KL] >= 0.0 && ms.iter().all(|m| m[metrics::GRAD_NORM].is_finite()));
}

#[test]
fn kto_rejects_pairs_and_lipo_rejects_unpaired_data() {
    let p = tiny();
    let c = config(Objective::Kto);
    let err = pollster::block_on(Trainer::new(p.model.clone(), pairs(&p, 2, &c), c, 2, &Device::flex()));
    assert_eq!(
        err.err().unwrap().to_string(),
        "option objective: Kto trains on unpaired examples ({prompt, completion, label}), not preference pairs"
    );
    let c = config(Objective::Lipo);
    let err = pollster::block_on(Trainer::new(p.model.clone(), unpaired(&p, 2, &c), c, 2, &Device::flex()));
    assert!(err.err().unwrap().to_string().contains("Lipo trains on ranked lists"));
}

#[test]
fn lipo_on_lists_of_two_trains_as_dpo() {
    let p = tiny();
    let dpo = TrainConfig { max_steps: Some(5), ..config(Objective::Dpo) };
    let data = pairs(&p, 8, &dpo);
    let run = |data: TrainData, c: TrainConfig| pollster::block_on(trainer(&p, data, c).steps(5)).unwrap();
    let want = run(data.clone().into(), dpo.clone());
    // pair_logistic with K = 2 is DPO's sigmoid loss exactly: the same curve, metrics and gradients.
    let lipo = TrainConfig { objective: Objective::Lipo, lipo_loss_type: LipoLossType::PairLogistic, ..dpo.clone() };
    let got = run(as_lists(&data).into(), lipo);
    for (a, b) in want.iter().zip(&got) {
        for name in [
            metrics::LOSS,
            metrics::GRAD_NORM,
            metrics::REWARDS_CHOSEN,
            metrics::REWARDS_MARGINS,
            metrics::REWARDS_ACCURACIES,
            metrics::NUM_TOKENS,
        ] {
            assert!(
                (a[name] - b[name]).abs() < 1e-5 * (1.0 + a[name].abs()),
                "step {} {name}: {} vs {}",
                a["step"],
                a[name],
                b[name]
            );
        }
    }
    assert!((got[0][metrics::LOSS] - std::f64::consts::LN_2).abs() < 1e-6);
    // LiPO-λ with K = 2 and ψ = (1, 0) is DPO × |1/log2(2) − 1/log2(3)| = 0.369070246; without clipping,
    // AdamW's steps do not see the scale (up to its ε), so the curve is DPO's times the weight.
    let unclipped = TrainConfig { max_grad_norm: 0.0, ..dpo };
    let want = run(data.clone().into(), unclipped.clone());
    let lambda = TrainConfig { objective: Objective::Lipo, lipo_loss_type: LipoLossType::Lambda, ..unclipped };
    let got = run(as_lists(&data).into(), lambda);
    for (a, b) in want.iter().zip(&got) {
        let (x, y) = (a[metrics::LOSS] * 0.369070246, b[metrics::LOSS]);
        assert!((x - y).abs() < 1e-5, "step {}: 0.369·DPO {x} vs LiPO-λ {y}", a["step"]);
        assert!((a[metrics::REWARDS_MARGINS] - b[metrics::REWARDS_MARGINS]).abs() < 1e-5);
    }
}

#[test]
fn lipo_lambda_learns_ranked_lists_of_four() {
    // Lists of four answers to one TruthfulQA question: its best answer (ψ = 1), its best incorrect answer
    // (ψ = 2/3), and the answers of two other questions, tied last (ψ = 0).
    let p = tiny();
    let c = TrainConfig { beta: 0.1, ..config(Objective::Lipo) };
    let data = pairs(&p, 12, &c);
    let lists: Vec<TokenizedList> = (0..data.len())
        .map(|i| {
            let (a, b) = (&data[(i + 1) % data.len()], &data[(i + 2) % data.len()]);
            TokenizedList {
                prompt: data[i].prompt.clone(),
                responses: vec![data[i].chosen.clone(), a.chosen.clone(), data[i].rejected.clone(), b.rejected.clone()],
                labels: vec![1.0, 0.0, 2.0 / 3.0, 0.0],
                line: data[i].line,
                ref_logps: None,
            }
        })
        .collect();
    let mut t = trainer(&p, lists, c);
    let before = pollster::block_on(t.evaluate()).unwrap();
    // At policy = reference every s is 0 and 5 of the 6 pairs are ordered (one tie): no pair is right yet.
    assert_eq!(before[metrics::REWARDS_ACCURACIES], 0.0);
    assert_eq!(before[metrics::REWARDS_MARGINS], 0.0);
    pollster::block_on(t.steps(20)).unwrap();
    let after = pollster::block_on(t.evaluate()).unwrap();
    eprintln!("LiPO-λ before {before:?}\nafter {after:?}");
    assert!(after[metrics::LOSS] < before[metrics::LOSS], "{} → {}", before[metrics::LOSS], after[metrics::LOSS]);
    assert!(after[metrics::REWARDS_ACCURACIES] > 0.7 && after[metrics::REWARDS_MARGINS] > 0.0, "{after:?}");
}

/// Three steps, a checkpoint through bytes, three more in a fresh trainer = six uninterrupted steps.
fn assert_resumes(data: TrainData, c: TrainConfig, with_reference: impl Fn(&mut TrainData, &TrainerState)) {
    let p = tiny();
    let whole = pollster::block_on(trainer(&p, data.clone(), c.clone()).steps(6)).unwrap();
    let mut first = trainer(&p, data.clone(), c.clone());
    let head = pollster::block_on(first.steps(3)).unwrap();
    let weights =
        pollster::block_on(to_safetensors(first.policy().unwrap().named_tensors(), Default::default())).unwrap();
    let state: TrainerState = serde_json::from_str(&serde_json::to_string(&first.state()).unwrap()).unwrap();
    let optimizer = first.optimizer_state().unwrap();
    drop(first);
    let model = Llama::from_source(&p.config, &SafetensorsSource::parse(&weights).unwrap(), &Device::flex()).unwrap();
    let mut data = data;
    with_reference(&mut data, &state);
    let mut resumed = pollster::block_on(Trainer::new(model, data, c, 2, &Device::flex())).unwrap();
    resumed.restore(state, optimizer).unwrap();
    let tail = pollster::block_on(resumed.steps(3)).unwrap();
    for (a, b) in whole.iter().zip(head.iter().chain(&tail)) {
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, v) in a {
            assert!((v - b[name]).abs() <= 1e-6 * (1.0 + v.abs()), "step {}: {name} {v} vs {}", a["step"], b[name]);
        }
    }
}

#[test]
fn kto_and_lipo_runs_resume_to_the_identical_curve() {
    let p = tiny();
    let c = TrainConfig { max_steps: Some(6), batch_size: 2, warmup_steps: 2, ..config(Objective::Kto) };
    assert_resumes(unpaired(&p, 5, &c).into(), c, |data, state| {
        let TrainData::Unpaired(ex) = data else { unreachable!() };
        assert_eq!(state.reference.len(), ex.len());
        for (e, &(r, kl)) in ex.iter_mut().zip(&state.reference) {
            (e.reference_logps, e.reference_kl_logps) = (Some(r), Some(kl));
        }
    });
    let c = TrainConfig { max_steps: Some(6), batch_size: 2, warmup_steps: 2, ..config(Objective::Lipo) };
    assert_resumes(as_lists(&pairs(&p, 5, &c)).into(), c, |data, state| {
        let TrainData::Lists(lists) = data else { unreachable!() };
        assert_eq!(state.list_reference.len(), lists.len());
        for (l, r) in lists.iter_mut().zip(&state.list_reference) {
            l.ref_logps = Some(r.clone());
        }
    });
}

#[test]
fn held_out_kto_and_lipo_data_report_under_eval_names() {
    let p = tiny();
    let c = TrainConfig { max_steps: Some(3), ..config(Objective::Kto) };
    let (train, held) = alignlab_core::data::train_eval_split(unpaired(&p, 8, &c), 0.25, 0);
    let mut t = trainer(&p, train, c);
    pollster::block_on(t.set_eval_data(held)).unwrap();
    let before = pollster::block_on(t.evaluate_held_out()).unwrap().unwrap();
    assert!((before["eval_loss"] - 0.5).abs() < 1e-6, "{before:?}");
    assert_eq!(before["eval_kl"], 0.0);
    pollster::block_on(t.steps(3)).unwrap();
    let after = pollster::block_on(t.evaluate_held_out()).unwrap().unwrap();
    assert!(after["eval_loss"] != before["eval_loss"] && after.contains_key("eval_kl"), "{after:?}");
    assert!(after.keys().all(|k| k == metrics::STEP || k.starts_with("eval_")), "{after:?}");

    let c = TrainConfig { max_steps: Some(3), ..config(Objective::Lipo) };
    let all = as_lists(&pairs(&p, 8, &c));
    let mut t = trainer(&p, all[..6].to_vec(), c);
    pollster::block_on(t.set_eval_data(all[6..].to_vec())).unwrap();
    let before = pollster::block_on(t.evaluate_held_out()).unwrap().unwrap();
    // LiPO-λ at K = 2: 0.369070246·ln 2.
    assert!((before["eval_loss"] - 0.369070246 * std::f64::consts::LN_2).abs() < 1e-6, "{before:?}");
    assert_eq!(before["eval_rewards/accuracies"], 0.0);
}
