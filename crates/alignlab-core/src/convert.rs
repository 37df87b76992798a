//! Streaming conversions between the dataset formats of DESIGN.md §3 (`alignlab data convert`, `data check`):
//! each input line is parsed by the same reader the trainers use and becomes zero or more output lines before
//! the next is read, so a file of any size converts in one line's worth of memory.
//!
//! - ranked lists (and OpenAssistant trees) → pairs: every pair of a list, ties kept as `tie: true` records
//!   (dropped with `drop_ties`), strength from score gaps;
//! - ratings → pairs: the responses of one prompt compared two by two on one attribute or a weighted sum of
//!   them, strength from the score gap (see [`ratings_to_pairs`]); the ratings of a prompt must be on
//!   consecutive lines (as HelpSteer2 writes them), so only one prompt's ratings are held at a time;
//! - GSM8K (`{"question", "answer"}`) and IFEval input records → verifiable records ([`crate::verify`]);
//! - pairs → unpaired: TRL's `unpair_preference_dataset` per pair (chosen desirable, rejected undesirable);
//! - plain ↔ conversational: plain fields become one user / assistant message (TRL's conversational format);
//!   messages become text rendered with a model's chat template, as TRL's `maybe_apply_chat_template` does
//!   (prompt with the generation prompt, each response as what the template adds after it).

use std::io::{BufRead, Write};

use serde::Serialize;
use serde_json::Value;

use crate::data::{
    DataError, DataErrorKind, ListRecord, PreferenceRecord, RatingRecord, ReadOptions, Text, UnpairedRecord,
    list_to_pairs, pairs_to_unpaired, parse_list, parse_preference, parse_rating, parse_unpaired, read_oasst_trees,
};
use crate::jsonl::{JsonlLines, Line, Problem};
use crate::tokenizer::{Message, Tokenizer};
use crate::verify::{VerifiableRecord, parse_verifiable};

/// An input format, by the keys of its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"prompt", "chosen", "rejected"}` (or an implicit prompt).
    Pairs,
    /// `{"prompt", "completion", "label"}` (KTO).
    Unpaired,
    /// `{"prompt", "responses", "ranking" | "scores"}`.
    Lists,
    /// OpenAssistant message trees, `{"message_tree_id", "prompt": node}`.
    Oasst,
    /// `{"prompt", "response", "attributes"}` (HelpSteer2).
    Ratings,
    /// `{"prompt", "ground_truth", "verifier"}`, or GSM8K / IFEval input records.
    Verifiable,
}

impl Format {
    /// The format of a record from its keys; `None` when no format has them.
    pub fn detect(record: &str) -> Option<Format> {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(record) else { return None };
        let has = |k: &str| obj.contains_key(k);
        Some(if has("message_tree_id") {
            Format::Oasst
        } else if has("responses") {
            Format::Lists
        } else if has("completion") && has("label") {
            Format::Unpaired
        } else if has("chosen") && has("rejected") {
            Format::Pairs
        } else if has("response") && has("attributes") {
            Format::Ratings
        } else if (has("ground_truth") && has("verifier"))
            || (has("question") && has("answer"))
            || has("instruction_id_list")
        {
            Format::Verifiable
        } else {
            return None;
        })
    }
}

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The input format itself, re-written as the reader understood it (what `data check` validates).
    Same,
    Pairs,
    Unpaired,
    Lists,
    /// The input format with every plain-text field as messages.
    Chat,
    /// The input format with every conversation rendered to text by a chat template.
    Plain,
    /// `{"prompt", "ground_truth", "verifier"}` (from GSM8K and IFEval records).
    Verifiable,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{file}: {err}")]
    Io { file: String, err: std::io::Error },
    #[error("{file}: {from:?} records cannot become {to:?} records{why}")]
    Unsupported { file: String, from: Format, to: Target, why: &'static str },
    #[error("{file}: no record to tell the format from (empty, or the first record has no known keys)")]
    UnknownFormat { file: String },
    #[error("{file}: rendering conversations as text needs a model's chat template (pass --model)")]
    NoTemplate { file: String },
}

