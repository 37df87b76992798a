//! Preference data: reading TRL-style pairwise JSONL and tokenising pairs into prompt/response ids.
//!
//! A line is `{"prompt", "chosen", "rejected"}` (strings, or lists of `{role, content}` messages), with
//! the optional fields of DESIGN.md §3; unknown fields are ignored, so TRL datasets with extra columns
//! load. Without `prompt`, the prompt is the part `chosen` and `rejected` share (see [`read_preferences`]).
//! Errors name the file, the line and the field, and bad lines can be skipped and counted instead.
//!
//! The other training formats share the reader core ([`read_records`]) and the tokenisation rules: unpaired
//! examples for KTO ([`read_unpaired`]) and ranked lists for LiPO ([`read_lists`], [`read_oasst_trees`]), with
//! converters between them ([`list_to_pairs`], [`pairs_to_unpaired`]). The same core reads ratings
//! ([`read_ratings`]), prompts ([`read_prompts`]), SFT examples ([`read_sft`]), PandaLM's per-annotator labels
//! ([`read_pandalm`]) and verifiable prompts ([`crate::verify::read_verifiable`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::tokenizer::{Message, Tokenizer};

/// A prompt or response: plain text, or a conversation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum Text {
    Plain(String),
    Chat(Vec<Message>),
}

impl Text {
    pub fn is_chat(&self) -> bool {
        matches!(self, Text::Chat(_))
    }

    /// The text as messages; plain text becomes one message with `role`.
    pub fn to_messages(&self, role: &str) -> Vec<Message> {
        match self {
            Text::Plain(s) => vec![Message::new(role, s.clone())],
            Text::Chat(m) => m.clone(),
        }
    }
}

/// One pairwise preference: `chosen` was preferred to `rejected` as a reply to `prompt`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PreferenceRecord {
    pub prompt: Text,
    pub chosen: Text,
    pub rejected: Text,
    /// How strongly chosen was preferred (1..3 in the annotation UI).
    #[serde(default)]
    pub strength: Option<f32>,
    /// The annotator judged both equally good; chosen/rejected order is then arbitrary.
    #[serde(default)]
    pub tie: bool,
    /// The annotator judged both replies bad.
    #[serde(default)]
    pub both_bad: bool,
    /// Which objective the judgement was about (e.g. "helpfulness", "harmlessness").
    #[serde(default)]
    pub objective: Option<String>,
    #[serde(default)]
    pub annotator: Option<String>,
    /// The chosen reply was shown on the right (for position-bias analysis).
    #[serde(default)]
    pub swapped: bool,
    #[serde(default)]
    pub justification: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// Cached reference-model log-probs of the chosen/rejected responses.
    #[serde(default)]
    pub ref_chosen_logps: Option<f32>,
    #[serde(default)]
    pub ref_rejected_logps: Option<f32>,
    /// 1-based line in the file it was read from (0 when not read from a file).
    #[serde(default)]
    pub line: usize,
}

/// What went wrong with one record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataErrorKind {
    #[error("invalid JSON at column {column}: {message}")]
    InvalidJson { column: usize, message: String },
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("line is {len} bytes, more than the limit of {max}")]
    LineTooLong { len: usize, max: usize },
    #[error("missing field \"{0}\"")]
    MissingField(&'static str),
    #[error("field \"{field}\": expected {expected}")]
    WrongType { field: &'static str, expected: &'static str },
    #[error("field \"{field}\": {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("no {0}")]
    NoFormat(&'static str),
    #[error("prompt, chosen and rejected must all be strings or all be message lists")]
    MixedFormats,
    #[error("no \"prompt\" field, and nothing of \"{which}\" remains after the part it shares with \"{other}\"")]
    NothingRemains { which: &'static str, other: &'static str },
    #[error("the prompt is empty and the tokenizer has no bos token to stand for it")]
    EmptyPrompt,
    #[error(
        "the chat template's rendering of prompt + {which} does not start with its rendering of the prompt \
         (with add_generation_prompt), so the response cannot be separated from the prompt"
    )]
    TemplateMismatch { which: &'static str },
    #[error("{what} is {len} tokens, more than {max} (truncation is set to Error)")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("\"{which}\" has no tokens left after truncation (prompt {prompt_len} tokens, max_length {max_length})")]
    EmptyResponse { which: &'static str, prompt_len: usize, max_length: usize },
    #[error("the tokenizer has no eos token, which plain-text responses need to end with")]
    NoEos,
    #[error("{0}")]
    Tokenizer(String),
}

/// A bad record, with where it is: displays as `pairs.jsonl:17: missing field "rejected"`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataError {
    /// The file name given to the reader; None for records that were not read from a file.
    pub file: Option<String>,
    /// 1-based line.
    pub line: usize,
    pub kind: DataErrorKind,
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}: {}", self.line, self.kind),
            None => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

impl std::error::Error for DataError {}

impl DataError {
    /// The same error, located in `file` (for errors from [`tokenize_pair`], which knows only the line).
    pub fn in_file(mut self, file: &str) -> DataError {
        self.file = Some(file.to_string());
        self
    }
}

/// How to read a file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct ReadOptions {
    /// Skip bad lines (listed in [`ReadReport::skipped`]) instead of failing on the first.
    pub skip_bad_lines: bool,
    /// Longer lines are bad lines; bounds the memory one line can take.
    pub max_line_bytes: usize,
    /// Stop after this many records.
    pub max_records: Option<usize>,
    /// Most responses in one listwise record; longer lists are bad lines.
    pub max_responses: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { skip_bad_lines: false, max_line_bytes: 16 << 20, max_records: None, max_responses: 64 }
    }
}

/// The records read, and the lines skipped with why; every reader returns one (pairwise records by default).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ReadReport<T = PreferenceRecord> {
    pub records: Vec<T>,
    /// (1-based line, reason) of each skipped line.
    pub skipped: Vec<(usize, String)>,
}

impl<T> Default for ReadReport<T> {
    fn default() -> Self {
        Self { records: Vec::new(), skipped: Vec::new() }
    }
}

/// Reads pairwise preferences from JSONL `text`; `source` is the file name used in messages.
///
/// Blank lines are ignored; a UTF-8 byte-order mark and `\r\n` line ends are accepted. Field types are
/// checked: `prompt`/`chosen`/`rejected` are strings or lists of `{role, content}` (all three of the same
/// kind), `strength` and `ref_*_logps` finite numbers, `tie`/`both_bad`/`swapped` bools, the others
/// strings; `null` counts as absent.
///
/// Implicit prompt (no `prompt` field, as in Anthropic HH-RLHF): for conversations the prompt is the
/// leading messages that chosen and rejected share, and each keeps the rest. For plain text the prompt is
/// the longest common prefix, cut back to a char boundary and then to the start of the last run of
/// whitespace in it: the responses start at that whitespace (`"…\n\nAssistant:"` + `" Sure"`), which is
/// where byte-level BPE tokenizers put the boundary anyway (a space belongs to the word after it), so
/// tokenising prompt and response apart gives the same tokens as the joined text (TRL's `extract_prompt`
/// moves one trailing space the same way). If that prefix contains `"\n\nAssistant:"` (Anthropic
/// HH-RLHF transcripts), it ends right after the last one instead, so that replies that begin with the
/// same words ("I think …") stay whole, as in TRL's HH script. If nothing of chosen or rejected remains,
/// the line is bad.
pub fn read_preferences(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport, DataError> {
    read_records(source, text, opts, |raw| parse_preference(raw, opts.max_line_bytes), |r, line| r.line = line)
}

/// The reader core every format shares: JSONL (blank lines ignored, BOM and `\r\n` accepted) or one JSON
/// array of records (LLaMA-Factory's `.json` files; each element is located by the line it starts on, and
/// bounded by `max_line_bytes` like a line). `parse` turns one record's text into a record; errors name the
/// file and line, or are skipped and counted with `skip_bad_lines`.
pub fn read_records<T>(
    source: &str,
    text: &str,
    opts: &ReadOptions,
    parse: impl Fn(&str) -> Result<T, DataErrorKind>,
    set_line: impl Fn(&mut T, usize),
) -> Result<ReadReport<T>, DataError> {
    let mut report = ReadReport::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let items: Vec<(usize, &str)> = if text.trim_start().starts_with('[') {
        json_array_items(text).map_err(|(line, kind)| DataError { file: Some(source.to_string()), line, kind })?
    } else {
        text.split('\n').enumerate().map(|(i, raw)| (i + 1, raw.strip_suffix('\r').unwrap_or(raw))).collect()
    };
    for (line, raw) in items {
        if opts.max_records.is_some_and(|max| report.records.len() >= max) {
            break;
        }
        if raw.trim().is_empty() {
            continue;
        }
        match parse(raw) {
            Ok(mut rec) => {
                set_line(&mut rec, line);
                report.records.push(rec);
            }
            Err(kind) if opts.skip_bad_lines => report.skipped.push((line, kind.to_string())),
            Err(kind) => return Err(DataError { file: Some(source.to_string()), line, kind }),
        }
    }
    Ok(report)
}

/// The elements of a top-level JSON array as (1-based line where each starts, its text), found by a scan that
/// tracks strings and nesting only; each element is then parsed on its own, so one bad record names its line.
fn json_array_items(text: &str) -> Result<Vec<(usize, &str)>, (usize, DataErrorKind)> {
    let bytes = text.as_bytes();
    let (mut items, mut line, mut depth, mut start) = (Vec::new(), 1, 0usize, None::<(usize, usize)>);
    let (mut in_string, mut escaped, mut closed) = (false, false, false);
    let unexpected = |line, found: &str| {
        let message = format!("the JSON array {found}");
        (line, DataErrorKind::InvalidJson { column: 0, message })
    };
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth == 0 => return Err(unexpected(line, "has an unmatched closing bracket")),
            b']' | b'}' => depth -= 1,
            _ => {}
        }
        if closed && !b.is_ascii_whitespace() {
            return Err(unexpected(line, "is followed by more text"));
        }
        let (separator, end) = (b == b',' && depth == 1, b == b']' && depth == 0);
        if separator || end {
            if let Some((from, at)) = start.take() {
                items.push((at, text[from..i].trim()));
            } else if separator {
                return Err(unexpected(line, "has an empty element"));
            }
            closed = end;
        } else if depth >= 1 && start.is_none() && !b.is_ascii_whitespace() && !(depth == 1 && b == b'[') {
            start = Some((i, line));
        }
    }
    if !closed {
        return Err(unexpected(line, "ends before its closing \"]\""));
    }
    Ok(items)
}

