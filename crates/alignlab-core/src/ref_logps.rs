//! Reference log-probs computed once and cached beside the data (TRL's `precompute_ref_log_probs`), and the key
//! that keeps a cache from being reused with another model or another tokenisation.
//!
//! A cache is the data file itself with each example's summed reference log-probs filled in (the fields of
//! DESIGN.md §3: `ref_chosen_logps`/`ref_rejected_logps` for pairs, TRL's `reference_logps`/`reference_KL_logps`
//! for KTO, `ref_logps` for lists), plus a sidecar `<file>.key.json` ([`Sidecar`]) holding the key: the sha256
//! of the model's files, the data format and the tokenisation options that change the values, hashed into one
//! hex string. A run that reads cached values checks the sidecar first ([`Sidecar::check`]): another key, or a
//! file edited since, is one error naming both. Values without a sidecar (from another tool) are used as they
//! are, with a warning from the surface.
//!
//! The values are those of the loop's own reference pass ([`crate::train::data_logps`], same batching), written
//! as the exact f64 of each f32, so a run from the cache has the identical loss curve of a run without it.
//!
//! KTO's KL pairs (each prompt with the previous example's completion) depend on which examples a run holds: a
//! run that splits or limits the data pairs them differently, and its surface drops the cached KL values
//! ([`drop_kl_values`]) so that the reference pass computes them again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::convert::Format;
use crate::data::{
    DataError, ReadOptions, TokenizeOptions, parse_list, parse_preference, parse_unpaired, read_records,
};
use crate::tokenizer::Tokenizer;
use crate::train::{Objective, TrainData};

/// Appended to a data file's name for its sidecar: `pairs.ref.jsonl` → `pairs.ref.jsonl.key.json`.
pub const SIDECAR_SUFFIX: &str = ".key.json";

/// Bumped when the meaning of cached values changes (how they are computed, which options enter the key).
pub const KEY_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "{file}: its reference log-probs were computed under key {found}, and this run's key is {expected} \
         ({differences}); recompute them for this model and these options (alignlab ref-logps, or \
         --precompute-ref-log-probs)"
    )]
    Mismatch { file: String, found: String, expected: String, differences: String },
    #[error(
        "{file} changed after its reference log-probs were computed (sha256 {actual}, the sidecar records \
         {recorded}); recompute them (alignlab ref-logps)"
    )]
    Edited { file: String, recorded: String, actual: String },
    #[error("{file}: not a sidecar of reference log-probs: {reason}")]
    BadSidecar { file: String, reason: String },
    #[error(
        "{file} holds {format:?} records: reference log-probs are cached for pairs, unpaired examples and lists \
         (convert OpenAssistant trees with alignlab convert --to lists)"
    )]
    NotPreference { file: String, format: Format },
    #[error(
        "{file}:{line}: the list has {responses} responses, more than max_list_length {max}; the cache holds one \
         value per response: raise max_list_length or shorten the list"
    )]
    ListTooLong { file: String, line: usize, responses: usize, max: usize },
    #[error(transparent)]
    Data(#[from] DataError),
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 that names a model: of the file itself when it is one file (a GGUF holds its tokenizer and
/// template, and its published sha256 is then the one in the key), otherwise of the `sha256sum`-style manifest
/// of its files (`<hex>  <name>\n`, sorted by name).
pub fn model_sha256(files: &[(&str, &[u8])]) -> String {
    if let [(_, bytes)] = files {
        return sha256_hex(bytes);
    }
    let mut lines: Vec<String> = files.iter().map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes))).collect();
    lines.sort();
    sha256_hex(lines.concat().as_bytes())
}

/// The format of a run of `objective` whose reference log-probs can be cached; `None` for rated responses
/// (regression trains a reward model, with no reference).
pub fn format_of(objective: Objective) -> Option<Format> {
    match objective {
        Objective::Dpo | Objective::Reward | Objective::Modpo => Some(Format::Pairs),
        Objective::Kto => Some(Format::Unpaired),
        Objective::Lipo => Some(Format::Lists),
        Objective::Regression => None,
    }
}

/// The objective whose run reads `format` (pairs: DPO); `None` for formats without preferences (trees, ratings…).
pub fn objective_for(format: Format) -> Option<Objective> {
    match format {
        Format::Pairs => Some(Objective::Dpo),
        Format::Unpaired => Some(Objective::Kto),
        Format::Lists => Some(Objective::Lipo),
        _ => None,
    }
}