/// Options of [`convert`].
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    pub read: ReadOptions,
    /// The input format (detected from the first record when `None`).
    pub from: Option<Format>,
    /// Leave out pairs marked `tie` (lists with equal labels give them).
    pub drop_ties: bool,
    /// Ratings → pairs: the score of a response is Σ weight · attribute over these; empty means
    /// [`DEFAULT_RATING_ATTRIBUTE`] alone.
    pub rating_weights: Vec<(String, f32)>,
}

/// The attribute ratings are compared on by default (HelpSteer2's overall one).
pub const DEFAULT_RATING_ATTRIBUTE: &str = "helpfulness";

/// What a conversion read, wrote and skipped.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConvertReport {
    pub format: Option<Format>,
    pub records_read: usize,
    pub records_written: usize,
    /// Pairs written with `tie: true`.
    pub ties: usize,
    /// (1-based line, reason) of each line skipped with `skip_bad_lines`.
    pub skipped: Vec<(usize, String)>,
}

/// One parsed input record.
enum Record {
    Pair(PreferenceRecord),
    Unpaired(UnpairedRecord),
    List(ListRecord),
    Rating(RatingRecord),
    Verifiable(VerifiableRecord),
}

/// The ratings of the prompt being read (ratings → pairs), and the prompts already done.
#[derive(Default)]
struct RatingGroups {
    prompt: Option<String>,
    records: Vec<RatingRecord>,
    done: std::collections::HashSet<u64>,
}

/// Reads JSONL records of one format from `input` and writes them as `to` to `output`, line by line.
/// `tokenizer` supplies the chat template for [`Target::Plain`].
pub fn convert(
    input: impl BufRead,
    mut output: impl Write,
    source: &str,
    to: Target,
    tokenizer: Option<&Tokenizer>,
    opts: &ConvertOptions,
) -> Result<ConvertReport, ConvertError> {
    let io = |err| ConvertError::Io { file: source.to_string(), err };
    if let Some(from) = opts.from {
        check_supported(source, from, to)?;
    }
    let mut report = ConvertReport { format: opts.from, ..ConvertReport::default() };
    let mut groups = RatingGroups::default();
    if to == Target::Plain && tokenizer.and_then(Tokenizer::chat_template).is_none() {
        return Err(ConvertError::NoTemplate { file: source.into() });
    }
    for item in JsonlLines::new(input, opts.read.max_line_bytes) {
        if opts.read.max_records.is_some_and(|max| report.records_read >= max) {
            break;
        }
        let (line, text) = match item.map_err(io)? {
            Line::Text { line, text } => (line, text),
            Line::Bad { line, problem } => {
                let kind = match problem {
                    Problem::TooLong { len, max } => DataErrorKind::LineTooLong { len, max },
                    Problem::NotUtf8 { at } => {
                        DataErrorKind::InvalidJson { column: at + 1, message: "not UTF-8".into() }
                    }
                };
                skip_or_fail(&mut report, &opts.read, source, line, kind)?;
                continue;
            }
        };
        let format = match report.format {
            Some(f) => f,
            None => {
                let f = Format::detect(&text).ok_or_else(|| ConvertError::UnknownFormat { file: source.into() })?;
                check_supported(source, f, to)?;
                report.format = Some(f);
                f
            }
        };
        let records = match parse(format, &text, &opts.read) {
            Ok(records) => records,
            Err(kind) => {
                skip_or_fail(&mut report, &opts.read, source, line, kind)?;
                continue;
            }
        };
        report.records_read += 1;
        for record in records {
            let out = match (record, to) {
                (Record::Rating(r), Target::Pairs) => {
                    rating_group(&mut groups, r, line, source, opts, &mut report, &mut output)?;
                    continue;
                }
                (record, _) => transform(record, to, tokenizer),
            };
            let out = out.map_err(|kind| DataError { file: Some(source.into()), line, kind })?;
            write_records(out, opts, &mut report, &mut output).map_err(io)?;
        }
    }
    if report.format.is_none() {
        return Err(ConvertError::UnknownFormat { file: source.into() });
    }
    flush_ratings(&mut groups, source, opts, &mut report, &mut output)?;
    output.flush().map_err(io)?;
    Ok(report)
}

