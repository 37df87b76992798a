// The model worker: owns the wasm instance, the loaded model and the training runs, so that the page stays
// responsive while the CPU backend computes. Messages: see protocol.js.
import * as alignlab from 'alignlab';

let model = null; // the loaded (original) model
let modelName = null;
/** runId → { run, objective }: the run the page follows, the latest DPO run (its policy) and reward-model runs. */
const runs = new Map();
let current = null; // runId of the run the page follows
let policyRunId = null; // the latest DPO-family run: the "after" of the compare view
let policy = null; // cached trainer.policy() and the step it was taken at
let policyStep = -1;
/** Reward-model runs kept for scoring (the latest ones). */
const KEPT_REWARD_RUNS = 3;
let device = null; // the WebGPU device the wasm asked for (seen through requestDevice)
let cancelGenerate = false;

const post = (message, transfer) => self.postMessage(message, transfer ?? []);
/** Lets the worker take the next message (a Cancel) between generations: the wasm's promises resolve as microtasks. */
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

function trainState(runId, extra = {}) {
  const run = runs.get(runId)?.run;
  post({
    type: 'trainState',
    runId,
    state: run?.state ?? 'idle',
    step: run?.trainer ? run.trainer.stepCount() : 0,
    totalSteps: run?.totalSteps ?? null,
    ...extra,
  });
}

function freeRun(runId) {
  const entry = runs.get(runId);
  if (!entry) return;
  runs.delete(runId);
  const { run } = entry;
  if (!run.finished) run.stop();
  if (runId === policyRunId) {
    policy?.free();
    policy = null;
    policyStep = -1;
    policyRunId = null;
  }
  // the trainer of a stopped run is freed once its last optimizer call has returned
  run.done.then((r) => r.trainer.free(), () => run.trainer?.free());
}

/** Before a new run: the previous DPO run gives way to it; a few reward-model runs stay for scoring. */
function makeRoom(objective) {
  for (const [runId, entry] of runs) {
    if (!entry.run.finished && runId === current) freeRun(runId); // one run trains at a time
    else if (entry.objective === 'dpo' && objective === 'dpo') freeRun(runId);
  }
  const rewards = [...runs].filter(([, e]) => e.objective === 'reward').map(([id]) => id);
  while (objective === 'reward' && rewards.length >= KEPT_REWARD_RUNS) freeRun(rewards.shift());
}

function isGguf(bytes) {
  return bytes.byteLength >= 4 && String.fromCharCode(...bytes.subarray(0, 4)) === 'GGUF';
}

async function demoBytes(url) {
  // The demo model is a file of the page (made at build time); a dev server without it falls back to making the
  // same bytes here.
  try {
    const bytes = await alignlab.fetchBytes(url, {
      cache: false,
      onProgress: (p) => post({ type: 'progress', ...p }),
    });
    if (isGguf(bytes)) return bytes;
  } catch {
    // fall through
  }
  return alignlab.tinyGguf(0);
}

/**
 * Watches the device the wasm's WebGPU backend asks for: when it is lost (a driver reset, a GPU process crash,
 * the tab in the background too long, or `destroy()` from a test), the worker can do nothing more on it, so the
 * page is told and starts a CPU worker.
 */
function watchDevice() {
  const adapterProto = globalThis.GPUAdapter?.prototype;
  if (!adapterProto?.requestDevice || adapterProto.requestDevice.alignlabWatched) return;
  const requestDevice = adapterProto.requestDevice;
  const watched = async function (...args) {
    const d = await requestDevice.apply(this, args);
    device = d;
    d.lost.then((info) => post({ type: 'deviceLost', reason: info.reason, message: info.message || 'the GPU device was lost' }));
    return d;
  };
  watched.alignlabWatched = true;
  adapterProto.requestDevice = watched;
}

async function trainedPolicy() {
  const entry = runs.get(policyRunId);
  if (!entry?.run.trainer) throw new Error('no policy yet: train a DPO run (a reward model has no policy to generate with)');
  if (entry.run.state === 'running' || entry.run.state === 'preparing') throw new Error('pause or stop training first');
  const step = entry.run.trainer.stepCount();
  if (!policy || policyStep !== step) {
    policy?.free();
    policy = entry.run.trainer.policy();
    policyStep = step;
  }
  return policy;
}

let testHooks = false;