/// One record's JSON object, or why not.
pub(crate) fn parse_object(line: &str, max_line_bytes: usize) -> Result<Map<String, Value>, DataErrorKind> {
    if line.len() > max_line_bytes {
        return Err(DataErrorKind::LineTooLong { len: line.len(), max: max_line_bytes });
    }
    let value: Value = serde_json::from_str(line).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        DataErrorKind::InvalidJson { column: e.column(), message }
    })?;
    match value {
        Value::Object(o) => Ok(o),
        other => Err(DataErrorKind::NotAnObject { found: json_kind(&other) }),
    }
}

/// LLaMA-Factory's ShareGPT records in TRL's shape, in place, so its files load as they are: `conversations`
/// becomes `prompt` when there is none, messages `{"from", "value"}` become `{"role", "content"}` (`human` →
/// `user`, `gpt` → `assistant`, other roles kept, also in `messages`), and a single message object in `chosen`,
/// `rejected` or `completion` becomes a one-message list. TRL records pass through unchanged.
fn from_sharegpt(obj: &mut Map<String, Value>) -> Result<(), DataErrorKind> {
    if !obj.contains_key("prompt")
        && let Some(c) = obj.remove("conversations")
    {
        obj.insert("prompt".into(), c);
    }
    for field in ["prompt", "chosen", "rejected", "completion", "messages"] {
        let Some(v) = obj.get_mut(field) else { continue };
        if v.is_object() {
            *v = Value::Array(vec![v.take()]);
        }
        let Value::Array(items) = v else { continue };
        for item in items.iter_mut() {
            let Value::Object(m) = item else { continue };
            if m.contains_key("role") || !m.contains_key("from") {
                continue;
            }
            let role = match m.remove("from") {
                Some(Value::String(r)) if r == "human" => "user".to_string(),
                Some(Value::String(r)) if r == "gpt" => "assistant".to_string(),
                Some(Value::String(r)) => r,
                _ => return Err(DataErrorKind::WrongType { field: "from", expected: "a role name" }),
            };
            m.insert("role".into(), Value::String(role));
            if let Some(value) = m.remove("value") {
                m.insert("content".into(), value);
            }
        }
    }
    Ok(())
}

/// The columns of `lvwerra/stack-exchange-paired` (and torchtune's fixture of it) in TRL's names, in place:
/// `question` → `prompt`, `response_j` (the answer with more votes) → `chosen`, `response_k` → `rejected`, when
/// the record has none of TRL's.
fn from_stack_exchange_paired(obj: &mut Map<String, Value>) {
    if ["prompt", "chosen", "rejected"].iter().any(|k| obj.contains_key(*k)) {
        return;
    }
    for (from, to) in [("question", "prompt"), ("response_j", "chosen"), ("response_k", "rejected")] {
        if let Some(v) = obj.remove(from) {
            obj.insert(to.into(), v);
        }
    }
}

/// Parses one JSONL line into a record (line number 0).
pub fn parse_preference(line: &str, max_line_bytes: usize) -> Result<PreferenceRecord, DataErrorKind> {
    let mut obj = parse_object(line, max_line_bytes)?;
    from_sharegpt(&mut obj)?;
    from_stack_exchange_paired(&mut obj);
    let prompt = text_field(&obj, "prompt")?;
    let chosen = text_field(&obj, "chosen")?.ok_or(DataErrorKind::MissingField("chosen"))?;
    let rejected = text_field(&obj, "rejected")?.ok_or(DataErrorKind::MissingField("rejected"))?;
    if chosen.is_chat() != rejected.is_chat() || prompt.as_ref().is_some_and(|p| p.is_chat() != chosen.is_chat()) {
        return Err(DataErrorKind::MixedFormats);
    }
    let (prompt, chosen, rejected) = match prompt {
        Some(p) => {
            for (field, t) in [("chosen", &chosen), ("rejected", &rejected)] {
                if matches!(t, Text::Chat(m) if m.is_empty()) {
                    return Err(DataErrorKind::InvalidField { field, reason: "empty message list".into() });
                }
            }
            (p, chosen, rejected)
        }
        None => split_implicit_prompt(chosen, rejected)?,
    };
    let Provenance { annotator, source, category } = provenance(&obj)?;
    Ok(PreferenceRecord {
        prompt,
        chosen,
        rejected,
        strength: number_field(&obj, "strength")?,
        tie: bool_field(&obj, "tie")?,
        both_bad: bool_field(&obj, "both_bad")?,
        objective: string_field(&obj, "objective")?,
        annotator,
        swapped: bool_field(&obj, "swapped")?,
        justification: string_field(&obj, "justification")?,
        source,
        category,
        ref_chosen_logps: number_field(&obj, "ref_chosen_logps")?,
        ref_rejected_logps: number_field(&obj, "ref_rejected_logps")?,
        line: 0,
    })
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

pub(crate) fn text_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<Text>, DataErrorKind> {
    present(obj, field).map(|v| text_value(v, field)).transpose()
}

/// A string or a list of `{role, content}` messages; `field` names it in errors.
fn text_value(value: &Value, field: &'static str) -> Result<Text, DataErrorKind> {
    let wrong = DataErrorKind::WrongType { field, expected: "a string or a list of {role, content} messages" };
    match value {
        Value::String(s) => Ok(Text::Plain(s.clone())),
        Value::Array(items) => {
            let mut messages = Vec::with_capacity(items.len());
            for item in items {
                let role = item.get("role").and_then(Value::as_str);
                let content = item.get("content").and_then(Value::as_str);
                match (role, content) {
                    (Some(r), Some(c)) => messages.push(Message::new(r, c)),
                    _ => return Err(wrong),
                }
            }
            Ok(Text::Chat(messages))
        }
        _ => Err(wrong),
    }
}

fn number_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<f32>, DataErrorKind> {
    match present(obj, field) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (x as f32).is_finite() => Ok(Some(x as f32)),
            Some(_) => Err(DataErrorKind::InvalidField { field, reason: format!("{v} is not a finite f32") }),
            None => Err(DataErrorKind::WrongType { field, expected: "a number" }),
        },
    }
}

fn bool_field(obj: &Map<String, Value>, field: &'static str) -> Result<bool, DataErrorKind> {
    match present(obj, field) {
        None => Ok(false),
        Some(v) => v.as_bool().ok_or(DataErrorKind::WrongType { field, expected: "true or false" }),
    }
}

pub(crate) fn string_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, DataErrorKind> {
    match present(obj, field) {
        None => Ok(None),
        Some(v) => {
            v.as_str().map(|s| Some(s.to_string())).ok_or(DataErrorKind::WrongType { field, expected: "a string" })
        }
    }
}

/// The optional provenance fields every record kind carries, read once for all of them.
struct Provenance {
    annotator: Option<String>,
    source: Option<String>,
    category: Option<String>,
}

fn provenance(obj: &Map<String, Value>) -> Result<Provenance, DataErrorKind> {
    Ok(Provenance {
        annotator: string_field(obj, "annotator")?,
        source: string_field(obj, "source")?,
        category: string_field(obj, "category")?,
    })
}

/// The turn marker of Anthropic's HH-RLHF transcripts (`"\n\nHuman: …\n\nAssistant: …"`).
const HH_ASSISTANT: &str = "\n\nAssistant:";

