//! Attribute regression (SteerLM / HelpSteer2) in the one training loop, on the tiny random model (CPU, exact)
//! and on the real MiniLM encoder: the first loss is `regression_loss` of the model's own scores, per-attribute
//! `mse/<a>` and `mae/<a>`, learning, held-out `eval_` metrics, resume to the identical curve, and the combined
//! recipe — regression, then Scaled BT from the regression model's helpfulness head.

mod common;

use alignlab_core::data::{ReadOptions, read_preferences, tokenize_pair};
use alignlab_core::metrics::{self, Metrics};
use alignlab_core::model::bert::{Bert, bert_tokenizer};
use alignlab_core::model::reward::{RewardModel, score_length};
use alignlab_core::objectives::reward::RewardLossType;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::rng::SplitMix64;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Backbone, Objective, TrainConfig, TrainData, Trainer, TrainerState};
use alignlab_core::weights::safetensors::{SafetensorsSource, to_safetensors};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Eight rated responses; helpfulness 0–4 on all, verbosity on six (lines 4 and 8 lack it).
const RATINGS: &str = r#"{"prompt": "What is 2+2?", "response": "4", "attributes": {"helpfulness": 4, "verbosity": 0}}
{"prompt": "What is 2+2?", "response": "It is five, I think, or maybe six.", "attributes": {"helpfulness": 0, "verbosity": 3}}
{"prompt": "Name a colour.", "response": "Blue.", "attributes": {"helpfulness": 3, "verbosity": 1}}
{"prompt": "Name a colour.", "response": "I cannot answer that question at all.", "attributes": {"helpfulness": 1}}
{"prompt": "Capital of France?", "response": "Paris.", "attributes": {"helpfulness": 4, "verbosity": 1}}
{"prompt": "Capital of France?", "response": "France is a country in Europe with many cities.", "attributes": {"helpfulness": 1, "verbosity": 4}}
{"prompt": "Say hi.", "response": "Hi!", "attributes": {"helpfulness": 4, "verbosity": 0}}
{"prompt": "Say hi.", "response": "No.", "attributes": {"helpfulness": 0}}
"#;

/// Preference pairs with HelpSteer2-Preference strengths (1 slightly better … 3 much better).
const PAIRS: &str = r#"{"prompt": "What is 2+2?", "chosen": "4", "rejected": "It is five, I think.", "strength": 3}
{"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "I cannot answer that.", "strength": 2}
{"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon, probably.", "strength": 1}
{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "strength": 2}
"#;

const PAD: u32 = 2;

fn tiny() -> Pretrained {
    Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).unwrap()
}

fn config() -> TrainConfig {
    TrainConfig {
        objective: Objective::Regression,
        learning_rate: 5e-3,
        batch_size: 8,
        max_steps: Some(30),
        max_length: 64,
        max_prompt_length: 32,
        ..Default::default()
    }
}

fn ratings(p: &Pretrained, c: &TrainConfig) -> TrainData {
    let opts = ReadOptions::default();
    TrainData::read("r.jsonl", RATINGS, Objective::Regression, &opts, &p.tokenizer, &c.tokenize_options()).unwrap().0
}

fn trainer(model: impl Into<Backbone>, data: TrainData, c: TrainConfig) -> Trainer {
    pollster::block_on(Trainer::new(model, data, c, PAD, &Device::flex())).unwrap()
}

/// A reward model of two heads on the tiny backbone with a head drawn from a seed (not zero, so the scores
/// differ between examples and attributes).
fn drawn_head_model(p: &Pretrained) -> RewardModel {
    let device = Device::flex();
    let mut model = RewardModel::with_labels(p.model.clone(), 2, &device);
    let mut rng = SplitMix64::new(3);
    let w: Vec<f32> = (0..64 * 2).map(|_| (rng.next_f64() as f32 - 0.5) * 0.8).collect();
    model.score =
        Linear { weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [64, 2]), &device)), bias: None };
    model
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}: {a} vs {b}");
}

