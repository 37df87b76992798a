//! Reward-model folders: transformers-made fixtures (scripts/make-reward-fixture.py) load and score as
//! transformers scores them, and alignlab's export reloads to identical scores — for a decoder with one
//! label, a Qwen2 decoder with three attribute heads, the encoder layout, and a reward model trained here.
//!
//! With `ALIGNLAB_REWARD_EXPORT_DIR` set, the exports are also written there, for
//! `python3 scripts/make-reward-fixture.py --check-export DIR/<fixture> <fixture>`.

use std::path::PathBuf;

use alignlab_core::data::{ReadOptions, TokenizedPair, read_preferences, tokenize_pair};
use alignlab_core::model::reward::{AnyRewardModel, PretrainedReward, reward_hf_files, score_length};
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Backbone, TrainConfig, Trainer, score_rewards};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

const PAIRS: &str = include_str!("../../../tests/fixtures/truthfulqa/pairs.jsonl");

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

struct Expected {
    ids: Vec<Vec<u32>>,
    scores: Vec<Vec<f32>>,
}

fn expected(name: &str) -> Expected {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture(name).join("expected.json")).unwrap()).unwrap();
    let rows = |key: &str| -> Vec<Vec<f64>> { serde_json::from_value(v[key].clone()).unwrap() };
    Expected {
        ids: rows("input_ids").into_iter().map(|r| r.into_iter().map(|x| x as u32).collect()).collect(),
        scores: rows("scores").into_iter().map(|r| r.into_iter().map(|x| x as f32).collect()).collect(),
    }
}

/// Scores `[batch][k]` of right-padded rows, each read where transformers reads it.
fn scores(rm: &PretrainedReward, rows: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let t = rows[0].len();
    let ids: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    let lengths: Vec<usize> = rows.iter().map(|r| score_length(r, rm.pad_id)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows.len(), t]), &Device::flex());
    let k = rm.num_labels();
    rm.model
        .scores(ids, &lengths)
        .into_data()
        .iter::<f32>()
        .collect::<Vec<_>>()
        .chunks(k)
        .map(<[f32]>::to_vec)
        .collect()
}

/// The export of `rm` (with the fixture's tokenizer files for an encoder), reloaded.
fn round_trip(rm: &PretrainedReward, name: &str) -> PretrainedReward {
    let tokenizer = matches!(rm.model, AnyRewardModel::Decoder(..)).then_some(&rm.tokenizer);
    let mut files = pollster::block_on(reward_hf_files(&rm.model, tokenizer, rm.pad_id, &rm.labels)).unwrap();
    if tokenizer.is_none() {
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            files.push((f.to_string(), std::fs::read(fixture(name).join(f)).unwrap()));
        }
    }
    if let Ok(dir) = std::env::var("ALIGNLAB_REWARD_EXPORT_DIR") {
        let dir = PathBuf::from(dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, bytes) in &files {
            std::fs::write(dir.join(f), bytes).unwrap();
        }
    }
    PretrainedReward::from_hf_files(files, &Device::flex()).unwrap()
}

#[test]
fn transformers_reward_models_load_score_and_round_trip() {
    for (name, labels) in [
        ("reward-tiny-llama", vec!["LABEL_0"]),
        ("reward-tiny-qwen2-attr", vec!["helpfulness", "correctness", "coherence"]),
        ("reward-tiny-bert", vec!["helpfulness", "verbosity"]),
    ] {
        let rm = PretrainedReward::from_hf_dir(fixture(name), &Device::flex()).unwrap();
        assert_eq!(rm.labels, labels, "{name}");
        let want = expected(name);
        let got = scores(&rm, &want.ids);
        for (g, w) in got.iter().flatten().zip(want.scores.iter().flatten()) {
            assert!((g - w).abs() < 1e-4, "{name}: {got:?} vs transformers {:?}", want.scores);
        }
        let back = round_trip(&rm, name);
        assert_eq!((back.labels.clone(), back.pad_id), (rm.labels.clone(), rm.pad_id), "{name}");
        assert_eq!(scores(&back, &want.ids), got, "{name}: the export reloads to the same scores");
    }
}

