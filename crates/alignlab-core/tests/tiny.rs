//! Properties of the model, the objectives and the training loop on the tiny random model (CPU, exact).

use alignlab_core::data::{ReadOptions, TokenizedPair, read_preferences, tokenize_pair};
use alignlab_core::generate::{GenerateOptions, generate};
use alignlab_core::metrics;
use alignlab_core::model::llama::KvCache;
use alignlab_core::objectives::dpo::DpoLossType;
use alignlab_core::objectives::reward::RewardLossType;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Objective, TrainConfig, Trainer};
use burn::tensor::{Device, Int, Tensor, TensorData, Tolerance};

const PAIRS: &str = include_str!("../../../tests/fixtures/truthfulqa/pairs.jsonl");
const FIRST_FIVE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tiny-dpo-first5.json");

fn tiny() -> Pretrained {
    Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).expect("the tiny model loads")
}

fn pairs(p: &Pretrained, n: usize, config: &TrainConfig) -> Vec<TokenizedPair> {
    let report = read_preferences("pairs.jsonl", PAIRS, &ReadOptions::default()).unwrap();
    let opts = config.tokenize_options();
    report.records.iter().take(n).map(|r| tokenize_pair(&p.tokenizer, r, &opts).unwrap()).collect()
}

/// A trainer of `config` on the tiny model and the first `n` TruthfulQA pairs.
fn trainer(config: TrainConfig, n: usize) -> Trainer {
    let p = tiny();
    let data = pairs(&p, n, &config);
    pollster::block_on(Trainer::new(p.model, data, config, 2, &Device::flex())).unwrap()
}

/// The run every surface repeats (native CPU here; Node wasm CPU, Node WebGPU and Chromium WebGPU in tests/):
/// tiny model seed 0, the first 8 TruthfulQA pairs, 5 DPO steps.
fn cross_surface_config() -> TrainConfig {
    serde_json::from_str(
        r#"{"objective": "dpo", "beta": 0.1, "learning_rate": 0.001, "batch_size": 2, "max_steps": 5,
            "max_length": 256, "max_prompt_length": 128, "seed": 0}"#,
    )
    .unwrap()
}

fn ids(v: &[i64], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), device)
}

#[test]
fn changing_a_later_token_leaves_earlier_positions_unchanged() {
    let p = tiny();
    let d = Device::flex();
    let a = p.model.forward_hidden(ids(&[5, 70, 80, 90, 100], &d), None);
    let b = p.model.forward_hidden(ids(&[5, 70, 80, 91, 200], &d), None);
    a.clone()
        .narrow(1, 0, 3)
        .into_data()
        .assert_approx_eq::<f32>(&b.clone().narrow(1, 0, 3).into_data(), Tolerance::absolute(1e-6));
    let diff = (a.narrow(1, 3, 1) - b.narrow(1, 3, 1)).abs().max().into_scalar::<f32>();
    assert!(diff > 1e-4, "position 3 must see its own token ({diff})");
}

#[test]
fn kv_cache_reproduces_the_full_forward() {
    let p = tiny();
    let d = Device::flex();
    let seq = [1i64, 40, 50, 60, 70, 80];
    let full = p.model.forward_hidden(ids(&seq, &d), None);
    let mut cache = KvCache::new();
    let first = p.model.forward_hidden(ids(&seq[..3], &d), Some(&mut cache));
    let mid = p.model.forward_hidden(ids(&seq[3..5], &d), Some(&mut cache)); // a multi-token continuation
    let last = p.model.forward_hidden(ids(&seq[5..], &d), Some(&mut cache));
    let incremental = Tensor::cat(vec![first, mid, last], 1);
    incremental.into_data().assert_approx_eq::<f32>(&full.into_data(), Tolerance::absolute(1e-5));
}

#[test]
fn greedy_generation_is_deterministic_and_stops() {
    let p = tiny();
    let prompt = p.tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n").unwrap();
    let greedy = |opts: &GenerateOptions| {
        pollster::block_on(generate(&p.model, &[&prompt], opts, None, |_| {})).unwrap().remove(0).remove(0).tokens
    };
    let opts = GenerateOptions { max_new_tokens: 12, ..Default::default() };
    let a = greedy(&opts);
    let b = greedy(&opts);
    assert_eq!(a.len(), 12);
    assert_eq!(a, b);
    let c = greedy(&GenerateOptions { max_new_tokens: 12, stop_tokens: vec![a[3]], ..Default::default() });
    assert_eq!(c.last(), Some(&a[3]));
    assert!(c.len() <= 4);
}