/// Splits chosen/rejected that carry their prompt into (prompt, chosen, rejected); see
/// [`read_preferences`] for the rule.
pub fn split_implicit_prompt(chosen: Text, rejected: Text) -> Result<(Text, Text, Text), DataErrorKind> {
    let nothing = |which, other| DataErrorKind::NothingRemains { which, other };
    match (chosen, rejected) {
        (Text::Chat(c), Text::Chat(r)) => {
            let k = c.iter().zip(&r).take_while(|(a, b)| a == b).count();
            if k == c.len() {
                return Err(nothing("chosen", "rejected"));
            }
            if k == r.len() {
                return Err(nothing("rejected", "chosen"));
            }
            Ok((Text::Chat(c[..k].to_vec()), Text::Chat(c[k..].to_vec()), Text::Chat(r[k..].to_vec())))
        }
        (Text::Plain(c), Text::Plain(r)) => {
            let mut p = c.bytes().zip(r.bytes()).take_while(|(a, b)| a == b).count();
            while !c.is_char_boundary(p) {
                p -= 1;
            }
            let prefix = &c[..p];
            // Start of the last whitespace run in the shared prefix; 0 when it has no whitespace.
            let mut cut = match prefix.char_indices().rev().find(|(_, ch)| ch.is_whitespace()) {
                None => 0,
                Some((i, _)) => prefix[..i]
                    .char_indices()
                    .rev()
                    .take_while(|(_, ch)| ch.is_whitespace())
                    .last()
                    .map_or(i, |(j, _)| j),
            };
            // Anthropic HH-RLHF transcripts: a reply starts after its turn marker even when the two
            // replies begin with the same words.
            if let Some(k) = c[..cut].rfind(HH_ASSISTANT) {
                cut = k + HH_ASSISTANT.len();
            }
            if c.len() == cut {
                return Err(nothing("chosen", "rejected"));
            }
            if r.len() == cut {
                return Err(nothing("rejected", "chosen"));
            }
            Ok((
                Text::Plain(c[..cut].to_string()),
                Text::Plain(c[cut..].to_string()),
                Text::Plain(r[cut..].to_string()),
            ))
        }
        _ => Err(DataErrorKind::MixedFormats),
    }
}

/// What to do with a pair longer than the limits.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Truncation {
    /// Keep the end of the prompt and the start of each response.
    #[default]
    KeepEnd,
    /// Refuse the pair.
    Error,
}

/// Limits and formatting for [`tokenize_pair`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct TokenizeOptions {
    /// Most tokens of prompt + one response.
    pub max_length: usize,
    /// Most tokens of the prompt.
    pub max_prompt_length: usize,
    pub truncation: Truncation,
    /// Also format plain-text records with the chat template (prompt as one user turn, each response as
    /// the assistant's turn), as for an instruct model.
    pub chat_template: bool,
    /// Most responses of a ranked list (LiPO's K; the paper uses 8).
    pub max_list_length: usize,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        TokenizeOptions {
            max_length: 512,
            max_prompt_length: 256,
            truncation: Truncation::KeepEnd,
            chat_template: false,
            max_list_length: 8,
        }
    }
}

/// A tokenised pair: the prompt ids and the ids of each response, which are scored after the prompt.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TokenizedPair {
    pub prompt: Vec<u32>,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
    pub line: usize,
    pub strength: Option<f32>,
    pub ref_chosen_logps: Option<f32>,
    pub ref_rejected_logps: Option<f32>,
}