#[test]
fn zero_heads_start_at_the_mean_of_the_squared_labels() {
    // A zero head scores 0, so each example costs Σ_a m_a·y_a²:
    // (16 + 0) + (0 + 9) + (9 + 1) + 1 + (16 + 1) + (1 + 16) + (16 + 0) + 0 = 86, over 8 examples: 10.75.
    // mse/helpfulness = (16 + 0 + 9 + 1 + 16 + 1 + 16 + 0)/8 = 59/8; mse/verbosity = (0 + 9 + 1 + 1 + 16 + 0)/6 = 27/6;
    // mae/helpfulness = (4 + 0 + 3 + 1 + 4 + 1 + 4 + 0)/8 = 17/8; mae/verbosity = (0 + 3 + 1 + 1 + 4 + 0)/6 = 9/6.
    let p = tiny();
    let mut t = trainer(p.model.clone(), ratings(&p, &config()), config());
    assert_eq!(t.attributes(), ["helpfulness", "verbosity"]);
    assert_eq!(t.reward_model().unwrap().num_labels(), 2);
    let first = &pollster::block_on(t.steps(1)).unwrap()[0];
    close(first[metrics::LOSS], 10.75, "loss");
    close(first["mse/helpfulness"], 59.0 / 8.0, "mse/helpfulness");
    close(first["mse/verbosity"], 27.0 / 6.0, "mse/verbosity");
    close(first["mae/helpfulness"], 17.0 / 8.0, "mae/helpfulness");
    close(first["mae/verbosity"], 9.0 / 6.0, "mae/verbosity");
    assert!(!first.keys().any(|k| k.starts_with("count/")), "{first:?}");
}

#[test]
fn the_first_loss_is_regression_loss_of_the_models_own_scores() {
    let p = tiny();
    let c = config();
    let data = ratings(&p, &c);
    let TrainData::Ratings { ratings: rated, .. } = &data else { panic!("ratings") };
    let model = drawn_head_model(&p);
    // The scores of every rated response, read where the loop reads them (last non-pad token).
    let seqs: Vec<Vec<u32>> = rated.iter().map(|r| [r.prompt.clone(), r.response.clone()].concat()).collect();
    let t = seqs.iter().map(Vec::len).max().unwrap();
    let ids: Vec<i64> = seqs.iter().flat_map(|s| (0..t).map(|j| *s.get(j).unwrap_or(&PAD) as i64)).collect();
    let lengths: Vec<usize> = seqs.iter().map(|s| score_length(s, PAD)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [seqs.len(), t]), &Device::flex());
    let scores: Vec<f64> = model.scores(ids, &lengths).into_data().iter::<f32>().map(f64::from).collect();
    // By hand: loss = mean over examples of Σ_a m_a·(s_a − y_a)²; mse/a and mae/a over the examples rating a.
    let (mut loss, mut sq, mut abs, mut count) = (0.0, [0.0; 2], [0.0; 2], [0.0; 2]);
    for (i, r) in rated.iter().enumerate() {
        for (a, label) in r.labels.iter().enumerate() {
            if let Some(y) = label {
                let e = scores[i * 2 + a] - *y as f64;
                loss += e * e;
                sq[a] += e * e;
                abs[a] += e.abs();
                count[a] += 1.0;
            }
        }
    }
    loss /= rated.len() as f64;
    assert!(scores.iter().any(|&s| s.abs() > 0.05), "the drawn head scores something: {scores:?}");
    let mut tr = trainer(Backbone::Reward(model), data, c);
    let first = &pollster::block_on(tr.steps(1)).unwrap()[0];
    close(first[metrics::LOSS], loss, "loss");
    for (a, name) in ["helpfulness", "verbosity"].iter().enumerate() {
        close(first[&format!("mse/{name}")], sq[a] / count[a], "mse");
        close(first[&format!("mae/{name}")], abs[a] / count[a], "mae");
    }
}

