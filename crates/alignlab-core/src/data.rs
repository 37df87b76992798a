//! Preference data: reading TRL-style pairwise JSONL and tokenising pairs into prompt/response ids.
//!
//! A line is `{"prompt", "chosen", "rejected"}` (strings, or lists of `{role, content}` messages), with
//! the optional fields of DESIGN.md §3; unknown fields are ignored, so TRL datasets with extra columns
//! load. Without `prompt`, the prompt is the part `chosen` and `rejected` share (see [`read_preferences`]).
//! Errors name the file, the line and the field, and bad lines can be skipped and counted instead.

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
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { skip_bad_lines: false, max_line_bytes: 16 << 20, max_records: None }
    }
}

/// The records read, and the lines skipped with why.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ReadReport {
    pub records: Vec<PreferenceRecord>,
    /// (1-based line, reason) of each skipped line.
    pub skipped: Vec<(usize, String)>,
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
/// tokenising prompt and response apart gives the same tokens as the joined text. (TRL's `extract_prompt`
/// moves one trailing space the same way.) If nothing of chosen or rejected remains, the line is bad.
pub fn read_preferences(source: &str, text: &str, opts: &ReadOptions) -> Result<ReadReport, DataError> {
    let mut report = ReadReport::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.split('\n').enumerate() {
        if opts.max_records.is_some_and(|max| report.records.len() >= max) {
            break;
        }
        let line = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        match parse_preference(raw, opts.max_line_bytes) {
            Ok(mut rec) => {
                rec.line = line;
                report.records.push(rec);
            }
            Err(kind) if opts.skip_bad_lines => report.skipped.push((line, kind.to_string())),
            Err(kind) => return Err(DataError { file: Some(source.to_string()), line, kind }),
        }
    }
    Ok(report)
}

/// Parses one JSONL line into a record (line number 0).
pub fn parse_preference(line: &str, max_line_bytes: usize) -> Result<PreferenceRecord, DataErrorKind> {
    if line.len() > max_line_bytes {
        return Err(DataErrorKind::LineTooLong { len: line.len(), max: max_line_bytes });
    }
    let value: Value = serde_json::from_str(line).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        DataErrorKind::InvalidJson { column: e.column(), message }
    })?;
    let obj = match value {
        Value::Object(o) => o,
        other => return Err(DataErrorKind::NotAnObject { found: json_kind(&other) }),
    };
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
    Ok(PreferenceRecord {
        prompt,
        chosen,
        rejected,
        strength: number_field(&obj, "strength")?,
        tie: bool_field(&obj, "tie")?,
        both_bad: bool_field(&obj, "both_bad")?,
        objective: string_field(&obj, "objective")?,
        annotator: string_field(&obj, "annotator")?,
        swapped: bool_field(&obj, "swapped")?,
        justification: string_field(&obj, "justification")?,
        source: string_field(&obj, "source")?,
        category: string_field(&obj, "category")?,
        ref_chosen_logps: number_field(&obj, "ref_chosen_logps")?,
        ref_rejected_logps: number_field(&obj, "ref_rejected_logps")?,
        line: 0,
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn text_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<Text>, DataErrorKind> {
    let wrong = DataErrorKind::WrongType { field, expected: "a string or a list of {role, content} messages" };
    match present(obj, field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Text::Plain(s.clone()))),
        Some(Value::Array(items)) => {
            let mut messages = Vec::with_capacity(items.len());
            for item in items {
                let role = item.get("role").and_then(Value::as_str);
                let content = item.get("content").and_then(Value::as_str);
                match (role, content) {
                    (Some(r), Some(c)) => messages.push(Message::new(r, c)),
                    _ => return Err(wrong),
                }
            }
            Ok(Some(Text::Chat(messages)))
        }
        Some(_) => Err(wrong),
    }
}

