//! Verifiable prompts (DESIGN.md §3: `{"prompt", "ground_truth", "verifier"}`) and the rule-based verifiers that
//! score a response against them, the rewards of RL with verifiable rewards and of simulated annotators.
//!
//! Verifiers:
//! - `"gsm8k"`: `ground_truth` is the final number (a string such as `"1,080"` or a JSON number). The response's
//!   answer is the number right after the first `####` (the GSM8K paper's format; lm-eval's "strict-match"), or,
//!   when there is none, the last number in the response (lm-eval's "flexible-extract"). Both sides drop `,` and
//!   `$` and compare as decimal values, so `"$1,080.00"` matches `1080`. One check: passed 1 or 0 of 1.
//! - `"ifeval"`: `ground_truth` is `{"instruction_id_list": [...], "kwargs": [...]}` as in IFEval's
//!   `input_data.jsonl` (Zhou et al. 2023). Each instruction is one check with the paper's *strict* rule (the
//!   response as it is; no "loose" variants). An instruction id that is not implemented is an error naming it,
//!   never a pass. Departures from the reference checker, which needs nltk and langdetect, are noted at each
//!   check: `language:response_language` is not implemented (no language detector), `change_case:english_*`
//!   check the case only, and sentences are counted by a hand-written approximation of nltk's Punkt (its English
//!   model is not shipped); `change_case:capital_word_frequency` splits words at whitespace where the reference
//!   uses nltk's word tokenizer.
//!
//! Readers also take the source files as they are: GSM8K's `{"question", "answer"}` (ground truth = the number
//! after `####`) and IFEval's `input_data.jsonl` records (`{"key", "prompt", "instruction_id_list", "kwargs"}`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::data::{
    DataError, DataErrorKind, ReadOptions, ReadReport, Text, json_kind, parse_object, present, read_records,
    string_field, text_field,
};

/// A prompt with what a correct response must satisfy, and the verifier that checks it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct VerifiableRecord {
    pub prompt: Text,
    /// What the verifier compares against (its shape is the verifier's; see the module doc).
    pub ground_truth: Value,
    /// `"gsm8k"` or `"ifeval"`.
    pub verifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// The verifiers [`verify`] knows.
pub const VERIFIERS: [&str; 2] = ["gsm8k", "ifeval"];

/// How many of a record's checks a response passed (GSM8K: one; IFEval: one per instruction).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub passed: usize,
    pub total: usize,
}

impl Verdict {
    /// passed / total: IFEval's instruction-level accuracy of one prompt (0 when there is nothing to check).
    pub fn score(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.passed as f64 / self.total as f64 }
    }

    /// Every check passed: IFEval's prompt-level strict accuracy, GSM8K's exact match.
    pub fn all_passed(&self) -> bool {
        self.total > 0 && self.passed == self.total
    }
}

