//! Tokenizers and chat templates.
//!
//! A [`Tokenizer`] wraps the `tokenizers` crate (built without its C dependencies, so it also runs in
//! wasm) together with the ids and chat template a model was trained with. It is built either from a
//! GGUF file's `tokenizer.*` metadata (a byte-level BPE rebuilt from the vocabulary and merges) or from a
//! Hugging Face `tokenizer.json` (+ optional `tokenizer_config.json`).
//!
//! Chat templates are the model's own Jinja template rendered with minijinja, configured like Hugging
//! Face's renderer (`trim_blocks`, `lstrip_blocks`, `raise_exception`) plus the Python string and dict
//! methods that templates commonly call (see [`apply_chat_template`](Tokenizer::apply_chat_template)).

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error as JinjaError, ErrorKind, State};
use serde::{Deserialize, Serialize};
use tokenizers::AddedToken;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

use crate::weights::gguf::{Gguf, GgufError, MetaValue};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_NORMAL: i64 = 1;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Why a tokenizer could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("GGUF tokenizer metadata: {0}")]
    Gguf(#[from] GgufError),
    #[error(
        "unsupported tokenizer model {0:?}: only byte-level BPE (\"gpt2\") is supported for GGUF files so far; \
         use the model's tokenizer.json instead"
    )]
    UnsupportedModel(String),
    #[error(
        "unsupported GGUF pre-tokenizer {0:?}: supported are \"default\", \"gpt2\" and \"smollm\"; \
         use the model's tokenizer.json instead"
    )]
    UnsupportedPreTokenizer(String),
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("invalid tokenizer.json: {0}")]
    Json(String),
    #[error("tokenizer: {0}")]
    Library(String),
    #[error("token id {id} is out of range for a vocabulary of {size} tokens")]
    IdOutOfRange { id: u32, size: usize },
    #[error("the tokenizer has no chat template")]
    NoChatTemplate,
    #[error("chat template: {0}")]
    Template(String),
}

fn lib_err(e: tokenizers::Error) -> TokenizerError {
    TokenizerError::Library(e.to_string())
}

/// One chat message, as in Hugging Face's and OpenAI's message lists.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message { role: role.into(), content: content.into() }
    }
}

/// A tokenizer plus the special ids and chat template of its model.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    pad_id: Option<u32>,
    add_bos: bool,
    chat_template: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("pad_id", &self.pad_id)
            .field("add_bos", &self.add_bos)
            .field("chat_template", &self.chat_template.is_some())
            .finish()
    }
}

/// GPT-2's byte → printable char table (`bytes_to_unicode`): printable Latin-1 bytes map to themselves,
/// the other 68 to U+0100.. in byte order. Byte-level BPE vocabularies are written in these chars.
pub fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        table[b as usize] = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

/// ChatML without a default system prompt: the template of [`byte_level_gguf_metadata`].
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// GGUF tokenizer metadata for a tiny byte-level vocabulary (259 tokens): `<|endoftext|>` = 0,
/// `<|im_start|>` = 1 (bos), `<|im_end|>` = 2 (eos, pad), then the 256 byte symbols in byte order, no
/// merges, and a ChatML template. Any UTF-8 text round-trips through it; it is the tokenizer of the tiny
/// random demo models, which need no real vocabulary.
pub fn byte_level_gguf_metadata() -> Vec<(String, MetaValue)> {
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let mut tokens: Vec<MetaValue> = specials.iter().map(|s| MetaValue::String(s.to_string())).collect();
    let mut types = vec![MetaValue::I32(TOKEN_TYPE_CONTROL as i32); specials.len()];
    for c in byte_to_char() {
        tokens.push(MetaValue::String(c.to_string()));
        types.push(MetaValue::I32(TOKEN_TYPE_NORMAL as i32));
    }
    let s = |v: &str| MetaValue::String(v.to_string());
    vec![
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("gpt2")),
        ("tokenizer.ggml.tokens".into(), MetaValue::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), MetaValue::Array(types)),
        ("tokenizer.ggml.merges".into(), MetaValue::Array(vec![])),
        ("tokenizer.ggml.bos_token_id".into(), MetaValue::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), MetaValue::U32(2)),
        ("tokenizer.ggml.padding_token_id".into(), MetaValue::U32(2)),
        ("tokenizer.ggml.add_bos_token".into(), MetaValue::Bool(false)),
        ("tokenizer.chat_template".into(), s(CHATML_TEMPLATE)),
    ]
}

