//! Reference log-probs cached beside the data (core `ref_logps`): `alignlab ref-logps`, a training run's
//! `--precompute-ref-log-probs`, and the check every run makes before it reads cached values.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use alignlab_core::convert::Format;
use alignlab_core::data::ReadOptions;
use alignlab_core::eval::implicit::detect_format;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::ref_logps::{
    RefLogpsKey, SIDECAR_SUFFIX, Sidecar, carries_values, drop_kl_values, format_of, model_sha256, read_raw,
    sha256_hex, write_jsonl,
};
use alignlab_core::train::{Objective, TrainConfig, TrainData, data_logps};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;

use crate::args::RefLogpsArgs;
use crate::{device, hub, load_model, write_file};

/// `pairs.jsonl` → `pairs.ref.jsonl`, beside it.
pub fn default_cache_path(data: &Path) -> PathBuf {
    data.with_extension("ref.jsonl")
}

/// `<file>.key.json`.
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(SIDECAR_SUFFIX);
    PathBuf::from(name)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The sha256 naming the model at `path`: its file, or the manifest of the files of a Hugging Face folder
/// that loading reads (configs, tokenizer files, templates, weights).
pub fn model_digest(path: &Path) -> Result<String> {
    let path = hub::resolve(path)?;
    let read = |p: &Path| fs::read(p).with_context(|| format!("reading {} to hash it", p.display()));
    if !path.is_dir() {
        return Ok(sha256_hex(&read(&path)?));
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(&path).with_context(|| format!("listing {}", path.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let loaded = [".json", ".safetensors", ".jinja", ".txt", ".model"].iter().any(|ext| name.ends_with(ext));
        if loaded && entry.file_type()?.is_file() {
            files.push((name, read(&entry.path())?));
        }
    }
    if files.is_empty() {
        bail!("{} holds no model files to hash", path.display());
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    Ok(model_sha256(&refs))
}

/// The format of the data file `path` (first record's keys).
fn format_of_file(path: &Path, text: &str) -> Result<Format> {
    detect_format(&file_name(path), text).with_context(|| {
        format!("{}: cannot tell its format from the first record (pairs, unpaired examples or lists)", path.display())
    })
}

/// Scores `data` (tokenised with the key's options) under `pre` as a run with `config` does, and writes it with the values to
/// `out`, and the sidecar beside it.
fn write_cache(
    pre: &Pretrained,
    data: &Path,
    out: &Path,
    key: &RefLogpsKey,
    config: &TrainConfig,
    skip_bad_lines: bool,
    device: &Device,
) -> Result<Sidecar> {
    let bytes = fs::read(data).with_context(|| format!("reading {}", data.display()))?;
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{} is not UTF-8", data.display()))?;
    let name = file_name(data);
    let opts = ReadOptions { skip_bad_lines, ..Default::default() };
    let raw = read_raw(&name, text, key.format, &opts, &pre.tokenizer, &key.tokenize)?;
    for (line, reason) in &raw.skipped {
        eprintln!("skipped {name}:{line}: {reason}");
    }
    if raw.data.is_empty() {
        bail!("{}: no examples to compute reference log-probs for", data.display());
    }
    let pad = pre.tokenizer.pad_id().or(pre.tokenizer.eos_id()).unwrap_or(0);
    let (pairs, lists) = pollster::block_on(data_logps(&pre.model, raw.data.clone(), config, pad, device))
        .with_context(|| format!("computing the reference log-probs of {}", data.display()))?;
    let jsonl = write_jsonl(&raw, &pairs, &lists);
    write_file(out, jsonl.as_bytes())?;
    let sidecar = Sidecar {
        key: key.clone(),
        records: raw.data.len(),
        source_sha256: sha256_hex(&bytes),
        data_sha256: sha256_hex(jsonl.as_bytes()),
    };
    write_file(&sidecar_path(out), serde_json::to_string_pretty(&sidecar)?.as_bytes())?;
    Ok(sidecar)
}

/// `alignlab ref-logps`.
pub fn ref_logps(a: RefLogpsArgs) -> Result<()> {
    let device = device(a.device);
    let start = Instant::now();
    let pre = load_model(&a.model, &device)?;
    let text = fs::read_to_string(&a.data).with_context(|| format!("reading {}", a.data.display()))?;
    let format = format_of_file(&a.data, &text)?;
    let topts = a.tokenize.options();
    let config = TrainConfig {
        batch_size: a.batch_size.max(1),
        max_length: a.tokenize.max_length,
        max_list_length: a.tokenize.max_list_length,
        ..Default::default()
    };
    let key = RefLogpsKey::new(&model_digest(&a.model)?, format, &topts);
    let out = a.out.clone().unwrap_or_else(|| default_cache_path(&a.data));
    let sidecar = write_cache(&pre, &a.data, &out, &key, &config, a.skip_bad_lines, &device)?;
    let summary = serde_json::json!({
        "out": out, "sidecar": sidecar_path(&out), "format": format, "records": sidecar.records, "key": key.key,
        "model_sha256": key.model_sha256, "seconds": start.elapsed().as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// The key of a run of `config` (`objective`) on the model at `model`.
fn run_key(model: &Path, objective: Objective, config: &TrainConfig) -> Result<Option<RefLogpsKey>> {
    Ok(match format_of(objective) {
        Some(format) => Some(RefLogpsKey::new(&model_digest(model)?, format, &config.tokenize_options())),
        None => None,
    })
}

/// Whether a run of `objective` reads reference log-probs at all.
fn uses_reference(objective: Objective, config: &TrainConfig) -> bool {
    match objective {
        Objective::Dpo => config.dpo_loss().uses_reference(),
        Objective::Kto | Objective::Lipo | Objective::Modpo => true,
        Objective::Reward | Objective::Regression => false,
    }
}

/// `--precompute-ref-log-probs`: the path of the cache beside `data` to train from, written now unless one
/// exists for this very data, model and tokenisation (then it is reused).
pub fn precompute(
    data: &Path,
    model: &Path,
    pre: &Pretrained,
    objective: Objective,
    config: &TrainConfig,
    skip_bad_lines: bool,
    device: &Device,
) -> Result<PathBuf> {
    if !uses_reference(objective, config) {
        eprintln!("note: this run needs no reference model: --precompute-ref-log-probs has nothing to compute");
        return Ok(data.to_path_buf());
    }
    let key = run_key(model, objective, config)?.expect("runs with a reference have a format");
    let out = default_cache_path(data);
    let source = sha256_hex(&fs::read(data).with_context(|| format!("reading {}", data.display()))?);
    let stale = match (fs::read(sidecar_path(&out)), fs::read(&out)) {
        (Ok(side), Ok(cache)) => match Sidecar::parse(&file_name(&out), &side) {
            Ok(s) if s.source_sha256 != source => Some("the data changed since"),
            Ok(s) if s.check(&file_name(&out), &cache, &key).is_err() => Some("another model or tokenisation"),
            Ok(_) => None,
            Err(_) => Some("its sidecar is unreadable"),
        },
        _ => Some(""),
    };
    match stale {
        None => eprintln!("reference log-probs: reusing {} (key {})", out.display(), key.key),
        Some(why) => {
            if !why.is_empty() {
                eprintln!("reference log-probs in {} are stale ({why}): computing them again", out.display());
            }
            let start = Instant::now();
            let sidecar = write_cache(pre, data, &out, &key, config, skip_bad_lines, device)?;
            let secs = start.elapsed().as_secs_f64();
            eprintln!("reference log-probs of {} examples written to {} in {secs:.1}s", sidecar.records, out.display());
        }
    }
    Ok(out)
}

/// Before a run reads cached reference log-probs from each part's file (the training part, the held-out part):
/// refuses them when the sidecar's key is not this run's, warns when there is no sidecar, and drops KTO's cached
/// KL values when the part's examples are not the cache's (its KL pairs differ). Each part is checked on its own,
/// since KTO's KL pairs are formed within a part; the run's key (a hash of the model's files) is computed once, and
/// only when some part has a sidecar.
pub fn check(
    parts: [(&Path, &mut TrainData); 2],
    model: &Path,
    objective: Objective,
    config: &TrainConfig,
) -> Result<()> {
    if !uses_reference(objective, config) {
        return Ok(());
    }
    let mut run_key_once = None;
    for (path, data) in parts {
        if !carries_values(data) {
            continue;
        }
        let side = sidecar_path(path);
        let Ok(bytes) = fs::read(&side) else {
            eprintln!(
                "warning: {} carries reference log-probs but no {} key: they are used as they are, unchecked \
                 against this model and tokenisation",
                path.display(),
                side.display()
            );
            continue;
        };
        let sidecar = Sidecar::parse(&side.display().to_string(), &bytes)?;
        if run_key_once.is_none() {
            run_key_once = run_key(model, objective, config)?;
        }
        let key = run_key_once.as_ref().expect("runs with a reference have a format");
        let cache = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        sidecar.check(&path.display().to_string(), &cache, key)?;
        if matches!(data, TrainData::Unpaired(_)) && data.len() != sidecar.records {
            eprintln!(
                "note: this run holds {} of the {} examples of {}: KTO's KL pairs differ from the cached ones, so \
                 the reference pass computes them again",
                data.len(),
                sidecar.records,
                path.display()
            );
            drop_kl_values(data);
        }
    }
    Ok(())
}