/// Why a response could not be verified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    #[error("unknown verifier \"{0}\" (known: gsm8k, ifeval)")]
    UnknownVerifier(String),
    #[error("unknown IFEval instruction id \"{0}\"")]
    UnknownInstruction(String),
    #[error("IFEval instruction \"{id}\" is not implemented: {why}")]
    NotImplemented { id: String, why: &'static str },
    #[error("{verifier} ground truth: {reason}")]
    BadGroundTruth { verifier: &'static str, reason: String },
    #[error("IFEval instruction \"{id}\": {reason}")]
    BadKwargs { id: String, reason: String },
}

/// Reads verifiable records; errors and skipping as [`crate::data::read_preferences`]. Besides the §3 format it
/// takes GSM8K (`{"question", "answer"}`) and IFEval input (`{"prompt", "instruction_id_list", "kwargs"}`)
/// records as they are. The ground truth is checked against its verifier's shape when read.
pub fn read_verifiable(
    source: &str,
    text: &str,
    opts: &ReadOptions,
) -> Result<ReadReport<VerifiableRecord>, DataError> {
    read_records(source, text, opts, |raw| parse_verifiable(raw, opts.max_line_bytes), |_, _| {})
}

/// Parses one verifiable record (see [`read_verifiable`]).
pub fn parse_verifiable(line: &str, max_line_bytes: usize) -> Result<VerifiableRecord, DataErrorKind> {
    let mut obj = parse_object(line, max_line_bytes)?;
    from_sources(&mut obj)?;
    let prompt = text_field(&obj, "prompt")?.ok_or(DataErrorKind::MissingField("prompt"))?;
    if matches!(&prompt, Text::Chat(m) if m.is_empty()) {
        return Err(DataErrorKind::InvalidField { field: "prompt", reason: "empty message list".into() });
    }
    let ground_truth = present(&obj, "ground_truth").ok_or(DataErrorKind::MissingField("ground_truth"))?.clone();
    let verifier = string_field(&obj, "verifier")?.ok_or(DataErrorKind::MissingField("verifier"))?;
    let invalid = |field, e: VerifyError| DataErrorKind::InvalidField { field, reason: e.to_string() };
    match verifier.as_str() {
        "gsm8k" => gsm8k_truth(&ground_truth).map(drop).map_err(|e| invalid("ground_truth", e))?,
        "ifeval" => ifeval_instructions(&ground_truth).map(drop).map_err(|e| invalid("ground_truth", e))?,
        other => return Err(invalid("verifier", VerifyError::UnknownVerifier(other.into()))),
    }
    Ok(VerifiableRecord {
        prompt,
        ground_truth,
        verifier,
        source: string_field(&obj, "source")?,
        category: string_field(&obj, "category")?,
    })
}

/// GSM8K and IFEval-input records in the §3 shape, in place; §3 records pass through unchanged.
fn from_sources(obj: &mut Map<String, Value>) -> Result<(), DataErrorKind> {
    if obj.contains_key("verifier") {
        return Ok(());
    }
    let source = |obj: &mut Map<String, Value>, name: &str| {
        obj.entry("source").or_insert_with(|| Value::String(name.into()));
    };
    if obj.contains_key("question") && obj.contains_key("answer") && !obj.contains_key("prompt") {
        let answer = match present(obj, "answer") {
            Some(Value::String(a)) => a.clone(),
            _ => return Err(DataErrorKind::WrongType { field: "answer", expected: "a string" }),
        };
        let reason = "no number after \"####\" (GSM8K answers end with \"#### <number>\")".to_string();
        let truth = after_hashes(&answer).ok_or(DataErrorKind::InvalidField { field: "answer", reason })?;
        let question = obj.remove("question").unwrap_or_default();
        obj.insert("prompt".into(), question);
        obj.insert("ground_truth".into(), Value::String(truth));
        obj.insert("verifier".into(), "gsm8k".into());
        source(obj, "gsm8k");
    } else if obj.contains_key("instruction_id_list") {
        let mut truth = Map::new();
        for field in ["instruction_id_list", "kwargs"] {
            truth.insert(field.into(), obj.remove(field).unwrap_or(Value::Null));
        }
        obj.insert("ground_truth".into(), Value::Object(truth));
        obj.insert("verifier".into(), "ifeval".into());
        source(obj, "ifeval");
    }
    Ok(())
}

/// Checks `response` with `verifier` against `ground_truth` (see the module doc for each verifier's rule).
pub fn verify(verifier: &str, ground_truth: &Value, response: &str) -> Result<Verdict, VerifyError> {
    match verifier {
        "gsm8k" => {
            let truth = gsm8k_truth(ground_truth)?;
            let passed = gsm8k_answer(response).is_some_and(|a| same_number(&a, &truth));
            Ok(Verdict { passed: passed as usize, total: 1 })
        }
        "ifeval" => {
            let checks = ifeval_checks(ground_truth, response)?;
            Ok(Verdict { passed: checks.iter().filter(|(_, ok)| *ok).count(), total: checks.len() })
        }
        other => Err(VerifyError::UnknownVerifier(other.into())),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// GSM8K

/// The final answer of a GSM8K response, normalised (no `,` or `$`): the number right after the first `####`,
/// else the last number in the text; `None` when it has no number.
pub fn gsm8k_answer(response: &str) -> Option<String> {
    after_hashes(response).or_else(|| numbers(response).last().map(|(_, n)| n.clone()))
}

/// The number that follows the first `####` (spaces and a `$` may come between).
fn after_hashes(text: &str) -> Option<String> {
    let at = text.find("####")? + 4;
    let rest = &text[at..];
    let skipped = rest.len() - rest.trim_start_matches([' ', '\t', '$']).len();
    numbers(rest).into_iter().find(|(start, _)| *start <= skipped + 1).map(|(_, n)| n)
}

/// The numbers of `text` as (byte offset, digits with an optional leading `-` and inner `.`; `,` and `$`
/// dropped): runs of digits joined by `,` or `.` that are followed by a digit, so a sentence's final period is
/// not part of its number. A `-` right before (or before a `$` before) is a sign unless a letter or digit
/// precedes it (`3-2` is 3 and 2).
fn numbers(text: &str) -> Vec<(usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut start = i;
        if start > 0 && b[start - 1] == b'$' {
            start -= 1;
        }
        let negative = start > 0 && b[start - 1] == b'-' && (start < 2 || !b[start - 2].is_ascii_alphanumeric());
        let mut n = String::from(if negative { "-" } else { "" });
        while i < b.len() {
            match b[i] {
                d if d.is_ascii_digit() => n.push(d as char),
                b',' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {}
                b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) && !n.contains('.') => n.push('.'),
                _ => break,
            }
            i += 1;
        }
        out.push((start - negative as usize, n));
    }
    out
}

/// The ground truth of a GSM8K record, normalised like an answer.
fn gsm8k_truth(truth: &Value) -> Result<String, VerifyError> {
    let bad = |reason: String| VerifyError::BadGroundTruth { verifier: "gsm8k", reason };
    let text = match truth {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(bad(format!("expected the final number (a string or a number), found {}", json_kind(other))));
        }
    };
    match numbers(&text).as_slice() {
        [(_, n)] => Ok(n.clone()),
        _ => Err(bad(format!("{text:?} is not one number"))),
    }
}

