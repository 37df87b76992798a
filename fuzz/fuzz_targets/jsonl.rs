//! Preference JSONL from anywhere, read strictly and with bad lines skipped: every outcome is records or
//! one error naming the line, never a panic.
#![no_main]

use alignlab_core::data::{ReadOptions, read_preferences};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for skip_bad_lines in [false, true] {
        let opts = ReadOptions { skip_bad_lines, max_line_bytes: 1 << 16, max_records: Some(64) };
        if let Ok(report) = read_preferences("fuzz.jsonl", text, &opts) {
            assert!(report.records.len() <= 64);
        }
    }
});
