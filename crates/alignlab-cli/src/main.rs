//! `alignlab`: the native command line over alignlab-core. This crate is interface and glue: argument
//! parsing, one resolution of flags + config file into a `TrainConfig`, progress bars and the run folder.

mod args;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use alignlab_core::data::{
    PreferenceRecord, ReadOptions, TokenizeOptions, TokenizedPair, read_preferences, tokenize_pair, train_eval_split,
};
use alignlab_core::eval::preference::{reward_metrics, reward_metrics_by_group};
use alignlab_core::generate::{GenerateOptions, greedy};
use alignlab_core::metrics;
use alignlab_core::model::bert::{Bert, bert_tokenizer};
use alignlab_core::model::llama::Llama;
use alignlab_core::objectives::logprob::chunk_rows;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::tokenizer::{Message, Tokenizer};
use alignlab_core::train::{Backbone, Objective, TrainConfig, Trainer, TrainerState, score_pairs};
use alignlab_core::weights::safetensors::{SafetensorsSource, to_safetensors};
use anyhow::{Context, Result, bail};
use args::{Cli, Command, DeviceArg, EvalArgs, GenerateArgs, TrainArgs};
use burn::tensor::Device;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(a) => generate(a),
        Command::Dpo(a) => train(a, Objective::Dpo),
        Command::Reward(a) => train(a, Objective::Reward),
        Command::Eval(a) => eval(a),
        Command::TinyModel { seed, out } => {
            write_file(&out, &tiny_gguf(seed))?;
            println!("wrote the tiny model (seed {seed}) to {}", out.display());
            Ok(())
        }
    }
}

fn device(arg: DeviceArg) -> Device {
    match arg {
        DeviceArg::Cpu => Device::flex(),
        DeviceArg::Wgpu => Device::wgpu(Default::default()),
    }
}

/// A GGUF file, or a Hugging Face folder (config.json, safetensors, tokenizer.json).
fn load_model(path: &Path, device: &Device) -> Result<Pretrained> {
    if path.is_dir() {
        return Pretrained::from_hf_dir(path, device).with_context(|| format!("loading the model {}", path.display()));
    }
    let bytes = fs::read(path).with_context(|| format!("reading the model {}", path.display()))?;
    Pretrained::from_gguf(bytes, device).with_context(|| format!("loading the model {}", path.display()))
}

/// A BERT-style encoder folder (config.json with `"model_type": "bert"`, model.safetensors, tokenizer.json),
/// or `None` for anything else.
fn load_encoder(path: &Path, device: &Device) -> Result<Option<(Bert, Tokenizer)>> {
    let config = path.join("config.json");
    let is_bert = fs::read(&config)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["model_type"] == "bert");
    if !is_bert {
        return Ok(None);
    }
    let read = |name: &str| fs::read(path.join(name)).with_context(|| format!("reading {}", path.join(name).display()));
    let (bert, _) = Bert::from_hf(&read("config.json")?, &read("model.safetensors")?, device)
        .with_context(|| format!("loading the encoder {}", path.display()))?;
    let tokenizer =
        bert_tokenizer(&read("tokenizer.json")?).with_context(|| format!("{}/tokenizer.json", path.display()))?;
    Ok(Some((bert, tokenizer)))
}

/// `pre`'s architecture with the weights of a safetensors file (a run's model.safetensors).
fn load_weights(pre: &Pretrained, path: &Path, device: &Device) -> Result<Llama> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let source = SafetensorsSource::parse(&bytes).with_context(|| format!("reading {}", path.display()))?;
    Llama::from_source(&pre.config, &source, device)
        .with_context(|| format!("the weights of {} do not fit the model's architecture", path.display()))
}