/// Splits `items` into (train, held out) with `round(eval_fraction · n)` held out, chosen by a seeded shuffle so
/// every surface holds out the same records; the order within each part is the input order.
pub fn train_eval_split<T>(items: Vec<T>, eval_fraction: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let n = items.len();
    let held = ((eval_fraction.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    crate::rng::SplitMix64::new(seed ^ 0x5eed_e7a1).shuffle(&mut order);
    let mut is_eval = vec![false; n];
    order[..held].iter().for_each(|&i| is_eval[i] = true);
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for (item, e) in items.into_iter().zip(is_eval) {
        if e { eval.push(item) } else { train.push(item) }
    }
    (train, eval)
}

/// Tokenises a record into prompt ids and response ids; a trainer scores `prompt ++ response` and
/// masks everything but the response ids.
///
/// Rules (the prompt/response boundary is where preference trainers most often go wrong):
/// - Conversational records (any part a message list, or `opts.chat_template`; plain parts become a user
///   turn for the prompt and an assistant turn for a response): the prompt is the template rendered over
///   the prompt messages with `add_generation_prompt = true`, so it ends with the assistant header. A
///   response is the template rendered over prompt + response messages (no generation prompt) with the
///   prompt's rendering removed from its start; if the full rendering does not start with the prompt's,
///   the record is refused ([`DataErrorKind::TemplateMismatch`]) rather than guessed at. When the response
///   text ends with the eos token followed only by whitespace (ChatML's `<|im_end|>\n`), the whitespace
///   is dropped, so the response ids end with eos — the model learns to stop, and nothing after the stop
///   is trained. Templates that end turns with another token keep their own ending.
/// - Plain records: prompt = encode(prompt); response = encode(response) followed by the eos id (an
///   error if the tokenizer has none).
/// - The prompt gets the bos id in front when the tokenizer asks for it (`add_bos`) and it is not there
///   yet. An empty prompt becomes just the bos id (a first response token needs something before it); with
///   no bos id that is an error.
/// - Truncation (`KeepEnd`): the prompt is cut to its last `max_prompt_length` tokens, then each response
///   to its first `max_length - prompt_len` tokens. With `Truncation::Error` a pair over either limit is
///   refused instead, naming the lengths. A response left with no tokens is an error either way.
///
/// Errors carry the record's line (use [`DataError::in_file`] to add the file name).
pub fn tokenize_pair(
    tok: &Tokenizer,
    rec: &PreferenceRecord,
    opts: &TokenizeOptions,
) -> Result<TokenizedPair, DataError> {
    let responses = [("chosen", "prompt + chosen", &rec.chosen), ("rejected", "prompt + rejected", &rec.rejected)];
    let (prompt, mut ids) = tokenize_responses(tok, &rec.prompt, &responses, rec.line, opts)?;
    let rejected = ids.pop().expect("two responses");
    let chosen = ids.pop().expect("two responses");
    Ok(TokenizedPair {
        prompt,
        chosen,
        rejected,
        line: rec.line,
        strength: rec.strength,
        ref_chosen_logps: rec.ref_chosen_logps,
        ref_rejected_logps: rec.ref_rejected_logps,
    })
}

/// The prompt ids and the ids of each response `(which, what, text)` (`which` names the field in errors,
/// `what` the prompt + response sequence), by the rules of [`tokenize_pair`]; every record format goes
/// through here.
fn tokenize_responses(
    tok: &Tokenizer,
    prompt_text: &Text,
    responses: &[(&'static str, &'static str, &Text)],
    line: usize,
    opts: &TokenizeOptions,
) -> Result<(Vec<u32>, Vec<Vec<u32>>), DataError> {
    let err = |kind| DataError { file: None, line, kind };
    let tok_err = |e: crate::tokenizer::TokenizerError| err(DataErrorKind::Tokenizer(e.to_string()));
    let plain = !opts.chat_template && !prompt_text.is_chat() && responses.iter().all(|(_, _, t)| !t.is_chat());
    let mut ids = Vec::with_capacity(responses.len());
    let mut prompt;
    if plain {
        let eos = tok.eos_id().ok_or_else(|| err(DataErrorKind::NoEos))?;
        let encode = |t: &Text| match t {
            Text::Plain(s) => tok.encode(s).map_err(tok_err),
            Text::Chat(_) => unreachable!("checked plain above"),
        };
        prompt = encode(prompt_text)?;
        for (_, _, r) in responses {
            let mut r = encode(r)?;
            r.push(eos);
            ids.push(r);
        }
    } else {
        let prompt_msgs = prompt_text.to_messages("user");
        let rendered = tok.apply_chat_template(&prompt_msgs, true).map_err(tok_err)?;
        let eos_text = tok.eos_id().and_then(|id| tok.id_to_token(id));
        for &(which, _, resp) in responses {
            let mut msgs = prompt_msgs.clone();
            msgs.extend(resp.to_messages("assistant"));
            let full = tok.apply_chat_template(&msgs, false).map_err(tok_err)?;
            let mut rest =
                full.strip_prefix(&rendered).ok_or_else(|| err(DataErrorKind::TemplateMismatch { which }))?;
            if let Some(eos) = &eos_text {
                let trimmed = rest.trim_end();
                if trimmed.ends_with(eos.as_str()) {
                    rest = trimmed;
                }
            }
            ids.push(tok.encode(rest).map_err(tok_err)?);
        }
        prompt = tok.encode(&rendered).map_err(tok_err)?;
    }
    if let Some(bos) = tok.bos_id()
        && (tok.add_bos() || prompt.is_empty())
        && prompt.first() != Some(&bos)
    {
        prompt.insert(0, bos);
    }
    if prompt.is_empty() {
        return Err(err(DataErrorKind::EmptyPrompt));
    }

    if prompt.len() > opts.max_prompt_length {
        match opts.truncation {
            Truncation::KeepEnd => {
                prompt.drain(..prompt.len() - opts.max_prompt_length);
            }
            Truncation::Error => {
                return Err(err(DataErrorKind::TooLong {
                    what: "prompt",
                    len: prompt.len(),
                    max: opts.max_prompt_length,
                }));
            }
        }
    }
    let budget = opts.max_length.saturating_sub(prompt.len());
    for (&(which, what, _), resp) in responses.iter().zip(&mut ids) {
        if resp.len() > budget {
            match opts.truncation {
                Truncation::KeepEnd => resp.truncate(budget),
                Truncation::Error => {
                    return Err(err(DataErrorKind::TooLong {
                        what,
                        len: prompt.len() + resp.len(),
                        max: opts.max_length,
                    }));
                }
            }
        }
        if resp.is_empty() {
            return Err(err(DataErrorKind::EmptyResponse {
                which,
                prompt_len: prompt.len(),
                max_length: opts.max_length,
            }));
        }
    }
    Ok((prompt, ids))
}

/// Tokenises every record, naming `source` in errors.
pub fn tokenize_pairs(
    tok: &Tokenizer,
    source: &str,
    records: &[PreferenceRecord],
    opts: &TokenizeOptions,
) -> Result<Vec<TokenizedPair>, DataError> {
    records.iter().map(|r| tokenize_pair(tok, r, opts).map_err(|e| e.in_file(source))).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Unpaired examples (KTO) and ranked lists (LiPO)

/// One unpaired example, TRL's KTO format: `completion` as a reply to `prompt` was desirable (`label: true`) or
/// undesirable (`false`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UnpairedRecord {
    pub prompt: Text,
    pub completion: Text,
    pub label: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Cached reference log-prob of the completion (TRL's column name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_logps: Option<f32>,
    /// Cached reference log-prob of the example's KL pair (its prompt with another example's completion;
    /// valid only for the data order it was computed in, as in TRL).
    #[serde(default, rename = "reference_KL_logps", skip_serializing_if = "Option::is_none")]
    pub reference_kl_logps: Option<f32>,
    /// 1-based line in the file it was read from (0 when not read from a file).
    #[serde(default)]
    pub line: usize,
}

/// Tie groups in a `ranking`: `[2, [0, 3], 1]` ranks response 2 first, 0 and 3 tied second, 1 last.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum RankGroup {
    One(usize),
    Tied(Vec<usize>),
}

impl RankGroup {
    fn members(&self) -> &[usize] {
        match self {
            RankGroup::One(i) => std::slice::from_ref(i),
            RankGroup::Tied(v) => v,
        }
    }
}

/// Largest |score| of a list: LiPO-λ's gains 2^ψ − 1 overflow f32 past ψ ≈ 127.
pub const MAX_LIST_SCORE: f32 = 100.0;

/// A ranked list of responses to one prompt (LiPO's data): `ranking` (indices best → worst, tie groups as inner
/// lists) or `scores` (higher = better; equal scores tie), or both (the scores then give the labels).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ListRecord {
    pub prompt: Text,
    pub responses: Vec<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking: Option<Vec<RankGroup>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Cached reference log-probs of the responses, one each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_logps: Option<Vec<f32>>,
    /// 1-based line in the file it was read from (0 when not read from a file).
    #[serde(default)]
    pub line: usize,
}

impl ListRecord {
    /// The labels ψ (higher = better, equal = tie): the scores when given; otherwise each response's win rate
    /// against the rest of the list under the ranking (1 per response below it, ½ per tied one, over K − 1), the
    /// "average win probability" LiPO uses as ψ, in [0, 1].
    pub fn labels(&self) -> Vec<f32> {
        if let Some(s) = &self.scores {
            return s.clone();
        }
        let k = self.responses.len();
        let mut psi = vec![0.0; k];
        let mut below = k;
        for group in self.ranking.iter().flatten() {
            let m = group.members();
            below -= m.len();
            for &i in m {
                psi[i] = (below as f32 + 0.5 * (m.len() - 1) as f32) / (k.max(2) - 1) as f32;
            }
        }
        psi
    }
}

/// Reads unpaired (KTO) examples: TRL's `{"prompt", "completion", "label"}` (strings or message lists), or
/// LLaMA-Factory's `{"messages", "label"}` whose last message, the assistant's, is the completion (its
/// `kto_en_demo.json` loads as it is: a JSON array is read like JSONL). Errors and skipping as
/// [`read_preferences`].
pub fn read_unpaired(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport<UnpairedRecord>, DataError> {
    read_records(source, text, opts, |raw| parse_unpaired(raw, opts.max_line_bytes), |r, line| r.line = line)
}

/// Parses one unpaired record (line number 0).
pub fn parse_unpaired(line: &str, max_line_bytes: usize) -> Result<UnpairedRecord, DataErrorKind> {
    let mut obj = parse_object(line, max_line_bytes)?;
    if !obj.contains_key("prompt")
        && !obj.contains_key("completion")
        && let Some(messages) = obj.remove("messages")
    {
        let Value::Array(mut m) = messages else {
            return Err(DataErrorKind::WrongType { field: "messages", expected: "a list of {role, content} messages" });
        };
        let last = m.pop();
        if last.as_ref().and_then(|l| l.get("role")).and_then(Value::as_str) != Some("assistant") {
            let reason = "its last message is the completion and must be the assistant's".to_string();
            return Err(DataErrorKind::InvalidField { field: "messages", reason });
        }
        obj.insert("prompt".into(), Value::Array(m));
        obj.insert("completion".into(), Value::Array(last.into_iter().collect()));
    }
    from_sharegpt(&mut obj)?;
    let prompt = text_field(&obj, "prompt")?.ok_or(DataErrorKind::MissingField("prompt"))?;
    let completion = text_field(&obj, "completion")?.ok_or(DataErrorKind::MissingField("completion"))?;
    if prompt.is_chat() != completion.is_chat() {
        let reason = "prompt and completion must both be strings or both be message lists".into();
        return Err(DataErrorKind::InvalidField { field: "completion", reason });
    }
    if matches!(&completion, Text::Chat(m) if m.is_empty()) {
        return Err(DataErrorKind::InvalidField { field: "completion", reason: "empty message list".into() });
    }
    let label = match present(&obj, "label") {
        None => return Err(DataErrorKind::MissingField("label")),
        Some(v) => v.as_bool().ok_or(DataErrorKind::WrongType { field: "label", expected: "true or false" })?,
    };
    let Provenance { annotator, source, category } = provenance(&obj)?;
    Ok(UnpairedRecord {
        prompt,
        completion,
        label,
        annotator,
        source,
        category,
        reference_logps: number_field(&obj, "reference_logps")?,
        reference_kl_logps: number_field(&obj, "reference_KL_logps")?,
        line: 0,
    })
}

/// Reads ranked lists `{"prompt", "responses": [...], "ranking": [...] | "scores": [...]}`: 2 to
/// `opts.max_responses` responses, all strings or all message lists like the prompt; a `ranking` names every
/// response exactly once (tie groups as inner lists); `scores` are one finite number per response, at most
/// [`MAX_LIST_SCORE`] in size. Errors and skipping as [`read_preferences`].
pub fn read_lists(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport<ListRecord>, DataError> {
    let parse = |raw: &str| parse_list(raw, opts.max_line_bytes, opts.max_responses);
    read_records(source, text, opts, parse, |r, line| r.line = line)
}

/// Parses one listwise record (line number 0).
pub fn parse_list(line: &str, max_line_bytes: usize, max_responses: usize) -> Result<ListRecord, DataErrorKind> {
    let mut obj = parse_object(line, max_line_bytes)?;
    from_sharegpt(&mut obj)?;
    let invalid = |field, reason: String| DataErrorKind::InvalidField { field, reason };
    let prompt = text_field(&obj, "prompt")?.ok_or(DataErrorKind::MissingField("prompt"))?;
    let items = match present(&obj, "responses") {
        None => return Err(DataErrorKind::MissingField("responses")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(DataErrorKind::WrongType { field: "responses", expected: "a list of responses" }),
    };
    let k = items.len();
    if !(2..=max_responses).contains(&k) {
        return Err(invalid("responses", format!("has {k} responses; a list takes 2 to {max_responses}")));
    }
    let responses = items.iter().map(|v| text_value(v, "responses")).collect::<Result<Vec<_>, _>>()?;
    if responses.iter().any(|r| r.is_chat() != prompt.is_chat() || matches!(r, Text::Chat(m) if m.is_empty())) {
        let reason = "the prompt and every response must all be strings or all be non-empty message lists";
        return Err(invalid("responses", reason.into()));
    }
    let numbers = |field: &'static str| -> Result<Option<Vec<f32>>, DataErrorKind> {
        let Some(v) = present(&obj, field) else { return Ok(None) };
        let wrong = DataErrorKind::WrongType { field, expected: "a list of numbers, one per response" };
        let Value::Array(a) = v else { return Err(wrong) };
        let xs: Vec<f32> = a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect::<Option<_>>().ok_or(wrong)?;
        if xs.len() != k || xs.iter().any(|x| !x.is_finite()) {
            return Err(invalid(field, format!("needs {k} finite numbers, one per response")));
        }
        Ok(Some(xs))
    };
    let scores = numbers("scores")?;
    if scores.as_ref().is_some_and(|s| s.iter().any(|x| x.abs() > MAX_LIST_SCORE)) {
        return Err(invalid(
            "scores",
            format!("|score| must be at most {MAX_LIST_SCORE} (2^score overflows); rescale"),
        ));
    }
    let ranking = match present(&obj, "ranking") {
        None => None,
        Some(v) => {
            let wrong = DataErrorKind::WrongType { field: "ranking", expected: "a list of indices or tie groups" };
            let groups: Vec<RankGroup> = serde_json::from_value(v.clone()).map_err(|_| wrong)?;
            let mut seen = vec![false; k];
            for &i in groups.iter().flat_map(RankGroup::members) {
                if i >= k || std::mem::replace(&mut seen[i], true) {
                    return Err(invalid("ranking", format!("names response {i} twice or out of range (0..{k})")));
                }
            }
            if seen.contains(&false) || groups.iter().any(|g| g.members().is_empty()) {
                return Err(invalid("ranking", format!("must name each of the {k} responses once")));
            }
            Some(groups)
        }
    };
    if ranking.is_none() && scores.is_none() {
        return Err(invalid("ranking", "a list needs \"ranking\" or \"scores\"".into()));
    }
    let Provenance { annotator, source, category } = provenance(&obj)?;
    Ok(ListRecord {
        prompt,
        responses,
        ranking,
        scores,
        annotator,
        source,
        category,
        ref_logps: numbers("ref_logps")?,
        line: 0,
    })
}

/// Every pair of a list as pairwise records: for labels ψ_i > ψ_j, chosen = response i and rejected = j, with
/// `strength` = ψ_i − ψ_j when the list has scores (a ranking alone gives no strength); equal labels give a
/// record with `tie: true` (kept, for the objectives that use ties). Pairs come in index order (i < j).
pub fn list_to_pairs(rec: &ListRecord) -> Vec<PreferenceRecord> {
    let psi = rec.labels();
    let mut out = Vec::new();
    for i in 0..psi.len() {
        for j in i + 1..psi.len() {
            let (w, l) = if psi[j] > psi[i] { (j, i) } else { (i, j) };
            out.push(PreferenceRecord {
                prompt: rec.prompt.clone(),
                chosen: rec.responses[w].clone(),
                rejected: rec.responses[l].clone(),
                strength: rec.scores.as_ref().map(|_| psi[w] - psi[l]).filter(|&s| s > 0.0),
                tie: psi[i] == psi[j],
                both_bad: false,
                objective: None,
                annotator: rec.annotator.clone(),
                swapped: false,
                justification: None,
                source: rec.source.clone(),
                category: rec.category.clone(),
                ref_chosen_logps: rec.ref_logps.as_ref().map(|r| r[w]),
                ref_rejected_logps: rec.ref_logps.as_ref().map(|r| r[l]),
                line: rec.line,
            });
        }
    }
    out
}

/// TRL's `unpair_preference_dataset`: each pair's chosen response becomes a desirable example and its rejected
/// one an undesirable example, all chosen first, then all rejected (TRL's batched map does this per 1000
/// rows). A tie says nothing about either response, so ties are left out.
pub fn pairs_to_unpaired(pairs: &[PreferenceRecord]) -> Vec<UnpairedRecord> {
    let kept: Vec<&PreferenceRecord> = pairs.iter().filter(|p| !p.tie).collect();
    [true, false]
        .iter()
        .flat_map(|&label| {
            kept.iter().map(move |p| UnpairedRecord {
                prompt: p.prompt.clone(),
                completion: if label { p.chosen.clone() } else { p.rejected.clone() },
                label,
                annotator: p.annotator.clone(),
                source: p.source.clone(),
                category: p.category.clone(),
                reference_logps: if label { p.ref_chosen_logps } else { p.ref_rejected_logps },
                reference_kl_logps: None,
                line: p.line,
            })
        })
        .collect()
}

/// OpenAssistant message trees (one `{"message_tree_id", "prompt": node}` per line, nodes `{"text", "role":
/// "prompter" | "assistant", "rank", "replies"}`) as ranked lists: every prompter turn with at least two ranked
/// assistant replies gives one list, whose prompt is the conversation from the root to that turn (`prompter` →
/// `user`) and whose responses are the ranked replies, ordered by `rank` (0 = best; equal ranks tie).
/// Unranked replies are left out. Each list carries its tree's line, and `source` = the tree id.
pub fn read_oasst_trees(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport<ListRecord>, DataError> {
    let parse = |raw: &str| -> Result<Vec<ListRecord>, DataErrorKind> {
        let obj = parse_object(raw, opts.max_line_bytes)?;
        let id = string_field(&obj, "message_tree_id")?;
        let root = present(&obj, "prompt").ok_or(DataErrorKind::MissingField("prompt"))?;
        let mut out = Vec::new();
        oasst_lists(root, &mut Vec::new(), &id, opts.max_responses, &mut out)?;
        Ok(out)
    };
    let trees = read_records(source, text, opts, parse, |lists, line| lists.iter_mut().for_each(|l| l.line = line))?;
    Ok(ReadReport { records: trees.records.into_iter().flatten().collect(), skipped: trees.skipped })
}

fn oasst_lists(
    node: &Value,
    path: &mut Vec<Message>,
    id: &Option<String>,
    max_responses: usize,
    out: &mut Vec<ListRecord>,
) -> Result<(), DataErrorKind> {
    let wrong = |field, expected| DataErrorKind::WrongType { field, expected };
    let text = node.get("text").and_then(Value::as_str).ok_or(wrong("text", "a string in every message"))?;
    let role = match node.get("role").and_then(Value::as_str) {
        Some("prompter") => "user",
        Some("assistant") => "assistant",
        _ => return Err(wrong("role", "\"prompter\" or \"assistant\"")),
    };
    path.push(Message::new(role, text));
    let replies = match node.get("replies") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(r)) => r.as_slice(),
        Some(_) => return Err(wrong("replies", "a list of messages")),
    };
    let mut ranked = Vec::new();
    for r in replies {
        match r.get("rank") {
            None | Some(Value::Null) => {}
            Some(v) => ranked.push((v.as_u64().ok_or(wrong("rank", "a non-negative integer"))?, r)),
        }
    }
    if role == "user" && ranked.len() >= 2 {
        if ranked.len() > max_responses {
            let reason = format!("{} ranked replies, more than {max_responses}", ranked.len());
            return Err(DataErrorKind::InvalidField { field: "replies", reason });
        }
        let mut responses = Vec::new();
        for (_, r) in &ranked {
            let t = r.get("text").and_then(Value::as_str).ok_or(wrong("text", "a string in every message"))?;
            responses.push(Text::Chat(vec![Message::new("assistant", t)]));
        }
        let mut order: Vec<usize> = (0..ranked.len()).collect();
        order.sort_by_key(|&i| ranked[i].0);
        let mut ranking: Vec<RankGroup> = Vec::new();
        for (n, &i) in order.iter().enumerate() {
            let tied = n > 0 && ranked[order[n - 1]].0 == ranked[i].0;
            match (tied, ranking.pop()) {
                (true, Some(RankGroup::One(j))) => ranking.push(RankGroup::Tied(vec![j, i])),
                (true, Some(RankGroup::Tied(mut g))) => {
                    g.push(i);
                    ranking.push(RankGroup::Tied(g));
                }
                (_, last) => {
                    ranking.extend(last);
                    ranking.push(RankGroup::One(i));
                }
            }
        }
        out.push(ListRecord {
            prompt: Text::Chat(path.clone()),
            responses,
            ranking: Some(ranking),
            scores: None,
            annotator: None,
            source: id.clone(),
            category: None,
            ref_logps: None,
            line: 0,
        });
    }
    for r in replies {
        oasst_lists(r, path, id, max_responses, out)?;
    }
    path.pop();
    Ok(())
}

/// A tokenised unpaired example.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TokenizedCompletion {
    pub prompt: Vec<u32>,
    pub completion: Vec<u32>,
    /// Desirable.
    pub label: bool,
    pub line: usize,
    pub reference_logps: Option<f32>,
    pub reference_kl_logps: Option<f32>,
}

/// Tokenises an unpaired example by the rules of [`tokenize_pair`].
pub fn tokenize_completion(
    tok: &Tokenizer,
    rec: &UnpairedRecord,
    opts: &TokenizeOptions,
) -> Result<TokenizedCompletion, DataError> {
    let responses = [("completion", "prompt + completion", &rec.completion)];
    let (prompt, mut ids) = tokenize_responses(tok, &rec.prompt, &responses, rec.line, opts)?;
    Ok(TokenizedCompletion {
        prompt,
        completion: ids.pop().expect("one response"),
        label: rec.label,
        line: rec.line,
        reference_logps: rec.reference_logps,
        reference_kl_logps: rec.reference_kl_logps,
    })
}

/// A tokenised ranked list: its responses' ids and labels ψ (higher = better).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TokenizedList {
    pub prompt: Vec<u32>,
    pub responses: Vec<Vec<u32>>,
    pub labels: Vec<f32>,
    pub line: usize,
    pub ref_logps: Option<Vec<f32>>,
}

