//! `alignlab`: the native command line over alignlab-core. This crate is interface and glue: argument
//! parsing, one resolution of flags + config file into a `TrainConfig`, progress bars and the run folder.

mod annotate;
mod args;
mod hub;
mod ref_cache;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use alignlab_core::convert::Format;
use alignlab_core::data::{
    PreferenceRecord, ReadOptions, Text, TokenizeOptions, TokenizedPair, read_preferences, tokenize_pair,
    train_eval_split,
};
use alignlab_core::eval::implicit::{detect_format, implicit_rewards};
use alignlab_core::eval::kl::{KlOptions, kl_to_reference};
use alignlab_core::eval::preference::{auroc, reward_metrics, reward_metrics_by_group};
use alignlab_core::generate::{Event, GenerateOptions};
use alignlab_core::metrics;
use alignlab_core::model::bert::{Bert, BertConfig, bert_tokenizer};
use alignlab_core::model::llama::Llama;
use alignlab_core::model::lora::{self, LoraConfig};
use alignlab_core::model::reward::{AnyRewardModel, PretrainedReward, reward_hf_files};
use alignlab_core::objectives::logprob::chunk_rows;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::ref_logps::objective_for;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::tokenizer::{Message, Tokenizer};
use alignlab_core::train::{
    Backbone, Objective, TrainConfig, TrainData, Trainer, TrainerState, score_pairs, score_rewards,
};
use alignlab_core::weights::safetensors::{SafetensorsSource, to_safetensors};
use anyhow::{Context, Result, bail};
use args::{
    Cli, Command, ConvertArgs, ConvertFrom, ConvertTo, DeviceArg, EvalArgs, ExportArgs, GenerateArgs, TrainArgs,
};
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
        Command::Kto(a) => train(a, Objective::Kto),
        Command::Lipo(a) => train(a, Objective::Lipo),
        Command::Modpo(a) => train(a, Objective::Modpo),
        Command::Regression(a) => train(a, Objective::Regression),
        Command::Convert(a) => convert(a),
        Command::Export(a) => export(a),
        Command::Eval(a) => eval(a),
        Command::RefLogps(a) => ref_cache::ref_logps(a),
        Command::Annotate(a) => annotate::annotate(a),
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

/// A GGUF file, or a Hugging Face folder (config.json, safetensors, tokenizer.json); `hf://` names either.
fn load_model(path: &Path, device: &Device) -> Result<Pretrained> {
    let path = &hub::resolve(path)?;
    if path.is_dir() {
        return Pretrained::from_hf_dir(path, device).with_context(|| format!("loading the model {}", path.display()));
    }
    let bytes = fs::read(path).with_context(|| format!("reading the model {}", path.display()))?;
    Pretrained::from_gguf(bytes, device).with_context(|| format!("loading the model {}", path.display()))
}