#[test]
fn regression_learns_and_reports_held_out_metrics_under_eval_names() {
    let p = tiny();
    let c = TrainConfig { eval_split: 0.25, batch_size: 3, ..config() };
    let (train, held_out) = ratings(&p, &c).split(c.eval_split, c.seed);
    assert_eq!((train.len(), held_out.len()), (6, 2));
    let mut t = trainer(p.model.clone(), train, c);
    pollster::block_on(t.set_eval_data(held_out)).unwrap();
    let before = pollster::block_on(t.evaluate()).unwrap();
    let held_before = pollster::block_on(t.evaluate_held_out()).unwrap().unwrap();
    let ms = pollster::block_on(t.steps(30)).unwrap();
    let after = pollster::block_on(t.evaluate()).unwrap();
    eprintln!("train loss {} → {}; held out {held_before:?}", before[metrics::LOSS], after[metrics::LOSS]);
    assert!(after[metrics::LOSS] < 0.5 * before[metrics::LOSS], "{} → {}", before[metrics::LOSS], after[metrics::LOSS]);
    assert!(after["mse/helpfulness"] < before["mse/helpfulness"]);
    assert!(ms.iter().all(|m| m[metrics::GRAD_NORM].is_finite() && m.contains_key("mae/helpfulness")));
    let held = pollster::block_on(t.evaluate_held_out()).unwrap().unwrap();
    for key in ["eval_loss", "eval_mse/helpfulness", "eval_mae/helpfulness"] {
        assert!(held[key].is_finite() && held_before[key].is_finite(), "{key}: {held:?}");
    }
    // Held-out ratings of an attribute the run has no head for are refused by name.
    let mut t = trainer(p.model.clone(), ratings(&p, &config()), config());
    let other = r#"{"prompt": "a", "response": "b", "attributes": {"humor": 2}}"#;
    let opts = ReadOptions::default();
    let (data, _) =
        TrainData::read("e.jsonl", other, Objective::Regression, &opts, &p.tokenizer, &config().tokenize_options())
            .unwrap();
    let e = pollster::block_on(t.set_eval_data(data)).unwrap_err().to_string();
    assert!(e.contains("\"humor\", which the training ratings do not"), "{e}");
}

#[test]
fn a_regression_run_resumes_to_the_identical_curve() {
    let p = tiny();
    let c = TrainConfig {
        batch_size: 2,
        gradient_accumulation_steps: 2,
        max_steps: Some(6),
        warmup_steps: 2,
        weight_decay: 0.01,
        seed: 5,
        ..config()
    };
    let whole = pollster::block_on(trainer(p.model.clone(), ratings(&p, &c), c.clone()).steps(6)).unwrap();

    let mut first = trainer(p.model.clone(), ratings(&p, &c), c.clone());
    let head = pollster::block_on(first.steps(3)).unwrap();
    let weights =
        pollster::block_on(to_safetensors(first.reward_model().unwrap().named_tensors(), Default::default())).unwrap();
    let state: TrainerState = serde_json::from_str(&serde_json::to_string(&first.state()).unwrap()).unwrap();
    let optimizer = first.optimizer_state().unwrap();
    drop(first);

    let model =
        RewardModel::from_source(&p.config, &SafetensorsSource::parse(&weights).unwrap(), &Device::flex()).unwrap();
    assert_eq!(model.num_labels(), 2);
    let mut resumed = trainer(Backbone::Reward(model), ratings(&p, &c), c);
    resumed.restore(state, optimizer).unwrap();
    let tail = pollster::block_on(resumed.steps(3)).unwrap();
    assert_eq!(head.len() + tail.len(), whole.len());
    for (a, b) in whole.iter().zip(head.iter().chain(&tail)) {
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, v) in a {
            assert!((v - b[name]).abs() <= 1e-6 * (1.0 + v.abs()), "step {}: {name} {v} vs {}", a["step"], b[name]);
        }
    }
    // A one-label reward model cannot continue a regression over two attributes.
    let e = pollster::block_on(Trainer::new(
        Backbone::Reward(RewardModel::new(p.model.clone(), &Device::flex())),
        ratings(&p, &config()),
        config(),
        PAD,
        &Device::flex(),
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("needs a head of 2 labels, this one has 1"), "{e}");
}