impl Tokenizer {
    /// Builds the tokenizer stored in a GGUF file's metadata.
    ///
    /// Only `tokenizer.ggml.model = "gpt2"` (byte-level BPE: GPT-2, SmolLM2, Qwen2, Llama 3, …) is
    /// supported: a BPE over `tokenizer.ggml.tokens` and `tokenizer.ggml.merges` ("a b" strings) with a
    /// byte-level pre-tokenizer and decoder. `tokenizer.ggml.pre` picks the pre-tokenizer: `smollm` is
    /// Hugging Face SmolLM2's (digits split one by one, then GPT-2's byte-level regex), `gpt2`/`default`
    /// (or absent) is GPT-2's. Tokens of type control (3) become special added tokens and user-defined (4)
    /// plain added tokens, so that both are matched as one id where they appear in text (like llama.cpp
    /// with `parse_special`); only the control ones are dropped by `decode(.., skip_special_tokens)`.
    pub fn from_gguf(gguf: &Gguf) -> Result<Tokenizer, TokenizerError> {
        let model = gguf.get_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model.to_string()));
        }
        let pre = match gguf.metadata("tokenizer.ggml.pre") {
            None => "default",
            Some(_) => gguf.get_str("tokenizer.ggml.pre")?,
        };
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            "default" | "gpt2" => ByteLevel::new(false, true, true).into(),
            "smollm" => Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into(),
            other => return Err(TokenizerError::UnsupportedPreTokenizer(other.to_string())),
        };

        let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
        let n = tokens.len();
        if n == 0 || n > u32::MAX as usize {
            return Err(TokenizerError::Invalid {
                what: "tokenizer.ggml.tokens".into(),
                reason: format!("{n} tokens"),
            });
        }
        let types = match gguf.metadata("tokenizer.ggml.token_type") {
            None => vec![TOKEN_TYPE_NORMAL; n],
            Some(_) => gguf.get_i64_array("tokenizer.ggml.token_type")?,
        };
        if types.len() != n {
            return Err(TokenizerError::Invalid {
                what: "tokenizer.ggml.token_type".into(),
                reason: format!("{} entries for {n} tokens", types.len()),
            });
        }
        let merges = match gguf.metadata("tokenizer.ggml.merges") {
            None => vec![],
            Some(_) => gguf.get_str_array("tokenizer.ggml.merges")?,
        };
        let merges = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| TokenizerError::Invalid {
                    what: format!("tokenizer.ggml.merges[{i}]"),
                    reason: format!("{m:?} is not two tokens separated by a space"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // The first id wins when a token string repeats (ids of later copies stay unused).
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().rev().map(|(id, t)| (t.to_string(), id as u32)).collect();
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(lib_err)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let added = |ty: i64, special: bool| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(&types)
                .filter(|(_, t)| **t == ty)
                .map(|(tok, _)| AddedToken::from(tok.to_string(), special).normalized(false))
                .collect()
        };
        inner.add_special_tokens(&added(TOKEN_TYPE_CONTROL, true));
        inner.add_tokens(&added(TOKEN_TYPE_USER_DEFINED, false));

        let id = |key: &str| -> Result<Option<u32>, TokenizerError> {
            if gguf.metadata(key).is_none() {
                return Ok(None);
            }
            let v = gguf.get_u64(key)?;
            if v >= n as u64 {
                return Err(TokenizerError::Invalid {
                    what: key.into(),
                    reason: format!("id {v} ≥ vocabulary size {n}"),
                });
            }
            Ok(Some(v as u32))
        };
        let add_bos = match gguf.metadata("tokenizer.ggml.add_bos_token") {
            None => false,
            Some(_) => gguf.get_bool("tokenizer.ggml.add_bos_token")?,
        };
        let chat_template = match gguf.metadata("tokenizer.chat_template") {
            None => None,
            Some(_) => Some(gguf.get_str("tokenizer.chat_template")?.to_string()),
        };
        Ok(Tokenizer {
            inner,
            bos_id: id("tokenizer.ggml.bos_token_id")?,
            eos_id: id("tokenizer.ggml.eos_token_id")?,
            pad_id: id("tokenizer.ggml.padding_token_id")?,
            add_bos,
            chat_template,
        })
    }

    /// Builds a tokenizer from a Hugging Face `tokenizer.json`. The padding and truncation it may carry
    /// are removed ([`encode`](Self::encode) returns exactly the text's tokens); its padding id, if any,
    /// becomes `pad_id`. bos/eos and the chat template live in `tokenizer_config.json`: see
    /// [`from_hf`](Self::from_hf).
    pub fn from_json(bytes: &[u8]) -> Result<Tokenizer, TokenizerError> {
        Self::from_hf(bytes, None)
    }

    /// Builds a tokenizer from a Hugging Face `tokenizer.json` and, optionally, its
    /// `tokenizer_config.json`, from which `bos_token`, `eos_token`, `pad_token`, `add_bos_token` and
    /// `chat_template` are taken (tokens given as strings or as `{"content": ...}` objects; a template
    /// list of `{name, template}` gives the one named "default", else the first).
    pub fn from_hf(tokenizer_json: &[u8], tokenizer_config: Option<&[u8]>) -> Result<Tokenizer, TokenizerError> {
        let mut inner =
            tokenizers::Tokenizer::from_bytes(tokenizer_json).map_err(|e| TokenizerError::Json(e.to_string()))?;
        let mut pad_id = inner.get_padding().map(|p| p.pad_id);
        inner.with_padding(None);
        inner.with_truncation(None).map_err(lib_err)?;
        let mut tok =
            Tokenizer { inner, bos_id: None, eos_id: None, pad_id: None, add_bos: false, chat_template: None };
        if let Some(config) = tokenizer_config {
            let config: serde_json::Value = serde_json::from_slice(config)
                .map_err(|e| TokenizerError::Json(format!("tokenizer_config.json: {e}")))?;
            let token_id = |key: &str| -> Result<Option<u32>, TokenizerError> {
                let content = match config.get(key) {
                    Some(serde_json::Value::String(s)) => s.as_str(),
                    Some(serde_json::Value::Object(o)) => match o.get("content").and_then(|c| c.as_str()) {
                        Some(s) => s,
                        None => return Ok(None),
                    },
                    _ => return Ok(None),
                };
                tok.inner.token_to_id(content).map(Some).ok_or_else(|| TokenizerError::Invalid {
                    what: format!("tokenizer_config.json {key}"),
                    reason: format!("{content:?} is not in the vocabulary"),
                })
            };
            let (bos, eos, pad) = (token_id("bos_token")?, token_id("eos_token")?, token_id("pad_token")?);
            pad_id = pad.or(pad_id);
            tok.bos_id = bos;
            tok.eos_id = eos;
            tok.add_bos = config.get("add_bos_token").and_then(|v| v.as_bool()).unwrap_or(false);
            tok.chat_template = match config.get("chat_template") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Array(list)) => {
                    let named = |n: &serde_json::Value| n.get("name").and_then(|v| v.as_str()) == Some("default");
                    list.iter()
                        .find(|t| named(t))
                        .or(list.first())
                        .and_then(|t| t.get("template"))
                        .and_then(|t| t.as_str())
                        .map(String::from)
                }
                _ => None,
            };
        }
        tok.pad_id = pad_id;
        Ok(tok)
    }

    /// Sets the special ids, e.g. for a tokenizer.json whose config is not at hand.
    pub fn with_special_ids(mut self, bos_id: Option<u32>, eos_id: Option<u32>, pad_id: Option<u32>) -> Self {
        self.bos_id = bos_id;
        self.eos_id = eos_id;
        self.pad_id = pad_id;
        self
    }

    pub fn with_chat_template(mut self, template: Option<String>) -> Self {
        self.chat_template = template;
        self
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad_id
    }

    /// Whether the model expects a BOS before a prompt that does not start with one (GGUF's
    /// `tokenizer.ggml.add_bos_token`; HF's `add_bos_token`). [`encode`](Self::encode) never adds it.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The tokens of `text`. Special tokens written in the text (`<|im_start|>`) are recognised as their
    /// single ids; no BOS/EOS or post-processor tokens are added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.encode_with(text, false)
    }

    /// Like [`encode`](Self::encode), optionally running the tokenizer's post-processor (e.g. BERT's
    /// `[CLS] … [SEP]` for an encoder reward model).
    pub fn encode_with(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        Ok(self.inner.encode(text, add_special_tokens).map_err(lib_err)?.get_ids().to_vec())
    }

    /// Text of `ids`; an id outside the vocabulary is an error (the library would silently drop it).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        let size = self.vocab_size();
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= size || self.inner.id_to_token(id).is_none()) {
            return Err(TokenizerError::IdOutOfRange { id, size });
        }
        self.inner.decode(ids, skip_special_tokens).map_err(lib_err)
    }

    /// Renders the model's chat template for `messages`, with `bos_token`, `eos_token` and
    /// `add_generation_prompt` set, the way Hugging Face's `apply_chat_template(tokenize=False)` does
    /// (`trim_blocks` and `lstrip_blocks` on, `raise_exception(msg)` available).
    ///
    /// Supported Python methods (minijinja-contrib's pycompat is not a dependency): on strings `strip`,
    /// `lstrip`, `rstrip` (with optional chars), `startswith`, `endswith` (string or list of strings),
    /// `upper`, `lower`, `title`, `capitalize`, `replace`, `split`, `join`; on dicts `items`, `keys`,
    /// `values`, `get`. Not supported: `{% break %}`/`{% continue %}` (minijinja's
    /// loop_controls feature is off), `{% generation %}` blocks, `strftime_now`, tools.
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let source = self.chat_template.as_deref().ok_or(TokenizerError::NoChatTemplate)?;
        let token = |id: Option<u32>| id.and_then(|id| self.inner.id_to_token(id)).unwrap_or_default();
        render_chat_template(source, messages, add_generation_prompt, &token(self.bos_id), &token(self.eos_id))
    }
}

