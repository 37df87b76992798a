//! Reference log-probs cached beside the data (`ref_logps`): the cached values are the loop's own reference
//! pass, a run from the cache has the identical loss curve, and a cache of another model or tokenisation is
//! refused. On the real TRL-style fixtures (LLaMA-Factory's DPO and KTO demos, OpenAssistant lists) with the
//! tiny model.

use alignlab_core::convert::Format;
use alignlab_core::data::{ReadOptions, TokenizeOptions, read_oasst_trees};
use alignlab_core::metrics::Metrics;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::ref_logps::{
    CacheError, RawData, RefLogpsKey, Sidecar, model_sha256, read_raw, sha256_hex, write_jsonl,
};
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Objective, TrainConfig, TrainData, Trainer, data_logps};
use burn::tensor::Device;

mod common;
use common::data_path;

fn tiny(seed: u64) -> Pretrained {
    Pretrained::from_gguf(tiny_gguf(seed), &Device::flex()).unwrap()
}

fn config(objective: Objective) -> TrainConfig {
    TrainConfig {
        objective,
        learning_rate: 5e-3,
        batch_size: 3,
        max_steps: Some(4),
        max_length: 48,
        max_prompt_length: 24,
        max_list_length: 6,
        ..Default::default()
    }
}

/// The fixture of `format`, as text: LLaMA-Factory's JSON arrays as they are; lists from the OpenAssistant
/// trees, written as JSONL.
fn fixture(format: Format) -> String {
    let read = |rel| std::fs::read_to_string(data_path(rel)).unwrap();
    match format {
        Format::Pairs => read("llamafactory-demo/dpo_en_demo.json"),
        Format::Unpaired => read("llamafactory-demo/kto_en_demo.json"),
        _ => {
            let trees = read("oasst-en100/en_100_tree.jsonl");
            let lists = read_oasst_trees("en_100_tree.jsonl", &trees, &ReadOptions::default()).unwrap().records;
            lists.iter().filter(|l| l.responses.len() <= 6).map(|l| serde_json::to_string(l).unwrap() + "\n").collect()
        }
    }
}

const FORMATS: [(Format, Objective); 3] =
    [(Format::Pairs, Objective::Dpo), (Format::Unpaired, Objective::Kto), (Format::Lists, Objective::Lipo)];

fn raw(p: &Pretrained, format: Format, text: &str, c: &TrainConfig) -> RawData {
    let opts = ReadOptions { max_records: Some(7), ..Default::default() };
    read_raw("fixture", text, format, &opts, &p.tokenizer, &c.tokenize_options()).unwrap()
}

fn run(p: &Pretrained, data: TrainData, c: &TrainConfig) -> (Trainer, Vec<Metrics>) {
    let mut t = pollster::block_on(Trainer::new(p.model.clone(), data, c.clone(), 2, &Device::flex())).unwrap();
    let ms = pollster::block_on(t.steps(4)).unwrap();
    (t, ms)
}

/// Reads the cache text back as a run reads its data.
fn reread(p: &Pretrained, text: &str, objective: Objective, c: &TrainConfig) -> TrainData {
    TrainData::read("cache", text, objective, &ReadOptions::default(), &p.tokenizer, &c.tokenize_options()).unwrap().0
}

#[test]
fn cached_values_are_the_loops_reference_pass_and_give_the_identical_loss_curve() {
    let p = tiny(0);
    for (format, objective) in FORMATS {
        let c = config(objective);
        let raw = raw(&p, format, &fixture(format), &c);
        assert_eq!(raw.data.len(), 7, "{format:?}");
        let (pairs, lists) =
            pollster::block_on(data_logps(&p.model, raw.data.clone(), &c, 2, &Device::flex())).unwrap();

        // The trainer's own reference pass over the same examples, before its first step.
        let fresh = pollster::block_on(Trainer::new(p.model.clone(), raw.data.clone(), c.clone(), 2, &Device::flex()))
            .unwrap()
            .state();
        // Bit for bit, not only within 1e-6: the same batching on the same device form.
        assert_eq!((&pairs, &lists), (&fresh.reference, &fresh.list_reference), "{format:?}");
        assert!(pairs.len() + lists.len() == 7 && (pairs.iter().all(|p| p.0 < 0.0) || !lists.is_empty()));

        // Written and read back, the values are the same f32s, and the loop uses them instead of its own pass.
        let text = write_jsonl(&raw, &pairs, &lists);
        let cached = reread(&p, &text, objective, &c);
        let (t, with_cache) = run(&p, cached, &c);
        assert_eq!((t.state().reference, t.state().list_reference), (pairs.clone(), lists.clone()), "{format:?}");
        let (_, without) = run(&p, raw.data.clone(), &c);
        assert_eq!(with_cache, without, "{format:?}: the loss curve of a run from the cache differs");
        if format == Format::Pairs {
            // and the run reads the cache: lowering every cached log π_ref(chosen) by 1 raises each chosen reward
            // by β, so the first loss is no longer ln 2.
            let lowered: Vec<(f32, f32)> = pairs.iter().map(|&(c, r)| (c - 1.0, r)).collect();
            let (_, shifted) = run(&p, reread(&p, &write_jsonl(&raw, &lowered, &lists), objective, &c), &c);
            let beta = c.beta;
            let want = (1.0 + (-beta).exp()).ln(); // −log σ(β)
            assert!((shifted[0]["loss"] - want).abs() < 1e-5, "{} vs {want}", shifted[0]["loss"]);
        }
        let first = &with_cache[0];
        eprintln!("{format:?}: 7 examples, step-1 loss {:.6} with and without the cache", first["loss"]);
    }
}

