//! Properties of the model, the objectives and the training loop on the tiny random model (CPU, exact).

use alignlab_core::data::{ReadOptions, TokenizedPair, read_preferences, tokenize_pair};
use alignlab_core::generate::{GenerateOptions, greedy};
use alignlab_core::metrics;
use alignlab_core::model::llama::KvCache;
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
    let opts = GenerateOptions { max_new_tokens: 12, stop_tokens: vec![] };
    let a = pollster::block_on(greedy(&p.model, &prompt, &opts, |_| {})).unwrap();
    let b = pollster::block_on(greedy(&p.model, &prompt, &opts, |_| {})).unwrap();
    assert_eq!(a.len(), 12);
    assert_eq!(a, b);
    let stop = GenerateOptions { max_new_tokens: 12, stop_tokens: vec![a[3]] };
    let c = pollster::block_on(greedy(&p.model, &prompt, &stop, |_| {})).unwrap();
    assert_eq!(c.last(), Some(&a[3]));
    assert!(c.len() <= 4);
}

#[test]
fn dpo_loss_is_ln2_at_step_zero_and_matches_the_cross_surface_fixture() {
    let p = tiny();
    let config = cross_surface_config();
    let data = pairs(&p, 8, &config);
    let mut t = pollster::block_on(Trainer::new(p.model, data, config, 2, &Device::flex())).unwrap();
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
    let p = tiny();
    let config = TrainConfig {
        learning_rate: 2e-3,
        batch_size: 4,
        max_steps: Some(50),
        max_length: 192,
        max_prompt_length: 96,
        ..Default::default()
    };
    let data = pairs(&p, 16, &config);
    let mut t = pollster::block_on(Trainer::new(p.model, data, config, 2, &Device::flex())).unwrap();
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
    let p = tiny();
    let config = TrainConfig {
        objective: Objective::Reward,
        learning_rate: 2e-3,
        batch_size: 4,
        max_steps: Some(50),
        max_length: 192,
        max_prompt_length: 96,
        ..Default::default()
    };
    let data = pairs(&p, 16, &config);
    let mut t = pollster::block_on(Trainer::new(p.model, data, config, 2, &Device::flex())).unwrap();
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