#[test]
fn dpo_loss_is_ln2_at_step_zero_and_matches_the_cross_surface_fixture() {
    let mut t = trainer(cross_surface_config(), 8);
    let ms = pollster::block_on(t.steps(5)).unwrap();
    let losses: Vec<f64> = ms.iter().map(|m| m[metrics::LOSS]).collect();
    assert!((losses[0] - std::f64::consts::LN_2).abs() < 1e-5, "step-0 loss {} ≠ ln 2", losses[0]);
    assert_eq!(ms[0][metrics::REWARDS_MARGINS], 0.0);
    if std::env::var_os("ALIGNLAB_BLESS").is_some() {
        // Regenerate with ALIGNLAB_BLESS=1 only when the model or the loop changes on purpose.
        std::fs::write(FIRST_FIVE, serde_json::to_string_pretty(&serde_json::json!({ "losses": losses })).unwrap())
            .unwrap();
        return;
    }
    let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(FIRST_FIVE).unwrap()).unwrap();
    for (i, (got, want)) in losses.iter().zip(want["losses"].as_array().unwrap()).enumerate() {
        assert!((got - want.as_f64().unwrap()).abs() < 1e-4, "step {}: {got} vs fixture {want}", i + 1);
    }
}

#[test]
fn dpo_drives_reward_accuracy_above_0_9_on_real_pairs() {
    let config = TrainConfig {
        learning_rate: 2e-3,
        batch_size: 4,
        max_steps: Some(50),
        max_length: 192,
        max_prompt_length: 96,
        ..Default::default()
    };
    let mut t = trainer(config, 16);
    let before = pollster::block_on(t.evaluate()).unwrap();
    let ms = pollster::block_on(t.steps(50)).unwrap();
    let after = pollster::block_on(t.evaluate()).unwrap();
    eprintln!("before {before:?}\nlast step {:?}\nafter {after:?}", ms.last().unwrap());
    assert_eq!(ms.len(), 50);
    assert!((before[metrics::LOSS] - std::f64::consts::LN_2).abs() < 1e-5);
    assert!(after[metrics::REWARDS_ACCURACIES] > 0.9, "accuracy {}", after[metrics::REWARDS_ACCURACIES]);
    assert!(after[metrics::LOSS] < before[metrics::LOSS]);
    assert!(ms.iter().all(|m| m[metrics::GRAD_NORM].is_finite() && m[metrics::LEARNING_RATE] > 0.0));
}

#[test]
fn reward_model_learns_real_pairs_from_ln2() {
    let config = TrainConfig {
        objective: Objective::Reward,
        learning_rate: 2e-3,
        batch_size: 4,
        max_steps: Some(50),
        max_length: 192,
        max_prompt_length: 96,
        ..Default::default()
    };
    let mut t = trainer(config, 16);
    let first = pollster::block_on(t.steps(1)).unwrap();
    assert!((first[0][metrics::LOSS] - std::f64::consts::LN_2).abs() < 1e-6, "zero-initialised head gives ln 2");
    pollster::block_on(t.steps(49)).unwrap();
    let after = pollster::block_on(t.evaluate()).unwrap();
    eprintln!("reward model after 50 steps: {after:?}");
    assert!(after[metrics::ACCURACY] > 0.9, "accuracy {}", after[metrics::ACCURACY]);
}

