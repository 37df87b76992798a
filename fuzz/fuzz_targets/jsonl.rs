//! Dataset files from anywhere, through every reader (pairwise, unpaired, listwise, OpenAssistant trees, ratings,
//! PandaLM, prompts, SFT, verifiable; JSONL or one JSON array) strictly and with bad lines skipped, through the
//! verifiers on what they read, and through the streaming line reader: every outcome is records or one error naming
//! the line, never a panic, and no more records than asked for.
#![no_main]

use alignlab_core::data::{
    ReadOptions, read_lists, read_oasst_trees, read_pandalm, read_preferences, read_prompts, read_ratings, read_sft,
    read_unpaired,
};
use alignlab_core::jsonl::JsonlLines;
use alignlab_core::verify::{read_verifiable, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in JsonlLines::new(data, 1 << 12) {
        let _ = line;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    for skip_bad_lines in [false, true] {
        let opts =
            ReadOptions { skip_bad_lines, max_line_bytes: 1 << 16, max_records: Some(64), ..ReadOptions::default() };
        if let Ok(report) = read_preferences("fuzz.jsonl", text, &opts) {
            assert!(report.records.len() <= 64);
        }
        let _ = read_unpaired("fuzz.jsonl", text, &opts);
        let _ = read_lists("fuzz.jsonl", text, &opts);
        let _ = read_oasst_trees("fuzz.jsonl", text, &opts);
        let _ = read_ratings("fuzz.jsonl", text, &opts);
        let _ = read_pandalm("fuzz.jsonl", text, &opts);
        let _ = read_prompts("fuzz.jsonl", text, &opts);
        let _ = read_sft("fuzz.jsonl", text, &opts);
        if let Ok(report) = read_verifiable("fuzz.jsonl", text, &opts) {
            // The input itself doubles as the response: the checks must survive any text.
            for rec in &report.records {
                let _ = verify(&rec.verifier, &rec.ground_truth, text);
            }
        }
    }
});
