//! Command-line flags. The doc comments are the `--help` text.

use std::path::PathBuf;

use alignlab_core::data::TokenizeOptions;
use alignlab_core::objectives::dpo::DpoLossType;
use alignlab_core::objectives::lipo::LipoLossType;
use alignlab_core::objectives::modpo::ModpoLossType;
use alignlab_core::objectives::reward::RewardLossType;
use alignlab_core::train::{Objective, TrainConfig};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::de::DeserializeOwned;
use serde::de::value::StrDeserializer;

/// Train and evaluate language models from human preferences: reward models and DPO, on CPU or a GPU.
///
/// Models are Llama-family GGUF files (SmolLM2, TinyLlama, Llama, Qwen2); preference data is TRL's JSONL
/// (`{"prompt", "chosen", "rejected"}`, strings or chat messages). Get the default model with
/// `scripts/fetch-models.sh`.
#[derive(Parser, Debug)]
#[command(name = "alignlab", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate answers from a model: greedy, or sampled (temperature, top-k, top-p, repetition penalty),
    /// n per prompt; chat template applied unless --raw. With --out, writes candidate sets to annotate.
    ///
    /// Example: alignlab generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt "What is the capital of France?"
    ///
    /// Example: alignlab generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompts prompts.jsonl --n 4 --temperature 0.8 --top-p 0.95 --seed 1 --out candidates.jsonl
    Generate(GenerateArgs),
    /// Direct Preference Optimization of a model on preference pairs (Rafailov et al. 2023).
    ///
    /// The starting model is also the frozen reference; its log-probs are computed once before training.
    /// Writes config.json, metrics.jsonl (TRL metric names), eval.json and model.safetensors to the run folder.
    ///
    /// Example: alignlab dpo --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data pairs.jsonl --max-steps 20 --learning-rate 1e-5
    Dpo(TrainArgs),
    /// Train a Bradley–Terry reward model (the model plus a scalar head on the last token) on preference pairs.
    ///
    /// Example: alignlab reward --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data pairs.jsonl --num-epochs 1
    Reward(TrainArgs),
    /// KTO on unpaired examples (Ethayarajh et al. 2024): {"prompt", "completion", "label": true|false} JSONL, or
    /// LLaMA-Factory's {"messages", "label"} files as they are (a JSON array is read like JSONL).
    ///
    /// The starting model is also the frozen reference; the KL reference point z0 comes from each example's prompt
    /// with another example's completion (TRL's KL dataset). Metrics: TRL's KTO names (rewards/chosen, kl, …).
    ///
    /// Example: alignlab kto --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data kto_en_demo.json --max-steps 20
    Kto(TrainArgs),
    /// LiPO on ranked lists (Liu et al. 2024): {"prompt", "responses": [...], "ranking": [best … worst] | "scores":
    /// [...]} JSONL; tie groups as inner lists of the ranking or equal scores. --lipo-loss-type picks LiPO-λ
    /// (default), list_mle, pair_logistic, pair_hinge or softmax. `alignlab convert --to lists` makes lists from
    /// OpenAssistant trees.
    ///
    /// Example: alignlab lipo --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data lists.jsonl --beta 0.05
    Lipo(TrainArgs),
    /// MODPO (Zhou et al. 2023): DPO on the preference pairs of one objective while the other objectives' reward
    /// models (--margin-reward-model, each a reward run or reward-model folder) score both responses once
    /// before training; --modpo-weights w_k,w_1,… on the simplex weigh them. One policy per weight vector:
    /// scripts/modpo-sweep.sh sweeps w_k over 0.1…0.9 for a Pareto front.
    ///
    /// Example: alignlab modpo --model base.gguf --data helpful.jsonl --margin-reward-model runs/harmless-rm --modpo-weights 0.5,0.5
    Modpo(TrainArgs),
    /// Attribute regression (SteerLM, HelpSteer2): a reward model with one head per rated attribute, fitted by
    /// Σ_a (r_a − y_a)² on {"prompt", "response", "attributes": {"helpfulness": 0-4, …}} JSONL (an attribute a
    /// record does not rate is left out of its loss). Metrics: loss, mse/<attribute>, mae/<attribute> (eval_…
    /// on held-out ratings). The run's hf/ folder names its heads; HelpSteer2-Preference's combined recipe
    /// continues with `alignlab reward --init-from <this run> --reward-loss-type scaled_bt`.
    ///
    /// Example: alignlab regression --model models/all-MiniLM-L6-v2 --data ratings.jsonl --eval-split 0.1
    Regression(TrainArgs),
    /// Convert between data formats line by line (a file of any size in one line's memory), writing JSONL:
    /// OpenAssistant trees to ranked lists, lists to pairs (all pairs, strength from score gaps, ties kept as
    /// "tie": true unless --drop-ties), pairs to unpaired examples (TRL's unpair_preference_dataset), plain text to
    /// chat messages and back (--to plain renders with --model's chat template, as TRL's maybe_apply_chat_template),
    /// ratings to pairs (each prompt's responses two by two on --rating-weights, strength 1..3 from the score gap,
    /// equal scores as ties), GSM8K and IFEval records to verifiable ones ({prompt, ground_truth, verifier}).
    /// The input format is detected from the first record. `--to check` only validates and counts.
    ///
    /// Example: alignlab convert --data en_100_tree.jsonl --to lists --out lists.jsonl
    ///
    /// Example: alignlab convert --data gsm8k/train.jsonl --to verifiable --out gsm8k.jsonl
    ///
    /// Example: alignlab convert --data pairs.jsonl --to check --skip-bad-lines
    Convert(ConvertArgs),
    /// Write a model as a Hugging Face folder that transformers (and, through optimum's ONNX export,
    /// transformers.js) loads: config.json, model.safetensors (f32), tokenizer.json, tokenizer_config.json with
    /// the chat template. With --weights, the weights of a run (its model.safetensors, LoRA already merged).
    ///
    /// Example: alignlab export --model models/SmolLM2-135M-Instruct.Q4_1.gguf --weights runs/dpo-demo/model.safetensors --out smollm2-dpo
    Export(ExportArgs),
    /// Evaluate a trained policy against its reference on preference pairs, without training: implicit-reward
    /// accuracy (ties count half), margins, calibration (ECE with a reliability table), overall and per
    /// `category` / `source`, and with --kl-prompts the KL to the reference on sampled responses; printed as
    /// JSON under TRL's names.
    ///
    /// Example: alignlab eval --model base.gguf --weights runs/dpo-1/model.safetensors --data held-out.jsonl
    ///
    /// Example: alignlab eval --model base.gguf --weights runs/dpo-1/model.safetensors --kl-prompts prompts.jsonl --kl-samples 8
    Eval(EvalArgs),
    /// Compute the reference model's log-probs of a data file once and write the file with them filled in (TRL's
    /// precompute_ref_log_probs): ref_chosen_logps/ref_rejected_logps for pairs, reference_logps/reference_KL_logps
    /// for KTO examples, ref_logps for lists; beside it <out>.key.json records the key (sha256 of the model's
    /// files and the tokenisation options). A run on the written file skips its reference pass, and refuses the
    /// file when its model or tokenisation options give another key. Use the run's --batch-size for the
    /// identical loss curve.
    ///
    /// Example: alignlab ref-logps --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data pairs.jsonl --out pairs.ref.jsonl
    RefLogps(RefLogpsArgs),
    /// Simulated annotators (AlpacaFarm-style): label candidate sets (`generate --n K --out`) with a seeded pool
    /// of noisy annotators over a gold reward of programmatic features (constraints, MiniLM relevance, length,
    /// repetition, completeness), as preference pairs or ranked lists; print best-of-n curves of gold vs a
    /// proxy reward model; or measure the pool's agreement with human raters. --print-pool shows the default pool.
    ///
    /// Example: alignlab annotate --candidates candidates.jsonl --pool pool.toml --seed 1 --out pairs.jsonl
    ///
    /// Example: alignlab annotate --bon-curve --candidates candidates.jsonl --reward-model runs/rm
    ///
    /// Example: alignlab annotate --human-labels ../shared/data/pandalm-human-pairwise/testset-v1.json
    Annotate(AnnotateArgs),
    /// Write the tiny random demo model (d_model 64, 2 layers, byte-level vocabulary) as a GGUF file.
    TinyModel {
        /// Seed of the weights: the same seed gives the same file everywhere.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to write the GGUF file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// How records become tokens, as a training run does it (TrainConfig's defaults); `eval` and `ref-logps` share it.
#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// Most tokens of prompt + response.
    #[arg(long, default_value_t = TrainConfig::default().max_length)]
    pub max_length: usize,
    /// Most tokens of the prompt.
    #[arg(long, default_value_t = TrainConfig::default().max_prompt_length)]
    pub max_prompt_length: usize,
    /// Most responses of a ranked list.
    #[arg(long, default_value_t = TrainConfig::default().max_list_length)]
    pub max_list_length: usize,
    /// Wrap plain-text records in the model's chat template.
    #[arg(long)]
    pub chat_template: bool,
}

