//! LoRA adapters on the tiny random model (CPU): the base at initialisation, merging, what a DPO step
//! changes, the gradient of an adapter entry against finite differences, parameter counts, resume; KTO,
//! LiPO and MODPO on the same adapters (step-0 identities, frozen base, LiPO/MODPO = DPO step for step).

use alignlab_core::data::{
    ReadOptions, TokenizedCompletion, TokenizedList, TokenizedPair, pairs_to_unpaired, read_preferences,
    tokenize_completion, tokenize_pair,
};
use alignlab_core::metrics;
use alignlab_core::model::llama::Llama;
use alignlab_core::model::lora::{self, LoraConfig};
use alignlab_core::objectives::lipo::LipoLossType;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::rng::SplitMix64;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Objective, TrainConfig, TrainData, Trainer, TrainerState};
use alignlab_core::weights::safetensors::{SafetensorsSource, to_safetensors};
use alignlab_core::weights::{WeightError, WeightSource};
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

const PAIRS: &str = include_str!("../../../tests/fixtures/truthfulqa/pairs.jsonl");

fn tiny() -> Pretrained {
    Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).expect("the tiny model loads")
}

fn pairs(p: &Pretrained, n: usize, config: &TrainConfig) -> Vec<TokenizedPair> {
    let report = read_preferences("pairs.jsonl", PAIRS, &ReadOptions::default()).unwrap();
    let opts = config.tokenize_options();
    report.records.iter().take(n).map(|r| tokenize_pair(&p.tokenizer, r, &opts).unwrap()).collect()
}

/// The cross-surface run of tests/tiny.rs (5 DPO steps, lr 1e-3) with rank-4 adapters on every projection.
fn lora_run() -> TrainConfig {
    serde_json::from_str(
        r#"{"objective": "dpo", "beta": 0.1, "learning_rate": 0.001, "batch_size": 2, "max_steps": 5,
            "max_length": 256, "max_prompt_length": 128, "seed": 0,
            "lora_r": 4, "lora_alpha": 8, "lora_target_modules": "all-linear"}"#,
    )
    .unwrap()
}

fn trainer(config: TrainConfig, n: usize) -> Trainer {
    let p = tiny();
    let data = pairs(&p, n, &config);
    pollster::block_on(Trainer::new(p.model, data, config, 2, &Device::flex())).unwrap()
}

fn values(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn ids(v: &[i64], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), device)
}

/// Every stored weight of the model that is not an adapter: the embedding, norms, projection bases.
fn base_weights(m: &Llama) -> Vec<Vec<f32>> {
    let flat = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let vec = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let mut out = vec![flat(m.embed_tokens.base()), vec(m.norm.gamma.base())];
    for l in &m.layers {
        out.push(vec(l.input_layernorm.gamma.base()));
        out.push(vec(l.post_attention_layernorm.gamma.base()));
        let (a, f) = (&l.self_attn, &l.mlp);
        for lin in [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj, &f.gate_proj, &f.up_proj, &f.down_proj] {
            out.push(flat(lin.weight.base()));
        }
    }
    out
}

/// peft's tensors of the adapters, read back.
fn adapters(m: &Llama) -> Vec<(String, Vec<f32>)> {
    lora::peft_tensors(m).into_iter().map(|(n, _, t)| (n, t.into_data().try_to_vec::<f32>().unwrap())).collect()
}

#[test]
fn zero_b_at_initialisation_leaves_the_base_model_bit_for_bit() {
    let p = tiny();
    let device = Device::flex();
    let x = ids(&[1, 72, 101, 108, 108, 111, 44, 32], &device);
    let base = values(p.model.forward_hidden(x.clone(), None));
    let config = LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, target_modules: vec!["all-linear".into()] };
    let adapted = config.apply(p.model, 7).unwrap();
    assert!(lora::has_adapters(&adapted));
    // A is drawn, B is zero: x·W + (x·A)·0 adds exact zeros.
    assert!(adapters(&adapted).iter().any(|(n, v)| n.ends_with("lora_A.weight") && v.iter().any(|&x| x != 0.0)));
    assert!(
        adapters(&adapted)
            .iter()
            .filter(|(n, _)| n.ends_with("lora_B.weight"))
            .all(|(_, v)| v.iter().all(|&x| x == 0.0))
    );
    assert_eq!(values(adapted.forward_hidden(x, None)), base);
}

