//! Benchmark (not a test): wall time of DPO optimizer steps of the core's [`Trainer`] on the CPU (`flex`),
//! for the shapes of ../shared/DESIGN.md §7. `bench/dpo_step.py` runs the same step in PyTorch and
//! `scripts/bench.sh` prints both side by side.
//!
//! Each step is 4 preference pairs of 256 tokens (prompt 64 + response 192, no padding), fixed random token
//! ids drawn from [`SplitMix64`] so that the PyTorch script draws the very same ones; sigmoid DPO (β 0.1)
//! against reference log-probs computed once in [`Trainer::new`] (not timed), AdamW, gradient clipping at
//! 1.0, f32. After `--warmup` untimed steps, each of `--steps` steps is timed on its own (its metrics are
//! read back, so the time includes all of its device work). `--method full` trains every weight; `--method
//! lora` trains LoRA adapters as TRL's `--use_peft` with its CLI defaults (r 16, α 32, dropout 0.05) on every
//! projection (`all-linear`), the frozen base shared with the reference.
//!
//! ```text
//! cargo build --workspace --exclude alignlab-wasm --example bench_dpo   # the package set of the tests
//! target/debug/examples/bench_dpo [--model tiny|smollm2|all] [--method full|lora|all] [--steps N]
//!                                 [--warmup N] [--gguf PATH] [--save-tiny PATH]
//! ```
//!
//! (`scripts/bench.sh` does this and runs the PyTorch side.) Building with another package set, such as a
//! plain `cargo run --example bench_dpo` that includes the wasm crate, changes Burn's features and rebuilds it.
//! `--save-tiny` also writes the tiny model's GGUF (seed 0) to PATH, so that the PyTorch script loads the same
//! weights.
//!
//! Prints one JSON line per model and method: model, method, trainable parameters, shape, steps, seconds/step (mean, min, max), response tokens/s (from
//! the mean), CPU seconds/step (user + system), the resident memory before the first step (VmRSS) and the
//! process's peak resident memory (VmHWM; both Linux only, null elsewhere), and the summed reference log-probs
//! (a cross-check with PyTorch). Peak memory is the process's, so run one model per process to attribute it
//! (scripts/bench.sh does).

use std::path::PathBuf;
use std::time::Instant;

use alignlab_core::data::TokenizedPair;
use alignlab_core::metrics;
use alignlab_core::model::lora;
use alignlab_core::pretrained::Pretrained;
use alignlab_core::rng::SplitMix64;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{TrainConfig, Trainer};
use burn::tensor::Device;

/// The shape of one step; `bench/dpo_step.py` has the same constants.
const PAIRS: usize = 4;
const PROMPT: usize = 64;
const RESPONSE: usize = 192;
/// Seed of the token ids (the same in `bench/dpo_step.py`).
const TOKEN_SEED: u64 = 20240607;
/// Token ids are drawn from [FIRST_ID, vocab): ids 0–2 are the specials of both models.
const FIRST_ID: usize = 3;
/// The LoRA of `--method lora` (the same in `bench/dpo_step.py`).
const LORA_R: usize = 16;
const LORA_ALPHA: f64 = 32.0;
const LORA_DROPOUT: f64 = 0.05;
const LORA_TARGETS: &str = "all-linear";

struct Args {
    model: String,
    method: String,
    steps: usize,
    warmup: usize,
    gguf: PathBuf,
    save_tiny: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: "all".into(),
        method: "full".into(),
        steps: 3,
        warmup: 1,
        gguf: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf")),
        save_tiny: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?,
            "--method" => args.method = value()?,
            "--steps" => args.steps = value()?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--warmup" => args.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--gguf" => args.gguf = PathBuf::from(value()?),
            "--save-tiny" => args.save_tiny = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !["tiny", "smollm2", "all"].contains(&args.model.as_str()) {
        return Err(format!("--model must be tiny, smollm2 or all, got {:?}", args.model));
    }
    if !["full", "lora", "all"].contains(&args.method.as_str()) {
        return Err(format!("--method must be full, lora or all, got {:?}", args.method));
    }
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    Ok(args)
}

/// `PAIRS` pairs of fixed random ids: for each pair its prompt, then its chosen, then its rejected response.
fn fixed_pairs(vocab: usize) -> Vec<TokenizedPair> {
    let mut rng = SplitMix64::new(TOKEN_SEED);
    let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| (FIRST_ID + rng.below(vocab - FIRST_ID)) as u32).collect() };
    (0..PAIRS)
        .map(|line| TokenizedPair {
            prompt: ids(PROMPT),
            chosen: ids(RESPONSE),
            rejected: ids(RESPONSE),
            line: line + 1,
            strength: None,
            ref_chosen_logps: None,
            ref_rejected_logps: None,
        })
        .collect()
}

