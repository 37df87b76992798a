//! Hugging Face checkpoint folders: `config.json` ↔ [`LlamaConfig`], the shard index
//! (`model.safetensors.index.json`), and the files of an export.
//!
//! Both spellings of the RoPE settings are read: transformers 4's top-level `rope_theta` + `rope_scaling`
//! (`{"type" | "rope_type": …}`) and transformers 5's `rope_parameters` (`{"rope_type", "rope_theta", …}`).
//! Exports write the 4.x spelling, which transformers 5 still reads (it converts it), while 4.x ignores
//! `rope_parameters` and would silently fall back to θ = 10000.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::WeightError;
use super::safetensors::to_safetensors;
use crate::model::llama::{Llama, LlamaConfig, RopeScaling};
use crate::tokenizer::Tokenizer;

/// The folder's model config.
pub const CONFIG_FILE: &str = "config.json";
/// The weights when they fit one file.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The shard index of larger checkpoints: `{"weight_map": {tensor name: shard file}}`.
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// Where transformers ≥ 4.43 may save the chat template instead of `tokenizer_config.json`.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// `config.json` as transformers writes it for the Llama family; keys alignlab has no use for are ignored,
/// as transformers does. Defaults are those of transformers' `LlamaConfig`/`Qwen2Config`.
#[derive(Deserialize)]
struct ConfigFile {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    hidden_act: Option<String>,
    rms_norm_eps: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    use_sliding_window: Option<bool>,
    sliding_window: Option<usize>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Map<String, Value>>,
    rope_parameters: Option<Map<String, Value>>,
}

/// The decoder shape from a `config.json` (model types `llama`, `qwen2` and `mistral`). Settings that
/// would change the computation and that alignlab does not implement are errors, never ignored.
pub fn llama_config_from_hf(json: &[u8]) -> Result<LlamaConfig, WeightError> {
    let f: ConfigFile = serde_json::from_slice(json).map_err(|e| WeightError::Json(e.to_string()))?;
    let bad = |msg: String| Err(WeightError::Config(msg));
    let model_type = f.model_type.as_deref().unwrap_or("");
    if !matches!(model_type, "llama" | "qwen2" | "mistral") {
        return bad(format!("model_type {model_type:?} is not a Llama-family decoder (llama, qwen2, mistral)"));
    }
    if let Some(act) = f.hidden_act.as_deref().filter(|a| *a != "silu") {
        return bad(format!("hidden_act {act:?} is not supported (the Llama family uses \"silu\")"));
    }
    if let Some(hd) = f.head_dim.filter(|&hd| f.num_attention_heads * hd != f.hidden_size) {
        return bad(format!(
            "head_dim {hd} × num_attention_heads {} ≠ hidden_size {} is not supported",
            f.num_attention_heads, f.hidden_size
        ));
    }
    // Qwen2 always has q/k/v biases; Llama's `attention_bias` would also bias o_proj.
    if model_type != "qwen2" && f.attention_bias == Some(true) {
        return bad("attention_bias = true (biases on q/k/v/o) is not supported".into());
    }
    if f.mlp_bias == Some(true) {
        return bad("mlp_bias = true is not supported".into());
    }
    let max_position_embeddings = f.max_position_embeddings.unwrap_or(2048);
    let windowed = match model_type {
        "qwen2" => f.use_sliding_window == Some(true),
        _ => f.sliding_window.is_some_and(|w| w < max_position_embeddings),
    };
    if windowed {
        return bad("sliding-window attention is not supported".into());
    }
    let (theta, scaling) = match &f.rope_parameters {
        Some(p) => (p.get("rope_theta").and_then(Value::as_f64).or(f.rope_theta), rope_scaling(p)?),
        None => (f.rope_theta, f.rope_scaling.as_ref().map(rope_scaling).transpose()?.flatten()),
    };
    let config = LlamaConfig::new(
        f.vocab_size,
        f.hidden_size,
        f.num_hidden_layers,
        f.num_attention_heads,
        f.num_key_value_heads.unwrap_or(f.num_attention_heads),
        f.intermediate_size,
    )
    .with_rope_theta(theta.unwrap_or(10000.0))
    .with_rms_norm_eps(f.rms_norm_eps.unwrap_or(1e-6))
    .with_max_position_embeddings(max_position_embeddings)
    .with_tie_word_embeddings(f.tie_word_embeddings.unwrap_or(false))
    .with_qkv_bias(model_type == "qwen2")
    .with_rope_scaling(scaling);
    config.validate()?;
    Ok(config)
}