/// Tokenises a ranked list by the rules of [`tokenize_pair`]. A list longer than `opts.max_list_length` keeps
/// its first responses (`Truncation::Error`: refused).
pub fn tokenize_list(tok: &Tokenizer, rec: &ListRecord, opts: &TokenizeOptions) -> Result<TokenizedList, DataError> {
    let k = rec.responses.len();
    let keep = k.min(opts.max_list_length);
    if keep < k && opts.truncation == Truncation::Error {
        let reason = format!("{k} responses, more than max_list_length {keep} (truncation is set to Error)");
        let kind = DataErrorKind::InvalidField { field: "responses", reason };
        return Err(DataError { file: None, line: rec.line, kind });
    }
    let responses: Vec<_> = rec.responses[..keep].iter().map(|r| ("responses", "prompt + response", r)).collect();
    let (prompt, ids) = tokenize_responses(tok, &rec.prompt, &responses, rec.line, opts)?;
    let mut labels = rec.labels();
    labels.truncate(keep);
    Ok(TokenizedList {
        prompt,
        responses: ids,
        labels,
        line: rec.line,
        ref_logps: rec.ref_logps.as_ref().map(|r| r[..keep].to_vec()),
    })
}

/// Most attributes a rating may carry (HelpSteer2 has 5).
pub const MAX_ATTRIBUTES: usize = 64;