#[test]
fn pad_is_read_like_transformers() {
    // pad = eos = 2: a row ending in eos is read at the token before it; a row of pads at position 0.
    assert_eq!(score_length(&[1, 70, 80, 2, 2], 2), 3);
    assert_eq!(score_length(&[1, 70, 80], 2), 3);
    assert_eq!(score_length(&[2, 2], 2), 0);
}

/// The first six pairs of `PAIRS`, tokenised as a run of `config` does.
fn six_pairs(pre: &Pretrained, config: &TrainConfig) -> Vec<TokenizedPair> {
    let report = read_preferences("pairs.jsonl", PAIRS, &ReadOptions::default()).unwrap();
    report
        .records
        .iter()
        .take(6)
        .map(|r| tokenize_pair(&pre.tokenizer, r, &config.tokenize_options()).unwrap())
        .collect()
}

#[test]
fn a_trained_reward_model_saves_and_reloads_to_identical_rewards() {
    let device = Device::flex();
    let pre = Pretrained::from_gguf(tiny_gguf(0), &device).unwrap();
    let config: TrainConfig = serde_json::from_str(
        r#"{"objective": "reward", "learning_rate": 0.01, "batch_size": 2, "max_steps": 3, "max_length": 128,
            "max_prompt_length": 64}"#,
    )
    .unwrap();
    let pairs = six_pairs(&pre, &config);
    let pad = 2;
    let mut trainer =
        pollster::block_on(Trainer::new(Backbone::Decoder(pre.model), pairs.clone(), config, pad, &device)).unwrap();
    pollster::block_on(trainer.steps(3)).unwrap();
    let trained = trainer.reward_model().unwrap().valid();
    let before = pollster::block_on(score_rewards(&trained, &pairs, 4, pad, &device)).unwrap();
    assert!(before.iter().any(|&(c, r)| c != 0.0 || r != 0.0), "the head has moved from zero");
    let model = AnyRewardModel::Decoder(trained, pre.config.clone());
    let files = pollster::block_on(reward_hf_files(&model, Some(&pre.tokenizer), pad, &[])).unwrap();
    let back = PretrainedReward::from_hf_files(files, &device).unwrap();
    assert_eq!(back.pad_id, pad);
    let AnyRewardModel::Decoder(m, _) = &back.model else { panic!("a decoder") };
    assert_eq!(pollster::block_on(score_rewards(m, &pairs, 4, pad, &device)).unwrap(), before);
}

#[test]
fn a_reward_run_resumed_from_its_saved_folder_continues_the_loss_curve() {
    let device = Device::flex();
    let pre = Pretrained::from_gguf(tiny_gguf(0), &device).unwrap();
    let config: TrainConfig = serde_json::from_str(
        r#"{"objective": "reward", "learning_rate": 0.01, "batch_size": 2, "max_steps": 4, "max_length": 128,
            "max_prompt_length": 64, "seed": 3}"#,
    )
    .unwrap();
    let pairs = six_pairs(&pre, &config);
    let new = |backbone: Backbone| {
        pollster::block_on(Trainer::new(backbone, pairs.clone(), config.clone(), 2, &device)).unwrap()
    };
    let losses = |t: &mut Trainer, n| -> Vec<f64> {
        pollster::block_on(t.steps(n)).unwrap().iter().map(|m| m[alignlab_core::metrics::LOSS]).collect()
    };
    let mut whole = new(Backbone::Decoder(pre.model.clone()));
    let want = losses(&mut whole, 4);

    let mut first = new(Backbone::Decoder(pre.model.clone()));
    let mut got = losses(&mut first, 2);
    let model = AnyRewardModel::Decoder(first.reward_model().unwrap().valid(), pre.config.clone());
    let files = pollster::block_on(reward_hf_files(&model, Some(&pre.tokenizer), 2, &[])).unwrap();
    let (state, optimizer) = (first.state(), first.optimizer_state().unwrap());
    let state = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    let AnyRewardModel::Decoder(saved, _) = PretrainedReward::from_hf_files(files, &device).unwrap().model else {
        panic!("a decoder")
    };
    let mut second = new(Backbone::Reward(saved));
    second.restore(state, optimizer).unwrap();
    got.extend(losses(&mut second, 2));
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "resumed {got:?} vs uninterrupted {want:?}");
    }
}