/// A memory field of /proc/self/status in bytes (`VmHWM`: peak resident set, `VmRSS`: current), where Linux
/// gives it.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User + system CPU time of this process in seconds (`/proc/self/stat`, in USER_HZ = 100 ticks), where Linux
/// gives it: less sensitive than wall time to other processes on a shared machine.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The row label of a method, the same in `bench/dpo_step.py`.
fn method_name(lora: bool) -> String {
    if lora { format!("lora r{LORA_R} a{LORA_ALPHA} {LORA_TARGETS}") } else { "full".into() }
}

fn bench(name: &str, gguf: &[u8], lora: bool, args: &Args) -> serde_json::Value {
    let device = Device::flex();
    let p = Pretrained::from_gguf(gguf.to_vec(), &device).unwrap_or_else(|e| panic!("{name}: {e}"));
    let vocab = p.config.vocab_size;
    let pairs = fixed_pairs(vocab);
    let checksum: u64 =
        pairs.iter().flat_map(|p| p.prompt.iter().chain(&p.chosen).chain(&p.rejected)).map(|&i| i as u64).sum();
    let config = TrainConfig {
        batch_size: PAIRS,
        max_steps: Some(args.warmup + args.steps),
        learning_rate: 1e-5,
        max_grad_norm: 1.0,
        max_length: PROMPT + RESPONSE + 1,
        max_prompt_length: PROMPT,
        lora_r: if lora { LORA_R } else { 0 },
        lora_alpha: LORA_ALPHA,
        lora_dropout: LORA_DROPOUT,
        lora_target_modules: vec![LORA_TARGETS.into()],
        ..Default::default()
    };
    let start = Instant::now();
    let mut trainer = pollster::block_on(Trainer::new(p.model, pairs, config, 2, &device)).expect("trainer");
    let setup_s = start.elapsed().as_secs_f64();
    let rss_setup = status_bytes("VmRSS:");
    // Summed reference log-probs: the PyTorch script prints the same sum for the same weights and tokens.
    let ref_logps_sum: f64 = trainer.reference_logps().iter().map(|&(c, r)| c as f64 + r as f64).sum();
    let (trainable, total_params) = lora::param_counts(trainer.policy().expect("a DPO policy"));
    for _ in 0..args.warmup {
        pollster::block_on(trainer.steps(1)).expect("warm-up step");
    }
    let mut times = Vec::with_capacity(args.steps);
    let mut tokens = 0.0;
    let mut losses = Vec::new();
    let cpu_start = cpu_seconds();
    for _ in 0..args.steps {
        let t = Instant::now();
        let m = pollster::block_on(trainer.steps(1)).expect("timed step");
        times.push(t.elapsed().as_secs_f64());
        tokens = m[0][metrics::NUM_TOKENS];
        losses.push(m[0][metrics::LOSS]);
    }
    let cpu_per_step = cpu_start.zip(cpu_seconds()).map(|(a, b)| (b - a) / args.steps as f64);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    serde_json::json!({
        "impl": "alignlab",
        "model": name,
        "method": method_name(lora),
        "params": total_params,
        "trainable_params": trainable,
        "shape": format!("{PAIRS}x{} ({PROMPT}+{RESPONSE})", PROMPT + RESPONSE),
        "pairs": PAIRS,
        "seq": PROMPT + RESPONSE,
        "prompt": PROMPT,
        "response": RESPONSE,
        "token_checksum": checksum,
        "ref_logps_sum": ref_logps_sum,
        "device": "flex (CPU)",
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "setup_s": setup_s,
        "warmup_steps": args.warmup,
        "steps": args.steps,
        "s_per_step": mean,
        "s_per_step_min": min,
        "s_per_step_max": max,
        "cpu_s_per_step": cpu_per_step,
        "response_tokens_per_step": tokens,
        "response_tokens_per_s": tokens / mean,
        "losses": losses,
        "rss_setup_bytes": rss_setup,
        "peak_rss_bytes": status_bytes("VmHWM:"),
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_dpo: {e}");
            std::process::exit(2);
        }
    };
    if let Some(path) = &args.save_tiny
        && let Err(e) = std::fs::write(path, tiny_gguf(0))
    {
        eprintln!("bench_dpo: writing {}: {e}", path.display());
        std::process::exit(1);
    }
    let methods: &[bool] = match args.method.as_str() {
        "full" => &[false],
        "lora" => &[true],
        _ => &[false, true],
    };
    if args.model != "smollm2" {
        let bytes = tiny_gguf(0);
        for &lora in methods {
            println!("{}", bench("tiny", &bytes, lora, &args));
        }
    }
    if args.model != "tiny" {
        match std::fs::read(&args.gguf) {
            Ok(bytes) => {
                for &lora in methods {
                    println!("{}", bench("smollm2-135m", &bytes, lora, &args));
                }
            }
            Err(e) => eprintln!(
                "bench_dpo: skipping SmolLM2-135M: {}: {e} (run scripts/fetch-models.sh)",
                args.gguf.display()
            ),
        }
    }
}