/// Equal as decimal numbers: `18` = `18.0` = `18.00`.
fn same_number(a: &str, b: &str) -> bool {
    let canon = |s: &str| {
        let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s };
        let (sign, digits) = s.strip_prefix('-').map_or(("", s), |d| ("-", d));
        let digits = digits.trim_start_matches('0');
        let digits = if digits.is_empty() || digits.starts_with('.') { format!("0{digits}") } else { digits.into() };
        if digits == "0" { digits } else { format!("{sign}{digits}") }
    };
    canon(a) == canon(b)
}

// ---------------------------------------------------------------------------------------------------------------
// IFEval

/// The instruction ids [`ifeval_checks`] implements.
pub const IFEVAL_INSTRUCTIONS: [&str; 24] = [
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "combination:repeat_prompt",
    "combination:two_responses",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:constrained_response",
    "detectable_format:json_format",
    "detectable_format:multiple_sections",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_format:title",
    "keywords:existence",
    "keywords:forbidden_words",
    "keywords:frequency",
    "keywords:letter_frequency",
    "length_constraints:nth_paragraph_first_word",
    "length_constraints:number_paragraphs",
    "length_constraints:number_sentences",
    "length_constraints:number_words",
    "punctuation:no_comma",
    "startend:end_checker",
    "startend:quotation",
];

/// Most instructions one IFEval record may carry (the benchmark has at most 3).
pub const MAX_INSTRUCTIONS: usize = 64;

/// One IFEval instruction: its id and its kwargs.
type Instruction<'a> = (&'a str, Map<String, Value>);