impl TokenizeArgs {
    pub fn options(&self) -> TokenizeOptions {
        TokenizeOptions {
            max_length: self.max_length,
            max_prompt_length: self.max_prompt_length,
            chat_template: self.chat_template,
            max_list_length: self.max_list_length,
            ..Default::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The reference model (GGUF file, Hugging Face folder or hf://org/name[@rev][/file]); also the policy's
    /// architecture and tokenizer.
    #[arg(long, required_unless_present = "reward_model")]
    pub model: Option<PathBuf>,
    /// Evaluate a reward model instead of a policy: a reward run's folder (its hf/) or a reward-model folder
    /// (transformers' LlamaForSequenceClassification layout, or alignlab's encoder layout). Prints its
    /// pairwise accuracy (ties half), AUROC of chosen vs rejected scores, ECE with the reliability table and
    /// margins, overall and per category/source.
    #[arg(long, conflicts_with_all = ["model", "weights", "policy"])]
    pub reward_model: Option<PathBuf>,
    /// The policy's weights (a run's model.safetensors); without it, --policy or --model itself.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The policy as a model file or folder of its own (instead of --weights).
    #[arg(long, conflicts_with = "weights")]
    pub policy: Option<PathBuf>,
    /// Data to score the implicit rewards β·(log π − log π_ref) on, its format detected from the first record:
    /// preference pairs (TRL JSONL; ties are left out), unpaired KTO examples (TRL's KTO metrics, sign accuracy,
    /// AUROC) or ranked lists (pairwise accuracy over ordered pairs, Kendall τ_b, NDCG).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Prompt-only JSONL ({"prompt"}): estimate KL(policy‖reference) on responses sampled from the policy,
    /// printed under "kl" (TRL's objective/kl, objective/entropy, completions/mean_length).
    #[arg(long)]
    pub kl_prompts: Option<PathBuf>,
    /// Responses sampled per --kl-prompts prompt (temperature 1, one batch per prompt).
    #[arg(long, default_value_t = 4)]
    pub kl_samples: usize,
    /// Most tokens per sampled response for the KL.
    #[arg(long, default_value_t = 64)]
    pub kl_max_new_tokens: usize,
    /// Seed of the KL's sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// β of the implicit reward β·(log π − log π_ref).
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    #[command(flatten)]
    pub tokenize: TokenizeArgs,
    /// Pairs per forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Bins of the reliability table.
    #[arg(long, default_value_t = 10)]
    pub num_bins: usize,
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub skip_bad_lines: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct AnnotateArgs {
    /// Candidate sets, JSONL {"prompt", "responses": [...]} (what `generate --n K --out` writes), optionally with
    /// "ground_truth" + "verifier" (gsm8k, ifeval) for the constraint feature.
    #[arg(long, required_unless_present_any = ["human_labels", "print_pool"])]
    pub candidates: Option<std::path::PathBuf>,
    /// The annotator pool, TOML (or JSON for a .json file) [default: the AlpacaFarm-like pool; --print-pool].
    #[arg(long)]
    pub pool: Option<std::path::PathBuf>,
    /// Print the pool in effect as TOML and stop.
    #[arg(long)]
    pub print_pool: bool,
    /// Label with this one annotator of the pool (or its evaluation annotator, e.g. gold) instead of drawing one
    /// per pair.
    #[arg(long)]
    pub annotator: Option<String>,
    /// Seed of the draws: the same seed, pool and candidates give the same labels.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the labels (JSONL).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Write ranked lists {"prompt", "responses", "ranking", "annotator"} instead of pairs.
    #[arg(long)]
    pub lists: bool,
    /// Print the best-of-n curve (n = 1, 2, 4, …): mean gold and proxy reward of the proxy's pick.
    #[arg(long, requires = "reward_model")]
    pub bon_curve: bool,
    /// The proxy reward model of --bon-curve: a reward run's folder (its hf/) or a reward-model folder.
    #[arg(long)]
    pub reward_model: Option<std::path::PathBuf>,
    /// Human-labelled pairs in PandaLM's layout (instruction, input, response1, response2, annotator1…: 0 tie,
    /// 1, 2): label them with the pool and print its agreement with the humans beside theirs.
    #[arg(long, conflicts_with_all = ["candidates", "bon_curve", "out"])]
    pub human_labels: Option<std::path::PathBuf>,
    /// The sentence encoder of the relevance feature (all-MiniLM-L6-v2).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    pub encoder: std::path::PathBuf,
    /// Reward model inputs (--bon-curve): most tokens of prompt + response, and of the prompt.
    #[arg(long, default_value_t = 512)]
    pub max_length: usize,
    #[arg(long, default_value_t = 256)]
    pub max_prompt_length: usize,
    /// Wrap plain-text records in the reward model's chat template.
    #[arg(long)]
    pub chat_template: bool,
    /// Pairs of responses per reward-model forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    #[arg(long)]
    pub skip_bad_lines: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The model whose architecture and tokenizer are written: GGUF file, Hugging Face folder or
    /// hf://org/name[@rev][/file].
    #[arg(long)]
    pub model: PathBuf,
    /// Trained weights for that architecture (a run's model.safetensors) [default: the model's own].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The folder to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct RefLogpsArgs {
    /// The reference model: GGUF file, Hugging Face folder or hf://org/name[@rev][/file].
    #[arg(long)]
    pub model: PathBuf,
    /// Pairs, unpaired KTO examples or ranked lists (JSONL or a JSON array; the format is detected).
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the data with its reference log-probs [default: <data stem>.ref.jsonl beside it].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pairs (lists) per forward pass: the training run's --batch-size gives its own values bit for bit.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    #[command(flatten)]
    pub tokenize: TokenizeArgs,
    #[arg(long)]
    pub skip_bad_lines: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The input file: JSONL pairs, unpaired examples, ranked lists, OpenAssistant trees, ratings, or GSM8K /
    /// IFEval / verifiable records.
    #[arg(long)]
    pub data: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub to: ConvertTo,
    /// The input format (detected from the first record's keys when absent).
    #[arg(long, value_enum)]
    pub from: Option<ConvertFrom>,
    /// Where to write the JSONL (required except with --to check); written to a temporary file first.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The model whose chat template --to plain renders with (GGUF, Hugging Face folder or hf://).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Leave out pairs marked as ties.
    #[arg(long)]
    pub drop_ties: bool,
    /// Ratings → pairs: the score compared, as attribute=weight terms summed (default: helpfulness alone),
    /// e.g. helpfulness=1,correctness=0.5.
    #[arg(long, value_delimiter = ',', value_parser = parse_rating_weight)]
    pub rating_weights: Vec<(String, f32)>,
    /// Skip bad lines (each is listed with its reason) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_lines: bool,
}

/// One `attribute=weight` term (a bare attribute weighs 1).
fn parse_rating_weight(s: &str) -> Result<(String, f32), String> {
    let (name, weight) = s.split_once('=').unwrap_or((s, "1"));
    let weight: f32 = weight.trim().parse().map_err(|_| format!("{weight:?} is not a number (attribute=weight)"))?;
    if name.trim().is_empty() || !weight.is_finite() {
        return Err(format!("{s:?}: give attribute=weight with a finite weight"));
    }
    Ok((name.trim().to_string(), weight))
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvertTo {
    /// Only read and count: every record is checked, nothing is written.
    Check,
    Pairs,
    Unpaired,
    /// Ranked lists (from OpenAssistant trees).
    Lists,
    /// Every plain-text field as chat messages (user prompt, assistant responses).
    Chat,
    /// Every conversation rendered to text with --model's chat template.
    Plain,
    /// {prompt, ground_truth, verifier} (from GSM8K and IFEval records).
    Verifiable,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ConvertFrom {
    Pairs,
    Unpaired,
    Lists,
    Oasst,
    /// {prompt, response, attributes} (HelpSteer2).
    Ratings,
    /// {prompt, ground_truth, verifier}, GSM8K or IFEval records.
    Verifiable,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DeviceArg {
    /// Pure-Rust CPU backend (Burn's flex).
    Cpu,
    /// GPU through wgpu: Vulkan, Metal or DX12, whichever the machine has.
    Wgpu,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The model: a GGUF file, a Hugging Face folder, or hf://org/name[@revision][/file.gguf] (downloaded once
    /// into a cache; HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and ALIGNLAB_CACHE as in huggingface_hub).
    #[arg(long)]
    pub model: PathBuf,
    /// One prompt.
    #[arg(long, conflicts_with = "prompts")]
    pub prompt: Option<String>,
    /// A JSONL file of prompt-only records, {"prompt": "..."} or {"prompt": [{"role", "content"}, ...]};
    /// answers are printed (or written to --out) in order.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Write listwise candidate sets {"prompt", "responses": [...]} (one line per prompt, the input of the
    /// labelling page) to this JSONL file instead of printing answers.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Responses per prompt.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Sequences (prompts × responses) decoded together, left-padded, in one forward per step; changes the
    /// speed, not the answers.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Most new tokens per answer.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sample from the k most likely tokens only (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling: the smallest set of most likely tokens with at least this probability (1: all).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// CTRL's repetition penalty on tokens already in prompt or answer (1: off; 1.1–1.3 is usual).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Stop an answer at this text, which is cut off (repeatable). The end-of-turn token always stops.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Seed of the sampler: the same seed gives the same answers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Feed the prompt as is, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// Print {"prompt", "completion"} JSONL instead of plain answers.
    #[arg(long)]
    pub jsonl: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

/// Options of a training run. Precedence: these flags, then `--config` (TOML with the same keys in
/// snake_case), then the defaults.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The starting policy (for DPO also the reference): a GGUF file, a Hugging Face folder (decoder, or a BERT
    /// encoder for reward models) or hf://org/name[@revision][/file.gguf].
    #[arg(long)]
    pub model: PathBuf,
    /// Preference pairs, TRL JSONL. Records marked "tie": true are left out of pairwise training.
    #[arg(long)]
    pub data: PathBuf,
    /// A TOML file of training options (keys as the flags below, in snake_case: learning_rate = 1e-5).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run folder (default: runs/<objective>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Use only the first N records of the data file.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Skip malformed lines (reported on stderr) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Read metrics back from the device every N steps (fewer GPU syncs).
    #[arg(long, default_value_t = 1)]
    pub log_every: usize,
    /// Also save model.safetensors every N steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub save_steps: usize,
    /// Continue the run saved in this folder (its model.safetensors — a reward run's hf/ —, trainer_state.json
    /// and optimizer.bpk), with the same --model, data and options; the loss curve continues as if never stopped.
    #[arg(long)]
    pub resume_from: Option<PathBuf>,
    /// Reward model: start from this reward model (a run folder or a reward-model folder) instead of a zero
    /// head on --model — HelpSteer2-Preference's recipe: a regression run, then Scaled BT. A head of k labels
    /// becomes one, Σ c_a·W_a with --init-head-weights.
    #[arg(long, conflicts_with = "resume_from")]
    pub init_from: Option<PathBuf>,
    /// Weights c_a of the --init-from heads, comma-separated, in its label order [default: the
    /// "helpfulness" head alone, or the only head].
    #[arg(long, value_delimiter = ',')]
    pub init_head_weights: Option<Vec<f64>>,
    /// Print every metrics record as a JSON line.
    #[arg(long)]
    pub print_metrics: bool,
    /// Compute the reference log-probs once into <data stem>.ref.jsonl (+ .key.json) beside --data and train
    /// from it; a later run with the same model and tokenisation options reuses it (as `alignlab ref-logps`).
    #[arg(long)]
    pub precompute_ref_log_probs: bool,

    /// DPO temperature β [default: 0.1].
    #[arg(long)]
    pub beta: Option<f64>,
    /// DPO-family loss, TRL's loss_type; a comma list adds losses up: sigmoid, robust, hinge, ipo, dpo_norm,
    /// simpo, cpo, orpo, sft [default: sigmoid].
    #[arg(long, value_delimiter = ',', value_parser = parse_name::<DpoLossType>)]
    pub loss_type: Option<Vec<DpoLossType>>,
    /// Weights of the --loss-type terms, comma-separated [default: all 1].
    #[arg(long, value_delimiter = ',')]
    pub loss_weights: Option<Vec<f64>>,
    /// cDPO / rDPO label smoothing ε in [0, 0.5) [default: 0].
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// SimPO's target margin γ [default: 0.5].
    #[arg(long)]
    pub simpo_gamma: Option<f64>,
    /// CPO's weight of the chosen NLL [default: 1].
    #[arg(long)]
    pub cpo_alpha: Option<f64>,
    /// Reward model: how preference strength enters, bradley_terry | margin | scaled_bt [default: bradley_terry].
    #[arg(long, value_parser = parse_name::<RewardLossType>)]
    pub reward_loss_type: Option<RewardLossType>,
    /// Reward model: centering coefficient c of c·(r_w + r_l)² [default: 0].
    #[arg(long)]
    pub center_rewards_coefficient: Option<f64>,
    /// KTO: weight λ_D of desirable examples [default: 1].
    #[arg(long)]
    pub desirable_weight: Option<f64>,
    /// KTO: weight λ_U of undesirable examples [default: 1].
    #[arg(long)]
    pub undesirable_weight: Option<f64>,
    /// LiPO: lambda | list_mle | pair_logistic | pair_hinge | softmax [default: lambda].
    #[arg(long, value_parser = parse_name::<LipoLossType>)]
    pub lipo_loss_type: Option<LipoLossType>,
    /// LiPO: most responses per list; longer lists keep their first ones [default: 8].
    #[arg(long)]
    pub max_list_length: Option<usize>,
    /// MODPO: a reward model of another objective (repeatable, in the order of --modpo-weights' w_1, w_2, …).
    #[arg(long)]
    pub margin_reward_model: Vec<PathBuf>,
    /// MODPO: weights w_k (the --data objective), then one per --margin-reward-model; they sum to 1
    /// [default: 1, i.e. DPO].
    #[arg(long, value_delimiter = ',')]
    pub modpo_weights: Option<Vec<f64>>,
    /// MODPO: sigmoid | hinge [default: sigmoid].
    #[arg(long, value_parser = parse_name::<ModpoLossType>)]
    pub modpo_loss_type: Option<ModpoLossType>,
    /// Held-out preference pairs, evaluated every --eval-steps steps and at the end (eval_ metrics).
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    /// Hold out this fraction of --data for evaluation instead (seeded by --seed) [default: 0].
    #[arg(long)]
    pub eval_split: Option<f64>,
    /// Evaluate the held-out pairs every N steps [default: only at the end].
    #[arg(long)]
    pub eval_steps: Option<usize>,
    /// Micro-batches of --batch-size pairs per optimizer step [default: 1].
    #[arg(long)]
    pub gradient_accumulation_steps: Option<usize>,
    /// Peak learning rate of AdamW [default: 1e-5].
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Stop after this many optimizer steps [default: num_epochs epochs].
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Passes over the data when --max-steps is not given [default: 1].
    #[arg(long)]
    pub num_epochs: Option<usize>,
    /// Preference pairs per step [default: 2].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Linear warm-up steps, then linear decay to 0 [default: 0].
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// AdamW decoupled weight decay [default: 0].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm to this (0 disables) [default: 1].
    #[arg(long)]
    pub max_grad_norm: Option<f64>,
    /// Seed of the data order [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Longest prompt + response in tokens; longer responses are cut at the end [default: 512].
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Longest prompt in tokens; longer prompts keep their end [default: 256].
    #[arg(long)]
    pub max_prompt_length: Option<usize>,
    /// Wrap plain-text records in the model's chat template.
    #[arg(long)]
    pub chat_template: bool,
    /// LoRA rank: train rank-r adapters on frozen weights (TRL's --lora_r: 16); the run folder then holds
    /// the merged model.safetensors and peft's adapter_model.safetensors + adapter_config.json [default: 0,
    /// full fine-tuning].
    #[arg(long)]
    pub lora_r: Option<usize>,
    /// LoRA α: adapters are scaled by α / r [default: 32].
    #[arg(long)]
    pub lora_alpha: Option<f64>,
    /// Dropout on the adapters' input [default: 0.05].
    #[arg(long)]
    pub lora_dropout: Option<f64>,
    /// Projections that get adapters, comma-separated peft names (q_proj, k_proj, v_proj, o_proj, gate_proj,
    /// up_proj, down_proj) or all-linear [default: q_proj,v_proj].
    #[arg(long, value_delimiter = ',')]
    pub lora_target_modules: Option<Vec<String>>,
}

impl TrainArgs {
    /// Defaults, then the config file, then flags; the objective comes from the subcommand.
    pub fn resolve(&self, objective: Objective) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<TrainConfig>(&text).with_context(|| format!("in config file {}", path.display()))?
            }
            None => TrainConfig::default(),
        };
        c.objective = objective;
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        set!(beta, label_smoothing, learning_rate, num_epochs, batch_size, warmup_steps, weight_decay, max_grad_norm);
        set!(seed, max_length, max_prompt_length, simpo_gamma, cpo_alpha, reward_loss_type);
        set!(center_rewards_coefficient, gradient_accumulation_steps, eval_split);
        set!(lora_r, lora_alpha, lora_dropout);
        set!(desirable_weight, undesirable_weight, lipo_loss_type, max_list_length, modpo_loss_type);
        if self.modpo_weights.is_some() {
            c.modpo_weights = self.modpo_weights.clone();
        }
        if let Some(t) = &self.lora_target_modules {
            c.lora_target_modules = t.clone();
        }
        if self.eval_steps.is_some() {
            c.eval_steps = self.eval_steps;
        }
        if let Some(t) = &self.loss_type {
            c.loss_type = t.clone();
        }
        if self.loss_weights.is_some() {
            c.loss_weights = self.loss_weights.clone();
        }
        if self.max_steps.is_some() {
            c.max_steps = self.max_steps;
        }
        c.chat_template |= self.chat_template;
        c.validate()?;
        Ok(c)
    }
}

/// Names as the config file spells them (serde's snake_case), so flags and TOML cannot drift apart.
fn parse_name<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    T::deserialize(StrDeserializer::<serde::de::value::Error>::new(s)).map_err(|e| e.to_string())
}