#[test]
fn parameter_counts_match_a_hand_count() {
    let p = tiny();
    // Tiny model: vocab 259, d 64, 2 layers, 4 query / 2 kv heads of 16 (kv width 32), SwiGLU 128, tied head.
    // Per layer: 2 norms 2·64 + q,o 2·64·64 + k,v 2·64·32 + gate,up,down 3·64·128 = 128 + 8192 + 4096 + 24576.
    let base = 259 * 64 + 2 * (128 + 8192 + 4096 + 24576) + 64;
    assert_eq!(base, 90624);
    assert_eq!(lora::param_counts(&p.model), (base, base));
    // r 4 on q_proj (64 → 64) and v_proj (64 → 32): A is r·d_in, B is d_out·r.
    let qv = LoraConfig { r: 4, alpha: 8.0, dropout: 0.05, target_modules: lora::default_target_modules() };
    let per_layer = 4 * (64 + 64) + 4 * (64 + 32);
    assert_eq!(per_layer, 896);
    let m = qv.apply(p.model.clone(), 0).unwrap();
    assert_eq!(lora::param_counts(&m), (2 * 896, base + 2 * 896));
    // r 2 everywhere: q,o 2·(64+64), k,v 2·(64+32), gate,up 2·(64+128), down 2·(128+64).
    let all = LoraConfig { r: 2, target_modules: vec!["all-linear".into()], ..qv };
    let per_layer = 2 * 256 + 2 * 192 + 3 * 384;
    let m = all.apply(p.model, 0).unwrap();
    assert_eq!(lora::param_counts(&m), (2 * per_layer, base + 2 * per_layer));
    assert_eq!(lora::peft_tensors(&m).len(), 2 * 7 * 2);
}

#[test]
fn a_lora_dpo_run_starts_at_ln2_and_moves_only_the_adapters() {
    let p = tiny();
    let before = base_weights(&p.model);
    let config = TrainConfig { lora_dropout: 0.05, learning_rate: 1e-2, ..lora_run() };
    let fresh = adapters(&LoraConfig::of(&config).unwrap().apply(p.model.clone(), config.seed).unwrap());
    let mut t = trainer(config, 8);
    let ms = pollster::block_on(t.steps(2)).unwrap();
    // B = 0: the policy is the reference, whatever the dropout mask.
    assert!((ms[0][metrics::LOSS] - std::f64::consts::LN_2).abs() < 1e-6, "step-0 loss {}", ms[0][metrics::LOSS]);
    assert_eq!(ms[0][metrics::REWARDS_MARGINS], 0.0);
    assert!(ms[1][metrics::LOSS] != ms[0][metrics::LOSS]);
    let policy = t.policy().unwrap();
    assert_eq!(base_weights(policy), before, "a frozen weight moved");
    let after = adapters(policy);
    assert_eq!(after.len(), fresh.len());
    // Step 1 moves every B (A's gradient is 0 while B is); step 2 moves every A.
    for ((name, a), (_, b)) in after.iter().zip(&fresh) {
        assert!(a != b, "{name} did not change");
    }
    // AdamW holds moments for the adapters only: far less than the two moments of every weight.
    let (trainable, total) = lora::param_counts(policy);
    let state = t.optimizer_state().unwrap().len();
    assert!(state < 2 * 4 * total / 2, "optimizer state {state} bytes for {trainable} trainable of {total}");
    assert!(state >= 2 * 4 * trainable);
}

#[test]
fn the_merged_model_computes_what_the_adapters_do() {
    let mut t = trainer(TrainConfig { lora_dropout: 0.0, learning_rate: 1e-2, ..lora_run() }, 8);
    pollster::block_on(t.steps(3)).unwrap();
    let policy = t.policy().unwrap().valid();
    let merged = lora::merge(&policy);
    assert!(!lora::has_adapters(&merged));
    let device = Device::flex();
    let x = ids(&[1, 72, 101, 108, 108, 111, 44, 32, 119, 111], &device);
    let (a, b) = (values(policy.forward_hidden(x.clone(), None)), values(merged.forward_hidden(x.clone(), None)));
    let base = values(tiny().model.forward_hidden(x.clone(), None));
    let moved = a.iter().zip(&base).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(moved > 1e-3, "the adapters changed nothing ({moved})");
    let diff = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff <= 1e-5, "merged vs adapters: {diff}");
    // The export (named_tensors merges too) loads back as a plain Llama with the same outputs.
    let bytes = pollster::block_on(to_safetensors(policy.named_tensors(), Default::default())).unwrap();
    let reloaded = Llama::from_source(&tiny().config, &SafetensorsSource::parse(&bytes).unwrap(), &device).unwrap();
    assert_eq!(values(reloaded.forward_hidden(x, None)), b);
}