/// The (id, kwargs) pairs of an IFEval ground truth; `null` kwargs are `{}`.
fn ifeval_instructions(truth: &Value) -> Result<Vec<Instruction<'_>>, VerifyError> {
    let bad = |reason: &str| VerifyError::BadGroundTruth { verifier: "ifeval", reason: reason.into() };
    let ids = truth.get("instruction_id_list").and_then(Value::as_array);
    let ids = ids.ok_or_else(|| bad("expected {\"instruction_id_list\": [...], \"kwargs\": [...]}"))?;
    let kwargs = match truth.get("kwargs") {
        None | Some(Value::Null) => vec![Value::Null; ids.len()],
        Some(Value::Array(k)) => k.clone(),
        Some(_) => return Err(bad("\"kwargs\" must be a list of objects, one per instruction")),
    };
    if ids.is_empty() || ids.len() > MAX_INSTRUCTIONS || kwargs.len() != ids.len() {
        return Err(bad(&format!(
            "{} instruction ids and {} kwargs; give 1 to {MAX_INSTRUCTIONS} ids and one kwargs object each",
            ids.len(),
            kwargs.len()
        )));
    }
    ids.iter()
        .zip(kwargs)
        .map(|(id, kw)| {
            let id = id.as_str().ok_or_else(|| bad("instruction ids must be strings"))?;
            match kw {
                Value::Null => Ok((id, Map::new())),
                Value::Object(m) => Ok((id, m.into_iter().filter(|(_, v)| !v.is_null()).collect())),
                _ => Err(bad("\"kwargs\" must be a list of objects, one per instruction")),
            }
        })
        .collect()
}

/// Each instruction of an IFEval ground truth with whether `response` follows it (strict), in order.
pub fn ifeval_checks(ground_truth: &Value, response: &str) -> Result<Vec<(String, bool)>, VerifyError> {
    ifeval_instructions(ground_truth)?
        .into_iter()
        .map(|(id, kw)| Ok((id.to_string(), check_instruction(id, &Kwargs { id, map: &kw }, response)?)))
        .collect()
}

/// An instruction's kwargs, read with errors that name the instruction.
struct Kwargs<'a> {
    id: &'a str,
    map: &'a Map<String, Value>,
}

impl Kwargs<'_> {
    fn bad(&self, reason: String) -> VerifyError {
        VerifyError::BadKwargs { id: self.id.into(), reason }
    }

    fn get(&self, key: &str) -> Result<&Value, VerifyError> {
        self.map.get(key).ok_or_else(|| self.bad(format!("missing kwarg \"{key}\"")))
    }

    fn str(&self, key: &str) -> Result<&str, VerifyError> {
        self.get(key)?.as_str().ok_or_else(|| self.bad(format!("kwarg \"{key}\" must be a string")))
    }

    fn count(&self, key: &str) -> Result<usize, VerifyError> {
        let v = self.get(key)?;
        v.as_u64().map(|n| n as usize).ok_or_else(|| self.bad(format!("kwarg \"{key}\" must be a count, not {v}")))
    }

    fn strings(&self, key: &str) -> Result<Vec<&str>, VerifyError> {
        let wrong = || self.bad(format!("kwarg \"{key}\" must be a list of strings"));
        let list = self.get(key)?.as_array().ok_or_else(wrong)?;
        list.iter().map(|v| v.as_str().ok_or_else(wrong)).collect()
    }

    /// `actual` against kwarg `key` under relation kwarg `relation`: "less than" is `<`, "at least" is `>=`.
    fn compare(&self, actual: usize, key: &str, relation: &str) -> Result<bool, VerifyError> {
        let n = self.count(key)?;
        match self.str(relation)? {
            "less than" => Ok(actual < n),
            "at least" => Ok(actual >= n),
            other => Err(self.bad(format!("{relation} must be \"less than\" or \"at least\", not {other:?}"))),
        }
    }
}

