//! Hugging Face folders in and out. The tiny checkpoints in `fixtures/hf-tiny-*` were saved by transformers'
//! `save_pretrained`, with the logits transformers computed for them (scripts/make-hf-fixture.py); alignlab
//! must load each and reproduce those logits, export it back to a folder that loads bit-identically, and
//! reject broken folders with an error that names the file and the tensor.
//!
//! The last test exports the real SmolLM2-135M-Instruct (from `$ALIGNLAB_MODELS`, default the workspace's
//! `models/`, filled by `scripts/fetch-models.sh`; a missing file fails the test with what to do, as in
//! smollm2.rs).

use std::path::{Path, PathBuf};
use std::time::Instant;

use alignlab_core::model::llama::{Llama, RopeScaling};
use alignlab_core::pretrained::Pretrained;
use alignlab_core::weights::safetensors::{SafetensorsFile, SafetensorsSource, to_safetensors};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Deserialize;

const F32_FIXTURES: [&str; 3] = ["hf-tiny-llama", "hf-tiny-llama-untied", "hf-tiny-qwen2"];
const HALF_FIXTURES: [&str; 2] = ["hf-tiny-llama-f16", "hf-tiny-qwen2-bf16"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `expected.json`: what transformers produced for the folder.
#[derive(Deserialize)]
struct Expected {
    chat_ids: Vec<u32>,
    chat: String,
    input_ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

fn expected(name: &str) -> Expected {
    serde_json::from_slice(&std::fs::read(fixture(name).join("expected.json")).unwrap()).unwrap()
}

/// Every file of a folder, as `from_hf_files` takes them.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Pretrained {
    Pretrained::from_hf_dir(fixture(name), &Device::flex()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Logits `[ids.len(), vocab]`, row-major.
fn logits(model: &Llama, ids: &[u32]) -> Vec<f32> {
    let d = Device::flex();
    let t = ids.len();
    let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    let hidden = model.forward_hidden(Tensor::<2, Int>::from_data(TensorData::new(ids, [1, t]), &d), None);
    let hidden = hidden.reshape([t, model.d_model()]);
    hidden.matmul(model.head_weight().transpose()).into_data().iter::<f32>().collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn export(p: &Pretrained) -> Vec<(String, Vec<u8>)> {
    pollster::block_on(p.to_hf_files()).expect("export")
}

/// Every tensor of a folder's safetensors file(s), by name, widened to f32.
fn tensors_of(files: &[(String, Vec<u8>)]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with(".safetensors")) {
        let source =
            SafetensorsSource::new(name, vec![(name.clone(), SafetensorsFile::parse(bytes).unwrap())]).unwrap();
        for t in source.names() {
            let (shape, values) = source.get(t).unwrap();
            out.push((t.to_string(), shape, values));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn tiny_checkpoints_give_transformers_logits() {
    for name in F32_FIXTURES.into_iter().chain(HALF_FIXTURES) {
        let (p, e) = (load(name), expected(name));
        let got = logits(&p.model, &e.input_ids);
        let want: Vec<f32> = e.logits.concat();
        let diff = max_abs_diff(&got, &want);
        eprintln!("{name}: max |logit − transformers| = {diff:.2e} over {} logits", want.len());
        // The reference is rounded to 6 decimals; the rest is float32 summation order.
        assert!(diff < 1e-4, "{name}: max logit difference {diff}");
    }
}

#[test]
fn configs_are_read_as_transformers_wrote_them() {
    let llama = load("hf-tiny-llama").config;
    assert_eq!(
        (llama.vocab_size, llama.d_model, llama.n_layers, llama.n_heads, llama.n_kv_heads, llama.d_ff),
        (300, 32, 2, 4, 2, 64)
    );
    assert!(llama.tie_word_embeddings && !llama.qkv_bias);
    assert_eq!(
        llama.rope_scaling,
        Some(RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64
        })
    );
    let untied = load("hf-tiny-llama-untied");
    assert!(!untied.config.tie_word_embeddings && untied.model.lm_head.is_some());
    assert_eq!(untied.config.rope_scaling, Some(RopeScaling::Linear { factor: 2.0 }));
    let qwen2 = load("hf-tiny-qwen2").config;
    assert!(qwen2.qkv_bias && qwen2.tie_word_embeddings && qwen2.rope_scaling.is_none());
    assert_eq!((qwen2.rope_theta, qwen2.rms_norm_eps), (1e6, 1e-6));
}

#[test]
fn tokenizer_and_chat_template_match_transformers() {
    use alignlab_core::tokenizer::Message;
    for name in ["hf-tiny-llama", "hf-tiny-qwen2"] {
        let (p, e) = (load(name), expected(name));
        let t = &p.tokenizer;
        // transformers 5 saved the template as chat_template.jinja, not in tokenizer_config.json.
        let chat = t.apply_chat_template(&[Message::new("user", "What is the capital of France?")], true).unwrap();
        assert_eq!(chat, e.chat);
        assert_eq!(t.encode(&chat).unwrap(), e.chat_ids);
        assert_eq!((t.bos_id(), t.eos_id(), t.pad_id()), (Some(1), Some(2), Some(2)));
        assert_eq!(t.decode(&e.chat_ids, false).unwrap(), e.chat);
    }
}

#[test]
fn export_then_load_is_bit_identical() {
    for name in F32_FIXTURES.into_iter().chain(HALF_FIXTURES) {
        let original = load(name);
        let files = export(&original);
        // Kept for `scripts/make-hf-fixture.py --check-export DIR FIXTURE`, which loads them in transformers.
        if let Some(keep) = std::env::var_os("ALIGNLAB_HF_EXPORT_DIR") {
            pollster::block_on(original.save_hf_dir(Path::new(&keep).join(name))).unwrap();
        }
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
        // Every tensor the checkpoint held comes out with the same name, shape and f32 bits (f16/bf16
        // widened exactly), and nothing else does.
        let (before, after) = (tensors_of(&files_of(&fixture(name))), tensors_of(&files));
        assert_eq!(before.len(), after.len(), "{name}");
        for ((n0, s0, v0), (n1, s1, v1)) in before.iter().zip(&after) {
            assert_eq!((n0, s0), (n1, s1), "{name}");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(v0) == bits(v1), "{name}: {n0} changed");
        }
        let back = Pretrained::from_hf_files(files, &Device::flex()).unwrap();
        assert_eq!(back.config, original.config, "{name}: config.json round trip");
        let ids = expected(name).chat_ids;
        assert_eq!(logits(&back.model, &ids), logits(&original.model, &ids), "{name}");
        assert_eq!(back.tokenizer.encode(&expected(name).chat).unwrap(), ids);
        assert_eq!(back.tokenizer.chat_template(), original.tokenizer.chat_template());
        assert_eq!(
            (back.tokenizer.bos_id(), back.tokenizer.eos_id(), back.tokenizer.pad_id()),
            (original.tokenizer.bos_id(), original.tokenizer.eos_id(), original.tokenizer.pad_id())
        );
    }
}

/// The files of `hf-tiny-qwen2` with model.safetensors rewritten from the model's tensors after `edit`.
fn with_tensors(edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Tensor<1>)>)) -> Vec<(String, Vec<u8>)> {
    let p = load("hf-tiny-qwen2");
    let mut tensors = p.model.named_tensors();
    edit(&mut tensors);
    let bytes = pollster::block_on(to_safetensors(tensors, Default::default())).unwrap();
    let mut files = files_of(&fixture("hf-tiny-qwen2"));
    files.iter_mut().find(|(n, _)| n == "model.safetensors").unwrap().1 = bytes;
    files
}

fn load_err(files: Vec<(String, Vec<u8>)>) -> String {
    match Pretrained::from_hf_files(files, &Device::flex()) {
        Ok(_) => panic!("the broken folder loaded"),
        Err(e) => e.to_string(),
    }
}

fn replace(mut files: Vec<(String, Vec<u8>)>, name: &str, bytes: Option<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    files.retain(|(n, _)| n != name);
    if let Some(b) = bytes {
        files.push((name.to_string(), b));
    }
    files
}

#[test]
fn broken_folders_give_errors_naming_file_and_tensor() {
    let bias = "model.layers.1.self_attn.k_proj.bias";
    let e = load_err(with_tensors(|t| t.retain(|x| x.0 != bias)));
    assert_eq!(e, format!("loading weights: model.safetensors: tensor {bias} is missing from the weights file"));

    let up = "model.layers.0.mlp.up_proj.weight";
    let e = load_err(with_tensors(|t| t.iter_mut().filter(|x| x.0 == up).for_each(|x| x.1 = vec![32, 64])));
    assert_eq!(
        e,
        format!("loading weights: model.safetensors: tensor {up} has shape [32, 64], the model expects [64, 32]")
    );

    let e = load_err(with_tensors(|t| {
        let extra = t[0].2.clone();
        t.push(("model.layers.0.self_attn.o_proj.bias".into(), vec![9600], extra));
    }));
    assert_eq!(
        e,
        "loading weights: model.safetensors: 1 tensor(s) the model does not use: model.layers.0.self_attn.o_proj.bias"
    );

    let folder = files_of(&fixture("hf-tiny-qwen2"));
    let weights = folder.iter().find(|(n, _)| n == "model.safetensors").unwrap().1.clone();
    for cut in [0, 7, 100, weights.len() / 2, weights.len() - 1] {
        let e = load_err(replace(folder.clone(), "model.safetensors", Some(weights[..cut].to_vec())));
        assert!(e.starts_with("loading weights: model.safetensors: safetensors: "), "cut at {cut}: {e}");
    }

    let e = load_err(replace(folder.clone(), "config.json", Some(b"{\"model_type\": \"qwen2\",".to_vec())));
    assert!(e.starts_with("loading weights: config.json: invalid JSON: EOF while parsing"), "{e}");
    let e = load_err(replace(folder.clone(), "tokenizer.json", None));
    assert_eq!(e, "the model folder has no tokenizer.json");
    let e = load_err(replace(folder.clone(), "model.safetensors", None));
    assert_eq!(e, "the model folder has no model.safetensors nor model.safetensors.index.json");
    let e = load_err(replace(folder.clone(), "tokenizer.json", Some(b"{".to_vec())));
    assert!(e.starts_with("building the tokenizer: invalid tokenizer.json"), "{e}");

    // Shards: a missing shard, a shard outside the folder, a tensor the index misplaces.
    let sharded = files_of(&fixture("hf-tiny-llama-untied"));
    let e = load_err(replace(sharded.clone(), "model-00002-of-00002.safetensors", None));
    assert_eq!(e, "the model folder has no model-00002-of-00002.safetensors (named by model.safetensors.index.json)");
    let index = r#"{"weight_map": {"model.norm.weight": "../model.safetensors"}}"#;
    let e = load_err(replace(sharded.clone(), "model.safetensors.index.json", Some(index.into())));
    assert!(e.contains("shard file name \"../model.safetensors\" is not a plain file name"), "{e}");
    let index = std::fs::read_to_string(fixture("hf-tiny-llama-untied/model.safetensors.index.json")).unwrap();
    let moved = index.replacen("model-00001-of-00002", "model-00002-of-00002", 1);
    let e = load_err(replace(sharded, "model.safetensors.index.json", Some(moved.into())));
    assert!(e.starts_with("loading weights: model.safetensors.index.json: safetensors: the index puts tensor"), "{e}");
}

/// The real SmolLM2-135M-Instruct: GGUF (Q4_1, dequantised) → Hugging Face folder → loaded back gives the
/// same logits bit for bit, the same tokens for the France prompt and the same chat template.
#[test]
fn smollm2_exports_to_hf_and_loads_back_identically() {
    let dir = std::env::var_os("ALIGNLAB_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")));
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-models.sh first", path.display()));
    let d = Device::flex();
    let start = Instant::now();
    let original = Pretrained::from_gguf(bytes, &d).unwrap();
    let loaded_gguf = start.elapsed();
    let files = export(&original);
    let exported = start.elapsed();
    let size: usize = files.iter().map(|(_, b)| b.len()).sum();
    let back = Pretrained::from_hf_files(files, &d).unwrap();
    let loaded_hf = start.elapsed();
    // transformers loads this folder and greedily answers "The capital of France is Paris." (checked by hand
    // with transformers 5.24; mean NLL of the Lily text 1.7331).
    if let Some(keep) = std::env::var_os("ALIGNLAB_HF_EXPORT_DIR") {
        pollster::block_on(original.save_hf_dir(Path::new(&keep).join("SmolLM2-135M-Instruct"))).unwrap();
    }
    eprintln!(
        "SmolLM2: GGUF load {:.1}s, HF export ({:.0} MB) {:.1}s, HF load {:.1}s",
        loaded_gguf.as_secs_f64(),
        size as f64 / 1e6,
        (exported - loaded_gguf).as_secs_f64(),
        (loaded_hf - exported).as_secs_f64()
    );
    assert_eq!(back.config, original.config);
    let france = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let ids = back.tokenizer.encode(france).unwrap();
    assert_eq!(ids, [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]);
    assert_eq!(back.tokenizer.chat_template(), original.tokenizer.chat_template());
    assert_eq!(logits(&back.model, &ids), logits(&original.model, &ids));
}