const handlers = {
  async init({ backend, testHooks: hooks }) {
    testHooks = Boolean(hooks);
    if (backend !== 'cpu') watchDevice();
    return alignlab.init({ backend });
  },

  async loadModel({ source }) {
    let next;
    let name;
    if (source.kind === 'demo') {
      next = alignlab.Model.fromGguf(await demoBytes(source.url));
      name = 'tiny demo model (seed 0)';
    } else if (source.kind === 'url') {
      next = await alignlab.loadModel(source.url, { onProgress: (p) => post({ type: 'progress', ...p }) });
      name = source.url;
    } else if (source.kind === 'bytes') {
      next = await alignlab.loadModel(new Uint8Array(source.bytes), { name: source.name });
      name = source.name;
    } else {
      throw new Error(`unknown model source ${source.kind}`);
    }
    for (const runId of [...runs.keys()]) freeRun(runId);
    model?.free();
    model = next;
    modelName = name;
    current = null;
    return { info: model.info(), name: modelName };
  },

  async startTraining({ runId, config, data, checkpointEvery, resumeFrom }) {
    if (!model) throw new Error('load a model first');
    makeRoom(config.objective);
    let markStarted;
    const started = new Promise((resolve) => (markStarted = resolve));
    // a resumed run continues the checkpoint's weights; the reference log-probs come with its state
    const run = alignlab.train(model, config, data, {
      onMetrics: (batch) => post({ type: 'metrics', runId, batch }),
      onStateChange: (state) => {
        if (state !== 'preparing') markStarted();
        trainState(runId);
      },
      checkpointEvery,
      onCheckpoint: checkpointEvery
        ? (checkpoint) => post({ type: 'checkpoint', runId, checkpoint }, [checkpoint.weights.buffer])
        : undefined,
      resumeFrom,
    });
    runs.set(runId, { run, objective: config.objective });
    current = runId;
    if (config.objective === 'dpo') policyRunId = runId;
    trainState(runId);
    // answer once the trainer exists (DPO has computed its reference log-probs), or with its error
    await Promise.race([started, run.done.catch(() => {})]);
    run.done.then(
      () => trainState(runId),
      (err) => trainState(runId, { error: err.message }),
    );
    if (run.state === 'failed') throw run.error;
    return { totalSteps: run.totalSteps };
  },

  async pause() {
    runs.get(current)?.run.pause();
    return null;
  },

  async resume() {
    runs.get(current)?.run.resume();
    return null;
  },

  async stop() {
    runs.get(current)?.run.stop();
    return null;
  },

  async generate({ id, which, prompt, options }) {
    let target;
    if (which === 'original') {
      if (!model) throw new Error('load a model first');
      target = model;
    } else {
      target = await trainedPolicy();
    }
    const text = await target.generate(prompt, {
      ...options,
      onToken: (piece) => post({ type: 'token', id, piece }),
    });
    return { text };
  },

  /** The followed run's trained weights as safetensors bytes (transferred). */
  async weights() {
    const entry = runs.get(current);
    if (!entry?.run.trainer) throw new Error('train first: there are no trained weights yet');
    if (entry.run.state === 'running' || entry.run.state === 'preparing') throw new Error('pause or stop training first');
    const bytes = await entry.run.trainer.weights();
    return { bytes, step: entry.run.trainer.stepCount(), objective: entry.objective };
  },

  /** Rewards of `responses` to `prompt` under a kept reward-model run. */
  async score({ runId, prompt, responses }) {
    const entry = runs.get(runId);
    if (!entry) throw new Error('that reward model is no longer kept: train one again');
    if (entry.objective !== 'reward') throw new Error('only a reward-model run scores responses');
    if (!entry.run.trainer || entry.run.state === 'running' || entry.run.state === 'preparing') {
      throw new Error('pause or stop the reward model’s training first');
    }
    return entry.run.trainer.scoreResponses(prompt, responses);
  },

  /**
   * `n` candidates for each prompt from the loaded model, one prompt after the other, with a progress event
   * after each; `cancelGenerate` stops after the completion in flight, keeping those done.
   */
  async generateCandidates({ id, prompts, n, options }) {
    if (!model) throw new Error('load a model first (in the Train view)');
    cancelGenerate = false;
    const sampled = await samplingGenerate();
    const items = [];
    for (const [i, prompt] of prompts.entries()) {
      if (cancelGenerate) return { items, cancelled: true, sampled };
      const text = typeof prompt === 'string' ? prompt : model.applyChatTemplate(prompt, { addGenerationPrompt: true });
      const chat = typeof prompt === 'string' && options.chatTemplate;
      const responses = await candidates(text, n, { ...options, chatTemplate: chat, seed: (options.seed ?? 0) + i });
      if (responses.length < n) return { items, cancelled: true, sampled }; // cancelled between candidates
      items.push({ prompt, responses });
      post({ type: 'candidates', id, done: i + 1, total: prompts.length });
      await nextTask();
    }
    return { items, cancelled: false, sampled };
  },

  async cancelGenerate() {
    cancelGenerate = true;
    return null;
  },

  async loseDevice() {
    if (!testHooks) throw new Error('loseDevice is a test hook (?test-hooks)');
    if (!device) throw new Error('no WebGPU device to lose');
    device.destroy();
    return null;
  },

  async evaluate() {
    const run = runs.get(current)?.run;
    if (!run?.trainer) throw new Error('train first');
    if (run.state === 'running') throw new Error('pause or stop training first');
    return run.trainer.evaluate();
  },

  // Inter-annotator agreement is the core's eval module's; a package without it says so instead of a number.
  // (Looked up by name at run time: the bundler would otherwise fold a missing export to undefined, with a warning.)
  async agreement({ table, options }) {
    const agreement = Reflect.get(alignlab, 'agreement');
    if (typeof agreement !== 'function') return { available: false };
    return { available: true, result: await agreement(table, options) };
  },
};

/**
 * `n` completions of one prompt: as one sampled batch where this build's `generate` takes `n` (the sampling
 * options of pkg/index.d.ts), else one call per candidate with the options it knows (greedy: the same text n
 * times, which the page says).
 */
async function candidates(prompt, n, options) {
  if (await samplingGenerate()) return model.generate(prompt, { ...options, n });
  const { maxNewTokens, chatTemplate } = options;
  const out = [];
  for (let k = 0; k < n && !cancelGenerate; k++) {
    out.push(await model.generate(prompt, { maxNewTokens, chatTemplate }));
    await nextTask();
  }
  return out;
}

let sampling = null;
/** Whether the wasm's generate takes `n` (it refuses options it does not know): asked once, one token long. */
function samplingGenerate() {
  sampling ??= model.generate('a', { maxNewTokens: 1, n: 1 }).then(
    (out) => Array.isArray(out),
    () => false,
  );
  return sampling;
}

self.addEventListener('message', async (event) => {
  const message = event.data;
  const handler = handlers[message.type];
  try {
    if (!handler) throw new Error(`unknown request ${message.type}`);
    const value = await handler(message);
    post({ type: 'result', id: message.id, value });
  } catch (err) {
    post({ type: 'error', id: message.id, message: err?.message ?? String(err) });
  }
});