/// One instruction's strict check (the rules of IFEval's `instructions.py`, as described in the paper's table).
fn check_instruction(id: &str, kw: &Kwargs, value: &str) -> Result<bool, VerifyError> {
    let lower = value.to_lowercase();
    Ok(match id {
        "punctuation:no_comma" => !value.contains(','),
        "length_constraints:number_words" => kw.compare(count_words(value), "num_words", "relation")?,
        "length_constraints:number_sentences" => kw.compare(count_sentences(value), "num_sentences", "relation")?,
        "length_constraints:number_paragraphs" => {
            // Paragraphs are separated by the markdown divider ***; an empty one between two dividers fails.
            let parts: Vec<&str> = value.split("***").collect();
            let last = parts.len() - 1;
            let mut n = parts.len();
            for (i, p) in parts.iter().enumerate() {
                if p.trim().is_empty() {
                    if i != 0 && i != last {
                        return Ok(false);
                    }
                    n -= 1;
                }
            }
            n == kw.count("num_paragraphs")?
        }
        "length_constraints:nth_paragraph_first_word" => {
            // Paragraphs are separated by "\n\n"; the nth (counting empty ones, as the reference does) must start
            // with first_word (case-insensitive; leading quotes and anything from a . , ? ! ' or " on dropped).
            let parts: Vec<&str> = value.split("\n\n").collect();
            let n = parts.iter().filter(|p| !p.trim().is_empty()).count();
            let nth = kw.count("nth_paragraph")?;
            let Some(paragraph) = (nth >= 1 && nth <= n).then(|| parts[nth - 1].trim()) else { return Ok(false) };
            let Some(word) = paragraph.split_whitespace().next() else { return Ok(false) };
            let word = word.trim_start_matches(['\'', '"']);
            let first: String = word
                .chars()
                .take_while(|c| !matches!(c, '.' | ',' | '?' | '!' | '\'' | '"'))
                .collect::<String>()
                .to_lowercase();
            n == kw.count("num_paragraphs")? && first == kw.str("first_word")?.to_lowercase()
        }
        "keywords:existence" => kw.strings("keywords")?.iter().all(|k| lower.contains(&k.to_lowercase())),
        "keywords:frequency" => {
            let keyword = kw.str("keyword")?.trim().to_lowercase();
            let found = if keyword.is_empty() { 0 } else { lower.matches(&keyword).count() };
            kw.compare(found, "frequency", "relation")?
        }
        "keywords:forbidden_words" => {
            kw.strings("forbidden_words")?.iter().all(|w| !contains_word(&lower, &w.to_lowercase()))
        }
        "keywords:letter_frequency" => {
            let letter = kw.str("letter")?.trim().to_lowercase();
            let mut chars = letter.chars();
            let (Some(letter), None) = (chars.next(), chars.next()) else {
                return Err(kw.bad(format!("kwarg \"letter\" must be one letter, not {letter:?}")));
            };
            kw.compare(lower.chars().filter(|&c| c == letter).count(), "let_frequency", "let_relation")?
        }
        "detectable_format:number_bullet_lists" => {
            // Lines starting (after whitespace) with "* " style or "-" markdown bullets.
            let bullets = value
                .lines()
                .map(str::trim_start)
                .filter(|l| l.starts_with('-') || (l.starts_with('*') && !l[1..].starts_with('*')))
                .count();
            bullets == kw.count("num_bullets")?
        }
        "detectable_format:title" => value.lines().any(|line| {
            // <<title>> on one line with something other than brackets and spaces inside.
            let Some(i) = line.find("<<") else { return false };
            let Some(j) = line.rfind(">>").filter(|&j| j >= i + 3) else { return false };
            !line[i..j + 2].trim_start_matches('<').trim_end_matches('>').trim().is_empty()
        }),
        "detectable_format:json_format" => {
            let mut v = value.trim();
            for prefix in ["```json", "```Json", "```JSON", "```"] {
                if let Some(rest) = v.strip_prefix(prefix) {
                    v = rest;
                    break;
                }
            }
            let v = v.strip_suffix("```").unwrap_or(v).trim();
            serde_json::from_str::<Value>(v).is_ok()
        }
        "detectable_format:number_highlighted_sections" => count_highlights(value) >= kw.count("num_highlights")?,
        "detectable_format:multiple_sections" => {
            // Sections start with "<splitter> <number>" (e.g. "SECTION 1").
            let splitter = kw.str("section_spliter")?.trim();
            let sections = if splitter.is_empty() {
                0
            } else {
                value
                    .match_indices(splitter)
                    .filter(|(i, _)| {
                        let rest = &value[i + splitter.len()..];
                        let rest = rest.strip_prefix(|c: char| c.is_whitespace()).unwrap_or(rest);
                        rest.starts_with(|c: char| c.is_ascii_digit())
                    })
                    .count()
            };
            sections >= kw.count("num_sections")?
        }
        "detectable_format:constrained_response" => {
            ["My answer is yes.", "My answer is no.", "My answer is maybe."].iter().any(|a| value.trim().contains(a))
        }
        // The reference also requires langdetect to say "en"; only the case is checked here.
        "change_case:english_lowercase" => is_lower(value),
        "change_case:english_capital" => is_upper(value),
        "change_case:capital_word_frequency" => {
            // nltk's word tokenizer splits contractions off ("NASA's" → "NASA", "'s") and keeps hyphenated words
            let capitals = value
                .split(|c: char| c.is_whitespace() || c == '\'' || c == '\u{2019}')
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                .filter(|w| is_upper(w))
                .count();
            kw.compare(capitals, "capital_frequency", "capital_relation")?
        }
        "startend:end_checker" => {
            // quotes around the whole response do not count
            let end = kw.str("end_phrase")?.trim().to_lowercase();
            value.trim().trim_matches('"').to_lowercase().ends_with(&end)
        }
        "startend:quotation" => {
            let v = value.trim();
            v.chars().count() > 1 && v.starts_with('"') && v.ends_with('"')
        }
        "detectable_content:postscript" => has_postscript(&lower, kw.str("postscript_marker")?.trim()),
        "detectable_content:number_placeholders" => count_placeholders(value) >= kw.count("num_placeholders")?,
        "combination:repeat_prompt" => lower.trim().starts_with(&kw.str("prompt_to_repeat")?.trim().to_lowercase()),
        "combination:two_responses" => {
            // Two different responses separated by six asterisks.
            let parts: Vec<&str> = value.split("******").collect();
            let last = parts.len() - 1;
            let mut valid = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                if p.trim().is_empty() {
                    if i != 0 && i != last {
                        return Ok(false);
                    }
                } else {
                    valid.push(p.trim());
                }
            }
            valid.len() == 2 && valid[0] != valid[1]
        }
        "language:response_language" => {
            return Err(VerifyError::NotImplemented { id: id.into(), why: "it needs a language detector" });
        }
        other => return Err(VerifyError::UnknownInstruction(other.into())),
    })
}