/// Writes output records as JSONL, counting ties (or leaving them out with `drop_ties`).
fn write_records(
    records: Vec<Value>,
    opts: &ConvertOptions,
    report: &mut ConvertReport,
    mut output: impl Write,
) -> std::io::Result<()> {
    for out in records {
        if let Value::Object(o) = &out
            && o.get("tie") == Some(&Value::Bool(true))
        {
            if opts.drop_ties {
                continue;
            }
            report.ties += 1;
        }
        serde_json::to_writer(&mut output, &out)?;
        output.write_all(b"\n")?;
        report.records_written += 1;
    }
    Ok(())
}

/// Adds a rating to its prompt's group; a new prompt first writes the pairs of the group before it. A prompt
/// whose group was already written is an error: its pairs with the earlier responses would be lost.
fn rating_group(
    groups: &mut RatingGroups,
    mut rating: RatingRecord,
    line: usize,
    source: &str,
    opts: &ConvertOptions,
    report: &mut ConvertReport,
    output: impl Write,
) -> Result<(), ConvertError> {
    let key = serde_json::to_string(&rating.prompt).expect("text serialises");
    if groups.prompt.as_ref() != Some(&key) {
        flush_ratings(groups, source, opts, report, output)?;
        if groups.done.contains(&hash(&key)) {
            let reason = "this prompt's ratings are not on consecutive lines (sort the file by prompt)".into();
            let kind = DataErrorKind::InvalidField { field: "prompt", reason };
            return Err(DataError { file: Some(source.into()), line, kind }.into());
        }
        groups.prompt = Some(key);
    }
    if groups.records.len() >= opts.read.max_responses {
        let reason = format!("more than {} ratings of one prompt", opts.read.max_responses);
        let kind = DataErrorKind::InvalidField { field: "prompt", reason };
        return Err(DataError { file: Some(source.into()), line, kind }.into());
    }
    rating.line = line;
    groups.records.push(rating);
    Ok(())
}

/// Writes the pairs of the group being read, and marks its prompt done.
fn flush_ratings(
    groups: &mut RatingGroups,
    source: &str,
    opts: &ConvertOptions,
    report: &mut ConvertReport,
    output: impl Write,
) -> Result<(), ConvertError> {
    let Some(prompt) = groups.prompt.take() else { return Ok(()) };
    groups.done.insert(hash(&prompt));
    let records = std::mem::take(&mut groups.records);
    let pairs = ratings_to_pairs(&records, &opts.rating_weights).map_err(|(line, kind)| DataError {
        file: Some(source.into()),
        line,
        kind,
    })?;
    let io = |err| ConvertError::Io { file: source.to_string(), err };
    write_records(pairs.iter().map(json).collect(), opts, report, output).map_err(io)
}

fn hash(s: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(s)
}