/// Adapters with values drawn from their names, one entry optionally shifted by `delta`.
struct Drawn {
    shift: Option<(String, usize, f32)>,
}

impl WeightSource for Drawn {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
        let seed = name.bytes().fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        let mut rng = SplitMix64::new(seed);
        let mut v: Vec<f32> = (0..shape.iter().product()).map(|_| (rng.next_f64() as f32 - 0.5) * 0.5).collect();
        if let Some((n, i, d)) = &self.shift
            && n == name
        {
            v[*i] += d;
        }
        Ok(v)
    }
}

/// Sigmoid DPO (β 1) of one pair against fixed reference log-probs, with full log-softmax logits.
fn dpo_loss(model: &Llama, pair: &TokenizedPair, device: &Device) -> Tensor<1> {
    let seq = |r: &[u32]| pair.prompt.iter().chain(r).map(|&i| i as i64).collect::<Vec<_>>();
    let logp = |s: Vec<i64>| {
        let t = s.len();
        let hidden = model.forward_hidden(ids(&s[..t - 1], device), None).reshape([t - 1, 64]);
        let logits = hidden.matmul(model.head_weight().transpose());
        let targets = Tensor::<1, Int>::from_data(TensorData::new(s[1..].to_vec(), [t - 1]), device);
        let picked = log_softmax(logits, 1).gather(1, targets.reshape([t - 1, 1])).reshape([t - 1]);
        picked.narrow(0, pair.prompt.len() - 1, t - pair.prompt.len()).sum()
    };
    let margin = (logp(seq(&pair.chosen)) + 3.0) - (logp(seq(&pair.rejected)) + 2.5);
    burn::tensor::activation::log_sigmoid(margin).neg()
}

#[test]
fn the_gradient_of_an_adapter_entry_matches_finite_differences() {
    let p = tiny();
    let config = LoraConfig { r: 2, alpha: 4.0, dropout: 0.0, target_modules: vec!["q_proj".into(), "v_proj".into()] };
    let mut pair = pairs(&p, 1, &TrainConfig { max_length: 40, max_prompt_length: 20, ..Default::default() }).remove(0);
    pair.chosen.truncate(8);
    pair.rejected.truncate(8);
    let device = Device::flex();
    let autodiff = device.clone().autodiff();
    let model = config.load_peft(p.model.clone(), &Drawn { shift: None }).unwrap().fork(&autodiff).train();
    let grads = dpo_loss(&model, &pair, &autodiff).backward();
    for (layer, name, (i, j)) in [(0, "self_attn.q_proj", (5, 1)), (1, "self_attn.v_proj", (40, 0))] {
        let linear = if name.ends_with("q_proj") {
            &model.layers[layer].self_attn.q_proj
        } else {
            &model.layers[layer].self_attn.v_proj
        };
        let a = &linear.weight.adapter().unwrap().a;
        let g = a.val().grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap()[i * 2 + j] as f64;
        // Burn's A[i, j] ([d_in, r]) is peft's lora_A[j, i] ([r, d_in], d_in 64).
        let peft = format!("base_model.model.model.layers.{layer}.{name}.lora_A.weight");
        let eps = 5e-3;
        let loss = |d: f32| {
            let m = config.load_peft(p.model.clone(), &Drawn { shift: Some((peft.clone(), j * 64 + i, d)) }).unwrap();
            dpo_loss(&m, &pair, &device).into_scalar::<f32>() as f64
        };
        let fd = (loss(eps as f32) - loss(-eps as f32)) / (2.0 * eps);
        assert!(g.abs() > 1e-3, "{name} A[{i},{j}]: gradient {g} too small to test");
        assert!((fd - g).abs() <= 1e-3 + 1e-2 * g.abs(), "{name} A[{i},{j}]: analytic {g} vs finite differences {fd}");
    }
    // The frozen base gets no gradient.
    assert!(model.layers[0].self_attn.q_proj.weight.base().grad(&grads).is_none());
}

