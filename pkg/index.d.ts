// Types of the `alignlab` package (hand-written beside index.js).

export type Backend = "webgpu" | "cpu";

export interface InitOptions {
  /** "auto" (default): WebGPU where an adapter exists, else the CPU. "webgpu" rejects where there is no adapter. */
  backend?: "auto" | Backend;
  /** The wasm: its URL (default: beside this package), its bytes or a compiled module. */
  wasm?: URL | string | Uint8Array | ArrayBuffer | WebAssembly.Module;
  /**
   * Node only: make `navigator.gpu` from the optional package `webgpu` first (see `alignlab/node-webgpu`);
   * an object is passed to `installNodeWebGPU`.
   */
  nodeWebgpu?: boolean | { icd?: string | "auto" | null | false; dawnFlags?: string[] };
}

export interface InitResult {
  /** The backend in use for every model and trainer of this instance. */
  backend: Backend;
  /** The WebGPU adapter's description, when the backend is WebGPU. */
  adapter?: { vendor: string; architecture: string; description: string };
}

/** Loads the wasm and chooses the device (once per instance; later calls return the first result). */
export function init(options?: InitOptions): Promise<InitResult>;
/** True when `navigator.gpu` exists and gives an adapter. */
export function webgpuAvailable(): Promise<boolean>;
/** The backend `init` chose, or null before it has finished. */
export function currentBackend(): Promise<Backend | null>;

export interface ModelInfo {
  arch: string;
  n_layers: number;
  d_model: number;
  n_heads: number;
  n_kv_heads: number;
  vocab_size: number;
  params: number;
  backend: string;
}

export interface ChatMessage {
  role: string;
  content: string;
}

export interface GenerateOptions {
  /** Tokens to generate at most (the core's default when absent). */
  maxNewTokens?: number;
  /** Wrap the prompt as a user turn with the model's chat template and the generation prompt. */
  chatTemplate?: boolean;
  /** Called with each decoded piece as it becomes final (text that could begin a stop string waits), and the
   * index of the sample it belongs to. */
  onToken?: (piece: string, sample: number) => void;
  /** Sampling temperature; 0 (the default) is greedy decoding. */
  temperature?: number;
  /** Sample from the k most likely tokens only (0, the default: all). */
  topK?: number;
  /** Nucleus sampling: the smallest set of most likely tokens with at least this probability (1, the default: all). */
  topP?: number;
  /** CTRL's repetition penalty on tokens already in prompt or output (1, the default: off). */
  repetitionPenalty?: number;
  /** Stop strings: a completion ends at the first one, which is cut off. The end-of-turn token always stops. */
  stop?: string | string[];
  /** Seed of the sampler (an integer up to 2^53): the same seed gives the same completions. Default 0. */
  seed?: number;
  /** Completions to sample; when given, `generate` resolves to an array of them. */
  n?: number;
  /** Completions decoded together in one forward per step (default 8); changes the speed, not the output. */
  batchSize?: number;
}

/** A causal language model on the device chosen by `init`. Made by its static functions or `loadModel`. */
export class Model {
  private constructor();
  /** A model from the bytes of a GGUF file (v2/v3; F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K–Q6_K). Throws an Error on bad bytes. */
  static fromGguf(bytes: Uint8Array | ArrayBuffer): Model;
  /**
   * A Hugging Face folder from its files (config.json, tokenizer.json, model.safetensors or its index and shards in
   * f32/f16/bf16, optionally tokenizer_config.json and chat_template.jinja); files it does not need are ignored.
   */
  static fromHfFiles(files: Array<[string, Uint8Array | ArrayBuffer]> | Record<string, Uint8Array | ArrayBuffer>): Model;
  /** The tiny random Llama (d_model 64, 2 layers, byte-level vocabulary, ChatML template) for a seed. */
  static tiny(seed?: number): Model;
  info(): ModelInfo;
  tokenize(text: string): Uint32Array;
  decode(ids: Uint32Array | ArrayLike<number>): string;
  /** The prompt text for a conversation; `addGenerationPrompt` (default false) opens the assistant's turn. */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean } | boolean): string;
  /** `n` completions (greedy or sampled) with a KV cache, as one batch. */
  generate(prompt: string, options: GenerateOptions & { n: number }): Promise<string[]>;
  /** One completion (greedy, or sampled with `temperature` > 0) with a KV cache; resolves to the completion only. */
  generate(prompt: string, options?: GenerateOptions): Promise<string>;
  /** The weights as HF-named safetensors. */
  toSafetensors(): Promise<Uint8Array>;
  /**
   * A model with this one's architecture and tokenizer and the weights of a safetensors file (e.g.
   * `TrainingCheckpoint.weights` of a run that started from this model).
   */
  withSafetensors(bytes: Uint8Array | ArrayBuffer): Model;
  free(): void;
}