fn weight(t: &Tensor<2>) -> Vec<f32> {
    t.clone().into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn the_combined_recipe_starts_scaled_bt_from_the_regression_weights() {
    let p = tiny();
    let c = TrainConfig { max_steps: Some(10), ..config() };
    let mut regression = trainer(p.model.clone(), ratings(&p, &c), c);
    pollster::block_on(regression.steps(10)).unwrap();
    let fitted = regression.reward_model().unwrap().valid();
    let q = |m: &RewardModel| weight(&m.backbone.layers[0].self_attn.q_proj.weight.val());
    assert!(q(&fitted) != weight(&p.model.layers[0].self_attn.q_proj.weight.val()), "regression moved the backbone");
    let head = weight(&fitted.score.weight.val()); // [d, 2]: helpfulness is column 0
    let helpfulness: Vec<f32> = head.chunks(2).map(|row| row[0]).collect();

    // HelpSteer2-Preference: the helpfulness head alone (c = e_helpfulness) becomes the Bradley–Terry head.
    let start = fitted.clone().combined(&[1.0, 0.0]).unwrap();
    let bt_config = TrainConfig {
        objective: Objective::Reward,
        reward_loss_type: RewardLossType::ScaledBt,
        batch_size: 4,
        max_steps: Some(3),
        ..config()
    };
    let records = read_preferences("p.jsonl", PAIRS, &ReadOptions::default()).unwrap().records;
    let pairs: Vec<_> =
        records.iter().map(|r| tokenize_pair(&p.tokenizer, r, &bt_config.tokenize_options()).unwrap()).collect();
    let mut bt = trainer(Backbone::Reward(start), TrainData::Pairs(pairs), bt_config);
    let initial = bt.reward_model().unwrap();
    assert_eq!(initial.num_labels(), 1);
    assert_eq!(weight(&initial.score.weight.val()), helpfulness, "the BT head is the helpfulness head");
    assert_eq!(q(initial), q(&fitted), "the BT backbone is the regression backbone");
    let before: Metrics = pollster::block_on(bt.evaluate()).unwrap();
    let ms = pollster::block_on(bt.steps(3)).unwrap();
    assert!(ms.iter().all(|m| m[metrics::LOSS].is_finite() && m[metrics::LOSS] > 0.0), "{ms:?}");
    // The regression model already separates the pairs a little: its rewards are not BT's zero start (ln 2·s̄).
    assert!(before[metrics::MARGIN] != 0.0, "{before:?}");
    assert!(q(bt.reward_model().unwrap()) != q(&fitted), "Scaled BT trains the backbone further");
}

#[test]
fn regression_trains_minilm_heads() {
    let dir = common::model_path("all-MiniLM-L6-v2");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let (bert, _) = Bert::from_hf(&read("config.json"), &read("model.safetensors"), &Device::flex()).unwrap();
    let tok = bert_tokenizer(&read("tokenizer.json")).unwrap();
    let c = TrainConfig { max_steps: Some(2), learning_rate: 1e-3, ..config() };
    let opts = ReadOptions::default();
    let (data, _) =
        TrainData::read("r.jsonl", RATINGS, Objective::Regression, &opts, &tok, &c.tokenize_options()).unwrap();
    let pad = tok.pad_id().unwrap_or(0);
    let mut t = pollster::block_on(Trainer::new(bert, data, c, pad, &Device::flex())).unwrap();
    assert_eq!(t.encoder_reward_model().unwrap().score.weight.dims(), [384, 2]);
    let ms = pollster::block_on(t.steps(2)).unwrap();
    // Zero heads: the same 10.75 as on the decoder (see zero_heads_start_at_the_mean_of_the_squared_labels).
    close(ms[0][metrics::LOSS], 10.75, "MiniLM step-0 loss");
    assert!(ms[1][metrics::LOSS] < ms[0][metrics::LOSS], "{ms:?}");
}