/// A `rope_scaling`/`rope_parameters` object: `None` for plain RoPE.
fn rope_scaling(p: &Map<String, Value>) -> Result<Option<RopeScaling>, WeightError> {
    let kind = p.get("rope_type").or_else(|| p.get("type")).and_then(Value::as_str).unwrap_or("default");
    let num = |key: &str| {
        p.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| WeightError::Config(format!("rope_scaling of type {kind:?} needs a number {key}")))
    };
    Ok(match kind {
        "default" => None,
        "linear" => Some(RopeScaling::Linear { factor: num("factor")? }),
        "llama3" => {
            let original = num("original_max_position_embeddings")?;
            if original.fract() != 0.0 || !(1.0..=f64::from(u32::MAX)).contains(&original) {
                return Err(WeightError::Config(format!(
                    "rope_scaling original_max_position_embeddings {original} is not a positive integer"
                )));
            }
            Some(RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: original as usize,
            })
        }
        other => {
            return Err(WeightError::Config(format!(
                "rope_scaling type {other:?} is not supported (supported: \"default\", \"linear\", \"llama3\")"
            )));
        }
    })
}

/// `config.json` for `config`: a `LlamaForCausalLM`, or a `Qwen2ForCausalLM` when the q/k/v projections
/// have biases. `bos`/`eos` are the tokenizer's ids, which transformers' generation reads from here.
pub fn hf_config_json(config: &LlamaConfig, bos: Option<u32>, eos: Option<u32>) -> String {
    let (arch, model_type) =
        if config.qkv_bias { ("Qwen2ForCausalLM", "qwen2") } else { ("LlamaForCausalLM", "llama") };
    let rope_scaling = match &config.rope_scaling {
        None => Value::Null,
        Some(s) => serde_json::to_value(s).unwrap_or(Value::Null),
    };
    let mut v = json!({
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "head_dim": config.head_dim(),
        "hidden_act": "silu",
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "rope_scaling": rope_scaling,
        "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": config.tie_word_embeddings,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    });
    if config.qkv_bias {
        v["use_sliding_window"] = json!(false);
    } else {
        v["attention_bias"] = json!(false);
        v["mlp_bias"] = json!(false);
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// Shard file names, and the tensor → file map.
pub type ShardIndex = (Vec<String>, Vec<(String, String)>);

/// The shard files named by a `model.safetensors.index.json`, each once, in order, with the tensor → file
/// map. A file name must be a plain name inside the folder (no path separators, no `..`).
pub fn shard_index(json: &[u8]) -> Result<ShardIndex, WeightError> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_slice(json).map_err(|e| WeightError::Json(e.to_string()))?;
    let mut files: Vec<String> = index.weight_map.values().cloned().collect();
    files.sort();
    files.dedup();
    if let Some(f) = files.iter().find(|f| f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.')) {
        return Err(WeightError::Safetensors(format!("shard file name {f:?} is not a plain file name")));
    }
    Ok((files, index.weight_map.into_iter().collect()))
}

/// `tokenizer_config.json` for `tokenizer`: its special tokens, chat template and whether it expects a BOS,
/// for transformers' `PreTrainedTokenizerFast` over the `tokenizer.json` beside it.
pub fn tokenizer_config_json(tokenizer: &Tokenizer, model_max_length: usize) -> String {
    let token = |id: Option<u32>| id.and_then(|id| tokenizer.id_to_token(id)).map_or(Value::Null, Value::from);
    let v = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token(tokenizer.bos_id()),
        "eos_token": token(tokenizer.eos_id()),
        "pad_token": token(tokenizer.pad_id()),
        "add_bos_token": tokenizer.add_bos(),
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": model_max_length,
        "chat_template": tokenizer.chat_template(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// The files of a Hugging Face folder for `model`: `config.json`, `model.safetensors` (f32, the names of
/// [`Llama::named_tensors`]) and, with a tokenizer, `tokenizer.json` and `tokenizer_config.json`.
/// transformers' `from_pretrained` and alignlab's `Pretrained::from_hf_dir` load them.
pub async fn hf_files(
    model: &Llama,
    config: &LlamaConfig,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<(String, Vec<u8>)>, WeightError> {
    let tensors = model.named_tensors();
    let expected =
        config.n_layers * (9 + if config.qkv_bias { 3 } else { 0 }) + 2 + usize::from(!config.tie_word_embeddings);
    if model.vocab_size() != config.vocab_size || model.d_model() != config.d_model || tensors.len() != expected {
        return Err(WeightError::Config(format!(
            "the model ({} tensors, vocab {}, d_model {}) does not have the shape of its config {config:?}",
            tensors.len(),
            model.vocab_size(),
            model.d_model()
        )));
    }
    let metadata = [("format".to_string(), "pt".to_string())].into_iter().collect();
    let weights = to_safetensors(tensors, metadata).await?;
    let (bos, eos) = tokenizer.map_or((None, None), |t| (t.bos_id(), t.eos_id()));
    let mut files = vec![
        (CONFIG_FILE.to_string(), hf_config_json(config, bos, eos).into_bytes()),
        (WEIGHTS_FILE.to_string(), weights),
    ];
    if let Some(t) = tokenizer {
        let json = t.inner().to_string(true).map_err(|e| WeightError::Json(format!("{TOKENIZER_FILE}: {e}")))?;
        files.push((TOKENIZER_FILE.to_string(), json.into_bytes()));
        let tc = tokenizer_config_json(t, config.max_position_embeddings);
        files.push((TOKENIZER_CONFIG_FILE.to_string(), tc.into_bytes()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's config.json (written by transformers 4.42.3), less its transformers.js block.
    const SMOLLM2_CONFIG: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 576,
      "initializer_range": 0.041666666666666664, "intermediate_size": 1536, "is_llama_config": true,
      "max_position_embeddings": 8192, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 9,
      "num_hidden_layers": 30, "num_key_value_heads": 3, "pad_token_id": 2, "pretraining_tp": 1,
      "rms_norm_eps": 1e-05, "rope_interleaved": false, "rope_scaling": null, "rope_theta": 100000,
      "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.42.3",
      "use_cache": true, "vocab_size": 49152
    }"#;

    #[test]
    fn reads_a_transformers_4_config() {
        let c = llama_config_from_hf(SMOLLM2_CONFIG.as_bytes()).unwrap();
        let expected = LlamaConfig::new(49152, 576, 30, 9, 3, 1536)
            .with_rope_theta(100000.0)
            .with_rms_norm_eps(1e-5)
            .with_max_position_embeddings(8192);
        assert_eq!(c, expected);
    }

    #[test]
    fn reads_rope_parameters_of_transformers_5_and_legacy_type_key() {
        let v5 = r#"{"model_type": "llama", "vocab_size": 300, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
              "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}"#;
        let c = llama_config_from_hf(v5.as_bytes()).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(
            c.rope_scaling,
            Some(RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 64
            })
        );
        assert!(!c.tie_word_embeddings && !c.qkv_bias);
        // transformers 4's spelling, with the older `type` key; Qwen2 biases q/k/v.
        let v4 = r#"{"model_type": "qwen2", "vocab_size": 300, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "rope_scaling": {"type": "linear", "factor": 2.0}}"#;
        let c = llama_config_from_hf(v4.as_bytes()).unwrap();
        assert_eq!(
            (c.rope_theta, c.rope_scaling, c.qkv_bias),
            (10000.0, Some(RopeScaling::Linear { factor: 2.0 }), true)
        );
    }

    #[test]
    fn config_json_round_trips() {
        let configs = [
            LlamaConfig::new(49152, 576, 30, 9, 3, 1536).with_rope_theta(100000.0).with_rms_norm_eps(1e-5_f32 as f64),
            LlamaConfig::new(300, 32, 2, 4, 2, 64)
                .with_tie_word_embeddings(false)
                .with_qkv_bias(true)
                .with_rope_scaling(Some(RopeScaling::Linear { factor: 4.0 })),
            LlamaConfig::new(300, 32, 2, 4, 4, 64).with_rope_scaling(Some(RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192,
            })),
        ];
        for c in configs {
            let json = hf_config_json(&c, Some(1), Some(2));
            assert_eq!(llama_config_from_hf(json.as_bytes()).unwrap(), c, "{json}");
        }
    }

    #[test]
    fn unsupported_settings_are_named() {
        let yarn = r#""rope_scaling": {"rope_type": "yarn", "factor": 4.0}"#;
        let e = llama_config_from_hf(SMOLLM2_CONFIG.replace(r#""rope_scaling": null"#, yarn).as_bytes());
        assert_eq!(
            e.unwrap_err().to_string(),
            "model config: rope_scaling type \"yarn\" is not supported (supported: \"default\", \"linear\", \"llama3\")"
        );
        let e = llama_config_from_hf(SMOLLM2_CONFIG.replace("\"llama\"", "\"gpt2\"").as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "model config: model_type \"gpt2\" is not a Llama-family decoder (llama, qwen2, mistral)"
        );
        let e = llama_config_from_hf(SMOLLM2_CONFIG.replace("\"silu\"", "\"gelu\"").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("hidden_act \"gelu\""), "{e}");
        let e = llama_config_from_hf(SMOLLM2_CONFIG.replace("\"mlp_bias\": false", "\"mlp_bias\": true").as_bytes());
        assert!(e.unwrap_err().to_string().contains("mlp_bias"));
        let e = llama_config_from_hf(SMOLLM2_CONFIG.replace("\"num_hidden_layers\": 30,", "").as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON: missing field `num_hidden_layers`"), "{e}");
        let e = llama_config_from_hf(b"{\"model_type\": \"llama\",").unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON: EOF while parsing"), "{e}");
        let huge = SMOLLM2_CONFIG.replace("\"num_hidden_layers\": 30", "\"num_hidden_layers\": 4000000000");
        assert!(llama_config_from_hf(huge.as_bytes()).unwrap_err().to_string().contains("n_layers 4000000000"));
    }

    #[test]
    fn shard_index_lists_files_and_refuses_paths() {
        let (files, map) = shard_index(
            br#"{"metadata": {"total_size": 8}, "weight_map": {"b": "model-00002-of-00002.safetensors",
                "a": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        assert_eq!(files, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
        assert_eq!(map.len(), 3);
        for evil in ["../secret", "/etc/passwd", "a\\\\b", ".hidden", ""] {
            let json = format!(r#"{{"weight_map": {{"a": "{evil}"}}}}"#);
            assert!(shard_index(json.as_bytes()).is_err(), "{evil}");
        }
    }
}