/** The tiny model of `Model.tiny(seed)` as the bytes of a GGUF file. */
export function tinyGguf(seed?: number): Uint8Array;

/** `kto` trains on unpaired `{prompt, completion, label}` JSONL, `lipo` on ranked lists `{prompt, responses,
 * ranking | scores}`; `dpo` and `reward` on preference pairs; `regression` on ratings `{prompt, response,
 * attributes: {helpfulness: 0-4, …}}` (one reward head per attribute; metrics `loss`, `mse/<attribute>`,
 * `mae/<attribute>`). */
export type Objective = "dpo" | "reward" | "kto" | "lipo" | "regression";

/** The DPO family (TRL's names; `dpo_norm` is Tülu 3's length-normalised DPO). */
export type LossType = "sigmoid" | "robust" | "hinge" | "ipo" | "dpo_norm" | "simpo" | "cpo" | "orpo" | "sft";

/** Training options: the same words as the core's config, the CLI's flags and the page, in camelCase. */
export interface TrainConfig {
  objective: Objective;
  /** DPO's β (0.1). */
  beta?: number;
  /** DPO-family loss, TRL's `loss_type` ("sigmoid"); a list adds the losses up (`["sigmoid", "sft"]`). */
  lossType?: LossType | LossType[];
  /** Weight of each lossType entry (all 1). */
  lossWeights?: number[];
  /** cDPO / rDPO label smoothing ε in [0, 0.5) (0). */
  labelSmoothing?: number;
  /** SimPO's target margin γ (0.5). */
  simpoGamma?: number;
  /** CPO's weight of the chosen response's NLL (1). */
  cpoAlpha?: number;
  /** Reward model: how preference strength enters ("bradley_terry"). */
  rewardLossType?: "bradley_terry" | "margin" | "scaled_bt";
  /** Reward model: c of the centering term c·(r_w + r_l)² (0). */
  centerRewardsCoefficient?: number;
  /** Micro-batches of batchSize pairs per optimizer step (1). */
  gradientAccumulationSteps?: number;
  /** Fraction of the pairs held out for `Trainer.evaluateHeldOut()` (0; seeded by `seed`). */
  evalSplit?: number;
  /** Evaluate the held-out pairs every N steps in `train()` (only at the end when absent). */
  evalSteps?: number;
  /** Peak learning rate (1e-5; about 5e-4 suits the tiny model). */
  learningRate?: number;
  /** Optimizer steps; overrides numEpochs when set. */
  maxSteps?: number;
  numEpochs?: number;
  /** Pairs per step (2). */
  batchSize?: number;
  /** Tokens per sequence at most, prompt + response (512). */
  maxLength?: number;
  /** Prompt tokens at most, kept from its end (256). */
  maxPromptLength?: number;
  /** Linear warm-up steps (0). */
  warmupSteps?: number;
  /** AdamW weight decay (0). */
  weightDecay?: number;
  /** Gradient-norm clipping (1.0). */
  maxGradNorm?: number;
  /** Seed of the data order (0). */
  seed?: number;
  /** Render plain-text records with the model's chat template (false). */
  chatTemplate?: boolean;
  /** Memory for one chunk of LM-head logits, in bytes (64 MiB). */
  logitsChunkBytes?: number;
  /** LoRA rank r: train rank-r adapters on frozen weights (0, the default: every weight; TRL's `--lora_r` is 16). */
  loraR?: number;
  /** LoRA α: adapters are scaled by α / r (32). */
  loraAlpha?: number;
  /** Dropout on the adapters' input while training (0.05). */
  loraDropout?: number;
  /** Projections that get adapters, peft's names (`"q_proj"` … `"down_proj"`) or `"all-linear"` (`["q_proj", "v_proj"]`). */
  loraTargetModules?: string | string[];
  /** KTO: weight λ_D of desirable examples (1; TRL's name). Keep λ_D·n_D / (λ_U·n_U) in [1, 4/3]. */
  desirableWeight?: number;
  /** KTO: weight λ_U of undesirable examples (1). */
  undesirableWeight?: number;
  /** LiPO's listwise loss ("lambda", LiPO-λ; the paper's β is 0.05). */
  lipoLossType?: "lambda" | "list_mle" | "pair_logistic" | "pair_hinge" | "softmax";
  /** LiPO: most responses per list; longer lists keep their first ones (8). */
  maxListLength?: number;
  /** MODPO: weights w_k, then one per margin reward model, summing to 1 (absent: DPO). The margin rewards are
   * set by the CLI's `alignlab modpo`; the package has no way to pass them yet. */
  modpoWeights?: number[];
  /** MODPO: "sigmoid" (the paper) or "hinge". */
  modpoLossType?: "sigmoid" | "hinge";
}

