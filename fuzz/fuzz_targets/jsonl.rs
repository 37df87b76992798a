//! Dataset files from anywhere, through every reader (pairwise, unpaired, listwise, OpenAssistant trees; JSONL
//! or one JSON array) strictly and with bad lines skipped, and through the streaming line reader: every outcome
//! is records or one error naming the line, never a panic, and no more records than asked for.
#![no_main]

use alignlab_core::data::{ReadOptions, read_lists, read_oasst_trees, read_preferences, read_unpaired};
use alignlab_core::jsonl::JsonlLines;
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
    }
});