/// A BERT-style encoder folder (config.json with `"model_type": "bert"`, model.safetensors, tokenizer.json),
/// or `None` for anything else.
fn load_encoder(path: &Path, device: &Device) -> Result<Option<(Bert, Tokenizer)>> {
    let path = &hub::resolve(path)?;
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

/// `alignlab export`: the model (with a run's weights) as a Hugging Face folder.
fn export(a: ExportArgs) -> Result<()> {
    let device = device(DeviceArg::Cpu);
    let mut pre = load_model(&a.model, &device)?;
    if let Some(w) = &a.weights {
        pre.model = load_weights(&pre, w, &device)?;
    }
    pollster::block_on(pre.save_hf_dir(&a.out)).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {} (config.json, model.safetensors, tokenizer.json, tokenizer_config.json)", a.out.display());
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    if a.data.is_none() && a.kl_prompts.is_none() {
        bail!("nothing to evaluate: give --data (preference pairs) and/or --kl-prompts (prompts to sample)");
    }
    let device = device(a.device);
    if let Some(dir) = &a.reward_model {
        return eval_reward_model(&a, dir, &device);
    }
    let pre = load_model(a.model.as_ref().context("--model is needed without --reward-model")?, &device)?;
    let policy = match (&a.weights, &a.policy) {
        (Some(w), _) => load_weights(&pre, w, &device)?,
        (None, Some(p)) => load_model(p, &device)?.model,
        (None, None) => pre.model.clone(),
    };
    let mut out = serde_json::json!({});
    let format = match &a.data {
        Some(data) => Some(eval_data_format(data)?),
        None => None,
    };
    if let (Some(data), Some(format)) = (&a.data, format)
        && format != Format::Pairs
    {
        // KTO examples and ranked lists: the loop's own scoring of both models, then the format's metrics
        let objective = objective_for(format).context("OpenAssistant trees: convert them first (--to lists)")?;
        let name = data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = fs::read_to_string(data).with_context(|| format!("reading {}", data.display()))?;
        let topts = a.tokenize.options();
        let opts = ReadOptions { skip_bad_lines: a.skip_bad_lines, max_records: a.limit, ..Default::default() };
        let (examples, skipped) = TrainData::read(&name, &text, objective, &opts, &pre.tokenizer, &topts)?;
        for (line, reason) in &skipped {
            eprintln!("skipped {name}:{line}: {reason}");
        }
        let pad = pre.tokenizer.pad_id().or(pre.tokenizer.eos_id()).unwrap_or(0);
        let config = TrainConfig {
            beta: a.beta,
            batch_size: a.batch_size.max(1),
            max_length: a.tokenize.max_length,
            ..Default::default()
        };
        out["format"] = serde_json::to_value(format)?;
        out["examples"] = examples.len().into();
        let rewards = pollster::block_on(implicit_rewards(&policy, &pre.model, examples, &config, pad, &device))?;
        out["overall"] = serde_json::to_value(rewards.metrics(a.num_bins)?)?;
    } else if let Some(data) = &a.data {
        let topts = a.tokenize.options();
        let (records, pairs) = read_pairs(data, a.skip_bad_lines, a.limit, &pre.tokenizer, &topts)?;
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
        pair_metrics_json(&mut out, &records, &chosen, &rejected, a.num_bins)?;
    }
    if let Some(file) = &a.kl_prompts {
        // KL(π‖π_ref) on responses sampled from the policy (TRL's objective/kl), with the same prompts rules
        // as `generate` (plain prompts through the chat template only with --chat-template).
        let prompts = read_prompts(file)?;
        let ids: Vec<Vec<u32>> =
            prompts.iter().map(|p| prompt_ids(&pre.tokenizer, p, !a.tokenize.chat_template)).collect::<Result<_>>()?;
        let options = KlOptions {
            samples: a.kl_samples,
            max_new_tokens: a.kl_max_new_tokens,
            stop_tokens: pre.tokenizer.eos_id().into_iter().collect(),
            seed: a.seed,
            ..Default::default()
        };
        let report = pollster::block_on(kl_to_reference(&policy, &pre.model, &ids, &options))
            .with_context(|| format!("estimating the KL on {}", file.display()))?;
        out["kl"] = serde_json::to_value(report)?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The format of an eval data file, from its first record.
fn eval_data_format(path: &Path) -> Result<Format> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    detect_format(&name, &text).with_context(|| {
        format!("{}: cannot tell its format from the first record (pairs, unpaired examples or lists)", path.display())
    })
}

/// `overall`, `by_category` and `by_source` metrics of scores of (chosen, rejected) pairs into `out`.
fn pair_metrics_json(
    out: &mut serde_json::Value,
    records: &[PreferenceRecord],
    chosen: &[f64],
    rejected: &[f64],
    num_bins: usize,
) -> Result<()> {
    out["pairs"] = chosen.len().into();
    out["overall"] = serde_json::to_value(reward_metrics(chosen, rejected, num_bins)?)?;
    for (key, group) in [
        ("by_category", records.iter().map(|r| r.category.clone()).collect::<Vec<_>>()),
        ("by_source", records.iter().map(|r| r.source.clone()).collect()),
    ] {
        if group.iter().any(Option::is_some) {
            let names: Vec<String> = group.into_iter().map(|g| g.unwrap_or_else(|| "(none)".into())).collect();
            out[key] = serde_json::to_value(reward_metrics_by_group(chosen, rejected, &names, num_bins)?)?;
        }
    }
    Ok(())
}

/// The sub-folder of a reward run that holds its model as a reward-model folder transformers loads.
const REWARD_HF_DIR: &str = "hf";

/// A reward run's folder (its `hf/`) or a reward-model folder.
fn load_reward_model(dir: &Path, device: &Device) -> Result<PretrainedReward> {
    let hf = dir.join(REWARD_HF_DIR);
    let path = if hf.join("config.json").is_file() { hf } else { dir.to_path_buf() };
    PretrainedReward::from_hf_dir(&path, device).with_context(|| format!("loading the reward model {}", path.display()))
}

/// `alignlab eval --reward-model`: the model's rewards of every pair, and their metrics (AUROC: chosen
/// responses as positives, rejected as negatives).
fn eval_reward_model(a: &EvalArgs, dir: &Path, device: &Device) -> Result<()> {
    let data = a.data.as_ref().context("--reward-model needs --data (preference pairs)")?;
    let rm = load_reward_model(dir, device)?;
    if rm.num_labels() != 1 {
        eprintln!("note: {} labels ({}); pairs are scored by the first", rm.num_labels(), rm.labels.join(", "));
    }
    let topts = a.tokenize.options();
    let (records, pairs) = read_pairs(data, a.skip_bad_lines, a.limit, &rm.tokenizer, &topts)?;
    let b = a.batch_size.max(1);
    let scores = match &rm.model {
        AnyRewardModel::Decoder(m, _) => pollster::block_on(score_rewards(m, &pairs, b, rm.pad_id, device))?,
        AnyRewardModel::Encoder(m, _) => pollster::block_on(score_rewards(m, &pairs, b, rm.pad_id, device))?,
    };
    let chosen: Vec<f64> = scores.iter().map(|s| s.0 as f64).collect();
    let rejected: Vec<f64> = scores.iter().map(|s| s.1 as f64).collect();
    let mut out = serde_json::json!({ "reward_model": dir });
    pair_metrics_json(&mut out, &records, &chosen, &rejected, a.num_bins)?;
    let labels: Vec<bool> = chosen.iter().map(|_| true).chain(rejected.iter().map(|_| false)).collect();
    out["overall"]["auroc"] = auroc(&[chosen, rejected].concat(), &labels)?.into();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn generate(a: GenerateArgs) -> Result<()> {
    let device = device(a.device);
    let pre = load_model(&a.model, &device)?;
    let prompts: Vec<Text> = match (&a.prompt, &a.prompts) {
        (Some(p), None) => vec![Text::Plain(p.clone())],
        (None, Some(file)) => read_prompts(file)?,
        _ => bail!("give exactly one of --prompt or --prompts"),
    };
    let tok = &pre.tokenizer;
    let ids = prompts.iter().map(|p| prompt_ids(tok, p, a.raw)).collect::<Result<Vec<_>>>()?;
    let options = GenerateOptions {
        max_new_tokens: a.max_new_tokens,
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        repetition_penalty: a.repetition_penalty,
        stop_tokens: tok.eos_id().into_iter().collect(),
        stop: a.stop.clone(),
        n: a.n,
        batch_size: a.batch_size,
        seed: a.seed,
    };
    options.validate()?;
    if a.n > 1 && a.temperature == 0.0 {
        eprintln!("warning: --n {} at --temperature 0 (greedy) gives {} identical responses", a.n, a.n);
    }
    let mut out = match &a.out {
        Some(path) => Some(std::io::BufWriter::new(
            fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let bar = if out.is_some() { ProgressBar::new(prompts.len() as u64) } else { ProgressBar::hidden() };
    let style = "{spinner} {msg} [{bar:30}] {pos}/{len} prompts ({elapsed}, eta {eta})";
    bar.set_style(ProgressStyle::with_template(style)?);
    let start = Instant::now();
    let (mut tokens, mut prompt_tokens, mut prompt_start) = (0usize, 0usize, Instant::now());
    let mut write_error = None;
    let result = pollster::block_on(alignlab_core::generate::generate(&pre.model, &ids, &options, Some(tok), |e| {
        let Event::Done { prompt, samples } = e else {
            tokens += 1;
            prompt_tokens += 1;
            return;
        };
        let texts = samples.iter().map(|s| s.text.clone().unwrap_or_default());
        // A listwise candidate set (DESIGN.md §3 without a ranking): responses in the prompt's form.
        let responses: Vec<Text> = match &prompts[prompt] {
            Text::Chat(_) => texts.map(|t| Text::Chat(vec![Message::new("assistant", t)])).collect(),
            Text::Plain(_) => texts.map(Text::Plain).collect(),
        };
        match out.as_mut() {
            Some(file) => {
                let record = serde_json::json!({ "prompt": prompts[prompt], "responses": responses });
                if let Err(err) = writeln!(file, "{record}")
                    && write_error.is_none()
                {
                    write_error = Some(err);
                }
                bar.set_message(format!("{:.1} tokens/s", tokens as f64 / start.elapsed().as_secs_f64()));
                bar.inc(1);
            }
            None => {
                for r in &responses {
                    match r {
                        _ if a.jsonl => {
                            println!("{}", serde_json::json!({ "prompt": prompts[prompt], "completion": r }))
                        }
                        Text::Plain(t) => println!("{t}"),
                        Text::Chat(m) => println!("{}", m[0].content),
                    }
                }
                let secs = prompt_start.elapsed().as_secs_f64();
                eprintln!("[{prompt_tokens} tokens in {secs:.2}s, {:.1} tokens/s]", prompt_tokens as f64 / secs);
            }
        }
        (prompt_tokens, prompt_start) = (0, Instant::now());
    }));
    bar.finish();
    result?;
    if let Some(mut file) = out {
        let path = a.out.as_deref().unwrap_or(Path::new(""));
        match write_error {
            Some(err) => return Err(err).with_context(|| format!("writing {}", path.display())),
            None => file.flush().with_context(|| format!("writing {}", path.display()))?,
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{} candidate sets of {} responses written to {}: {tokens} tokens in {secs:.1}s ({:.1} tokens/s)",
            prompts.len(),
            a.n,
            path.display(),
            tokens as f64 / secs
        );
    }
    Ok(())
}

/// The prompts of a prompt-only file (DESIGN.md §3 `{"prompt"}`; the core's reader, errors name the file and line).
fn read_prompts(path: &Path) -> Result<Vec<Text>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report = alignlab_core::data::read_prompts(&path.display().to_string(), &text, &ReadOptions::default())?;
    if report.records.is_empty() {
        bail!("{}: no prompts", path.display());
    }
    Ok(report.records.into_iter().map(|r| r.prompt).collect())
}

/// The ids a prompt is continued from: messages, and plain text unless `raw`, through the model's chat
/// template with the generation prompt; the bos id in front when the tokenizer asks for it, as in training.
fn prompt_ids(tok: &Tokenizer, prompt: &Text, raw: bool) -> Result<Vec<u32>> {
    Ok(alignlab_core::eval::kl::prompt_ids(tok, prompt, !raw)?)
}

fn train(a: TrainArgs, objective: Objective) -> Result<()> {
    let config = a.resolve(objective)?;
    let device = device(a.device);
    // An encoder folder (BERT, e.g. all-MiniLM-L6-v2) backs a reward model; anything else is a decoder.
    let encoder = load_encoder(&a.model, &device)?;
    let mut pre = match encoder {
        Some(_) if !objective.trains_reward_model() => {
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
    // Cached reference log-probs: computed now (--precompute-ref-log-probs), then checked against this run's key.
    let data_path = match (&pre, a.precompute_ref_log_probs) {
        (Some(p), true) => ref_cache::precompute(&a.data, &a.model, p, objective, &config, a.skip_bad_lines, &device)?,
        (None, true) => bail!("--precompute-ref-log-probs: an encoder reward model has no reference"),
        (_, false) => a.data.clone(),
    };
    let read = |path: &Path| read_train_data(path, objective, a.skip_bad_lines, a.limit, &tokenizer, &topts);
    let (mut pairs, mut eval_pairs) = match &a.eval_data {
        Some(path) => (read(&data_path)?, read(path)?),
        None => read(&data_path)?.split(config.eval_split, config.seed),
    };
    let eval_path = a.eval_data.as_deref().unwrap_or(&data_path);
    ref_cache::check([(&data_path, &mut pairs), (eval_path, &mut eval_pairs)], &a.model, objective, &config)?;
    if let TrainData::Unpaired(ex) = &pairs {
        let n_d = ex.iter().filter(|e| e.label).count();
        let ratio = config.kto_loss().desirable_ratio(n_d, ex.len() - n_d);
        if !(1.0..=4.0 / 3.0).contains(&ratio) {
            eprintln!(
                "note: λ_D·n_D / (λ_U·n_U) = {ratio:.3} ({n_d} desirable, {} undesirable); the KTO paper keeps it in \
                 [1, 4/3] (set --desirable-weight / --undesirable-weight)",
                ex.len() - n_d
            );
        }
    }
    let pad = tokenizer.pad_id().or(tokenizer.eos_id()).unwrap_or(0);
    // A reward run also saves its model as a reward-model folder (hf/) that transformers loads.
    let reward_export = match (objective, &pre) {
        (o, _) if !o.trains_reward_model() => None,
        (_, Some(p)) => Some(RewardExport {
            arch: RewardArch::Decoder(p.config.clone()),
            tokenizer: tokenizer.clone(),
            pad,
            base: a.model.clone(),
        }),
        (_, None) => {
            let path = a.model.join("config.json");
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let config = BertConfig::from_hf_json(&bytes).with_context(|| path.display().to_string())?;
            Some(RewardExport {
                arch: RewardArch::Encoder(config),
                tokenizer: tokenizer.clone(),
                pad,
                base: a.model.clone(),
            })
        }
    };
    // A reward run may start from a reward model: its own checkpoint, or another run (--init-from).
    let reward_start = match (&a.resume_from, &a.init_from) {
        (Some(dir), _) if objective.trains_reward_model() => Some(load_reward_model(dir, &device)?.model),
        (_, Some(dir)) => {
            if objective != Objective::Reward {
                bail!("--init-from starts reward-model runs");
            }
            Some(init_reward_model(dir, a.init_head_weights.as_deref(), &device)?)
        }
        _ => None,
    };

    let out = a.out.clone().unwrap_or_else(|| default_run_dir(objective));
    fs::create_dir_all(&out).with_context(|| format!("creating the run folder {}", out.display()))?;
    let run_info = serde_json::json!({
        "model": a.model, "data": a.data, "pairs": pairs.len(), "device": format!("{:?}", a.device), "config": config,
    });
    write_file(&out.join("config.json"), serde_json::to_string_pretty(&run_info)?.as_bytes())?;

    eprintln!(
        "{} training examples, {} held out, from {}; run folder {}",
        pairs.len(),
        eval_pairs.len(),
        a.data.display(),
        out.display()
    );
    let eval_steps = config.eval_steps;
    let resume = match (&a.resume_from, pre.as_mut()) {
        (Some(dir), _) if objective.trains_reward_model() => Some(load_run_state(dir)?),
        (Some(dir), Some(pre)) => {
            Some(load_checkpoint(dir, pre, &mut pairs, &device, objective, LoraConfig::of(&config).as_ref())?)
        }
        (Some(_), None) => {
            bail!("--resume-from continues decoder runs; an encoder's score head cannot be reloaded yet")
        }
        (None, _) => None,
    };
    let backbone: Backbone = match (reward_start, encoder, pre) {
        (Some(AnyRewardModel::Decoder(m, _)), _, _) => Backbone::Reward(m),
        (Some(AnyRewardModel::Encoder(m, _)), _, _) => Backbone::EncoderReward(m),
        (None, Some((bert, _)), _) => bert.into(),
        (None, None, Some(pre)) => pre.model.into(),
        _ => unreachable!("one of the two is loaded"),
    };
    let mut trainer = pollster::block_on(Trainer::new(backbone, pairs, config, pad, &device))?;
    if let Some(m) = trainer.policy() {
        let (trainable, total) = lora::param_counts(m);
        let share = 100.0 * trainable as f64 / total as f64;
        eprintln!("trainable params: {trainable} || all params: {total} || trainable%: {share:.4}");
    }
    // held-out data first: restoring replaces its reference log-probs with the checkpoint's
    pollster::block_on(trainer.set_eval_data(eval_pairs))?;
    if let Some((state, optimizer)) = resume {
        eprintln!("resuming at step {} of {}", state.step, state.total_steps);
        trainer.restore(state, optimizer)?;
    }
    if objective == Objective::Modpo {
        let m = config_margin_rms(&trainer)?;
        if m != a.margin_reward_model.len() {
            bail!(
                "--modpo-weights has {m} weights after w_k but {} --margin-reward-model",
                a.margin_reward_model.len()
            );
        }
        if m > 0 {
            let (train, eval) = margin_rewards(&a, trainer.config(), &device)?;
            trainer.set_margin_rewards(train, Some(eval))?;
        }
    } else if !a.margin_reward_model.is_empty() {
        bail!("--margin-reward-model is an option of `alignlab modpo`");
    }
    let bar = ProgressBar::new(trainer.total_steps() as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})")?);
    let mut log = fs::File::create(out.join("metrics.jsonl"))?;
    let start = Instant::now();
    let mut tokens = 0.0;
    let acc_key = match objective {
        Objective::Reward => metrics::ACCURACY.to_string(),
        Objective::Kto => metrics::REWARDS_MARGINS.to_string(),
        Objective::Regression => format!("mse/{}", trainer.attributes().first().map_or("", String::as_str)),
        _ => metrics::REWARDS_ACCURACIES.to_string(),
    };
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
            let acc = m.get(&acc_key).copied().unwrap_or(f64::NAN);
            bar.set_message(format!("loss {:.4} {} {acc:.2}", m[metrics::LOSS], acc_key));
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
            save_checkpoint(&trainer, &out, &a.model, reward_export.as_ref())?;
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
    save_checkpoint(&trainer, &out, &a.model, reward_export.as_ref())?;
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

/// The run's weights (merged with its LoRA adapters, if any), state and AdamW state; a LoRA run also writes
/// its adapters as peft saves them (adapter_model.safetensors, adapter_config.json naming `base_model`).
fn save_checkpoint(trainer: &Trainer, out: &Path, base_model: &Path, reward: Option<&RewardExport>) -> Result<()> {
    if let Some(export) = reward {
        save_reward_folder(trainer, &out.join(REWARD_HF_DIR), export)?;
    }
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
    if let (Some(m), Some(config)) = (trainer.policy(), LoraConfig::of(trainer.config())) {
        let meta = [("format".to_string(), "pt".to_string())].into();
        let adapter = pollster::block_on(to_safetensors(lora::peft_tensors(m), meta))?;
        write_file(&out.join("adapter_model.safetensors"), &adapter)?;
        let json = config.adapter_config_json(Some(&base_model.display().to_string()))?;
        write_file(&out.join("adapter_config.json"), json.as_bytes())?;
    }
    write_file(&out.join("model.safetensors"), &bytes)
}

/// How many margin reward models the run's --modpo-weights weigh.
fn config_margin_rms(trainer: &Trainer) -> Result<usize> {
    Ok(trainer.config().modpo_loss()?.weights.others().len())
}

/// MODPO's margin rewards `[pair][rm]` = (chosen, rejected) of the training and held-out pairs: each
/// --margin-reward-model scores the records with its own tokenizer, split as the policy's data is.
type Margins = Vec<Vec<(f32, f32)>>;

fn margin_rewards(a: &TrainArgs, config: &TrainConfig, device: &Device) -> Result<(Margins, Margins)> {
    let (mut train, mut eval): (Margins, Margins) = (Vec::new(), Vec::new());
    for dir in &a.margin_reward_model {
        let rm = load_reward_model(dir, device)?;
        let topts = TokenizeOptions { chat_template: false, ..config.tokenize_options() };
        let read = |path: &Path| read_pairs(path, a.skip_bad_lines, a.limit, &rm.tokenizer, &topts).map(|r| r.1);
        let (tr, ev) = match &a.eval_data {
            Some(path) => (read(&a.data)?, read(path)?),
            None => train_eval_split(read(&a.data)?, config.eval_split, config.seed),
        };
        let b = config.batch_size;
        let score = |pairs: &[TokenizedPair]| match &rm.model {
            AnyRewardModel::Decoder(m, _) => pollster::block_on(score_rewards(m, pairs, b, rm.pad_id, device)),
            AnyRewardModel::Encoder(m, _) => pollster::block_on(score_rewards(m, pairs, b, rm.pad_id, device)),
        };
        let context = || format!("scoring the pairs with the margin reward model {}", dir.display());
        let (tr, ev) = (score(&tr).with_context(context)?, score(&ev).with_context(context)?);
        let mean = |s: &[(f32, f32)]| s.iter().map(|(c, r)| (c - r) as f64).sum::<f64>() / s.len().max(1) as f64;
        eprintln!("margin RM {}: mean r(chosen) − r(rejected) {:.4} on the training pairs", dir.display(), mean(&tr));
        for (rows, scores) in [(&mut train, tr), (&mut eval, ev)] {
            rows.resize(scores.len(), Vec::new());
            rows.iter_mut().zip(scores).for_each(|(row, s)| row.push(s));
        }
    }
    Ok((train, eval))
}

/// What a reward run needs to save its model as a reward-model folder.
struct RewardExport {
    arch: RewardArch,
    tokenizer: Tokenizer,
    pad: u32,
    /// The --model folder or file (an encoder's tokenizer files are copied from it).
    base: PathBuf,
}

enum RewardArch {
    Decoder(alignlab_core::model::llama::LlamaConfig),
    Encoder(BertConfig),
}

/// Writes the trainer's reward model into `dir` (model/reward.rs describes the layout).
fn save_reward_folder(trainer: &Trainer, dir: &Path, export: &RewardExport) -> Result<()> {
    use burn::module::Module;
    let model = match (&export.arch, trainer.reward_model(), trainer.encoder_reward_model()) {
        (RewardArch::Decoder(c), Some(m), _) => AnyRewardModel::Decoder(m.valid(), c.clone()),
        (RewardArch::Encoder(c), _, Some(m)) => AnyRewardModel::Encoder(m.valid(), c.clone()),
        _ => bail!("the trainer holds no reward model of the run's architecture"),
    };
    let tokenizer = matches!(model, AnyRewardModel::Decoder(..)).then_some(&export.tokenizer);
    // a regression run's heads are named by its attributes (id2label), so --init-from finds "helpfulness"
    let files = pollster::block_on(reward_hf_files(&model, tokenizer, export.pad, trainer.attributes()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in files {
        write_file(&dir.join(name), &bytes)?;
    }
    if tokenizer.is_none() {
        for name in ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"] {
            if let Ok(bytes) = fs::read(export.base.join(name)) {
                write_file(&dir.join(name), &bytes)?;
            }
        }
    }
    Ok(())
}

/// A reward model of one label to start a Bradley–Terry run from: `dir`'s model with its heads combined as
/// Σ c_a·W_a (`weights`; default the "helpfulness" head, or the only one).
fn init_reward_model(dir: &Path, weights: Option<&[f64]>, device: &Device) -> Result<AnyRewardModel> {
    let rm = load_reward_model(dir, device)?;
    let k = rm.num_labels();
    let weights: Vec<f64> = match weights {
        Some(w) => w.to_vec(),
        None if k == 1 => vec![1.0],
        None => match rm.labels.iter().position(|l| l == "helpfulness") {
            Some(i) => (0..k).map(|j| if j == i { 1.0 } else { 0.0 }).collect(),
            None => bail!(
                "{} has {k} heads ({}) and none is helpfulness: give --init-head-weights",
                dir.display(),
                rm.labels.join(", ")
            ),
        },
    };
    eprintln!("starting from {} with head weights {weights:?} over {:?}", dir.display(), rm.labels);
    let context = || format!("--init-head-weights for {}", dir.display());
    Ok(match rm.model {
        AnyRewardModel::Decoder(m, c) => AnyRewardModel::Decoder(m.combined(&weights).with_context(context)?, c),
        AnyRewardModel::Encoder(m, c) => {
            let score = alignlab_core::model::reward::combine_heads(&m.score, &weights).with_context(context)?;
            AnyRewardModel::Encoder(alignlab_core::model::bert::EncoderRewardModel { score, ..m }, c)
        }
    })
}

/// A run folder's trainer_state.json and optimizer.bpk.
fn load_run_state(dir: &Path) -> Result<(TrainerState, Vec<u8>)> {
    let read = |name: &str| fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
    let state: TrainerState =
        serde_json::from_slice(&read("trainer_state.json")?).context("trainer_state.json of the checkpoint")?;
    Ok((state, read("optimizer.bpk")?))
}

/// A saved run's policy weights (into `pre.model`; for a LoRA run its adapters on `pre.model`, the base), its
/// state and AdamW state; the pairs get the run's reference log-probs back, so the reference is not
/// recomputed from the moved policy.
fn load_checkpoint(
    dir: &Path,
    pre: &mut Pretrained,
    data: &mut TrainData,
    device: &Device,
    objective: Objective,
    lora: Option<&LoraConfig>,
) -> Result<(TrainerState, Vec<u8>)> {
    if objective == Objective::Reward {
        bail!(
            "--resume-from continues DPO-family, KTO and LiPO runs; a reward model's score head cannot be reloaded yet"
        );
    }
    let read = |name: &str| fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
    pre.model = match lora {
        Some(lora) => {
            let path = dir.join("adapter_model.safetensors");
            let bytes = read("adapter_model.safetensors")?;
            let source = SafetensorsSource::parse(&bytes).with_context(|| format!("reading {}", path.display()))?;
            lora.load_peft(pre.model.clone(), &source)
                .with_context(|| format!("the adapters of {} do not fit this run's LoRA options", path.display()))?
        }
        None => load_weights(pre, &dir.join("model.safetensors"), device)?,
    };
    let state: TrainerState =
        serde_json::from_slice(&read("trainer_state.json")?).context("trainer_state.json of the checkpoint")?;
    data.use_reference_of(&state);
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
    let name = match objective {
        Objective::Dpo => "dpo",
        Objective::Reward => "reward",
        Objective::Kto => "kto",
        Objective::Lipo => "lipo",
        Objective::Modpo => "modpo",
        Objective::Regression => "regression",
    };
    PathBuf::from("runs").join(format!("{name}-{secs}"))
}

/// The training data `objective` reads from `path`: pairs (ties left out), unpaired examples or ranked lists,
/// tokenized; bad lines skipped and reported with `skip_bad_lines`.
fn read_train_data(
    path: &Path,
    objective: Objective,
    skip_bad_lines: bool,
    limit: Option<usize>,
    tokenizer: &Tokenizer,
    topts: &TokenizeOptions,
) -> Result<TrainData> {
    if matches!(objective, Objective::Dpo | Objective::Reward | Objective::Modpo) {
        return Ok(TrainData::Pairs(read_pairs(path, skip_bad_lines, limit, tokenizer, topts)?.1));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let opts = ReadOptions { skip_bad_lines, max_records: limit, ..Default::default() };
    let (data, skipped) = TrainData::read(&name, &text, objective, &opts, tokenizer, topts)?;
    for (line, reason) in &skipped {
        eprintln!("skipped {name}:{line}: {reason}");
    }
    Ok(data)
}

/// `alignlab convert`: reads one format, writes another as JSONL, line by line (the core's `convert`).
fn convert(a: ConvertArgs) -> Result<()> {
    use alignlab_core::convert::{self, ConvertOptions, Format, Target};
    let name = a.data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let to = match a.to {
        ConvertTo::Check => Target::Same,
        ConvertTo::Pairs => Target::Pairs,
        ConvertTo::Unpaired => Target::Unpaired,
        ConvertTo::Lists => Target::Lists,
        ConvertTo::Chat => Target::Chat,
        ConvertTo::Plain => Target::Plain,
        ConvertTo::Verifiable => Target::Verifiable,
    };
    let from = a.from.map(|f| match f {
        ConvertFrom::Pairs => Format::Pairs,
        ConvertFrom::Unpaired => Format::Unpaired,
        ConvertFrom::Lists => Format::Lists,
        ConvertFrom::Oasst => Format::Oasst,
        ConvertFrom::Ratings => Format::Ratings,
        ConvertFrom::Verifiable => Format::Verifiable,
    });
    let tokenizer = match &a.model {
        Some(model) => Some(load_tokenizer(model)?),
        None => None,
    };
    let input = fs::File::open(&a.data).with_context(|| format!("reading {}", a.data.display()))?;
    let opts = ConvertOptions {
        read: ReadOptions { skip_bad_lines: a.skip_bad_lines, ..Default::default() },
        from,
        drop_ties: a.drop_ties,
        rating_weights: a.rating_weights.clone(),
    };
    let run = |output: &mut dyn std::io::Write| {
        convert::convert(std::io::BufReader::new(&input), output, &name, to, tokenizer.as_ref(), &opts)
    };
    let report = match (a.to, &a.out) {
        (ConvertTo::Check, _) => run(&mut std::io::sink())?,
        (_, None) => bail!("--out is needed to write the converted records (or use --to check)"),
        (_, Some(out)) => {
            let tmp = out.with_extension("tmp");
            let file = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
            let report = run(&mut std::io::BufWriter::new(file))?;
            fs::rename(&tmp, out).with_context(|| format!("moving {} into place", tmp.display()))?;
            report
        }
    };
    for (line, reason) in &report.skipped {
        eprintln!("skipped {name}:{line}: {reason}");
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The tokenizer (and chat template) of a model file or folder, without its weights.
fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let path = hub::resolve(path)?;
    let what = || format!("reading the tokenizer of {}", path.display());
    if path.is_dir() {
        let read = |n: &str| fs::read(path.join(n)).ok();
        let json = read("tokenizer.json").ok_or_else(|| anyhow::anyhow!("{} has no tokenizer.json", path.display()))?;
        let mut tok = Tokenizer::from_hf(&json, read("tokenizer_config.json").as_deref()).with_context(what)?;
        if tok.chat_template().is_none()
            && let Some(t) = read("chat_template.jinja")
        {
            tok = tok.with_chat_template(Some(String::from_utf8_lossy(&t).into_owned()));
        }
        return Ok(tok);
    }
    let gguf = alignlab_core::weights::gguf::Gguf::parse(fs::read(&path).with_context(what)?).with_context(what)?;
    Tokenizer::from_gguf(&gguf).with_context(what)
}