fn eval(a: EvalArgs) -> Result<()> {
    let device = device(a.device);
    let pre = load_model(&a.model, &device)?;
    let policy = match (&a.weights, &a.policy) {
        (Some(w), _) => load_weights(&pre, w, &device)?,
        (None, Some(p)) => load_model(p, &device)?.model,
        (None, None) => pre.model.clone(),
    };
    let topts = TokenizeOptions {
        max_length: a.max_length,
        max_prompt_length: a.max_prompt_length,
        chat_template: a.chat_template,
        ..Default::default()
    };
    let (records, pairs) = read_pairs(&a.data, a.skip_bad_lines, a.limit, &pre.tokenizer, &topts)?;
    let pad = pre.tokenizer.pad_id().or(pre.tokenizer.eos_id()).unwrap_or(0);
    let chunk = chunk_rows(pre.config.vocab_size, TrainConfig::default().logits_chunk_bytes);
    let score = |m: &Llama| pollster::block_on(score_pairs(m, &pairs, a.batch_size.max(1), pad, chunk, &device));
    let (pol, reference) = (score(&policy)?, score(&pre.model)?);
    let reward = |i: usize, chosen: bool| {
        let (p, r) = if chosen { (pol[i].0, reference[i].0) } else { (pol[i].1, reference[i].1) };
        a.beta * (p as f64 - r as f64)
    };
    let chosen: Vec<f64> = (0..pairs.len()).map(|i| reward(i, true)).collect();
    let rejected: Vec<f64> = (0..pairs.len()).map(|i| reward(i, false)).collect();
    let mut out = serde_json::json!({
        "pairs": pairs.len(),
        "overall": reward_metrics(&chosen, &rejected, a.num_bins)?,
    });
    for (key, group) in [
        ("by_category", records.iter().map(|r| r.category.clone()).collect::<Vec<_>>()),
        ("by_source", records.iter().map(|r| r.source.clone()).collect()),
    ] {
        if group.iter().any(Option::is_some) {
            let names: Vec<String> = group.into_iter().map(|g| g.unwrap_or_else(|| "(none)".into())).collect();
            out[key] = serde_json::to_value(reward_metrics_by_group(&chosen, &rejected, &names, a.num_bins)?)?;
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn generate(a: GenerateArgs) -> Result<()> {
    let device = device(a.device);
    let pre = load_model(&a.model, &device)?;
    let prompts: Vec<String> = match (&a.prompt, &a.prompts) {
        (Some(p), None) => vec![p.clone()],
        (None, Some(file)) => {
            let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    let v: serde_json::Value = serde_json::from_str(l)
                        .with_context(|| format!("{}:{}: invalid JSON", file.display(), i + 1))?;
                    v.get("prompt")
                        .and_then(|p| p.as_str())
                        .map(str::to_string)
                        .with_context(|| format!("{}:{}: missing string field \"prompt\"", file.display(), i + 1))
                })
                .collect::<Result<_>>()?
        }
        _ => bail!("give exactly one of --prompt or --prompts"),
    };
    let tok = &pre.tokenizer;
    let stop: Vec<u32> = tok.eos_id().into_iter().collect();
    for prompt in prompts {
        let text = if a.raw {
            prompt.clone()
        } else {
            tok.apply_chat_template(&[Message { role: "user".into(), content: prompt.clone() }], true)?
        };
        let ids = tok.encode(&text)?;
        let options = GenerateOptions { max_new_tokens: a.max_new_tokens, stop_tokens: stop.clone() };
        let start = Instant::now();
        let out = pollster::block_on(greedy(&pre.model, &ids, &options, |_| {}))?;
        let secs = start.elapsed().as_secs_f64();
        let answer = tok.decode(&out, true)?;
        if a.jsonl {
            println!("{}", serde_json::json!({ "prompt": prompt, "completion": answer }));
        } else {
            println!("{answer}");
        }
        eprintln!("[{} tokens in {secs:.2}s, {:.1} tokens/s]", out.len(), out.len() as f64 / secs);
    }
    Ok(())
}

fn train(a: TrainArgs, objective: Objective) -> Result<()> {
    let config = a.resolve(objective)?;
    let device = device(a.device);
    // An encoder folder (BERT, e.g. all-MiniLM-L6-v2) backs a reward model; anything else is a decoder.
    let encoder = load_encoder(&a.model, &device)?;
    let mut pre = match encoder {
        Some(_) if objective != Objective::Reward => {
            bail!("{} is an encoder: it trains reward models", a.model.display())
        }
        Some(_) => None,
        None => Some(load_model(&a.model, &device)?),
    };
    let tokenizer = match (&encoder, &pre) {
        (Some((_, tok)), _) => tok.clone(),
        (_, Some(p)) => p.tokenizer.clone(),
        _ => unreachable!("one of the two is loaded"),
    };
    let topts = config.tokenize_options();
    let pairs = read_pairs(&a.data, a.skip_bad_lines, a.limit, &tokenizer, &topts)?.1;
    let (mut pairs, eval_pairs) = match &a.eval_data {
        Some(path) => (pairs, read_pairs(path, a.skip_bad_lines, a.limit, &tokenizer, &topts)?.1),
        None => train_eval_split(pairs, config.eval_split, config.seed),
    };
    let pad = tokenizer.pad_id().or(tokenizer.eos_id()).unwrap_or(0);

    let out = a.out.clone().unwrap_or_else(|| default_run_dir(objective));
    fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    let run_info = serde_json::json!({
        "model": a.model, "data": a.data, "pairs": pairs.len(), "device": format!("{:?}", a.device), "config": config,
    });
    write_file(&out.join("config.json"), serde_json::to_string_pretty(&run_info)?.as_bytes())?;

    eprintln!(
        "{} training pairs, {} held out, from {}; run folder {}",
        pairs.len(),
        eval_pairs.len(),
        a.data.display(),
        out.display()
    );
    let eval_steps = config.eval_steps;
    let resume = match (&a.resume_from, pre.as_mut()) {
        (Some(dir), Some(pre)) => Some(load_checkpoint(dir, pre, &mut pairs, &device, objective)?),
        (Some(_), None) => {
            bail!("--resume-from continues decoder runs; an encoder's score head cannot be reloaded yet")
        }
        (None, _) => None,
    };
    let backbone: Backbone = match (encoder, pre) {
        (Some((bert, _)), _) => bert.into(),
        (None, Some(pre)) => pre.model.into(),
        _ => unreachable!("one of the two is loaded"),
    };
    let mut trainer = pollster::block_on(Trainer::new(backbone, pairs, config, pad, &device))?;
    if let Some((state, optimizer)) = resume {
        eprintln!("resuming at step {} of {}", state.step, state.total_steps);
        trainer.restore(state, optimizer)?;
    }
    pollster::block_on(trainer.set_eval_pairs(eval_pairs))?;
    let bar = ProgressBar::new(trainer.total_steps() as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})")?);
    let mut log = fs::File::create(out.join("metrics.jsonl"))?;
    let start = Instant::now();
    let mut tokens = 0.0;
    let acc_key = if objective == Objective::Dpo { metrics::REWARDS_ACCURACIES } else { metrics::ACCURACY };
    while !trainer.is_done() {
        let until_eval = eval_steps.map_or(usize::MAX, |n| n - trainer.step_count() % n);
        let ms = match pollster::block_on(trainer.steps(a.log_every.max(1).min(until_eval))) {
            Ok(ms) => ms,
            Err(e) => {
                // The failed steps already changed the weights: keep the last checkpoint on disk as it is.
                bar.abandon();
                let kept = out.join("model.safetensors");
                let kept = if kept.exists() { format!("{} is kept", kept.display()) } else { "none was saved".into() };
                return Err(anyhow::Error::new(e).context(format!("training stopped; the last checkpoint: {kept}")));
            }
        };
        for m in &ms {
            writeln!(log, "{}", serde_json::to_string(m)?)?;
            tokens += m[metrics::NUM_TOKENS];
            if a.print_metrics {
                bar.suspend(|| println!("{}", serde_json::to_string(m).unwrap_or_default()));
            }
        }
        if let Some(m) = ms.last() {
            bar.set_message(format!("loss {:.4} acc {:.2}", m[metrics::LOSS], m[acc_key]));
        }
        bar.set_position(trainer.step_count() as u64);
        if eval_steps.is_some_and(|n| trainer.step_count() % n == 0 && !trainer.is_done())
            && let Some(m) = pollster::block_on(trainer.evaluate_held_out())?
        {
            writeln!(log, "{}", serde_json::to_string(&m)?)?;
            bar.suspend(|| {
                eprintln!(
                    "held out at step {}: {}",
                    trainer.step_count(),
                    serde_json::to_string(&m).unwrap_or_default()
                )
            });
        }
        if a.save_steps > 0 && trainer.step_count() % a.save_steps == 0 && !trainer.is_done() {
            save_checkpoint(&trainer, &out)?;
        }
    }
    bar.finish();
    let secs = start.elapsed().as_secs_f64();
    let mut eval = pollster::block_on(trainer.evaluate())?;
    if let Some(held_out) = pollster::block_on(trainer.evaluate_held_out())? {
        writeln!(log, "{}", serde_json::to_string(&held_out)?)?;
        eval.extend(held_out);
    }
    writeln!(fs::File::create(out.join("eval.json"))?, "{}", serde_json::to_string_pretty(&eval)?)?;
    save_checkpoint(&trainer, &out)?;
    eprintln!(
        "{} steps in {secs:.1}s ({:.1} response tokens/s); final metrics (training pairs, eval_: held out): {}",
        trainer.step_count(),
        tokens / secs,
        serde_json::to_string(&eval)?
    );
    Ok(())
}