/// Renders a chat template (see [`Tokenizer::apply_chat_template`]).
pub fn render_chat_template(
    source: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String, TokenizerError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(python_method);
    env.add_function("raise_exception", |msg: String| -> Result<Value, JinjaError> {
        Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
    });
    let fmt = |e: JinjaError| {
        let mut s = e.to_string();
        if let Some(detail) = e.detail()
            && !s.contains(detail)
        {
            s = format!("{s}: {detail}");
        }
        TokenizerError::Template(s)
    };
    let template = env.template_from_str(source).map_err(fmt)?;
    template
        .render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos_token,
            eos_token => eos_token,
        })
        .map_err(fmt)
}

/// The Python str/dict methods that Hugging Face chat templates call, for minijinja.
fn python_method(_state: &State, value: &Value, method: &str, args: &[Value]) -> Result<Value, JinjaError> {
    let unknown = || JinjaError::from(ErrorKind::UnknownMethod);
    let bad_args = |what: &str| JinjaError::new(ErrorKind::InvalidOperation, format!("{method}(): {what}"));
    let str_arg = |i: usize| -> Result<Option<&str>, JinjaError> {
        match args.get(i) {
            None => Ok(None),
            Some(v) if v.is_none() || v.is_undefined() => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| bad_args("expected a string argument")),
        }
    };
    if let Some(s) = value.as_str() {
        let trim_set = |chars: Option<&str>| -> Box<dyn Fn(char) -> bool> {
            match chars {
                None => Box::new(char::is_whitespace),
                Some(set) => {
                    let set: Vec<char> = set.chars().collect();
                    Box::new(move |c| set.contains(&c))
                }
            }
        };
        let affix = |check: &dyn Fn(&str) -> bool| -> Result<Value, JinjaError> {
            let arg = args.first().ok_or_else(|| bad_args("missing argument"))?;
            if let Some(p) = arg.as_str() {
                return Ok(Value::from(check(p)));
            }
            let mut any = false;
            for item in arg.try_iter()? {
                any |= check(item.as_str().ok_or_else(|| bad_args("expected strings"))?);
            }
            Ok(Value::from(any))
        };
        return Ok(match method {
            "strip" => Value::from(s.trim_matches(&*trim_set(str_arg(0)?))),
            "lstrip" => Value::from(s.trim_start_matches(&*trim_set(str_arg(0)?))),
            "rstrip" => Value::from(s.trim_end_matches(&*trim_set(str_arg(0)?))),
            "startswith" => affix(&|p| s.starts_with(p))?,
            "endswith" => affix(&|p| s.ends_with(p))?,
            "upper" => Value::from(s.to_uppercase()),
            "lower" => Value::from(s.to_lowercase()),
            "capitalize" => {
                let mut cs = s.chars();
                Value::from(match cs.next() {
                    Some(f) => f.to_uppercase().chain(cs.flat_map(char::to_lowercase)).collect::<String>(),
                    None => String::new(),
                })
            }
            "title" => {
                let mut out = String::with_capacity(s.len());
                let mut prev_alpha = false;
                for c in s.chars() {
                    if prev_alpha {
                        out.extend(c.to_lowercase());
                    } else {
                        out.extend(c.to_uppercase());
                    }
                    prev_alpha = c.is_alphabetic();
                }
                Value::from(out)
            }
            "replace" => {
                let (from, to) = match (str_arg(0)?, str_arg(1)?) {
                    (Some(f), Some(t)) => (f, t),
                    _ => return Err(bad_args("expected two strings")),
                };
                match args.get(2).and_then(|c| c.as_i64()) {
                    Some(n) if n >= 0 => Value::from(s.replacen(from, to, n as usize)),
                    _ => Value::from(s.replace(from, to)),
                }
            }
            "split" => {
                let parts: Vec<Value> = match str_arg(0)? {
                    Some("") => return Err(bad_args("empty separator")),
                    Some(sep) => s.split(sep).map(Value::from).collect(),
                    None => s.split_whitespace().map(Value::from).collect(),
                };
                Value::from(parts)
            }
            "join" => {
                let arg = args.first().ok_or_else(|| bad_args("missing argument"))?;
                let mut parts = Vec::new();
                for item in arg.try_iter()? {
                    parts.push(item.to_string());
                }
                Value::from(parts.join(s))
            }
            _ => return Err(unknown()),
        });
    }
    if value.kind() == ValueKind::Map {
        return Ok(match method {
            "items" => {
                let mut out = Vec::new();
                for k in value.try_iter()? {
                    let v = value.get_item(&k)?;
                    out.push(Value::from(vec![k, v]));
                }
                Value::from(out)
            }
            "keys" => Value::from(value.try_iter()?.collect::<Vec<_>>()),
            "values" => {
                let mut out = Vec::new();
                for k in value.try_iter()? {
                    out.push(value.get_item(&k)?);
                }
                Value::from(out)
            }
            "get" => {
                let key = args.first().ok_or_else(|| bad_args("missing key"))?;
                let v = value.get_item(key)?;
                if v.is_undefined() { args.get(1).cloned().unwrap_or(Value::from(())) } else { v }
            }
            _ => return Err(unknown()),
        });
    }
    Err(unknown())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::gguf::{Gguf, write_gguf};

    fn byte_level() -> Tokenizer {
        let gguf = Gguf::parse(write_gguf(&byte_level_gguf_metadata(), &[])).unwrap();
        Tokenizer::from_gguf(&gguf).unwrap()
    }

    #[test]
    fn byte_table_matches_gpt2() {
        let t = byte_to_char();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[0xAD], 'Ń' /* U+0143: the 68th and last remapped byte */);
        let mut uniq = t.to_vec();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 256);
    }

    #[test]
    fn byte_level_vocab_round_trips_any_text() {
        let tok = byte_level();
        assert_eq!(tok.vocab_size(), 259);
        assert_eq!((tok.bos_id(), tok.eos_id(), tok.pad_id()), (Some(1), Some(2), Some(2)));
        assert_eq!(tok.encode("<|im_start|>").unwrap(), vec![1]);
        assert_eq!(tok.encode("a<|im_end|>\n").unwrap(), vec![3 + 97, 2, 3 + 10]);
        assert_eq!(tok.encode("é").unwrap(), vec![3 + 0xC3, 3 + 0xA9]);
        for text in [
            "",
            "Hello, world!",
            "  leading and trailing  \n\t",
            "naïve café — 東京 🦀 \u{0}\u{7f}",
            "fn main() { println!(\"{}\", 1 + 2); }\r\n",
            "<|im_start|>user\nhi<|im_end|>",
        ] {
            let ids = tok.encode(text).unwrap();
            assert_eq!(tok.decode(&ids, false).unwrap(), text);
        }
        let ids = tok.encode("<|im_start|>user\nhi<|im_end|>").unwrap();
        assert_eq!(tok.decode(&ids, true).unwrap(), "user\nhi");
        assert!(matches!(tok.decode(&[259], false), Err(TokenizerError::IdOutOfRange { id: 259, size: 259 })));
    }

    #[test]
    fn chatml_template_renders() {
        let tok = byte_level();
        let msgs = [Message::new("user", "Hi"), Message::new("assistant", "Hello!")];
        assert_eq!(
            tok.apply_chat_template(&msgs, false).unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        );
        assert_eq!(
            tok.apply_chat_template(&msgs[..1], true).unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn templates_get_python_methods_and_raise_exception() {
        let msgs = [Message::new("user", "  Hi there  ")];
        let render = |src: &str| render_chat_template(src, &msgs, true, "<s>", "</s>");
        let src = "{{ bos_token }}{% for m in messages %}[{{ m['content'].strip() }}|{{ m.content.lstrip() }}|\
                   {{ m.content.rstrip(' e') }}|{{ m.role.upper() }}|{{ m.content.strip().startswith(('x', 'Hi')) }}]\
                   {% endfor %}{{ eos_token }}";
        assert_eq!(render(src).unwrap(), "<s>[Hi there|Hi there  |  Hi ther|USER|True]</s>");
        let src = "{% for k, v in messages[0].items() %}{{ k }}={{ v.replace(' ', '_') }};{% endfor %}\
                   {{ messages[0].get('name', 'none') }}|{{ 'a b'.split()|length }}|{{ '-'.join(['x','y']) }}";
        assert_eq!(render(src).unwrap(), "role=user;content=__Hi_there__;none|2|x-y");
        // trim_blocks/lstrip_blocks like Hugging Face: block tags leave no blank lines.
        let src =
            "{% for m in messages %}\n    {% if m.role == 'user' %}\nU:{{ m.content }}\n    {% endif %}\n{% endfor %}";
        assert_eq!(render(src).unwrap(), "U:  Hi there  \n");
        let e = render("{% if messages[0].role != 'system' %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Conversation roles must alternate"), "{e}");
        let e = render("{{ messages[0].content.nosuchmethod() }}").unwrap_err().to_string();
        assert!(e.contains("nosuchmethod"), "{e}");
    }

    #[test]
    fn errors_are_clear() {
        let mut meta = byte_level_gguf_metadata();
        meta[0].1 = MetaValue::String("llama".into());
        let g = Gguf::parse(write_gguf(&meta, &[])).unwrap();
        let e = Tokenizer::from_gguf(&g).unwrap_err().to_string();
        assert!(e.starts_with("unsupported tokenizer model \"llama\""), "{e}");
        let mut meta = byte_level_gguf_metadata();
        meta[1].1 = MetaValue::String("deepseek-llm".into());
        let g = Gguf::parse(write_gguf(&meta, &[])).unwrap();
        assert!(matches!(Tokenizer::from_gguf(&g), Err(TokenizerError::UnsupportedPreTokenizer(_))));
        let mut meta = byte_level_gguf_metadata();
        meta[4].1 = MetaValue::Array(vec![MetaValue::String("ab".into())]);
        let g = Gguf::parse(write_gguf(&meta, &[])).unwrap();
        assert_eq!(
            Tokenizer::from_gguf(&g).unwrap_err().to_string(),
            "tokenizer.ggml.merges[0]: \"ab\" is not two tokens separated by a space"
        );
        let g = Gguf::parse(write_gguf(&[], &[])).unwrap();
        assert_eq!(
            Tokenizer::from_gguf(&g).unwrap_err().to_string(),
            "GGUF tokenizer metadata: metadata key \"tokenizer.ggml.model\" is missing"
        );
        let tok = byte_level().with_chat_template(None);
        assert!(matches!(tok.apply_chat_template(&[], true), Err(TokenizerError::NoChatTemplate)));
        assert!(matches!(Tokenizer::from_json(b"{not json"), Err(TokenizerError::Json(_))));
    }

    #[test]
    fn from_hf_json_and_config() {
        // The byte-level tokenizer saved as a tokenizer.json by the tokenizers crate itself.
        let json = byte_level().inner().to_string(false).unwrap();
        let config = br#"{"bos_token": {"content": "<|im_start|>"}, "eos_token": "<|im_end|>",
                          "add_bos_token": true, "chat_template": [{"name": "tool_use", "template": "T"},
                          {"name": "default", "template": "D"}]}"#;
        let tok = Tokenizer::from_hf(json.as_bytes(), Some(config)).unwrap();
        assert_eq!((tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.add_bos()), (Some(1), Some(2), None, true));
        assert_eq!(tok.chat_template(), Some("D"));
        assert_eq!(tok.encode("hi<|im_end|>").unwrap(), vec![3 + 104, 3 + 105, 2]);
        let plain = Tokenizer::from_json(json.as_bytes()).unwrap();
        assert_eq!((plain.bos_id(), plain.eos_id(), plain.chat_template()), (None, None, None));
        let e = Tokenizer::from_hf(json.as_bytes(), Some(br#"{"eos_token": "</s>"}"#)).unwrap_err();
        assert_eq!(e.to_string(), "tokenizer_config.json eos_token: \"</s>\" is not in the vocabulary");
    }
}