/// A rated response, HelpSteer2's format: `{"prompt", "response", "attributes": {"helpfulness": 0–4, …}}`
/// (strings or message lists). Trains attribute regression (SteerLM; one reward head per attribute).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RatingRecord {
    pub prompt: Text,
    pub response: Text,
    /// Attribute name → rating, in name order.
    pub attributes: std::collections::BTreeMap<String, f32>,
    pub line: usize,
}

/// Reads ratings; errors and skipping as [`read_preferences`].
pub fn read_ratings(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport<RatingRecord>, DataError> {
    read_records(source, text, opts, |raw| parse_rating(raw, opts.max_line_bytes), |r, line| r.line = line)
}

/// Parses one rating record (line number 0): at least one and at most [`MAX_ATTRIBUTES`] attributes, each a
/// finite number.
pub fn parse_rating(line: &str, max_line_bytes: usize) -> Result<RatingRecord, DataErrorKind> {
    let obj = parse_object(line, max_line_bytes)?;
    let prompt = text_field(&obj, "prompt")?.ok_or(DataErrorKind::MissingField("prompt"))?;
    let response = text_field(&obj, "response")?.ok_or(DataErrorKind::MissingField("response"))?;
    if prompt.is_chat() != response.is_chat() {
        let reason = "prompt and response must both be strings or both be message lists".into();
        return Err(DataErrorKind::InvalidField { field: "response", reason });
    }
    let field = "attributes";
    let map = match present(&obj, field) {
        None => return Err(DataErrorKind::MissingField(field)),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(DataErrorKind::WrongType { field, expected: "an object of attribute → number" }),
    };
    if map.is_empty() || map.len() > MAX_ATTRIBUTES {
        let reason = format!("{} attributes; give 1 to {MAX_ATTRIBUTES}", map.len());
        return Err(DataErrorKind::InvalidField { field, reason });
    }
    let mut attributes = std::collections::BTreeMap::new();
    for (name, v) in map {
        match v.as_f64().map(|x| x as f32) {
            Some(x) if x.is_finite() => attributes.insert(name.clone(), x),
            _ => {
                let reason = format!("\"{name}\" is {v}, not a finite number");
                return Err(DataErrorKind::InvalidField { field, reason });
            }
        };
    }
    Ok(RatingRecord { prompt, response, attributes, line: 0 })
}

/// A tokenised rating: prompt and response ids, and one label per attribute of the run (`None` where the
/// record does not rate it: the regression loss masks it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TokenizedRating {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    pub labels: Vec<Option<f32>>,
    pub line: usize,
}

/// Tokenises a rating with [`tokenize_pair`]'s rules; `attributes` fixes the order of the labels.
pub fn tokenize_rating(
    tok: &Tokenizer,
    rec: &RatingRecord,
    attributes: &[String],
    opts: &TokenizeOptions,
) -> Result<TokenizedRating, DataError> {
    let responses = [("response", "prompt + response", &rec.response)];
    let (prompt, mut ids) = tokenize_responses(tok, &rec.prompt, &responses, rec.line, opts)?;
    Ok(TokenizedRating {
        prompt,
        response: ids.pop().expect("one response"),
        labels: attributes.iter().map(|a| rec.attributes.get(a).copied()).collect(),
        line: rec.line,
    })
}

/// The attributes rated anywhere in `records`, in name order: a regression run's heads.
pub fn rating_attributes(records: &[RatingRecord]) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = records.iter().flat_map(|r| r.attributes.keys()).collect();
    names.into_iter().cloned().collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Per-annotator judgements (PandaLM), prompts, and supervised fine-tuning examples

/// Most annotators one PandaLM-style item may carry.
pub const MAX_ANNOTATORS: usize = 64;

/// Reads PandaLM's human test set (`{"idx", "cmp_key", "motivation_app", "instruction", "input", "response1",
/// "response2", "annotator1", "annotator2", …}`, labels 0 = tie, 1 or 2 = that response is better) as one
/// pairwise record per annotator label: `annotator` = the label's key, `chosen` = the better response
/// (response1 for a tie, with `tie: true`), `swapped` when that is response2 (shown second), `prompt` =
/// instruction + "\n\n" + input (input may be empty), `source` = `cmp_key` (the two models compared), `category` =
/// `motivation_app`. Responses that are JSON booleans (6 rows) become "True"/"False" as in Python. Each record
/// keeps its item's line, so grouping by line gives the items. Errors and skipping as [`read_preferences`].
pub fn read_pandalm(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport, DataError> {
    let parse = |raw: &str| parse_pandalm(raw, opts.max_line_bytes);
    let items = read_records(source, text, opts, parse, |recs, line| recs.iter_mut().for_each(|r| r.line = line))?;
    Ok(ReadReport { records: items.records.into_iter().flatten().collect(), skipped: items.skipped })
}

fn parse_pandalm(raw: &str, max_line_bytes: usize) -> Result<Vec<PreferenceRecord>, DataErrorKind> {
    let obj = parse_object(raw, max_line_bytes)?;
    let response = |field: &'static str| match present(&obj, field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Bool(b)) => Ok(if *b { "True" } else { "False" }.to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(DataErrorKind::WrongType { field, expected: "a string" }),
        None => Err(DataErrorKind::MissingField(field)),
    };
    let (r1, r2) = (response("response1")?, response("response2")?);
    let instruction = string_field(&obj, "instruction")?.ok_or(DataErrorKind::MissingField("instruction"))?;
    let prompt = match string_field(&obj, "input")? {
        Some(input) if !input.is_empty() => format!("{instruction}\n\n{input}"),
        _ => instruction,
    };
    let mut labels: Vec<(u64, &String, &Value)> = obj
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("annotator")?.parse::<u64>().ok()?, k, v)))
        .filter(|(_, _, v)| !v.is_null())
        .collect();
    if labels.is_empty() || labels.len() > MAX_ANNOTATORS {
        let reason = format!("{} labels; give 1 to {MAX_ANNOTATORS} (annotator1, annotator2, …)", labels.len());
        return Err(DataErrorKind::InvalidField { field: "annotator1", reason });
    }
    labels.sort_by_key(|(n, _, _)| *n);
    let (cmp_key, app) = (string_field(&obj, "cmp_key")?, string_field(&obj, "motivation_app")?);
    labels
        .into_iter()
        .map(|(_, key, v)| {
            let label = v.as_u64().filter(|l| *l <= 2).ok_or_else(|| DataErrorKind::InvalidField {
                field: "annotator1",
                reason: format!("\"{key}\" is {v}; labels are 0 (tie), 1 or 2 (that response is better)"),
            })?;
            let (chosen, rejected) = if label == 2 { (&r2, &r1) } else { (&r1, &r2) };
            Ok(PreferenceRecord {
                prompt: Text::Plain(prompt.clone()),
                chosen: Text::Plain(chosen.clone()),
                rejected: Text::Plain(rejected.clone()),
                strength: None,
                tie: label == 0,
                both_bad: false,
                objective: None,
                annotator: Some(key.clone()),
                swapped: label == 2,
                justification: None,
                source: cmp_key.clone(),
                category: app.clone(),
                ref_chosen_logps: None,
                ref_rejected_logps: None,
                line: 0,
            })
        })
        .collect()
}

/// A prompt to generate from (DESIGN.md §3 prompt-only: `{"prompt"}`, a string or a list of `{role, content}`
/// messages; other fields are ignored, so the prompts of any format load).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PromptRecord {
    pub prompt: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// 1-based line in the file it was read from (0 when not read from a file).
    #[serde(default)]
    pub line: usize,
}

/// Reads prompts; errors and skipping as [`read_preferences`].
pub fn read_prompts(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport<PromptRecord>, DataError> {
    read_records(source, text, opts, |raw| parse_prompt(raw, opts.max_line_bytes), |r, line| r.line = line)
}

/// Parses one prompt record (line number 0).
pub fn parse_prompt(line: &str, max_line_bytes: usize) -> Result<PromptRecord, DataErrorKind> {
    let mut obj = parse_object(line, max_line_bytes)?;
    from_sharegpt(&mut obj)?;
    let prompt = text_field(&obj, "prompt")?.ok_or(DataErrorKind::MissingField("prompt"))?;
    if matches!(&prompt, Text::Chat(m) if m.is_empty()) {
        return Err(DataErrorKind::InvalidField { field: "prompt", reason: "empty message list".into() });
    }
    let Provenance { source, category, .. } = provenance(&obj)?;
    Ok(PromptRecord { prompt, source, category, line: 0 })
}

/// A supervised fine-tuning example in one of TRL's three SFT layouts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum SftExample {
    /// `{"prompt", "completion"}` (strings or message lists): only the completion is trained.
    PromptCompletion { prompt: Text, completion: Text },
    /// `{"messages"}`: a conversation (TRL's conversational language modelling).
    Messages { messages: Vec<Message> },
    /// `{"text"}`: plain language modelling, every token trained.
    Text { text: String },
}