/** The option names `trainConfigToWasm` accepts. */
export const TRAIN_OPTIONS: readonly (keyof TrainConfig)[];
/** The core's snake_case config from camelCase options; throws a TypeError on unknown names or bad values. */
export function trainConfigToWasm(config: TrainConfig): Record<string, number | string | boolean>;

/** DPO metrics per step (TRL's names). */
export interface DpoMetrics {
  step: number;
  epoch: number;
  loss: number;
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/margins": number;
  "rewards/accuracies": number;
  "logps/chosen": number;
  "logps/rejected": number;
  /** Absent from `evaluate()`. */
  learning_rate?: number;
  grad_norm?: number;
  num_tokens: number;
}

/** Reward-model metrics per step (TRL's names). */
export interface RewardMetrics {
  step: number;
  epoch: number;
  loss: number;
  accuracy: number;
  margin: number;
  mean_reward: number;
  min_reward: number;
  max_reward: number;
  learning_rate?: number;
  grad_norm?: number;
  num_tokens: number;
}

/** KTO metrics per step (TRL's KTOTrainer names): means over the desirable (`chosen`) and undesirable
 * (`rejected`) examples of the step, absent when it had none; `kl` is the reference point z0. */
export interface KtoMetrics {
  step: number;
  epoch: number;
  loss: number;
  kl: number;
  "rewards/chosen"?: number;
  "rewards/rejected"?: number;
  "rewards/margins"?: number;
  "logps/chosen"?: number;
  "logps/rejected"?: number;
  learning_rate?: number;
  grad_norm?: number;
  num_tokens: number;
}

/** LiPO metrics per step: the implicit rewards of each list's best- and worst-labelled responses, their margin,
 * and the share of ordered pairs the rewards order the same way (with lists of two: DPO's values). */
export interface LipoMetrics {
  step: number;
  epoch: number;
  loss: number;
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/margins": number;
  "rewards/accuracies"?: number;
  learning_rate?: number;
  grad_norm?: number;
  num_tokens: number;
}

export type Metrics = DpoMetrics | RewardMetrics | KtoMetrics | LipoMetrics;

/** The core's TrainerState: where a run stands (step, data order, RNG, reference log-probs of the start). */
export interface TrainerState {
  step: number;
  total_steps: number;
  /** A u64 as a decimal string. */
  rng: string;
  order: number[];
  reference: [number, number][];
  pairs: number;
}

/** What a run needs to continue elsewhere (another worker, the CPU after a lost WebGPU device, a reload). */
export interface TrainingCheckpoint {
  step: number;
  state: TrainerState;
  /** The trained weights as safetensors (policy, or reward model with `score.weight`). A resumed run restarts
   * AdamW at `step`: its moments are not carried in the browser. */
  weights: Uint8Array;
}