/// Pairs from the ratings of one prompt (HelpSteer2's attributes, 0–4): each response's score is its
/// `weights`-weighted sum of attributes (empty `weights`: [`DEFAULT_RATING_ATTRIBUTE`] alone), and every two
/// responses i < j give a pair, the higher score chosen. The score gap d gives the strength on the annotation
/// UI's 1..3 scale, read as HelpSteer2-Preference's "slightly better / better / much better": d ≤ 1 → 1,
/// 1 < d ≤ 2 → 2, d > 2 → 3 (one Likert step of a 0–4 attribute is "slightly"). Equal scores (|d| ≤ 1e-6) give
/// `tie: true` with no strength, chosen = the earlier response. With a single attribute the pairs carry it as
/// `objective`. A response without a weighted attribute is an error naming its line and the attribute.
pub fn ratings_to_pairs(
    ratings: &[RatingRecord],
    weights: &[(String, f32)],
) -> Result<Vec<PreferenceRecord>, (usize, DataErrorKind)> {
    let default = [(DEFAULT_RATING_ATTRIBUTE.to_string(), 1.0)];
    let weights = if weights.is_empty() { &default[..] } else { weights };
    let scores = ratings
        .iter()
        .map(|r| {
            weights.iter().try_fold(0.0f32, |sum, (name, w)| match r.attributes.get(name) {
                Some(x) => Ok(sum + w * x),
                None => {
                    let reason = format!("no \"{name}\" rating to compare responses on");
                    Err((r.line, DataErrorKind::InvalidField { field: "attributes", reason }))
                }
            })
        })
        .collect::<Result<Vec<f32>, _>>()?;
    let objective = (weights.len() == 1).then(|| weights[0].0.clone());
    let mut pairs = Vec::new();
    for i in 0..ratings.len() {
        for j in i + 1..ratings.len() {
            let gap = (scores[i] - scores[j]).abs();
            let tie = gap <= 1e-6;
            let (w, l) = if scores[j] > scores[i] && !tie { (j, i) } else { (i, j) };
            let strength = (!tie).then_some(if gap <= 1.0 {
                1.0
            } else if gap <= 2.0 {
                2.0
            } else {
                3.0
            });
            pairs.push(PreferenceRecord {
                prompt: ratings[w].prompt.clone(),
                chosen: ratings[w].response.clone(),
                rejected: ratings[l].response.clone(),
                strength,
                tie,
                both_bad: false,
                objective: objective.clone(),
                annotator: None,
                swapped: false,
                justification: None,
                source: None,
                category: None,
                ref_chosen_logps: None,
                ref_rejected_logps: None,
                line: ratings[w].line,
            });
        }
    }
    Ok(pairs)
}

fn skip_or_fail(
    report: &mut ConvertReport,
    read: &ReadOptions,
    source: &str,
    line: usize,
    kind: DataErrorKind,
) -> Result<(), ConvertError> {
    if !read.skip_bad_lines {
        return Err(DataError { file: Some(source.into()), line, kind }.into());
    }
    report.skipped.push((line, kind.to_string()));
    Ok(())
}

fn check_supported(source: &str, from: Format, to: Target) -> Result<(), ConvertError> {
    let why = match (from, to) {
        (Format::Unpaired, Target::Pairs | Target::Lists) => {
            ": unpaired examples do not say which responses were compared"
        }
        (Format::Pairs, Target::Lists) => ": pairs become lists only by grouping a whole file by prompt",
        (Format::Lists | Format::Oasst, Target::Unpaired) => ": convert to pairs first, then to unpaired",
        (Format::Ratings, Target::Unpaired) => ": convert to pairs first, then to unpaired",
        (Format::Ratings, Target::Lists) => ": ratings become pairs (--to pairs)",
        (Format::Verifiable, Target::Pairs | Target::Unpaired | Target::Lists) => {
            ": verifiable prompts have no responses to compare"
        }
        (Format::Verifiable, _) | (_, Target::Same | Target::Chat | Target::Plain) => return Ok(()),
        (_, Target::Verifiable) => ": only GSM8K and IFEval records become verifiable ones",
        _ => return Ok(()),
    };
    Err(ConvertError::Unsupported { file: source.into(), from, to, why })
}

fn parse(format: Format, text: &str, read: &ReadOptions) -> Result<Vec<Record>, DataErrorKind> {
    Ok(match format {
        Format::Pairs => vec![Record::Pair(parse_preference(text, read.max_line_bytes)?)],
        Format::Unpaired => vec![Record::Unpaired(parse_unpaired(text, read.max_line_bytes)?)],
        Format::Lists => vec![Record::List(parse_list(text, read.max_line_bytes, read.max_responses)?)],
        Format::Oasst => {
            let strict = ReadOptions { skip_bad_lines: false, ..read.clone() };
            let lists = read_oasst_trees("", text, &strict).map_err(|e| e.kind)?;
            lists.records.into_iter().map(Record::List).collect()
        }
        Format::Ratings => vec![Record::Rating(parse_rating(text, read.max_line_bytes)?)],
        Format::Verifiable => vec![Record::Verifiable(parse_verifiable(text, read.max_line_bytes)?)],
    })
}

