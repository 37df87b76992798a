//! A model with its tokenizer: loaded from a GGUF file or a Hugging Face folder, exported as a Hugging Face
//! folder.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;

use crate::model::llama::{Llama, LlamaConfig};
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::weights::gguf::{Gguf, GgufError};
use crate::weights::hf::{
    CHAT_TEMPLATE_FILE, CONFIG_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, hf_files,
    llama_config_from_hf, shard_index,
};
use crate::weights::safetensors::{SafetensorsFile, SafetensorsSource};
use crate::weights::{GgufSource, WeightError, llama_config_from_gguf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading GGUF: {0}")]
    Gguf(#[from] GgufError),
    #[error("loading weights: {0}")]
    Weights(#[from] WeightError),
    #[error("building the tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("the model folder has no {0}")]
    MissingFile(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// A decoder, its resolved config and its tokenizer.
pub struct Pretrained {
    pub model: Llama,
    pub config: LlamaConfig,
    pub tokenizer: Tokenizer,
}

/// JSON files of a folder above this size are refused unread: the largest real tokenizer.json files are a few
/// tens of MB.
const MAX_JSON_BYTES: u64 = 256 << 20;

/// Tensors a checkpoint may hold that the model rightly ignores: rotary tables that old transformers
/// versions saved as buffers (alignlab recomputes them from the config).
fn ignorable(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

impl Pretrained {
    /// Loads a Llama-family GGUF (weights dequantised to f32, tokenizer and chat template from its metadata).
    pub fn from_gguf(bytes: Vec<u8>, device: &Device) -> Result<Self, LoadError> {
        let gguf = Gguf::parse(bytes)?;
        let config = llama_config_from_gguf(&gguf)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        let source = GgufSource { gguf: &gguf, n_heads: config.n_heads, n_kv_heads: config.n_kv_heads };
        let model = Llama::from_source(&config, &source, device)?;
        Ok(Self { model, config, tokenizer })
    }

    /// Loads a Hugging Face folder: `config.json`, `model.safetensors` (or `model.safetensors.index.json` and
    /// its shards; f32, f16 or bf16), `tokenizer.json` and optionally `tokenizer_config.json` (special tokens,
    /// chat template) and `chat_template.jinja`. Only the files it needs are read.
    pub fn from_hf_dir(dir: impl AsRef<Path>, device: &Device) -> Result<Self, LoadError> {
        Self::from_hf_reader(&mut dir_reader(dir.as_ref()), device)
    }

    /// Loads a Hugging Face folder given as file name → contents (e.g. files picked in a browser); see
    /// [`from_hf_dir`](Self::from_hf_dir) for the files used. Entries it does not need are ignored.
    pub fn from_hf_files(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let mut files: HashMap<String, Vec<u8>> = files.into_iter().collect();
        Self::from_hf_reader(&mut |name| Ok(files.remove(name)), device)
    }

    /// The loader behind both: `read(name)` gives a file's bytes, `None` when the folder lacks it.
    fn from_hf_reader(read: &mut ReadFile, device: &Device) -> Result<Self, LoadError> {
        let mut require = |name: &str| read(name)?.ok_or_else(|| LoadError::MissingFile(name.to_string()));
        let config = llama_config_from_hf(&require(CONFIG_FILE)?).map_err(|e| e.in_file(CONFIG_FILE))?;
        let tokenizer_json = require(TOKENIZER_FILE)?;
        let tokenizer_config = read(TOKENIZER_CONFIG_FILE)?;
        let mut tokenizer = Tokenizer::from_hf(&tokenizer_json, tokenizer_config.as_deref())?;
        if tokenizer.chat_template().is_none()
            && let Some(t) = read(CHAT_TEMPLATE_FILE)?
        {
            let t = String::from_utf8(t).map_err(|e| TokenizerError::Invalid {
                what: CHAT_TEMPLATE_FILE.into(),
                reason: format!("not UTF-8: {e}"),
            })?;
            tokenizer = tokenizer.with_chat_template(Some(t));
        }
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(WeightError::Config(format!(
                "{TOKENIZER_FILE} has {} tokens, more than the model's vocab_size {}",
                tokenizer.vocab_size(),
                config.vocab_size
            ))
            .into());
        }

        let (files, weight_map) = read_hf_weights(read)?;
        let label = if weight_map.is_some() { WEIGHTS_INDEX_FILE } else { WEIGHTS_FILE };
        let source = hf_weights_source(&files, weight_map)?;
        let model = Llama::from_source(&config, &source, device)?;
        let unused: Vec<String> = source
            .unused()
            .into_iter()
            .filter(|n| !(ignorable(n) || config.tie_word_embeddings && n == "lm_head.weight"))
            .collect();
        if !unused.is_empty() {
            return Err(WeightError::Unused { names: unused }.in_file(label).into());
        }
        Ok(Self { model, config, tokenizer })
    }

    /// The Hugging Face folder of this model as file name → contents: `config.json`, `model.safetensors`
    /// (f32), `tokenizer.json` and `tokenizer_config.json` (with the chat template).
    pub async fn to_hf_files(&self) -> Result<Vec<(String, Vec<u8>)>, LoadError> {
        Ok(hf_files(&self.model, &self.config, Some(&self.tokenizer)).await?)
    }

    /// Writes [`to_hf_files`](Self::to_hf_files) into `dir`, creating it if needed.
    pub async fn save_hf_dir(&self, dir: impl AsRef<Path>) -> Result<(), LoadError> {
        let dir = dir.as_ref();
        let io = |path: &Path, source| LoadError::Io { path: path.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for (name, bytes) in self.to_hf_files().await? {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
        Ok(())
    }
}

/// Reads the files of a folder by name: `None` for a missing file; JSON files over [`MAX_JSON_BYTES`] refused.
pub(crate) fn dir_reader(dir: &Path) -> impl FnMut(&str) -> Result<Option<Vec<u8>>, LoadError> + '_ {
    move |name| {
        let path = dir.join(name);
        let io = |source| LoadError::Io { path: path.display().to_string(), source };
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if name.ends_with(".json") && len > MAX_JSON_BYTES {
            let reason = format!("{len} bytes is more than the {MAX_JSON_BYTES} a JSON file may have");
            return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, reason)));
        }
        std::fs::read(&path).map(Some).map_err(io)
    }
}

/// A folder as a function: `read(name)` gives a file's bytes, `None` when the folder lacks it.
pub(crate) type ReadFile<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, LoadError> + 'a;

/// The bytes of `model.safetensors`, or of the shards that `model.safetensors.index.json` names together
/// with its tensor → file map.
pub(crate) type WeightFiles = (Vec<(String, Vec<u8>)>, Option<Vec<(String, String)>>);

pub(crate) fn read_hf_weights(read: &mut ReadFile) -> Result<WeightFiles, LoadError> {
    if let Some(bytes) = read(WEIGHTS_FILE)? {
        return Ok((vec![(WEIGHTS_FILE.to_string(), bytes)], None));
    }
    let index = read(WEIGHTS_INDEX_FILE)?
        .ok_or_else(|| LoadError::MissingFile(format!("{WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}")))?;
    let (names, weight_map) = shard_index(&index).map_err(|e| e.in_file(WEIGHTS_INDEX_FILE))?;
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let bytes =
            read(&name)?.ok_or_else(|| LoadError::MissingFile(format!("{name} (named by {WEIGHTS_INDEX_FILE})")))?;
        files.push((name, bytes));
    }
    Ok((files, Some(weight_map)))
}

/// The tensors of the weight files, each file's header checked, and the index (if any) checked against them.
pub(crate) fn hf_weights_source(
    files: &[(String, Vec<u8>)],
    weight_map: Option<Vec<(String, String)>>,
) -> Result<SafetensorsSource<'_>, LoadError> {
    let parsed = files
        .iter()
        .map(|(name, bytes)| Ok((name.clone(), SafetensorsFile::parse(bytes).map_err(|e| e.in_file(name))?)))
        .collect::<Result<Vec<_>, WeightError>>()?;
    let Some(weight_map) = weight_map else { return Ok(SafetensorsSource::new(WEIGHTS_FILE, parsed)?) };
    let source = SafetensorsSource::new(WEIGHTS_INDEX_FILE, parsed)?;
    for (tensor, file) in weight_map {
        if source.file_of(&tensor) != Some(file.as_str()) {
            let reason = format!("the index puts tensor {tensor} in {file}, which does not hold it");
            return Err(WeightError::Safetensors(reason).in_file(WEIGHTS_INDEX_FILE).into());
        }
    }
    Ok(source)
}