/** One optimizer loop over a policy copied from a model, stepped explicitly. */
export class Trainer {
  private constructor();
  /**
   * Copies `model` as the policy and reads the preference JSONL; for DPO it computes the reference log-probs
   * once. Rejects with "file:line: message" on a bad record.
   */
  static create(model: Model, config: TrainConfig, dataJsonl: string): Promise<Trainer>;
  /** The options it was made with. */
  readonly config: Readonly<TrainConfig>;
  /** Runs up to n optimizer steps (fewer at the end); one metrics object per step. */
  step(n?: number): Promise<Metrics[]>;
  stepCount(): number;
  totalSteps(): number;
  /** Metrics over the whole training set without updating (no learning_rate). */
  evaluate(): Promise<Metrics>;
  /** Metrics over the held-out pairs (`evalSplit`) under TRL's `eval_` names; null without held-out pairs. */
  evaluateHeldOut(): Promise<Metrics | null>;
  /** An independent Model holding the current trained weights. */
  policy(): Model;
  /**
   * Continues a checkpointed run: `model` is the model the run started from, `checkpoint.weights` the network to
   * continue (policy or reward model; absent: `model` is the policy), config and data the run's; AdamW restarts.
   * Runs without evalSplit only, for now.
   */
  static resume(model: Model, config: TrainConfig, dataJsonl: string, checkpoint: Pick<TrainingCheckpoint, "state"> & { weights?: Uint8Array }): Promise<Trainer>;
  state(): TrainerState;
  /** The trained weights as safetensors bytes. */
  weights(): Promise<Uint8Array>;
  checkpoint(): Promise<TrainingCheckpoint>;
  /** Rewards of `responses` to `prompt` under a reward-model run's current model; rejects for a DPO run. */
  scoreResponses(prompt: string, responses: string[]): Promise<number[]>;
  free(): void;
}

export type TrainingState = "preparing" | "running" | "paused" | "finished" | "stopped" | "failed";

export interface TrainOptions {
  /** Called after each optimizer call with that call's metrics (one object per step). */
  onMetrics?: (batch: Metrics[], run: TrainingRun) => void;
  onStateChange?: (state: TrainingState, run: TrainingRun) => void;
  /** Aborting stops the run like `run.stop()`. */
  signal?: AbortSignal;
  /** Optimizer steps per call into the wasm (1); more is faster, 1 is the most responsive. */
  stepsPerCall?: number;
  /** Called (and awaited, between optimizer calls) every `checkpointEvery` steps and at the last step. */
  onCheckpoint?: (checkpoint: TrainingCheckpoint, run: TrainingRun) => void | Promise<void>;
  /** Steps between checkpoints (1). */
  checkpointEvery?: number;
  /** Continue this checkpoint of a run that started from `model`: the run goes on from its step. */
  resumeFrom?: Pick<TrainingCheckpoint, "state"> & { weights?: Uint8Array };
}

export interface TrainingResult {
  state: "finished" | "stopped";
  metrics: Metrics[];
  /** Still alive: take `trainer.policy()`, then `trainer.free()`. */
  trainer: Trainer;
}

/** A running training loop; iterate it for one metrics object per step. */
export class TrainingRun implements AsyncIterable<Metrics> {
  private constructor();
  readonly state: TrainingState;
  readonly finished: boolean;
  /** Every step's metrics so far. */
  readonly metrics: Metrics[];
  /** Set once the trainer exists (after the reference log-probs for DPO). */
  readonly trainer: Trainer | null;
  readonly totalSteps: number | null;
  readonly error: Error | null;
  /** Resolves when the run finishes or is stopped; rejects when it fails. */
  readonly done: Promise<TrainingResult>;
  /** Pauses after the optimizer call in flight. */
  pause(): void;
  resume(): void;
  /** Ends the run after the optimizer call in flight. */
  stop(): void;
  [Symbol.asyncIterator](): AsyncIterator<Metrics>;
}

/** Starts training a copy of `model` and returns the running `TrainingRun` at once. */
export function train(model: Model, config: TrainConfig, dataJsonl: string, options?: TrainOptions): TrainingRun;

export interface Progress {
  loaded: number;
  /** From Content-Length when the server sent it (and no content encoding changed the size). */
  total?: number;
  fromCache: boolean;
  /** For hf:// folders: which file of the folder this event is about. */
  file?: string;
}