/// One record as the output records of `to`.
fn transform(record: Record, to: Target, tokenizer: Option<&Tokenizer>) -> Result<Vec<Value>, DataErrorKind> {
    let text = |t: &Text, role: &str, prompt: &Text| -> Result<Text, DataErrorKind> {
        Ok(match (to, t) {
            (Target::Chat, Text::Plain(_)) => Text::Chat(t.to_messages(role)),
            (Target::Plain, Text::Chat(_)) => Text::Plain(render(tokenizer, prompt, (role != "user").then_some(t))?),
            _ => t.clone(),
        })
    };
    let pair = |mut p: PreferenceRecord| -> Result<Value, DataErrorKind> {
        let prompt = p.prompt.clone();
        p.chosen = text(&p.chosen, "assistant", &prompt)?;
        p.rejected = text(&p.rejected, "assistant", &prompt)?;
        p.prompt = text(&prompt, "user", &prompt)?;
        Ok(json(&p))
    };
    Ok(match (record, to) {
        (Record::Pair(p), Target::Unpaired) => pairs_to_unpaired(&[p]).iter().map(json).collect(),
        (Record::Pair(p), _) => vec![pair(p)?],
        (Record::List(l), Target::Pairs) => list_to_pairs(&l).into_iter().map(pair).collect::<Result<_, _>>()?,
        (Record::List(mut l), _) => {
            let prompt = l.prompt.clone();
            l.responses = l.responses.iter().map(|r| text(r, "assistant", &prompt)).collect::<Result<_, _>>()?;
            l.prompt = text(&prompt, "user", &prompt)?;
            vec![json(&l)]
        }
        (Record::Unpaired(mut u), _) => {
            let prompt = u.prompt.clone();
            u.completion = text(&u.completion, "assistant", &prompt)?;
            u.prompt = text(&prompt, "user", &prompt)?;
            vec![json(&u)]
        }
        (Record::Rating(mut r), _) => {
            let prompt = r.prompt.clone();
            r.response = text(&r.response, "assistant", &prompt)?;
            r.prompt = text(&prompt, "user", &prompt)?;
            vec![json(&r)]
        }
        (Record::Verifiable(mut v), _) => {
            v.prompt = text(&v.prompt.clone(), "user", &v.prompt)?;
            vec![json(&v)]
        }
    })
}

/// TRL's `maybe_apply_chat_template`: the prompt rendered with the generation prompt, or a response as the text
/// the template adds after that prompt.
fn render(tokenizer: Option<&Tokenizer>, prompt: &Text, response: Option<&Text>) -> Result<String, DataErrorKind> {
    let tok = tokenizer.expect("checked before reading: a template is at hand");
    let err = |e: crate::tokenizer::TokenizerError| DataErrorKind::Tokenizer(e.to_string());
    let prompt_msgs: Vec<Message> = prompt.to_messages("user");
    let rendered = tok.apply_chat_template(&prompt_msgs, true).map_err(err)?;
    let Some(response) = response else { return Ok(rendered) };
    let mut msgs = prompt_msgs;
    msgs.extend(response.to_messages("assistant"));
    let full = tok.apply_chat_template(&msgs, false).map_err(err)?;
    full.strip_prefix(&rendered).map(str::to_string).ok_or(DataErrorKind::TemplateMismatch { which: "response" })
}