#[test]
fn a_lora_run_resumed_from_its_adapter_continues_the_identical_loss_curve() {
    let config =
        TrainConfig { max_steps: Some(6), weight_decay: 0.01, warmup_steps: 2, lora_dropout: 0.0, ..lora_run() };
    let whole = pollster::block_on(trainer(config.clone(), 5).steps(6)).unwrap();

    // Three steps; the checkpoint's adapter, state and AdamW state go through bytes, as through files.
    let mut first = trainer(config.clone(), 5);
    let head = pollster::block_on(first.steps(3)).unwrap();
    let adapter =
        pollster::block_on(to_safetensors(lora::peft_tensors(first.policy().unwrap()), Default::default())).unwrap();
    let state = serde_json::to_string(&first.state()).unwrap();
    let optimizer = first.optimizer_state().unwrap();
    drop(first);

    let p = tiny();
    let lora = LoraConfig::of(&config).unwrap();
    let model = lora.load_peft(p.model.clone(), &SafetensorsSource::parse(&adapter).unwrap()).unwrap();
    let state: TrainerState = serde_json::from_str(&state).unwrap();
    let mut data = pairs(&p, 5, &config);
    for (pair, &(c, r)) in data.iter_mut().zip(&state.reference) {
        (pair.ref_chosen_logps, pair.ref_rejected_logps) = (Some(c), Some(r));
    }
    let mut resumed = pollster::block_on(Trainer::new(model, data, config.clone(), 2, &Device::flex())).unwrap();
    resumed.restore(state, optimizer).unwrap();
    let tail = pollster::block_on(resumed.steps(3)).unwrap();
    for (a, b) in whole.iter().zip(head.iter().chain(&tail)) {
        for (name, v) in a {
            assert!((v - b[name]).abs() <= 1e-6 * (1.0 + v.abs()), "step {}: {name} {v} vs {}", a["step"], b[name]);
        }
    }
    // An adapter of another rank does not fit the run.
    let other = LoraConfig { r: 2, ..lora };
    let e = other.load_peft(p.model.clone(), &SafetensorsSource::parse(&adapter).unwrap()).unwrap_err();
    assert!(e.to_string().contains("lora_A.weight"), "{e}");
    let m = other.apply(p.model, 0).unwrap();
    let e = pollster::block_on(Trainer::new(m, pairs(&tiny(), 2, &config), config, 2, &Device::flex())).err().unwrap();
    assert!(e.to_string().contains("rank Some(2), the run asks for 4"), "{e}");
}