export interface FetchOptions {
  onProgress?: (progress: Progress) => void;
  /**
   * Browser: answer from and store into the Cache API (default true). Node: hub files are kept in the CLI's cache
   * folder ($ALIGNLAB_CACHE, else $XDG_CACHE_HOME/alignlab, else ~/.cache/alignlab); other URLs are not cached.
   */
  cache?: boolean;
  signal?: AbortSignal;
}

/** The bytes at a URL (Node: also a path or file: URL) with progress, through the browser's Cache API. */
export function fetchBytes(
  url: string | URL,
  options?: FetchOptions & {
    validate?: (bytes: Uint8Array) => void;
    /** Resolve to null on HTTP 404 (remembered in the cache) instead of throwing. */
    allowMissing?: boolean;
    headers?: Record<string, string>;
  },
): Promise<Uint8Array | null>;

/** A parsed `hf://org/name[@revision][/file]` name (revision "main" when absent; file null for a whole folder). */
export interface HubRef {
  repo: string;
  revision: string;
  file: string | null;
}

/** `hf://…` parsed; null for anything else; throws on a malformed hf:// name. The CLI reads names the same way. */
export function parseHubRef(name: string): HubRef | null;

/** The URL of `file` of `ref` on a server with the hub's layout (`{endpoint}/{repo}/resolve/{revision}/{file}`). */
export function hubUrl(endpoint: string, ref: HubRef, file: string): string;

/**
 * A model from a URL (Node: also a path), `hf://org/name[@revision][/file.gguf]` (a GGUF file, or a Hugging Face
 * folder with sharded or single safetensors), a Blob/File or bytes.
 */
export function loadModel(
  source: string | URL | Blob | Uint8Array | ArrayBuffer,
  options?: FetchOptions & {
    /** How messages name the source (default: the URL or the file's name). */
    name?: string;
    /** Server with the hub's layout for hf:// names (default: HF_ENDPOINT in Node, else https://huggingface.co). */
    endpoint?: string;
    /** Bearer token for gated or private hf:// models. */
    token?: string;
  },
): Promise<Model>;

export interface PreferenceCheck {
  /** Good records. */
  count: number;
  /** Bad lines. */
  bad: number;
  errors: { line: number; message: string }[];
  /** The first problem as "file:line: message", or null. */
  firstError: string | null;
}

/** Checks preference JSONL (TRL's {"prompt","chosen","rejected"} per line; blank lines skipped). */
export function checkPreferenceJsonl(text: string, options?: { file?: string }): PreferenceCheck;
/** One pair as a JSONL line. */
export function preferenceLine(pair: {
  prompt?: string | ChatMessage[];
  chosen: string | ChatMessage[];
  rejected: string | ChatMessage[];
  [extra: string]: unknown;
}): string;

/** One annotator's label of one item. */
export interface AnnotatorLabel {
  item: string | number;
  annotator: string;
  /** An integer (e.g. −3…3 preference strength) or a string (a category). */
  label: number | string;
}

export interface AgreementReport {
  /** Rows of the table: item ids in first-seen order; columns: annotators. */
  itemIds: string[];
  annotatorIds: string[];
  items: number;
  raters: number;
  ratings: number;
  unanimous: number;
  disagreements: number;
  mean_item_agreement: number;
  fleiss_kappa: number | null;
  krippendorff_alpha: number | null;
  /** Cohen's κ of each annotator pair, annotators × annotators (null where undefined). */
  cohen_kappa: (number | null)[][];
  mean_cohen_kappa: number | null;
  /** α at the requested level. */
  level: "nominal" | "ordinal" | "interval" | "ratio";
  alpha: number | null;
  /** Fraction of agreeing annotator pairs per item (null with fewer than two labels). */
  item_agreement: (number | null)[];
}

/** Cohen's/Fleiss' κ and Krippendorff's α between annotators, computed by the core. */
export function agreement(labels: AnnotatorLabel[], options?: { level?: "nominal" | "ordinal" | "interval" | "ratio" }): AgreementReport;
/** A model's agreement with each rater and with the raters' majority. */
export function modelAgreement(modelLabels: (number | string | null)[], table: (number | string | null)[][]): {
  cohen_kappa: (number | null)[];
  mean_cohen_kappa: number | null;
  majority_accuracy: number | null;
  majority_items: number;
};
/** Reward-model metrics under TRL's names (`rewards/accuracies`, `rewards/margins`, …) plus `ece` and `reliability`. */
export function rewardMetrics(
  chosen: ArrayLike<number>,
  rejected: ArrayLike<number>,
  options?: { groups?: string[]; numBins?: number },
): Record<string, unknown>;
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<boolean>): number;