/// What a cache's values depend on, and their hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RefLogpsKey {
    /// sha256 (hex) of the JSON of the other fields: the one value compared.
    pub key: String,
    pub version: u32,
    /// [`model_sha256`] of the reference model's files.
    pub model_sha256: String,
    pub format: Format,
    /// The tokenisation options; `max_list_length` counts for lists only and is 0 otherwise.
    pub tokenize: TokenizeOptions,
}

impl RefLogpsKey {
    pub fn new(model_sha256: &str, format: Format, tokenize: &TokenizeOptions) -> Self {
        let tokenize = TokenizeOptions {
            max_list_length: if format == Format::Lists { tokenize.max_list_length } else { 0 },
            ..tokenize.clone()
        };
        let identity = serde_json::json!({
            "version": KEY_VERSION, "model_sha256": model_sha256, "format": format, "tokenize": tokenize,
        });
        RefLogpsKey {
            key: sha256_hex(identity.to_string().as_bytes()),
            version: KEY_VERSION,
            model_sha256: model_sha256.to_string(),
            format,
            tokenize,
        }
    }

    /// What differs between two keys, in words (for the mismatch error).
    fn differences(&self, other: &RefLogpsKey) -> String {
        let mut out = Vec::new();
        if self.version != other.version {
            out.push(format!("key version {} vs {}", self.version, other.version));
        }
        if self.model_sha256 != other.model_sha256 {
            out.push(format!("model sha256 {} vs {}", self.model_sha256, other.model_sha256));
        }
        if self.format != other.format {
            out.push(format!("format {:?} vs {:?}", self.format, other.format));
        }
        let (a, b) = (serde_json::to_value(&self.tokenize), serde_json::to_value(&other.tokenize));
        if let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (a, b) {
            for (field, value) in &a {
                if b.get(field) != Some(value) {
                    out.push(format!("{field} {value} vs {}", b.get(field).unwrap_or(&Value::Null)));
                }
            }
        }
        if out.is_empty() { "the keys' fields agree but their hashes do not".into() } else { out.join(", ") }
    }
}

/// The sidecar `<file>.key.json` of a cache: its key and the file it belongs to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    #[serde(flatten)]
    pub key: RefLogpsKey,
    /// Examples that carry values (pairs that are not ties, unpaired examples, lists).
    pub records: usize,
    /// sha256 of the data the values were computed from.
    pub source_sha256: String,
    /// sha256 of the file that holds them (the one beside this sidecar).
    pub data_sha256: String,
}

impl Sidecar {
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, CacheError> {
        serde_json::from_slice(bytes).map_err(|e| CacheError::BadSidecar { file: file.into(), reason: e.to_string() })
    }

    /// Refuses the cache `file` (its bytes `data`) unless it is the file this sidecar describes and its key is
    /// `expected`, the key of the run that is about to read it.
    pub fn check(&self, file: &str, data: &[u8], expected: &RefLogpsKey) -> Result<(), CacheError> {
        let actual = sha256_hex(data);
        if actual != self.data_sha256 {
            return Err(CacheError::Edited { file: file.into(), recorded: self.data_sha256.clone(), actual });
        }
        if self.key.key != expected.key {
            return Err(CacheError::Mismatch {
                file: file.into(),
                found: self.key.key.clone(),
                expected: expected.key.clone(),
                differences: self.key.differences(expected),
            });
        }
        Ok(())
    }
}

/// A data file read for caching: the examples as a run reads them, and every record's JSON object with the
/// index of its example (`None`: a tie, which pairwise runs leave out).
pub struct RawData {
    pub data: TrainData,
    pub objects: Vec<(Map<String, Value>, Option<usize>)>,
    /// (line, reason) of the lines skipped with `skip_bad_lines`.
    pub skipped: Vec<(usize, String)>,
}