/// Python's `str.islower()`: some cased character, none upper case.
fn is_lower(s: &str) -> bool {
    s.chars().any(char::is_lowercase) && !s.chars().any(char::is_uppercase)
}

/// Python's `str.isupper()`.
fn is_upper(s: &str) -> bool {
    s.chars().any(char::is_uppercase) && !s.chars().any(char::is_lowercase)
}

/// A `\w` character of Python's regular expressions.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Words as IFEval counts them (nltk's `RegexpTokenizer(r"\w+")`): runs of word characters.
fn count_words(s: &str) -> usize {
    s.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty()).count()
}

/// `word` occurs in `text` between word boundaries (`\bword\b`).
fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let boundary =
        |before: Option<char>, after: Option<char>| before.is_some_and(is_word_char) != after.is_some_and(is_word_char);
    text.match_indices(word).any(|(i, w)| {
        let (head, tail) = (&text[..i], &text[i + w.len()..]);
        boundary(head.chars().next_back(), w.chars().next()) && boundary(w.chars().next_back(), tail.chars().next())
    })
}

/// Markdown highlights: `*text*` and `**text**` with something inside (IFEval counts `\*[^\n\*]*\*` and
/// `\*\*[^\n\*]*\*\*` matches whose inside is not blank, so `**bold**` counts once).
fn count_highlights(s: &str) -> usize {
    let b = s.as_bytes();
    // Non-overlapping matches of `open [^\n*]* close`, left to right, where open and close are `width` stars.
    let matches = |width: usize| {
        let (mut i, mut n) = (0, 0);
        while i + width <= b.len() {
            if b[i..i + width].iter().all(|&c| c == b'*') {
                let inner = i + width;
                let end = b[inner..].iter().position(|&c| c == b'*' || c == b'\n').map(|p| inner + p);
                if let Some(j) = end.filter(|&j| b[j..].len() >= width && b[j..j + width].iter().all(|&c| c == b'*')) {
                    if !s[inner..j].trim().is_empty() {
                        n += 1;
                    }
                    i = j + width;
                    continue;
                }
            }
            i += 1;
        }
        n
    };
    matches(1) + matches(2)
}

