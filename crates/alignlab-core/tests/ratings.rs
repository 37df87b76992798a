//! HelpSteer2-style ratings and attribute regression on synthetic data (there is no HelpSteer2 data in
//! ../shared/data): the reader and its errors, tokenised labels in attribute order, a reward model of one head
//! per attribute fitted by the regression loss, and the combined recipe's start — the regression model's
//! helpfulness head as the one head of a Bradley–Terry model.

use alignlab_core::data::{ReadOptions, rating_attributes, read_ratings, tokenize_rating};
use alignlab_core::model::reward::{RewardModel, ScalarReward, score_length};
use alignlab_core::objectives::reward::regression_loss;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

const RATINGS: &str = r#"{"prompt": "What is 2+2?", "response": "4", "attributes": {"helpfulness": 4, "verbosity": 0}}
{"prompt": "What is 2+2?", "response": "It is five, I think, or maybe six.", "attributes": {"helpfulness": 0, "verbosity": 3}}
{"prompt": "Name a colour.", "response": "Blue.", "attributes": {"helpfulness": 3, "verbosity": 1}}
{"prompt": "Name a colour.", "response": "I cannot answer that question at all.", "attributes": {"helpfulness": 1}}
"#;

#[test]
fn ratings_are_read_with_their_errors_named() {
    let report = read_ratings("r.jsonl", RATINGS, &ReadOptions::default()).unwrap();
    assert_eq!(report.records.len(), 4);
    assert_eq!(rating_attributes(&report.records), ["helpfulness", "verbosity"]);
    assert_eq!(report.records[3].line, 4);
    for (line, want) in [
        (r#"{"prompt": "a", "response": "b"}"#, "r.jsonl:1: missing field \"attributes\""),
        (r#"{"prompt": "a", "response": "b", "attributes": {}}"#, "0 attributes; give 1 to 64"),
        (r#"{"prompt": "a", "response": "b", "attributes": {"x": "high"}}"#, "\"x\" is \"high\", not a finite number"),
        (r#"{"prompt": "a", "response": "b", "attributes": [1]}"#, "expected an object of attribute → number"),
        (r#"{"prompt": "a", "attributes": {"x": 1}}"#, "missing field \"response\""),
    ] {
        let e = read_ratings("r.jsonl", line, &ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains(want), "{e} lacks {want}");
    }
}

#[test]
fn regression_fits_one_head_per_attribute_and_starts_a_bradley_terry_head() {
    let device = Device::flex().autodiff();
    let pre = Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).unwrap();
    let records = read_ratings("r.jsonl", RATINGS, &ReadOptions::default()).unwrap().records;
    let attributes = rating_attributes(&records);
    let rated: Vec<_> =
        records.iter().map(|r| tokenize_rating(&pre.tokenizer, r, &attributes, &Default::default()).unwrap()).collect();
    assert_eq!(rated[3].labels, [Some(1.0), None], "the missing verbosity is masked");
    let (pad, k, n) = (2u32, attributes.len(), rated.len());
    let seqs: Vec<Vec<u32>> = rated.iter().map(|r| [r.prompt.clone(), r.response.clone()].concat()).collect();
    let t = seqs.iter().map(Vec::len).max().unwrap();
    let ids: Vec<i64> = seqs.iter().flat_map(|s| (0..t).map(|j| *s.get(j).unwrap_or(&pad) as i64)).collect();
    let lengths: Vec<usize> = seqs.iter().map(|s| score_length(s, pad)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, t]), &device);
    let table = |f: &dyn Fn(&Option<f32>) -> f32| {
        let v: Vec<f32> = rated.iter().flat_map(|r| r.labels.iter().map(f)).collect();
        Tensor::<2>::from_data(TensorData::new(v, [n, k]), &device)
    };
    let (labels, mask) = (table(&|l| l.unwrap_or(0.0)), table(&|l| if l.is_some() { 1.0 } else { 0.0 }));
    let mut model = RewardModel::with_labels(pre.model.fork(&device), k, &device);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..30 {
        let loss = regression_loss(model.scores(ids.clone(), &lengths), labels.clone(), mask.clone()).mean();
        losses.push(loss.clone().into_data().iter::<f32>().next().unwrap());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
    }
    // Zero heads start at Σ_a m_a·y_a² averaged over examples: (16 + 0 + (0 + 9) + (9 + 1) + 1) / 4 = 9.
    assert!((losses[0] - 9.0).abs() < 1e-5, "{}", losses[0]);
    assert!(losses[29] < 0.25 * losses[0], "regression fits the ratings: {losses:?}");
    // The combined recipe's start: helpfulness head alone (c = e_helpfulness) as the one head.
    let fitted = model.valid();
    let inner_ids = ids.clone().inner();
    let all = fitted.scores(inner_ids.clone(), &lengths).into_data().iter::<f32>().collect::<Vec<_>>();
    let bt = fitted.combined(&[1.0, 0.0]).unwrap();
    assert_eq!(bt.num_labels(), 1);
    let reward: Vec<f32> = bt.rewards(inner_ids, &lengths).into_data().iter().collect();
    for i in 0..n {
        assert!((reward[i] - all[i * k]).abs() < 1e-5, "{reward:?} vs helpfulness column of {all:?}");
    }
}
