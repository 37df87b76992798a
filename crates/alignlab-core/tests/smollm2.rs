//! Golden values of the real SmolLM2-135M-Instruct (GGUF Q4_1), natively on CPU. The expected numbers were
//! measured with an independent numpy forward pass of the same file (../shared/DESIGN.md §5).
//! The model comes from `scripts/fetch-models.sh` (or the folder in ALIGNLAB_MODELS).

use std::path::PathBuf;
use std::sync::OnceLock;

use alignlab_core::generate::{GenerateOptions, generate};
use alignlab_core::objectives::logprob::token_logps;
use alignlab_core::pretrained::Pretrained;
use burn::tensor::{Device, Int, Tensor, TensorData};

fn model() -> &'static Pretrained {
    static MODEL: OnceLock<Pretrained> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::var_os("ALIGNLAB_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")));
        let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-models.sh first", path.display()));
        Pretrained::from_gguf(bytes, &Device::flex()).expect("SmolLM2 loads")
    })
}

const FRANCE: &str = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";

#[test]
fn config_comes_from_the_file() {
    let c = &model().config;
    assert_eq!((c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.vocab_size, c.d_ff), (30, 576, 9, 3, 49152, 1536));
    assert!(c.tie_word_embeddings);
    assert_eq!(c.rope_theta, 100000.0);
}

#[test]
fn greedy_answer_to_the_france_prompt_is_paris() {
    let m = model();
    let ids = m.tokenizer.encode(FRANCE).unwrap();
    assert_eq!(ids, [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]);
    let opts = GenerateOptions { max_new_tokens: 16, stop_tokens: vec![2], ..Default::default() };
    let out = pollster::block_on(generate(&m.model, &[&ids], &opts, Some(&m.tokenizer), |_| {})).unwrap();
    assert_eq!(out[0][0].text.as_deref(), Some("The capital of France is Paris."));
}

#[test]
fn mean_nll_of_the_lily_text_is_1_733_nats() {
    let m = model();
    let text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball under a tree.";
    let ids = m.tokenizer.encode(text).unwrap();
    assert_eq!(ids.len(), 38);
    let d = Device::flex();
    let n = ids.len() - 1;
    let input: Vec<i64> = ids[..n].iter().map(|&i| i as i64).collect();
    let target: Vec<i64> = ids[1..].iter().map(|&i| i as i64).collect();
    let hidden = m.model.forward_hidden(Tensor::<2, Int>::from_data(TensorData::new(input, [1, n]), &d), None);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(target, [n]), &d);
    // A chunk of 5 rows exercises the chunked path on the real vocabulary.
    let logps = token_logps(hidden.reshape([n, 576]), m.model.head_weight(), targets, 5);
    let nll = -logps.mean().into_scalar::<f32>() as f64;
    eprintln!("mean NLL over {n} next-token predictions: {nll:.4}");
    assert!((nll - 1.733).abs() < 0.01, "mean NLL {nll}");
}

#[test]
fn top_k_1_samples_are_greedy_and_a_stop_string_cuts_the_text_before_it() {
    let m = model();
    let ids = m.tokenizer.encode(FRANCE).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: 16,
        temperature: 0.7,
        top_k: 1,
        stop_tokens: vec![2],
        stop: vec![" Paris".into()],
        n: 2,
        seed: 9,
        ..Default::default()
    };
    let out = pollster::block_on(generate(&m.model, &[&ids], &opts, Some(&m.tokenizer), |_| {})).unwrap();
    for sample in &out[0] {
        assert_eq!(sample.text.as_deref(), Some("The capital of France is"));
    }
}