#[test]
fn the_cache_keeps_every_record_and_field_and_skips_ties() {
    let p = tiny(0);
    let c = config(Objective::Dpo);
    let text = concat!(
        r#"{"prompt": "Q", "chosen": " yes", "rejected": " no", "source": "s1", "extra": {"kept": [1, 2]}}"#,
        "\n",
        r#"{"prompt": "Q", "chosen": " a", "rejected": " b", "tie": true}"#,
        "\n",
        r#"{"prompt": "R", "chosen": " up", "rejected": " down", "ref_chosen_logps": 99}"#,
        "\n"
    );
    let raw = raw(&p, Format::Pairs, text, &c);
    let (pairs, lists) = pollster::block_on(data_logps(&p.model, raw.data.clone(), &c, 2, &Device::flex())).unwrap();
    let out = write_jsonl(&raw, &pairs, &lists);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["extra"]["kept"], serde_json::json!([1, 2]));
    assert_eq!(lines[0]["ref_chosen_logps"], f64::from(pairs[0].0));
    assert!(lines[1].get("ref_chosen_logps").is_none(), "a tie is no training pair: {}", lines[1]);
    // A stale value in the input is replaced by the model's.
    assert_eq!(lines[2]["ref_chosen_logps"], f64::from(pairs[1].0));
    assert_ne!(pairs[1].0, 99.0);
    // Lists longer than max_list_length are refused (the cache holds one value per response).
    let long = r#"{"prompt": "Q", "responses": ["a", "b", "c"], "ranking": [0, 1, 2]}"#;
    let short = TokenizeOptions { max_list_length: 2, ..c.tokenize_options() };
    let e = read_raw("l.jsonl", long, Format::Lists, &ReadOptions::default(), &p.tokenizer, &short).err().unwrap();
    assert!(matches!(e, CacheError::ListTooLong { line: 1, responses: 3, max: 2, .. }), "{e}");
}

#[test]
fn a_cache_of_another_model_or_tokenisation_or_an_edited_file_is_refused() {
    let (a, b) = (tiny_gguf(0), tiny_gguf(1));
    let topts = config(Objective::Dpo).tokenize_options();
    let key = RefLogpsKey::new(&model_sha256(&[("tiny.gguf", &a)]), Format::Pairs, &topts);
    let data = b"{\"prompt\": \"Q\", \"chosen\": \" yes\", \"rejected\": \" no\", \"ref_chosen_logps\": -3.5}\n";
    let sidecar = Sidecar { key: key.clone(), records: 1, source_sha256: "-".into(), data_sha256: sha256_hex(data) };
    // The sidecar survives JSON, and the same key passes.
    let json = serde_json::to_vec(&sidecar).unwrap();
    let sidecar = Sidecar::parse("pairs.ref.jsonl.key.json", &json).unwrap();
    sidecar.check("pairs.ref.jsonl", data, &key).unwrap();
    // A GGUF's key names its sha256 (its tokenizer and template are inside it).
    assert_eq!(key.model_sha256, sha256_hex(&a));

    // Another model: one error naming both keys and what differs.
    let other = RefLogpsKey::new(&sha256_hex(&b), Format::Pairs, &topts);
    let e = sidecar.check("pairs.ref.jsonl", data, &other).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("pairs.ref.jsonl: its reference log-probs were computed under key {}", key.key)),
        "{e}"
    );
    assert!(e.contains(&format!("this run's key is {}", other.key)), "{e}");
    assert!(e.contains(&format!("model sha256 {} vs {}", sha256_hex(&a), sha256_hex(&b))), "{e}");

    // Another tokenisation.
    let longer =
        RefLogpsKey::new(&key.model_sha256, Format::Pairs, &TokenizeOptions { max_length: 96, ..topts.clone() });
    let e = sidecar.check("pairs.ref.jsonl", data, &longer).unwrap_err().to_string();
    assert!(e.contains("max_length 48 vs 96"), "{e}");
    let chat =
        RefLogpsKey::new(&key.model_sha256, Format::Pairs, &TokenizeOptions { chat_template: true, ..topts.clone() });
    assert!(
        sidecar.check("pairs.ref.jsonl", data, &chat).unwrap_err().to_string().contains("chat_template false vs true")
    );
    // max_list_length only changes lists.
    let lists_only = TokenizeOptions { max_list_length: 3, ..topts.clone() };
    assert_eq!(RefLogpsKey::new(&key.model_sha256, Format::Pairs, &lists_only).key, key.key);
    assert_ne!(
        RefLogpsKey::new(&key.model_sha256, Format::Lists, &lists_only).key,
        RefLogpsKey::new(&key.model_sha256, Format::Lists, &topts).key
    );

    // The file edited after caching.
    let edited = b"{\"prompt\": \"Q\", \"chosen\": \" yes!\", \"rejected\": \" no\", \"ref_chosen_logps\": -3.5}\n";
    let e = sidecar.check("pairs.ref.jsonl", edited, &key).unwrap_err();
    assert!(matches!(e, CacheError::Edited { .. }), "{e}");
    assert!(Sidecar::parse("x.key.json", b"{\"key\": 1}").is_err());
}
