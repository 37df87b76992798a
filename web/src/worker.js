// The model worker: owns the wasm instance, the loaded model and the training run, so that the page stays
// responsive while the CPU backend computes. Messages: see protocol.js.
import * as alignlab from 'alignlab';

let model = null; // the loaded (original) model
let modelName = null;
let run = null; // the TrainingRun of the last Start
let policy = null; // cached trainer.policy() and the step it was taken at
let policyStep = -1;

const post = (message, transfer) => self.postMessage(message, transfer ?? []);

function trainState(extra = {}) {
  post({
    type: 'trainState',
    state: run?.state ?? 'idle',
    step: run?.trainer ? run.trainer.stepCount() : 0,
    totalSteps: run?.totalSteps ?? null,
    ...extra,
  });
}

function dropRun() {
  if (run && !run.finished) run.stop();
  const old = run;
  run = null;
  policy?.free();
  policy = null;
  policyStep = -1;
  // the trainer of a stopped run is freed once its last optimizer call has returned
  old?.done.then((r) => r.trainer.free(), () => old.trainer?.free());
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

const handlers = {
  async init({ backend }) {
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
    dropRun();
    model?.free();
    model = next;
    modelName = name;
    trainState();
    return { info: model.info(), name: modelName };
  },

  async startTraining({ config, data }) {
    if (!model) throw new Error('load a model first');
    dropRun();
    let markStarted;
    const started = new Promise((resolve) => (markStarted = resolve));
    const thisRun = alignlab.train(model, config, data, {
      onMetrics: (batch) => post({ type: 'metrics', batch }),
      onStateChange: (state) => {
        if (state !== 'preparing') markStarted();
        if (run === thisRun) trainState();
      },
    });
    run = thisRun;
    trainState();
    // answer once the trainer exists (DPO has computed its reference log-probs), or with its error
    await Promise.race([started, thisRun.done]);
    thisRun.done.then(
      () => run === thisRun && trainState(),
      (err) => run === thisRun && trainState({ error: err.message }),
    );
    return { totalSteps: thisRun.totalSteps };
  },

  async pause() {
    run?.pause();
    return null;
  },

  async resume() {
    run?.resume();
    return null;
  },

  async stop() {
    run?.stop();
    return null;
  },

  async generate({ id, which, prompt, options }) {
    let target;
    if (which === 'original') {
      if (!model) throw new Error('load a model first');
      target = model;
    } else {
      if (!run?.trainer) throw new Error('train first: there is no trained policy yet');
      if (run.state === 'running') throw new Error('pause or stop training first');
      const step = run.trainer.stepCount();
      if (!policy || policyStep !== step) {
        policy?.free();
        policy = run.trainer.policy();
        policyStep = step;
      }
      target = policy;
    }
    const text = await target.generate(prompt, {
      ...options,
      onToken: (piece) => post({ type: 'token', id, piece }),
    });
    return { text };
  },

  async evaluate() {
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
