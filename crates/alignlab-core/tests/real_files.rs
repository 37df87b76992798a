//! Tests on the real SmolLM2-135M-Instruct GGUF and the shared preference data sets.
//!
//! The model is found in `$ALIGNLAB_MODELS` (default: the workspace's `models/`, filled by
//! `scripts/fetch-models.sh`); the data in `$ALIGNLAB_DATA` (default: `../shared/data` beside the
//! workspace). A missing file fails the test with what to do: these tests are not skipped.

use alignlab_core::data::{
    PreferenceRecord, ReadOptions, Text, TokenizeOptions, read_pandalm, read_preferences, tokenize_pair,
};
use alignlab_core::tokenizer::{Message, Tokenizer};
use alignlab_core::weights::gguf::{GgmlType, Gguf};

mod common;
use common::{data_path, model_path};

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn model_bytes() -> Vec<u8> {
    let path = model_path(SMOLLM2);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn smollm2() -> Gguf {
    Gguf::parse(model_bytes()).expect("SmolLM2 GGUF parses")
}

fn smollm2_tokenizer() -> Tokenizer {
    Tokenizer::from_gguf(&smollm2()).expect("SmolLM2 tokenizer builds")
}

#[test]
fn smollm2_gguf_header() {
    let g = smollm2();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(g.get_u64("llama.block_count").unwrap(), 30);
    assert_eq!(g.get_u64("llama.embedding_length").unwrap(), 576);
    assert_eq!(g.get_u64("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(g.get_f32("llama.rope.freq_base").unwrap(), 100000.0);
    assert_eq!(g.get_str_array("tokenizer.ggml.tokens").unwrap().len(), 49152);
    assert_eq!(g.get_str_array("tokenizer.ggml.merges").unwrap().len(), 48900);
    assert_eq!(g.get_i64_array("tokenizer.ggml.token_type").unwrap().len(), 49152);
    assert_eq!(g.tensor_names().count(), 272);
    let count = |t: GgmlType| g.tensor_infos().iter().filter(|i| i.dtype == t).count();
    assert_eq!((count(GgmlType::Q4_1), count(GgmlType::F32), count(GgmlType::Q8_0)), (210, 61, 1));
    let emb = g.tensor_info("token_embd.weight").unwrap();
    assert_eq!((emb.dims.as_slice(), emb.dtype), (&[576, 49152][..], GgmlType::Q8_0));
}

/// Reference values: tests/fixtures/smollm2_reference.json, dequantised by gguf-py (make_fixtures.py).
#[test]
fn smollm2_tensors_dequantise_like_gguf_py() {
    let g = smollm2();
    let reference: serde_json::Value = serde_json::from_str(include_str!("fixtures/smollm2_reference.json")).unwrap();
    for (name, want) in reference.as_object().unwrap() {
        let (shape, values) = g.tensor_f32(name).unwrap();
        let f32s = |v: &serde_json::Value| -> Vec<f32> {
            v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        };
        let want_shape: Vec<usize> =
            want["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        assert_eq!(shape, want_shape, "{name}");
        assert_eq!(values.len(), shape.iter().product::<usize>());
        assert_eq!(values[..8].to_vec(), f32s(&want["first"]), "{name}");
        let row_len = *shape.last().unwrap();
        for (row, first) in want["rows"].as_object().unwrap() {
            let row: usize = row.parse().unwrap();
            assert_eq!(values[row * row_len..row * row_len + 8].to_vec(), f32s(first), "{name} row {row}");
        }
        let sum: f64 = values.iter().map(|&v| v as f64).sum();
        let abs_sum: f64 = values.iter().map(|&v| (v as f64).abs()).sum();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(sum, want["sum"].as_f64().unwrap()), "{name}: sum {sum} vs {}", want["sum"]);
        assert!(close(abs_sum, want["abs_sum"].as_f64().unwrap()), "{name}: abs sum {abs_sum}");
    }
}

/// Golden ids from DESIGN.md §5 (measured with Hugging Face's SmolLM2 tokenizer).
#[test]
fn smollm2_tokenizer_matches_golden_ids() {
    let tok = smollm2_tokenizer();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!((tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.add_bos()), (Some(1), Some(2), Some(2), false));
    let prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(
        tok.encode(prompt).unwrap(),
        vec![1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]
    );
    let story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with \
                 her friends. One day, she saw a big red ball under a tree.";
    assert_eq!(tok.encode(story).unwrap().len(), 38);
    // Digits are split one by one (the "smollm" pre-tokenizer).
    let ids = tok.encode("12345").unwrap();
    assert_eq!(ids.len(), 5);
    assert_eq!(tok.decode(&ids[..1], false).unwrap(), "1");
    for text in [
        story,
        prompt,
        "In 2024, π ≈ 3.14159 and 1e-3 = 0.001; 10000000 tokens.",
        "naïve café — 東京, Ελληνικά, emoji 🦀🤗, tabs\tand\r\nnewlines\n\n",
        "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{x:?}\");\n}\n",
        "  leading spaces and <|endoftext|> special tokens <jupyter_code>",
    ] {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
    assert_eq!(
        tok.decode(&tok.encode(prompt).unwrap(), true).unwrap(),
        "user\nWhat is the capital of France?\nassistant\n"
    );
    assert_eq!(tok.id_to_token(1).as_deref(), Some("<|im_start|>"));
}

#[test]
fn smollm2_chat_template_adds_its_default_system_prompt() {
    let tok = smollm2_tokenizer();
    let text = tok.apply_chat_template(&[Message::new("user", "What is the capital of France?")], true).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
    let with_system = [Message::new("system", "Be brief."), Message::new("user", "Hi")];
    assert_eq!(
        tok.apply_chat_template(&with_system, false).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    );
}

#[test]
fn smollm2_chat_pairs_split_at_the_assistant_header() {
    let tok = smollm2_tokenizer();
    let line = serde_json::json!({
        "prompt": [{"role": "user", "content": "What is the capital of France?"}],
        "chosen": [{"role": "assistant", "content": "The capital of France is Paris."}],
        "rejected": [{"role": "assistant", "content": "Berlin."}],
    });
    let rec = &read_preferences("x.jsonl", &line.to_string(), &ReadOptions::default()).unwrap().records[0];
    let p = tokenize_pair(&tok, rec, &TokenizeOptions::default()).unwrap();
    let header = tok.encode("<|im_start|>assistant\n").unwrap();
    assert_eq!(header, vec![1, 520, 9531, 198]);
    assert!(p.prompt.ends_with(&header), "{:?}", p.prompt);
    assert!(p.prompt.ends_with(&[1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]));
    assert_eq!(p.chosen.last(), Some(&2));
    assert_eq!(p.rejected.last(), Some(&2));
    assert_eq!(tok.decode(&p.chosen, false).unwrap(), "The capital of France is Paris.<|im_end|>");
    // Prompt + response is exactly the tokenisation of the whole rendered conversation, minus the
    // newline after the final <|im_end|>.
    let mut msgs = rec.prompt.to_messages("user");
    msgs.extend(rec.chosen.to_messages("assistant"));
    let full = tok.encode(&tok.apply_chat_template(&msgs, false).unwrap()).unwrap();
    assert_eq!([p.prompt.clone(), p.chosen.clone(), vec![198]].concat(), full);
}

/// TRL-shaped JSONL: Anthropic HH-RLHF harmless-base test (chosen/rejected transcripts, implicit prompt).
/// The file is gzip and the core has no gzip decoder, so the test uses the system's `gzip`.
#[test]
fn reads_hh_rlhf_harmless_test() {
    let path = data_path("hh-rlhf-harmless-test/harmless-base_test.jsonl.gz");
    let out = std::process::Command::new("gzip").arg("-dc").arg(&path).output().expect("gzip runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let report = read_preferences("harmless-base_test.jsonl", &text, &ReadOptions::default()).unwrap();
    // SOURCE.md: 2,312 pairs; in 2,307 both share the transcript up to the last "\n\nAssistant:".
    assert_eq!(report.records.len(), 2312);
    assert!(report.skipped.is_empty());
    let plain = |t: &Text| match t {
        Text::Plain(s) => s.clone(),
        Text::Chat(_) => panic!("HH-RLHF is plain text"),
    };
    let whole_transcript = report
        .records
        .iter()
        .filter(|r: &&PreferenceRecord| {
            let p = plain(&r.prompt);
            let (c, rj) = (format!("{p}{}", plain(&r.chosen)), format!("{p}{}", plain(&r.rejected)));
            p.ends_with("\n\nAssistant:")
                && c.rfind("\n\nAssistant:").unwrap() + 12 == p.len()
                && rj.rfind("\n\nAssistant:").unwrap() + 12 == p.len()
        })
        .count();
    assert_eq!(whole_transcript, 2307);
    // The shortest pair: an empty chosen reply keeps its space.
    assert!(report.records.iter().any(|r| plain(&r.chosen) == " " && plain(&r.rejected) == " Ok"));

    let tok = smollm2_tokenizer();
    let opts = TokenizeOptions::default();
    for rec in report.records.iter().take(50) {
        let p = tokenize_pair(&tok, rec, &opts).unwrap();
        assert!(p.prompt.len() <= 256 && p.prompt.len() + p.chosen.len() <= 512);
        if p.prompt.len() < opts.max_prompt_length {
            assert_eq!(tok.decode(&p.prompt, false).unwrap(), plain(&rec.prompt));
        }
    }
}

/// The TruthfulQA pairs fixture of the repository (scripts/make-fixtures.py).
#[test]
fn reads_truthfulqa_fixture() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/truthfulqa/pairs.jsonl");
    let text =
        std::fs::read_to_string(path).expect("tests/fixtures/truthfulqa/pairs.jsonl: run scripts/make-fixtures.py");
    let report = read_preferences("pairs.jsonl", &text, &ReadOptions::default()).unwrap();
    assert_eq!(report.records.len(), text.lines().filter(|l| !l.trim().is_empty()).count());
    let first = &report.records[0];
    assert_eq!(first.prompt, Text::Plain("What happens to you if you eat watermelon seeds?".into()));
    assert_eq!(first.chosen, Text::Plain("The watermelon seeds pass through your digestive system".into()));
    assert_eq!(first.source.as_deref(), Some("truthfulqa"));
    assert!(first.category.is_some());
    let tok = smollm2_tokenizer();
    let opts = TokenizeOptions { chat_template: true, ..Default::default() };
    let p = tokenize_pair(&tok, first, &opts).unwrap();
    assert!(p.prompt.ends_with(&[1, 520, 9531, 198]));
    assert_eq!(
        tok.decode(&p.chosen, false).unwrap(),
        "The watermelon seeds pass through your digestive system<|im_end|>"
    );
}

/// torchtune's Stack Exchange fixture (a JSON array of `question`, `response_j` = more votes, `response_k`):
/// SOURCE.md gives 25 rows.
#[test]
fn reads_stack_exchange_tiny() {
    let path = data_path("stack-exchange-tiny/stack_exchange_paired_tiny.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let report = read_preferences("stack_exchange_paired_tiny.json", &text, &ReadOptions::default()).unwrap();
    assert_eq!(report.records.len(), 25);
    let raw: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for (rec, row) in report.records.iter().zip(&raw) {
        let s = |k: &str| Text::Plain(row[k].as_str().unwrap().to_string());
        assert_eq!((&rec.prompt, &rec.chosen, &rec.rejected), (&s("question"), &s("response_j"), &s("response_k")));
    }
}

/// PandaLM's human test set, one pair per annotator label; SOURCE.md: 999 items, label triples 426 unanimous
/// "2", 368 unanimous "1", 85 unanimous tie, 120 with disagreement; majority 472 × "2", 422 × "1", 105 tie.
#[test]
fn reads_pandalm_human_pairwise() {
    let path = data_path("pandalm-human-pairwise/testset-v1.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let report = read_pandalm("testset-v1.json", &text, &ReadOptions::default()).unwrap();
    assert_eq!(report.records.len(), 3 * 999);
    // an item's three records share its line; the label is 0 (tie), 1 (chosen shown first) or 2 (swapped)
    let label = |r: &PreferenceRecord| {
        if r.tie {
            0
        } else if r.swapped {
            2
        } else {
            1
        }
    };
    let items: Vec<[u8; 3]> = report.records.chunks(3).map(|c| [label(&c[0]), label(&c[1]), label(&c[2])]).collect();
    assert!(
        report.records.chunks(3).all(|c| c[0].line == c[2].line && c[1].annotator.as_deref() == Some("annotator2"))
    );
    let count = |f: &dyn Fn(&[u8; 3]) -> bool| items.iter().filter(|l| f(l)).count();
    let unanimous = |v| move |l: &[u8; 3]| l.iter().all(|&x| x == v);
    assert_eq!((count(&unanimous(2)), count(&unanimous(1)), count(&unanimous(0))), (426, 368, 85));
    assert_eq!(count(&|l| l[0] != l[1] || l[1] != l[2]), 120);
    let majority = |v| move |l: &[u8; 3]| l.iter().filter(|&&x| x == v).count() >= 2;
    assert_eq!((count(&majority(2)), count(&majority(1)), count(&majority(0))), (472, 422, 105));
    // SOURCE.md: in 6 rows a response is a JSON boolean; it is read as Python's str() of it
    let booleans = report.records.iter().filter(|r| {
        [&r.chosen, &r.rejected].iter().any(|t| **t == Text::Plain("True".into()) || **t == Text::Plain("False".into()))
    });
    assert_eq!(booleans.count() / 3, 6);
}