/// One SFT example with its provenance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SftRecord {
    #[serde(flatten)]
    pub example: SftExample,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// 1-based line in the file it was read from (0 when not read from a file).
    #[serde(default)]
    pub line: usize,
}

/// Reads SFT examples: each record is `{"prompt", "completion"}`, `{"messages"}` or `{"text"}` (tried in that
/// order, so a record with both a completion and messages is a prompt-completion one); LLaMA-Factory's ShareGPT
/// `{"conversations"}` loads as messages. Prompt and completion are both strings or both message lists; message
/// lists are not empty, and a `messages` conversation has an assistant turn to train on. Errors and skipping as
/// [`read_preferences`].
pub fn read_sft(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport<SftRecord>, DataError> {
    read_records(source, text, opts, |raw| parse_sft(raw, opts.max_line_bytes), |r, line| r.line = line)
}

/// Parses one SFT record (line number 0).
pub fn parse_sft(line: &str, max_line_bytes: usize) -> Result<SftRecord, DataErrorKind> {
    let mut obj = parse_object(line, max_line_bytes)?;
    if !obj.contains_key("messages")
        && !obj.contains_key("prompt")
        && let Some(c) = obj.remove("conversations")
    {
        obj.insert("messages".into(), c);
    }
    from_sharegpt(&mut obj)?;
    let empty = |field| DataErrorKind::InvalidField { field, reason: "empty message list".into() };
    let example = if present(&obj, "completion").is_some() {
        let prompt = text_field(&obj, "prompt")?.ok_or(DataErrorKind::MissingField("prompt"))?;
        let completion = text_field(&obj, "completion")?.ok_or(DataErrorKind::MissingField("completion"))?;
        if prompt.is_chat() != completion.is_chat() {
            let reason = "prompt and completion must both be strings or both be message lists".into();
            return Err(DataErrorKind::InvalidField { field: "completion", reason });
        }
        if matches!(&completion, Text::Chat(m) if m.is_empty()) {
            return Err(empty("completion"));
        }
        SftExample::PromptCompletion { prompt, completion }
    } else if let Some(v) = present(&obj, "messages") {
        let Text::Chat(messages) = text_value(v, "messages")? else {
            return Err(DataErrorKind::WrongType { field: "messages", expected: "a list of {role, content} messages" });
        };
        if messages.is_empty() {
            return Err(empty("messages"));
        }
        if !messages.iter().any(|m| m.role == "assistant") {
            let reason = "no assistant message to train on".into();
            return Err(DataErrorKind::InvalidField { field: "messages", reason });
        }
        SftExample::Messages { messages }
    } else if present(&obj, "text").is_some() {
        let text = string_field(&obj, "text")?.expect("present");
        SftExample::Text { text }
    } else if obj.contains_key("prompt") {
        return Err(DataErrorKind::MissingField("completion"));
    } else {
        return Err(DataErrorKind::NoFormat("\"prompt\" + \"completion\", \"messages\" or \"text\" (the SFT formats)"));
    };
    let Provenance { source, category, .. } = provenance(&obj)?;
    Ok(SftRecord { example, source, category, line: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::byte_level_gguf_metadata;
    use crate::weights::gguf::{Gguf, MetaValue, write_gguf};

    fn read(text: &str) -> Result<ReadReport, DataError> {
        read_preferences("pairs.jsonl", text, &ReadOptions::default())
    }

    fn err(text: &str) -> String {
        read(text).unwrap_err().to_string()
    }

    const GOOD: &str = r#"{"prompt": "Hi", "chosen": " Hello!", "rejected": " Go away."}"#;

    /// The 259-token byte-level tokenizer: id = byte + 3; 1 = `<|im_start|>` (bos), 2 = `<|im_end|>` (eos).
    fn byte_tok(meta_edit: impl FnOnce(&mut Vec<(String, MetaValue)>)) -> Tokenizer {
        let mut meta = byte_level_gguf_metadata();
        meta_edit(&mut meta);
        Tokenizer::from_gguf(&Gguf::parse(write_gguf(&meta, &[])).unwrap()).unwrap()
    }

    fn bytes(s: &str) -> Vec<u32> {
        s.bytes().map(|b| b as u32 + 3).collect()
    }

    #[test]
    fn reads_all_fields_and_skips_blank_lines() {
        let text = format!(
            "\u{feff}{GOOD}\r\n\n   \n{}\n",
            r#"{"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "A"}],
                "rejected": [{"role": "assistant", "content": "B", "name": "x"}], "strength": 2, "tie": true,
                "both_bad": false, "objective": "helpfulness", "annotator": "ann1", "swapped": true,
                "justification": "why", "source": "ui", "category": "math", "ref_chosen_logps": -1.5,
                "ref_rejected_logps": -2.5, "extra": {"ignored": 1}, "annotator_note": null}"#
                .replace('\n', " ")
        );
        let report = read(&text).unwrap();
        assert!(report.skipped.is_empty());
        let [a, b] = &report.records[..] else { panic!("{report:?}") };
        assert_eq!((a.line, b.line), (1, 4));
        assert_eq!(a.prompt, Text::Plain("Hi".into()));
        assert_eq!((a.strength, a.tie, a.annotator.as_deref()), (None, false, None));
        assert_eq!(b.prompt, Text::Chat(vec![Message::new("user", "Q")]));
        assert_eq!(b.rejected, Text::Chat(vec![Message::new("assistant", "B")]));
        assert_eq!((b.strength, b.tie, b.both_bad, b.swapped), (Some(2.0), true, false, true));
        assert_eq!(
            (b.objective.as_deref(), b.annotator.as_deref(), b.justification.as_deref()),
            (Some("helpfulness"), Some("ann1"), Some("why"))
        );
        assert_eq!((b.source.as_deref(), b.category.as_deref()), (Some("ui"), Some("math")));
        assert_eq!((b.ref_chosen_logps, b.ref_rejected_logps), (Some(-1.5), Some(-2.5)));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let lines = |bad: &str, at: usize| {
            let mut v = vec![GOOD; at - 1];
            v.push(bad);
            v.join("\n")
        };
        assert_eq!(err(&lines(r#"{"prompt": "a", "chosen": "b"}"#, 17)), r#"pairs.jsonl:17: missing field "rejected""#);
        assert_eq!(
            err(&lines(r#"{"chosen": "b" "rejected": "c"}"#, 3)),
            "pairs.jsonl:3: invalid JSON at column 16: expected `,` or `}`"
        );
        assert_eq!(
            err(&lines(r#"{"prompt": "a", "chosen": 5, "rejected": "c"}"#, 9)),
            r#"pairs.jsonl:9: field "chosen": expected a string or a list of {role, content} messages"#
        );
        assert_eq!(
            err(r#"{"prompt": "a", "chosen": [{"role": "assistant"}], "rejected": "c"}"#),
            r#"pairs.jsonl:1: field "chosen": expected a string or a list of {role, content} messages"#
        );
        // a JSON array is a file of records (LLaMA-Factory's .json), so its elements are what must be objects
        assert_eq!(err("[1, 2]"), "pairs.jsonl:1: expected a JSON object, found a number");
        assert_eq!(
            err(r#"{"prompt": "a", "chosen": "b", "rejected": [{"role": "assistant", "content": "c"}]}"#),
            "pairs.jsonl:1: prompt, chosen and rejected must all be strings or all be message lists"
        );
        let with = |extra: &str| err(&format!(r#"{{"prompt": "a", "chosen": "b", "rejected": "c", {extra}}}"#));
        assert_eq!(with(r#""strength": "high""#), r#"pairs.jsonl:1: field "strength": expected a number"#);
        assert_eq!(with(r#""tie": 1"#), r#"pairs.jsonl:1: field "tie": expected true or false"#);
        assert_eq!(with(r#""annotator": 7"#), r#"pairs.jsonl:1: field "annotator": expected a string"#);
        assert_eq!(
            with(r#""ref_chosen_logps": 1e300"#),
            r#"pairs.jsonl:1: field "ref_chosen_logps": 1e+300 is not a finite f32"#
        );
        let long = read_preferences("p.jsonl", GOOD, &ReadOptions { max_line_bytes: 10, ..Default::default() });
        assert_eq!(
            long.unwrap_err().to_string(),
            format!("p.jsonl:1: line is {} bytes, more than the limit of 10", GOOD.len())
        );
    }

    #[test]
    fn bad_lines_can_be_skipped_and_counted() {
        let text = format!("{GOOD}\nnot json\n{GOOD}\n{{\"chosen\": \"x\"}}\n{GOOD}\n{GOOD}");
        let opts = ReadOptions { skip_bad_lines: true, ..Default::default() };
        let r = read_preferences("p.jsonl", &text, &opts).unwrap();
        assert_eq!(r.records.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 3, 5, 6]);
        assert_eq!(
            r.skipped,
            vec![
                (2, "invalid JSON at column 2: expected ident".to_string()),
                (4, "missing field \"rejected\"".to_string())
            ]
        );
        let r = read_preferences("p.jsonl", &text, &ReadOptions { max_records: Some(2), ..opts }).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.skipped.len(), 1);
    }

    #[test]
    fn implicit_prompt_is_the_shared_part() {
        let split = |c: &str, r: &str| {
            let line = serde_json::json!({"chosen": c, "rejected": r}).to_string();
            let rec = &read(&line).unwrap().records[0];
            let s = |t: &Text| match t {
                Text::Plain(s) => s.clone(),
                Text::Chat(_) => panic!(),
            };
            (s(&rec.prompt), s(&rec.chosen), s(&rec.rejected))
        };
        let hh = "\n\nHuman: list of bad words\n\nAssistant:";
        // The whitespace before the first difference goes to the responses.
        assert_eq!(split(&format!("{hh} No."), &format!("{hh} Ok")), (hh.into(), " No.".into(), " Ok".into()));
        // HH-RLHF: the reply starts after the last turn marker, even if both begin with the same words.
        assert_eq!(
            split(&format!("{hh} I think not."), &format!("{hh} I think so.")),
            (hh.into(), " I think not.".into(), " I think so.".into())
        );
        // An empty reply still keeps the space (the shortest real HH pair).
        assert_eq!(split(&format!("{hh} "), &format!("{hh} Ok")), (hh.into(), " ".into(), " Ok".into()));
        // Generic text: cut at the last whitespace run before the difference.
        assert_eq!(
            split("Q: why?\n\nA: because x", "Q: why?\n\nA: because y"),
            ("Q: why?\n\nA: because".into(), " x".into(), " y".into())
        );
        assert_eq!(split("abc", "abd"), ("".into(), "abc".into(), "abd".into()));
        // Never inside a UTF-8 character: "é" and "è" share their first byte.
        assert_eq!(split("x é", "x è"), ("x".into(), " é".into(), " è".into()));
        assert_eq!(
            err(r#"{"chosen": "", "rejected": "abc"}"#),
            r#"pairs.jsonl:1: no "prompt" field, and nothing of "chosen" remains after the part it shares with "rejected""#
        );

        let m = |r: &str, c: &str| serde_json::json!({"role": r, "content": c});
        let line = serde_json::json!({
            "chosen": [m("user", "Q"), m("assistant", "A")],
            "rejected": [m("user", "Q"), m("assistant", "B"), m("user", "more")],
        });
        let rec = &read(&line.to_string()).unwrap().records[0];
        assert_eq!(rec.prompt, Text::Chat(vec![Message::new("user", "Q")]));
        assert_eq!(rec.chosen, Text::Chat(vec![Message::new("assistant", "A")]));
        assert_eq!(rec.rejected, Text::Chat(vec![Message::new("assistant", "B"), Message::new("user", "more")]));
        let line = serde_json::json!({"chosen": [m("user", "Q")], "rejected": [m("user", "Q"), m("assistant", "B")]});
        assert_eq!(
            err(&line.to_string()),
            r#"pairs.jsonl:1: no "prompt" field, and nothing of "chosen" remains after the part it shares with "rejected""#
        );
    }

    fn plain(prompt: &str, chosen: &str, rejected: &str) -> PreferenceRecord {
        let line = serde_json::json!({"prompt": prompt, "chosen": chosen, "rejected": rejected}).to_string();
        let mut rec = parse_preference(&line, 1 << 20).unwrap();
        rec.line = 7;
        rec
    }

    #[test]
    fn plain_pairs_end_with_eos() {
        let tok = byte_tok(|_| {});
        let rec = PreferenceRecord { strength: Some(3.0), ref_chosen_logps: Some(-4.0), ..plain("Hi", " yes", " no") };
        let p = tokenize_pair(&tok, &rec, &TokenizeOptions::default()).unwrap();
        assert_eq!(p.prompt, bytes("Hi"));
        assert_eq!(p.chosen, [bytes(" yes"), vec![2]].concat());
        assert_eq!(p.rejected, [bytes(" no"), vec![2]].concat());
        assert_eq!((p.line, p.strength, p.ref_chosen_logps, p.ref_rejected_logps), (7, Some(3.0), Some(-4.0), None));
        // add_bos puts the bos first, once; an empty prompt is the bos alone.
        let tok_bos = byte_tok(|m| {
            m.iter_mut().find(|(k, _)| k == "tokenizer.ggml.add_bos_token").unwrap().1 = MetaValue::Bool(true)
        });
        let p = tokenize_pair(&tok_bos, &rec, &TokenizeOptions::default()).unwrap();
        assert_eq!(p.prompt, [vec![1], bytes("Hi")].concat());
        let p = tokenize_pair(&tok_bos, &plain("<|im_start|>Hi", "a", "b"), &TokenizeOptions::default()).unwrap();
        assert_eq!(p.prompt, [vec![1], bytes("Hi")].concat());
        let p = tokenize_pair(&tok, &plain("", "a", "b"), &TokenizeOptions::default()).unwrap();
        assert_eq!(p.prompt, vec![1]);
        let no_eos = tok.clone().with_special_ids(None, None, None);
        let e = tokenize_pair(&no_eos, &rec, &TokenizeOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 7: the tokenizer has no eos token, which plain-text responses need to end with"
        );
        let e = tokenize_pair(&no_eos, &plain("", "a", "b"), &TokenizeOptions::default()).unwrap_err();
        assert_eq!(e.kind, DataErrorKind::NoEos);
    }

    #[test]
    fn chat_pairs_mask_at_the_assistant_header() {
        let tok = byte_tok(|_| {});
        let m = |r: &str, c: &str| Message::new(r, c);
        let rec = PreferenceRecord {
            prompt: Text::Chat(vec![m("system", "S"), m("user", "Q")]),
            chosen: Text::Chat(vec![m("assistant", "yes")]),
            rejected: Text::Chat(vec![m("assistant", "no")]),
            ..plain("", "", "")
        };
        let p = tokenize_pair(&tok, &rec, &TokenizeOptions::default()).unwrap();
        let header = |role: &str| [vec![1], bytes(&format!("{role}\n"))].concat();
        assert_eq!(
            p.prompt,
            [
                header("system"),
                bytes("S"),
                vec![2],
                bytes("\n"),
                header("user"),
                bytes("Q"),
                vec![2],
                bytes("\n"),
                header("assistant")
            ]
            .concat()
        );
        // The response ends with eos: the newline ChatML puts after <|im_end|> is not trained.
        assert_eq!(p.chosen, [bytes("yes"), vec![2]].concat());
        assert_eq!(p.rejected, [bytes("no"), vec![2]].concat());
        // chat_template wraps plain records the same way.
        let opts = TokenizeOptions { chat_template: true, ..Default::default() };
        let p = tokenize_pair(&tok, &plain("Q", "yes", "no"), &opts).unwrap();
        assert_eq!(p.prompt, [header("user"), bytes("Q"), vec![2], bytes("\n"), header("assistant")].concat());
        assert_eq!(p.chosen, [bytes("yes"), vec![2]].concat());
        // A template whose generation prompt is not a prefix of the full rendering is refused.
        let odd = tok.clone().with_chat_template(Some(
            "{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>>{% endif %}".into(),
        ));
        let e = tokenize_pair(&odd, &rec, &TokenizeOptions::default()).unwrap_err();
        assert!(matches!(e.kind, DataErrorKind::TemplateMismatch { which: "chosen" }), "{e}");
        assert!(e.to_string().starts_with("line 7: the chat template's rendering of prompt + chosen"), "{e}");
        let e = tokenize_pair(&tok.clone().with_chat_template(None), &rec, &TokenizeOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "line 7: the tokenizer has no chat template");
    }

    #[test]
    fn truncation_keeps_prompt_end_and_response_start() {
        let tok = byte_tok(|_| {});
        let rec = plain("0123456789", "abcdef", "xyz");
        let opts = TokenizeOptions { max_length: 12, max_prompt_length: 8, ..Default::default() };
        let p = tokenize_pair(&tok, &rec, &opts).unwrap();
        assert_eq!(p.prompt, bytes("23456789"));
        assert_eq!(p.chosen, bytes("abcd"));
        assert_eq!(p.rejected, [bytes("xyz"), vec![2]].concat());
        // Within the limits nothing is cut.
        let roomy = TokenizeOptions { max_length: 17, max_prompt_length: 10, ..Default::default() };
        let p = tokenize_pair(&tok, &rec, &roomy).unwrap();
        assert_eq!((p.prompt.len(), p.chosen.len(), p.rejected.len()), (10, 7, 4));

        let strict = TokenizeOptions { truncation: Truncation::Error, ..opts.clone() };
        let e = tokenize_pair(&tok, &rec, &strict).unwrap_err();
        assert_eq!(e.to_string(), "line 7: prompt is 10 tokens, more than 8 (truncation is set to Error)");
        let strict = TokenizeOptions { max_prompt_length: 10, ..strict };
        let e = tokenize_pair(&tok, &rec, &strict).unwrap_err();
        assert_eq!(e.to_string(), "line 7: prompt + chosen is 17 tokens, more than 12 (truncation is set to Error)");
        assert!(tokenize_pair(&tok, &rec, &TokenizeOptions { truncation: Truncation::Error, ..roomy }).is_ok());

        let full = TokenizeOptions { max_length: 8, max_prompt_length: 8, ..Default::default() };
        let e = tokenize_pair(&tok, &rec, &full).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 7: \"chosen\" has no tokens left after truncation (prompt 8 tokens, max_length 8)"
        );
        let e = tokenize_pairs(&tok, "pairs.jsonl", &[rec], &full).unwrap_err();
        assert!(e.to_string().starts_with("pairs.jsonl:7: \"chosen\" has no tokens left"), "{e}");
    }
}