/// Reads and tokenizes a preference file; ties are left out of pairwise training and evaluation. Returns
/// the records kept beside their pairs.
fn read_pairs(
    path: &Path,
    skip_bad_lines: bool,
    limit: Option<usize>,
    tokenizer: &Tokenizer,
    topts: &TokenizeOptions,
) -> Result<(Vec<PreferenceRecord>, Vec<TokenizedPair>)> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report = read_preferences(&name, &text, &ReadOptions { skip_bad_lines, ..Default::default() })?;
    for (line, reason) in &report.skipped {
        eprintln!("skipped {name}:{line}: {reason}");
    }
    let mut records: Vec<PreferenceRecord> = report.records.into_iter().filter(|r| !r.tie).collect();
    if let Some(n) = limit {
        records.truncate(n);
    }
    let pairs = records.iter().map(|r| tokenize_pair(tokenizer, r, topts)).collect::<Result<Vec<_>, _>>()?;
    Ok((records, pairs))
}

fn save_checkpoint(trainer: &Trainer, out: &Path) -> Result<()> {
    let tensors = match (trainer.policy(), trainer.reward_model(), trainer.encoder_reward_model()) {
        (Some(m), _, _) => m.named_tensors(),
        (_, Some(m), _) => m.named_tensors(),
        (_, _, Some(m)) => m.named_tensors(),
        _ => bail!("the trainer holds no model"),
    };
    let meta = [("format".to_string(), "pt".to_string()), ("step".to_string(), trainer.step_count().to_string())];
    let bytes = pollster::block_on(to_safetensors(tensors, meta.into_iter().collect()))?;
    write_file(&out.join("optimizer.bpk"), &trainer.optimizer_state()?)?;
    write_file(&out.join("trainer_state.json"), serde_json::to_string(&trainer.state())?.as_bytes())?;
    write_file(&out.join("model.safetensors"), &bytes)
}