#[test]
fn lora_options_take_peft_names_and_say_what_is_wrong() {
    let c: TrainConfig = serde_json::from_str(r#"{"lora_r": 8, "lora_target_modules": ["q_proj", "o_proj"]}"#).unwrap();
    let l = LoraConfig::of(&c).unwrap();
    assert_eq!((l.r, l.alpha, l.dropout, l.scale()), (8, 32.0, 0.05, 4.0));
    assert_eq!(l.modules().unwrap(), ["q_proj", "o_proj"]);
    assert!(LoraConfig::of(&TrainConfig::default()).is_none(), "lora_r 0 is full fine-tuning");
    assert_eq!(LoraConfig::default().modules().unwrap(), ["q_proj", "v_proj"]);
    let all = LoraConfig { target_modules: vec!["all-linear".into()], ..LoraConfig::default() };
    assert_eq!(all.modules().unwrap(), lora::LINEAR_MODULES);
    let check = |json: &str| serde_json::from_str::<TrainConfig>(json).unwrap().validate().unwrap_err().to_string();
    let e = check(r#"{"lora_r": 8, "lora_target_modules": "qproj"}"#);
    assert!(e.starts_with("option lora_target_modules: \"qproj\" is not a Llama projection"), "{e}");
    let e = check(r#"{"lora_r": 8, "lora_target_modules": ["all-linear", "q_proj"]}"#);
    assert!(e.contains("all-linear stands alone"), "{e}");
    assert!(check(r#"{"lora_r": 8, "lora_alpha": 0}"#).starts_with("option lora_alpha"));
    assert!(check(r#"{"lora_r": 8, "lora_dropout": 1}"#).starts_with("option lora_dropout"));
    assert!(check(r#"{"lora_r": 5000}"#).starts_with("option lora_r"));
    let e = check(r#"{"objective": "reward", "lora_r": 8}"#);
    assert!(e.contains("reward models train every weight"), "{e}");
    for objective in ["kto", "lipo", "modpo"] {
        let c: TrainConfig = serde_json::from_str(&format!(r#"{{"objective": "{objective}", "lora_r": 8}}"#)).unwrap();
        assert_eq!(c.validate().ok(), Some(()), "{objective} takes LoRA");
    }
    assert_eq!(TrainConfig { objective: Objective::Reward, ..Default::default() }.validate().ok(), Some(()));
    let json = l.adapter_config_json(Some("models/x.gguf")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["peft_type"].as_str(), v["r"].as_u64(), v["lora_alpha"].as_f64()),
        (Some("LORA"), Some(8), Some(32.0))
    );
    assert_eq!(v["target_modules"], serde_json::json!(["q_proj", "o_proj"]));
}

/// The first `n` pairs unpaired as TRL does (n desirable, then n undesirable examples).
fn unpaired(p: &Pretrained, n: usize, config: &TrainConfig) -> Vec<TokenizedCompletion> {
    let records = read_preferences("pairs.jsonl", PAIRS, &ReadOptions::default()).unwrap().records;
    let opts = config.tokenize_options();
    pairs_to_unpaired(&records[..n]).iter().map(|r| tokenize_completion(&p.tokenizer, r, &opts).unwrap()).collect()
}

/// Pairs as ranked lists of two (chosen first, labels 1 and 0).
fn as_lists(pairs: Vec<TokenizedPair>) -> Vec<TokenizedList> {
    pairs
        .into_iter()
        .map(|p| TokenizedList {
            prompt: p.prompt,
            responses: vec![p.chosen, p.rejected],
            labels: vec![1.0, 0.0],
            line: p.line,
            ref_logps: None,
        })
        .collect()
}

/// `steps` steps of a LoRA run of `objective` on `data`: its metrics, and whether the base stayed bit for
/// bit while every adapter factor moved.
fn lora_steps(data: TrainData, config: TrainConfig, steps: usize) -> Vec<alignlab_core::metrics::Metrics> {
    let p = tiny();
    let before = base_weights(&p.model);
    let fresh = adapters(&LoraConfig::of(&config).unwrap().apply(p.model.clone(), config.seed).unwrap());
    let objective = config.objective;
    let mut t = pollster::block_on(Trainer::new(p.model, data, config, 2, &Device::flex())).unwrap();
    let ms = pollster::block_on(t.steps(steps)).unwrap();
    let policy = t.policy().expect("a LoRA run trains a policy");
    assert!(lora::has_adapters(policy), "{objective:?}: no adapters");
    assert_eq!(base_weights(policy), before, "{objective:?}: a frozen weight moved");
    let after = adapters(policy);
    assert_eq!(after.len(), fresh.len());
    for ((name, a), (_, b)) in after.iter().zip(&fresh) {
        assert!(a != b, "{objective:?}: {name} did not change");
    }
    ms
}

#[test]
fn kto_lipo_and_modpo_train_the_same_adapters_from_their_step_0_identities() {
    let p = tiny();
    let lora = TrainConfig { learning_rate: 1e-2, lora_dropout: 0.05, batch_size: 8, ..lora_run() };

    // KTO at policy = reference (B = 0): r = 0 and z0 = 0, so each example costs λ_y/2. Four desirable with
    // λ_D = 1 and four undesirable with λ_U = 1.5, all in the first batch: (4·0.5 + 4·0.75)/8 = 0.625.
    let kto = TrainConfig { objective: Objective::Kto, undesirable_weight: 1.5, ..lora.clone() };
    let ms = lora_steps(unpaired(&p, 4, &kto).into(), kto, 2);
    assert!((ms[0][metrics::LOSS] - 0.625).abs() < 1e-6, "KTO step-0 loss {}", ms[0][metrics::LOSS]);
    assert_eq!(ms[0][metrics::KL], 0.0);
    assert!(ms[1][metrics::LOSS] != ms[0][metrics::LOSS]);

    // LiPO pair_logistic on lists of two and MODPO with one objective are DPO: ln 2 at step 0, and the
    // same curve as LoRA-DPO on the same pairs (the same adapters, drawn from the same seed), step for step.
    let dpo = TrainConfig { batch_size: 2, lora_dropout: 0.0, ..lora };
    let data = pairs(&p, 6, &dpo);
    let want = lora_steps(data.clone().into(), dpo.clone(), 3);
    let lipo = TrainConfig { objective: Objective::Lipo, lipo_loss_type: LipoLossType::PairLogistic, ..dpo.clone() };
    let modpo = TrainConfig { objective: Objective::Modpo, ..dpo };
    for (name, got) in
        [("LiPO", lora_steps(as_lists(data.clone()).into(), lipo, 3)), ("MODPO", lora_steps(data.into(), modpo, 3))]
    {
        assert!((got[0][metrics::LOSS] - std::f64::consts::LN_2).abs() < 1e-6, "{name}: {}", got[0][metrics::LOSS]);
        for (a, b) in want.iter().zip(&got) {
            for m in [metrics::LOSS, metrics::GRAD_NORM, metrics::REWARDS_MARGINS] {
                assert!(
                    (a[m] - b[m]).abs() < 1e-5 * (1.0 + a[m].abs()),
                    "{name} step {}: {m} {} vs DPO {}",
                    a["step"],
                    b[m],
                    a[m]
                );
            }
        }
    }
}