/// A record as JSON without what the readers fill in by default: the line number, `null`s and the flags that
/// default to false (`tie`, `both_bad`, `swapped`; KTO's `label` is data and always written).
fn json(record: &impl Serialize) -> Value {
    const DEFAULT_FALSE: [&str; 3] = ["tie", "both_bad", "swapped"];
    let mut value = serde_json::to_value(record).expect("records serialise");
    if let Value::Object(o) = &mut value {
        o.retain(|k, v| k != "line" && !v.is_null() && !(DEFAULT_FALSE.contains(&k.as_str()) && *v == false));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiny::tiny_gguf;
    use crate::weights::gguf::Gguf;
    use serde_json::json;

    fn run(input: &str, to: Target, opts: &ConvertOptions) -> Result<(Vec<Value>, ConvertReport), ConvertError> {
        let mut out = Vec::new();
        let tok = Tokenizer::from_gguf(&Gguf::parse(tiny_gguf(0)).unwrap()).unwrap();
        let report = convert(input.as_bytes(), &mut out, "in.jsonl", to, Some(&tok), opts)?;
        let lines = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        Ok((lines, report))
    }

    #[test]
    fn lists_become_every_pair_with_ties_kept_or_dropped() {
        let input = r#"{"prompt": "p", "responses": ["a", "b", "c"], "scores": [1, 3, 1]}"#;
        let (out, report) = run(input, Target::Pairs, &ConvertOptions::default()).unwrap();
        assert_eq!(
            out,
            [
                json!({"prompt": "p", "chosen": "b", "rejected": "a", "strength": 2.0}),
                json!({"prompt": "p", "chosen": "a", "rejected": "c", "tie": true}),
                json!({"prompt": "p", "chosen": "b", "rejected": "c", "strength": 2.0}),
            ]
        );
        assert_eq!(report.format, Some(Format::Lists));
        assert_eq!((report.records_read, report.records_written, report.ties), (1, 3, 1));
        let dropped = run(input, Target::Pairs, &ConvertOptions { drop_ties: true, ..Default::default() }).unwrap();
        assert_eq!((dropped.1.records_written, dropped.1.ties), (2, 0));
    }

    #[test]
    fn pairs_become_unpaired_and_conversations_and_back() {
        let input = r#"{"prompt": "Hi", "chosen": "Hello", "rejected": "Go", "annotator": "x"}"#;
        let (out, _) = run(input, Target::Unpaired, &ConvertOptions::default()).unwrap();
        assert_eq!(
            out,
            [
                json!({"prompt": "Hi", "completion": "Hello", "label": true, "annotator": "x"}),
                json!({"prompt": "Hi", "completion": "Go", "label": false, "annotator": "x"}),
            ]
        );
        let (chat, _) = run(input, Target::Chat, &ConvertOptions::default()).unwrap();
        let expected = json!({
            "prompt": [{"role": "user", "content": "Hi"}],
            "chosen": [{"role": "assistant", "content": "Hello"}],
            "rejected": [{"role": "assistant", "content": "Go"}],
            "annotator": "x",
        });
        assert_eq!(chat, std::slice::from_ref(&expected));
        // back to text through the tiny model's ChatML template, as TRL's maybe_apply_chat_template
        let (plain, _) = run(&expected.to_string(), Target::Plain, &ConvertOptions::default()).unwrap();
        assert_eq!(plain[0]["prompt"], "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assert_eq!(plain[0]["chosen"], "Hello<|im_end|>\n");
        assert_eq!(plain[0]["rejected"], "Go<|im_end|>\n");
    }

    #[test]
    fn bad_lines_fail_with_their_line_or_are_skipped_and_counted() {
        let input = "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n\
                     {\"prompt\": 1, \"chosen\": \"b\", \"rejected\": \"c\"}\n\
                     {\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"d\"}\n";
        let err = run(input, Target::Same, &ConvertOptions::default()).unwrap_err().to_string();
        assert!(err.starts_with("in.jsonl:2"), "{err}");
        let read = ReadOptions { skip_bad_lines: true, ..ReadOptions::default() };
        let (out, report) = run(input, Target::Same, &ConvertOptions { read, ..Default::default() }).unwrap();
        assert_eq!((report.records_read, report.records_written, out.len()), (2, 2, 2));
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].0, 2);
    }

    #[test]
    fn impossible_conversions_and_unknown_formats_say_why() {
        let unpaired = r#"{"prompt": "p", "completion": "c", "label": true}"#;
        let err = run(unpaired, Target::Pairs, &ConvertOptions::default()).unwrap_err().to_string();
        assert!(err.contains("do not say which responses were compared"), "{err}");
        for input in [r#"{"text": "x"}"#, ""] {
            let err = run(input, Target::Pairs, &ConvertOptions::default()).unwrap_err().to_string();
            assert!(err.contains("no record to tell the format from"), "{err}");
        }
    }
}