/// Placeholders `[...]` on one line (`\[.*?\]`).
fn count_placeholders(s: &str) -> usize {
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b'['
            && let Some(j) = b[i + 1..].iter().position(|&c| c == b']' || c == b'\n').map(|p| i + 1 + p)
            && b[j] == b']'
        {
            n += 1;
            i = j + 1;
            continue;
        }
        i += 1;
    }
    n
}

/// A postscript: "P.S." (also "p. s."), "P.P.S" (also "p. p. s") or the given marker, in any case.
fn has_postscript(lower: &str, marker: &str) -> bool {
    // Each piece must follow the previous one, with at most one whitespace character between pieces.
    let pattern: &[&str] = match marker {
        "P.P.S" => &["p.", "p.", "s"],
        "P.S." => &["p.", "s."],
        _ => return !marker.is_empty() && lower.contains(&marker.to_lowercase()),
    };
    lower.match_indices(pattern[0]).any(|(i, first)| {
        let mut rest = &lower[i + first.len()..];
        pattern[1..].iter().all(|piece| {
            let r = rest.strip_prefix(|c: char| c.is_whitespace()).unwrap_or(rest);
            match r.strip_prefix(piece) {
                Some(after) => {
                    rest = after;
                    true
                }
                None => false,
            }
        })
    })
}