/// A saved run's policy weights (into `pre.model`), its state and AdamW state; the pairs get the run's
/// reference log-probs back, so the reference is not recomputed from the moved policy.
fn load_checkpoint(
    dir: &Path,
    pre: &mut Pretrained,
    pairs: &mut [TokenizedPair],
    device: &Device,
    objective: Objective,
) -> Result<(TrainerState, Vec<u8>)> {
    if objective != Objective::Dpo {
        bail!("--resume-from continues DPO-family runs; a reward model's score head cannot be reloaded yet");
    }
    let read = |name: &str| fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
    pre.model = load_weights(pre, &dir.join("model.safetensors"), device)?;
    let state: TrainerState =
        serde_json::from_slice(&read("trainer_state.json")?).context("trainer_state.json of the checkpoint")?;
    if state.reference.len() == pairs.len() {
        for (pair, &(c, r)) in pairs.iter_mut().zip(&state.reference) {
            (pair.ref_chosen_logps, pair.ref_rejected_logps) = (Some(c), Some(r));
        }
    }
    Ok((state, read("optimizer.bpk")?))
}

/// Writes through a temporary file and a rename, so a crash never leaves a half-written checkpoint.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("moving {} into place", path.display()))
}

fn default_run_dir(objective: Objective) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    PathBuf::from("runs").join(format!("{}-{secs}", if objective == Objective::Dpo { "dpo" } else { "reward" }))
}