/** The KL estimate of `klToReference` (TRL's names where TRL has them). */
export interface KlReport {
  /** Mean over prompts of Σ_t log π − log π_ref on sampled responses, in nats; exactly 0 when policy = reference. */
  "objective/kl": number;
  /** Mean of −log π(y|x) over the samples. */
  "objective/entropy": number;
  "completions/mean_length": number;
  per_prompt: number[];
  samples_per_prompt: number;
}
export interface KlOptions {
  /** Responses sampled per prompt (default 4). */
  samples?: number;
  /** Most tokens per response (default 64). */
  maxNewTokens?: number;
  seed?: number;
  /** Wrap plain-text prompts in the chat template (message lists always are). */
  chatTemplate?: boolean;
}
/** KL(policy‖reference) on responses sampled from the policy: `alignlab eval --kl-prompts` in JS. */
export function klToReference(
  policy: Model,
  reference: Model,
  prompts: (string | ChatMessage[])[],
  options?: KlOptions,
): Promise<KlReport>;

/** KTO metrics of unpaired examples over a data set (TRL's KTOTrainer names, its sums divided by its counts). */
export interface UnpairedEvalMetrics {
  "count/chosen": number;
  "count/rejected": number;
  /** Absent without desirable (`chosen`) or undesirable (`rejected`) examples. */
  "rewards/chosen"?: number;
  "rewards/rejected"?: number;
  "rewards/margins"?: number;
  "logps/chosen"?: number;
  "logps/rejected"?: number;
  /** KTO's reference point z0 = max(0, mean log-ratio of the KL pairs). */
  kl?: number;
  /** Share of rewards with their label's sign (desirable > 0, undesirable < 0), 0 counting half. */
  sign_accuracy: number;
  "sign_accuracy/chosen"?: number;
  "sign_accuracy/rejected"?: number;
  /** Rewards of desirable vs undesirable examples; absent with one label only. */
  auroc?: number;
}
/** Ranking metrics of lists: ordered pairs ψ_i > ψ_j (reward ties half), best/worst rewards, Kendall τ_b, NDCG. */
export interface RankingEvalMetrics {
  "count/lists": number;
  "count/pairs": number;
  ties: number;
  "rewards/accuracies": number;
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/margins": number;
  /** Null when τ_b is 0/0 in every list (e.g. every reward tied). */
  kendall_tau: number | null;
  kendall_tau_lists: number;
  ndcg: number;
}
export interface EvaluateOptions {
  /** β of the implicit reward (default 0.1). */
  beta?: number;
  batchSize?: number;
  maxLength?: number;
  maxPromptLength?: number;
  maxListLength?: number;
  chatTemplate?: boolean;
  /** Calibration bins for pairs (default 10). */
  numBins?: number;
}
export interface EvaluateResult {
  format: "pairs" | "unpaired" | "lists";
  examples: number;
  /** Pairs: `rewardMetrics`' object; unpaired: UnpairedEvalMetrics; lists: RankingEvalMetrics. */
  overall: Record<string, unknown> | UnpairedEvalMetrics | RankingEvalMetrics;
}
/** `alignlab eval --data` in JS: the implicit rewards of `policy` against `reference` on JSONL data and their metrics. */
export function evaluateData(policy: Model, reference: Model, dataJsonl: string, options?: EvaluateOptions): Promise<EvaluateResult>;
export function unpairedMetrics(
  rewards: ArrayLike<number>,
  logps: ArrayLike<number>,
  desirable: ArrayLike<boolean>,
  options?: { klRatios?: ArrayLike<number> },
): UnpairedEvalMetrics;
export function rankingMetrics(rewards: ArrayLike<number>[], labels: ArrayLike<number>[]): RankingEvalMetrics;

/** The core's training options with their defaults, camelCase. */
export function defaultTrainConfig(): Required<Omit<TrainConfig, "maxSteps" | "lossWeights" | "evalSteps">> & Partial<TrainConfig>;