#[test]
fn a_run_with_cached_reference_logps_equals_a_live_one() {
    let p = tiny();
    let config = TrainConfig { max_steps: Some(3), ..cross_surface_config() };
    let data = pairs(&p, 6, &config);
    let mut live =
        pollster::block_on(Trainer::new(p.model.clone(), data.clone(), config.clone(), 2, &Device::flex())).unwrap();
    let mut cached = data;
    for (pair, &(c, r)) in cached.iter_mut().zip(live.reference_logps()) {
        pair.ref_chosen_logps = Some(c);
        pair.ref_rejected_logps = Some(r);
    }
    let mut from_cache = pollster::block_on(Trainer::new(p.model, cached, config, 2, &Device::flex())).unwrap();
    let a = pollster::block_on(live.steps(3)).unwrap();
    let b = pollster::block_on(from_cache.steps(3)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn gradient_accumulation_equals_the_larger_batch() {
    let base = TrainConfig { max_steps: Some(3), ..cross_surface_config() };
    let big = pollster::block_on(trainer(TrainConfig { batch_size: 4, ..base.clone() }, 8).steps(3)).unwrap();
    let accumulated =
        pollster::block_on(trainer(TrainConfig { gradient_accumulation_steps: 2, ..base }, 8).steps(3)).unwrap();
    for (a, b) in big.iter().zip(&accumulated) {
        for name in [metrics::LOSS, metrics::GRAD_NORM, metrics::REWARDS_MARGINS, metrics::EPOCH, metrics::NUM_TOKENS] {
            assert!((a[name] - b[name]).abs() < 1e-5 * (1.0 + a[name].abs()), "{name}: {} vs {}", a[name], b[name]);
        }
    }
}

#[test]
fn every_dpo_loss_type_lowers_its_loss_and_only_reference_losses_compute_a_reference() {
    use DpoLossType::*;
    for (types, beta) in [
        (vec![Sigmoid], 0.1),
        (vec![Robust], 0.1),
        (vec![Hinge], 0.1),
        (vec![Ipo], 0.1),
        (vec![DpoNorm], 1.0),
        (vec![Simpo], 2.0),
        (vec![Cpo], 0.1),
        (vec![Orpo], 0.1),
        (vec![Sft], 0.1),
        (vec![Sigmoid, Sft], 0.1),
    ] {
        let uses_reference = types.iter().any(|t| t.uses_reference());
        let config = TrainConfig {
            loss_type: types.clone(),
            beta,
            label_smoothing: 0.1,
            learning_rate: 2e-3,
            batch_size: 4,
            max_steps: Some(10),
            max_length: 160,
            max_prompt_length: 80,
            ..Default::default()
        };
        let mut t = trainer(config, 8);
        assert_eq!(t.reference_logps().is_empty(), !uses_reference, "{types:?}");
        let before = pollster::block_on(t.evaluate()).unwrap()[metrics::LOSS];
        pollster::block_on(t.steps(10)).unwrap();
        let after = pollster::block_on(t.evaluate()).unwrap()[metrics::LOSS];
        eprintln!("{types:?}: loss {before:.4} → {after:.4}");
        assert!(after.is_finite() && after < before, "{types:?}: {before} → {after}");
    }
}

#[test]
fn preference_strength_reaches_the_reward_loss() {
    // A zero-initialised head scores every response 0, so step 0 shows the loss of a zero difference:
    // scaled_bt with s = 2 gives 2·ln 2; a Llama-2 margin with s = 3 (m = 1) gives −log σ(−1) = ln(1 + e).
    for (loss_type, strength, want) in [
        (RewardLossType::ScaledBt, 2.0, 2.0 * std::f64::consts::LN_2),
        (RewardLossType::Margin, 3.0, 1.313261687518223),
    ] {
        let config = TrainConfig {
            objective: Objective::Reward,
            reward_loss_type: loss_type,
            center_rewards_coefficient: 0.01,
            max_steps: Some(1),
            ..cross_surface_config()
        };
        let p = tiny();
        let mut data = pairs(&p, 4, &config);
        data.iter_mut().for_each(|d| d.strength = Some(strength));
        let mut t = pollster::block_on(Trainer::new(p.model, data, config, 2, &Device::flex())).unwrap();
        let loss = pollster::block_on(t.steps(1)).unwrap()[0][metrics::LOSS];
        assert!((loss - want).abs() < 1e-5, "{loss_type:?}: {loss} vs {want}");
    }
}

#[test]
fn held_out_pairs_start_at_ln2_and_report_under_eval_names() {
    let config = TrainConfig { max_steps: Some(4), ..cross_surface_config() };
    let p = tiny();
    let all = pairs(&p, 12, &config);
    let (train, held_out) = alignlab_core::data::train_eval_split(all, 0.25, config.seed);
    assert_eq!((train.len(), held_out.len()), (9, 3));
    let mut t = pollster::block_on(Trainer::new(p.model, train, config, 2, &Device::flex())).unwrap();
    pollster::block_on(t.set_eval_pairs(held_out.clone())).unwrap();
    let before = pollster::block_on(t.evaluate_held_out()).unwrap().unwrap();
    assert!((before["eval_loss"] - std::f64::consts::LN_2).abs() < 1e-5, "{before:?}");
    pollster::block_on(t.steps(4)).unwrap();
    let after = pollster::block_on(t.evaluate_held_out()).unwrap().unwrap();
    assert_eq!(after[metrics::STEP], 4.0);
    assert!(after["eval_loss"].is_finite() && after["eval_loss"] != before["eval_loss"]);
    assert!(after.keys().all(|k| k == metrics::STEP || k.starts_with("eval_")), "{after:?}");
    let err = pollster::block_on(t.set_eval_pairs(held_out)).unwrap_err();
    assert!(err.to_string().contains("before training"), "{err}");
}

#[test]
fn a_run_resumed_from_a_checkpoint_continues_the_identical_loss_curve() {
    use alignlab_core::model::llama::Llama;
    use alignlab_core::train::TrainerState;
    use alignlab_core::weights::safetensors::{SafetensorsSource, to_safetensors};
    let config = TrainConfig { max_steps: Some(6), weight_decay: 0.01, warmup_steps: 2, ..cross_surface_config() };
    // held-out pairs (the last 3 of 8) whose reference log-probs only the checkpoint still knows
    let held: Vec<TokenizedPair> = pairs(&tiny(), 8, &config)[5..].to_vec();
    let held_out = || held.clone();
    let with_eval = |mut t: Trainer| {
        pollster::block_on(t.set_eval_pairs(held_out())).unwrap();
        t
    };
    let mut uninterrupted = with_eval(trainer(config.clone(), 5));
    let whole = pollster::block_on(uninterrupted.steps(6)).unwrap();
    let whole_eval = pollster::block_on(uninterrupted.evaluate_held_out()).unwrap().unwrap();

    // Three steps, then everything a checkpoint holds goes through bytes, as it would through files.
    let mut first = with_eval(trainer(config.clone(), 5));
    let head = pollster::block_on(first.steps(3)).unwrap();
    let weights =
        pollster::block_on(to_safetensors(first.policy().unwrap().named_tensors(), Default::default())).unwrap();
    let state = serde_json::to_string(&first.state()).unwrap();
    let optimizer = first.optimizer_state().unwrap();
    drop(first);

    let p = tiny();
    let model = Llama::from_source(&p.config, &SafetensorsSource::parse(&weights).unwrap(), &Device::flex()).unwrap();
    let state: TrainerState = serde_json::from_str(&state).unwrap();
    let mut data = pairs(&p, 5, &config);
    for (pair, &(c, r)) in data.iter_mut().zip(&state.reference) {
        (pair.ref_chosen_logps, pair.ref_rejected_logps) = (Some(c), Some(r));
    }
    // as the CLI does: held-out data first, then the checkpoint's state (which replaces their reference)
    let mut resumed = with_eval(pollster::block_on(Trainer::new(model, data, config, 2, &Device::flex())).unwrap());
    resumed.restore(state, optimizer).unwrap();
    let tail = pollster::block_on(resumed.steps(3)).unwrap();
    let tail_eval = pollster::block_on(resumed.evaluate_held_out()).unwrap().unwrap();
    for (a, b) in whole.iter().chain([&whole_eval]).zip(head.iter().chain(&tail).chain([&tail_eval])) {
        for (name, v) in a {
            assert!((v - b[name]).abs() <= 1e-6 * (1.0 + v.abs()), "step {}: {name} {v} vs {}", a["step"], b[name]);
        }
    }
    let bad = TrainerState { pairs: 4, ..resumed.state() };
    assert!(resumed.restore(bad, Vec::new()).unwrap_err().to_string().contains("trained on 4 pairs"));
}

#[test]
fn loss_type_takes_one_name_or_a_list() {
    let one: TrainConfig = serde_json::from_str(r#"{"loss_type": "ipo"}"#).unwrap();
    assert_eq!(one.loss_type, vec![DpoLossType::Ipo]);
    let two: TrainConfig =
        serde_json::from_str(r#"{"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}"#).unwrap();
    assert_eq!(two.dpo_loss().terms, vec![(DpoLossType::Sigmoid, 1.0), (DpoLossType::Sft, 0.5)]);
    let err = serde_json::from_str::<TrainConfig>(r#"{"loss_type": ["sigmoid", "dpoo"]}"#).unwrap_err();
    assert!(err.to_string().contains("unknown variant `dpoo`"), "{err}");
    let bad = TrainConfig { loss_weights: Some(vec![1.0, 2.0]), ..Default::default() };
    assert!(bad.validate().unwrap_err().to_string().contains("loss_weights"));
    let toml: TrainConfig = toml::from_str("loss_type = [\"simpo\"]\nsimpo_gamma = 1.0").unwrap();
    assert_eq!((toml.loss_type, toml.simpo_gamma), (vec![DpoLossType::Simpo], 1.0));
}

#[test]
fn a_truncated_model_file_is_one_clear_error() {
    let bytes = tiny_gguf(0);
    for cut in [0, 10, 100, bytes.len() / 2, bytes.len() - 1] {
        let err =
            Pretrained::from_gguf(bytes[..cut].to_vec(), &Device::flex()).err().expect("truncated file must fail");
        let msg = err.to_string();
        assert!(!msg.is_empty());
        eprintln!("cut at {cut}: {msg}");
    }
}