fn number_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<f32>, DataErrorKind> {
    match present(obj, field) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (x as f32).is_finite() => Ok(Some(x as f32)),
            Some(x) => Err(DataErrorKind::InvalidField { field, reason: format!("{x} is not a finite f32") }),
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

fn string_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, DataErrorKind> {
    match present(obj, field) {
        None => Ok(None),
        Some(v) => v.as_str().map(|s| Some(s.to_string())).ok_or(DataErrorKind::WrongType { field, expected: "a string" }),
    }
}

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
            let cut = match prefix.char_indices().rev().find(|(_, ch)| ch.is_whitespace()) {
                None => 0,
                Some((i, _)) => {
                    prefix[..i].char_indices().rev().take_while(|(_, ch)| ch.is_whitespace()).last().map_or(i, |(j, _)| j)
                }
            };
            if c.len() == cut {
                return Err(nothing("chosen", "rejected"));
            }
            if r.len() == cut {
                return Err(nothing("rejected", "chosen"));
            }
            Ok((Text::Plain(c[..cut].to_string()), Text::Plain(c[cut..].to_string()), Text::Plain(r[cut..].to_string())))
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
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        TokenizeOptions { max_length: 512, max_prompt_length: 256, truncation: Truncation::KeepEnd, chat_template: false }
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
pub fn tokenize_pair(tok: &Tokenizer, rec: &PreferenceRecord, opts: &TokenizeOptions) -> Result<TokenizedPair, DataError> {
    let err = |kind| DataError { file: None, line: rec.line, kind };
    let tok_err = |e: crate::tokenizer::TokenizerError| err(DataErrorKind::Tokenizer(e.to_string()));
    let plain = match (&rec.prompt, &rec.chosen, &rec.rejected) {
        (Text::Plain(p), Text::Plain(c), Text::Plain(r)) if !opts.chat_template => Some((p, c, r)),
        _ => None,
    };
    let (mut prompt, mut chosen, mut rejected);
    if let Some((p, c, r)) = plain {
        let eos = tok.eos_id().ok_or_else(|| err(DataErrorKind::NoEos))?;
        prompt = tok.encode(p).map_err(tok_err)?;
        chosen = tok.encode(c).map_err(tok_err)?;
        chosen.push(eos);
        rejected = tok.encode(r).map_err(tok_err)?;
        rejected.push(eos);
    } else {
        let prompt_msgs = rec.prompt.to_messages("user");
        let prompt_text = tok.apply_chat_template(&prompt_msgs, true).map_err(tok_err)?;
        let eos_text = tok.eos_id().and_then(|id| tok.id_to_token(id));
        let response = |which: &'static str, resp: &Text| -> Result<Vec<u32>, DataError> {
            let mut msgs = prompt_msgs.clone();
            msgs.extend(resp.to_messages("assistant"));
            let full = tok.apply_chat_template(&msgs, false).map_err(tok_err)?;
            let mut rest = full.strip_prefix(&prompt_text).ok_or_else(|| err(DataErrorKind::TemplateMismatch { which }))?;
            if let Some(eos) = &eos_text {
                let trimmed = rest.trim_end();
                if trimmed.ends_with(eos.as_str()) {
                    rest = trimmed;
                }
            }
            tok.encode(rest).map_err(tok_err)
        };
        prompt = tok.encode(&prompt_text).map_err(tok_err)?;
        chosen = response("chosen", &rec.chosen)?;
        rejected = response("rejected", &rec.rejected)?;
    }
    if let Some(bos) = tok.bos_id() {
        if (tok.add_bos() || prompt.is_empty()) && prompt.first() != Some(&bos) {
            prompt.insert(0, bos);
        }
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
                return Err(err(DataErrorKind::TooLong { what: "prompt", len: prompt.len(), max: opts.max_prompt_length }));
            }
        }
    }
    let budget = opts.max_length.saturating_sub(prompt.len());
    for (which, what, resp) in [("chosen", "prompt + chosen", &mut chosen), ("rejected", "prompt + rejected", &mut rejected)] {
        if resp.len() > budget {
            match opts.truncation {
                Truncation::KeepEnd => resp.truncate(budget),
                Truncation::Error => {
                    return Err(err(DataErrorKind::TooLong { what, len: prompt.len() + resp.len(), max: opts.max_length }));
                }
            }
        }
        if resp.is_empty() {
            return Err(err(DataErrorKind::EmptyResponse { which, prompt_len: prompt.len(), max_length: opts.max_length }));
        }
    }
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

/// Tokenises every record, naming `source` in errors.
pub fn tokenize_pairs(
    tok: &Tokenizer,
    source: &str,
    records: &[PreferenceRecord],
    opts: &TokenizeOptions,
) -> Result<Vec<TokenizedPair>, DataError> {
    records.iter().map(|r| tokenize_pair(tok, r, opts).map_err(|e| e.in_file(source))).collect()
}