/// Sentences as IFEval counts them: nltk's Punkt tokenizer with its English model, approximated here by Punkt's
/// main rule (the model itself is not shipped): a sentence ends at a run of `.`, `?` or `!` (closing quotes or
/// brackets may follow) that is followed by whitespace or the end of the text, so `3.14`, `example.com` and
/// `Wow!!!` hold no break inside. A single `.` after an abbreviation is no break: after a title (Mr. Dr. St. …)
/// or an initial (`J. Smith`) never, after another abbreviation (etc. e.g. Inc. U.S. …; any word with an inner
/// period) only when the next word starts with a capital. Text after the last break is one more sentence.
fn count_sentences(text: &str) -> usize {
    const TITLES: [&str; 12] = ["mr", "mrs", "ms", "dr", "prof", "st", "capt", "col", "lt", "sgt", "mt", "rev"];
    const ABBREVIATIONS: [&str; 16] = [
        "etc", "e.g", "i.e", "vs", "inc", "ltd", "co", "corp", "jr", "sr", "a.m", "p.m", "fig", "approx", "dept", "no",
    ];
    let c: Vec<char> = text.chars().collect();
    let (mut sentences, mut open, mut i) = (0, false, 0);
    while i < c.len() {
        if !matches!(c[i], '.' | '?' | '!') {
            open |= !c[i].is_whitespace();
            i += 1;
            continue;
        }
        let start = i;
        while i < c.len() && matches!(c[i], '.' | '?' | '!') {
            i += 1;
        }
        let run = i - start;
        while i < c.len() && matches!(c[i], '"' | '\'' | ')' | ']' | '\u{201d}' | '\u{2019}') {
            i += 1;
        }
        if i < c.len() && !c[i].is_whitespace() {
            open = true;
            continue;
        }
        // the word before the run, without opening punctuation
        let word_start = c[..start].iter().rposition(|ch| ch.is_whitespace()).map_or(0, |p| p + 1);
        let word: String =
            c[word_start..start].iter().collect::<String>().trim_start_matches(['(', '"', '\'', '[']).to_lowercase();
        let next_upper = c[i..].iter().find(|ch| !ch.is_whitespace()).is_some_and(|ch| ch.is_uppercase());
        let single_dot = run == 1 && c[start] == '.';
        let initial = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
        let abbreviation = single_dot
            && (TITLES.contains(&word.as_str())
                || initial
                || ((ABBREVIATIONS.contains(&word.as_str())
                    || (word.contains('.') && word.chars().any(char::is_alphabetic)))
                    && !next_upper));
        open = true;
        if !abbreviation {
            sentences += 1;
            open = false;
        }
    }
    sentences + usize::from(open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gsm8k_answers_follow_hashes_or_are_the_last_number() {
        assert_eq!(gsm8k_answer("She makes 9 * 2 = $18.\n#### 18").as_deref(), Some("18"));
        assert_eq!(gsm8k_answer("#### $1,080.00").as_deref(), Some("1080.00"));
        assert_eq!(gsm8k_answer("So 3 - 5 = -2, and the answer is -2.").as_deref(), Some("-2"));
        assert_eq!(gsm8k_answer("Between 3-2 apples").as_deref(), Some("2"));
        assert_eq!(gsm8k_answer("The first 5, then #### 7 and 9").as_deref(), Some("7"));
        assert_eq!(gsm8k_answer("no number here"), None);
        let v = |t: Value, r: &str| verify("gsm8k", &t, r).unwrap();
        assert_eq!(v(json!("1,080"), "It costs $1,080.00."), Verdict { passed: 1, total: 1 });
        assert_eq!(v(json!(18), "9 * 2 = 18.0"), Verdict { passed: 1, total: 1 });
        assert_eq!(v(json!("18"), "#### 17 (18 was wrong)"), Verdict { passed: 0, total: 1 });
        assert_eq!(v(json!("0.5"), "half: 0.50"), Verdict { passed: 1, total: 1 });
        assert!(!v(json!("5"), "-5").all_passed());
        assert_eq!(v(json!("18"), "eighteen").passed, 0);
        assert_eq!(
            verify("gsm8k", &json!("18 or 19"), "18").unwrap_err().to_string(),
            "gsm8k ground truth: \"18 or 19\" is not one number"
        );
        assert_eq!(
            verify("math", &json!("1"), "1").unwrap_err().to_string(),
            "unknown verifier \"math\" (known: gsm8k, ifeval)"
        );
    }

    #[test]
    fn sentences_are_counted_like_punkt() {
        assert_eq!(count_sentences("One. Two! Three?"), 3);
        assert_eq!(count_sentences("Pi is 3.14 and Mr. Smith works at Acme Inc. in the U.S. today."), 1);
        assert_eq!(count_sentences("Wow!!! Visit example.com now. Bye"), 3);
        assert_eq!(count_sentences("He said \"hi.\" Then left"), 2);
        assert_eq!(count_sentences("Apples, pears, etc. Then more."), 2);
        assert_eq!(count_sentences("J. R. R. Tolkien wrote it."), 1);
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("  \n "), 0);
    }

    #[test]
    fn highlights_and_placeholders_count_like_the_reference_regexes() {
        assert_eq!(count_highlights("*a* and **b** and ** ** and *\n*"), 2);
        assert_eq!(count_highlights("*one*two*three*"), 2); // *one*, *three*
        assert_eq!(count_placeholders("[name] at [address] and [broken\n]"), 2);
    }
}