/// Reads `text` (JSONL or a JSON array) as `format` with the rules of [`TrainData::read`], keeping each record's
/// JSON object (unknown fields included) to write it back with its values.
pub fn read_raw(
    source: &str,
    text: &str,
    format: Format,
    opts: &ReadOptions,
    tok: &Tokenizer,
    topts: &TokenizeOptions,
) -> Result<RawData, CacheError> {
    let max = opts.max_line_bytes;
    // Each record is parsed by its format's parser (so the same lines fail as in TrainData::read) and kept as
    // its object, with whether a run trains on it (not a tie), its number of responses and its line.
    let object = |raw: &str| serde_json::from_str::<Map<String, Value>>(raw).expect("the parser accepted it");
    let line = |r: &mut (Map<String, Value>, bool, usize, usize), line| r.3 = line;
    let (objective, report) = match format {
        Format::Pairs => {
            let parse = |raw: &str| parse_preference(raw, max).map(|r| (object(raw), !r.tie, 2, 0));
            (Objective::Dpo, read_records(source, text, opts, parse, line)?)
        }
        Format::Unpaired => {
            let parse = |raw: &str| parse_unpaired(raw, max).map(|_| (object(raw), true, 1, 0));
            (Objective::Kto, read_records(source, text, opts, parse, line)?)
        }
        Format::Lists => {
            let parse =
                |raw: &str| parse_list(raw, max, opts.max_responses).map(|r| (object(raw), true, r.responses.len(), 0));
            (Objective::Lipo, read_records(source, text, opts, parse, line)?)
        }
        other => return Err(CacheError::NotPreference { file: source.into(), format: other }),
    };
    if format == Format::Lists
        && let Some(&(_, _, responses, line)) = report.records.iter().find(|r| r.2 > topts.max_list_length)
    {
        let (file, max) = (source.to_string(), topts.max_list_length);
        return Err(CacheError::ListTooLong { file, line, responses, max });
    }
    let (data, skipped) = TrainData::read(source, text, objective, opts, tok, topts)?;
    let mut next = 0;
    let objects: Vec<_> = report
        .records
        .into_iter()
        .map(|(obj, trained, _, _)| {
            let index = trained.then_some(next);
            next += usize::from(trained);
            (obj, index)
        })
        .collect();
    debug_assert_eq!(next, data.len(), "one example per trained record");
    Ok(RawData { data, objects, skipped })
}

/// The records of `raw` as JSONL with their values filled in: `pairs` (chosen, rejected) — for KTO
/// (completion, KL pair) — and `lists`, in example order, as [`crate::train::data_logps`] returns them. Each f32
/// is written as its exact f64, so reading it back gives the same f32. Ties are written as they were.
pub fn write_jsonl(raw: &RawData, pairs: &[(f32, f32)], lists: &[Vec<f32>]) -> String {
    let exact = |x: f32| Value::from(f64::from(x));
    let mut out = String::new();
    for (obj, index) in &raw.objects {
        let mut obj = obj.clone();
        if let Some(i) = *index {
            match &raw.data {
                TrainData::Pairs(_) => {
                    obj.insert("ref_chosen_logps".into(), exact(pairs[i].0));
                    obj.insert("ref_rejected_logps".into(), exact(pairs[i].1));
                }
                TrainData::Unpaired(_) => {
                    obj.insert("reference_logps".into(), exact(pairs[i].0));
                    obj.insert("reference_KL_logps".into(), exact(pairs[i].1));
                }
                TrainData::Lists(_) => {
                    obj.insert("ref_logps".into(), Value::Array(lists[i].iter().map(|&x| exact(x)).collect()));
                }
                TrainData::Ratings { .. } => unreachable!("read_raw reads no ratings"),
            }
        }
        out.push_str(&Value::Object(obj).to_string());
        out.push('\n');
    }
    out
}

/// Whether any example of `data` carries cached reference log-probs.
pub fn carries_values(data: &TrainData) -> bool {
    match data {
        TrainData::Pairs(p) => p.iter().any(|p| p.ref_chosen_logps.is_some() || p.ref_rejected_logps.is_some()),
        TrainData::Unpaired(e) => e.iter().any(|e| e.reference_logps.is_some() || e.reference_kl_logps.is_some()),
        TrainData::Lists(l) => l.iter().any(|l| l.ref_logps.is_some()),
        TrainData::Ratings { .. } => false,
    }
}

/// Drops KTO's cached KL-pair values (the reference pass then computes every value again: it uses a cache
/// only when complete); for a run whose examples are not the cache's, which pairs them differently.
pub fn drop_kl_values(data: &mut TrainData) {
    if let TrainData::Unpaired(ex) = data {
        ex.iter_mut().for_each(|e| e.reference_kl_logps = None);
    }
}
