// The messages between the page (main thread) and the model worker. The worker owns the wasm, the model and the
// trainer; the page only renders. Every request carries an `id`; the worker answers it once with `result` or
// `error`, and sends events (no id, or the id of the request they belong to) in between.
//
// page → worker (requests)
//   { id, type: 'init', backend: 'auto' | 'webgpu' | 'cpu', testHooks }     → { backend, adapter? }
//   { id, type: 'loadModel', source: ModelSource }                          → { info, name }
//       ModelSource = { kind: 'demo', url } | { kind: 'url', url } | { kind: 'bytes', bytes, name }
//   { id, type: 'startTraining', runId, config: TrainConfig, data: string, checkpointEvery, resumeFrom? }
//                                                                            → { totalSteps } once training started
//       resumeFrom = TrainingCheckpoint (pkg): the run continues it (DPO family)
//   { id, type: 'pause' } | { id, type: 'resume' } | { id, type: 'stop' }   → null
//   { id, type: 'generate', which: 'original' | 'policy', prompt, options } → { text }
//   { id, type: 'score', runId, prompt, responses: string[] }              → number[] (a reward-model run's)
//   { id, type: 'weights' }                                                 → { bytes, step, objective } of the
//                                                                              run the page follows (safetensors)
//   { id, type: 'generateCandidates', prompts, n, options }                 → { items: {prompt, responses}[],
//                                                                              cancelled }
//   { id, type: 'cancelGenerate' }                                          → null
//   { id, type: 'loseDevice' }   (test hooks only: destroys the WebGPU device) → null
//   { id, type: 'evaluate' }                                                → Metrics
//   { id, type: 'agreement', table: {item, annotator, label}[], options }  → { available: false }
//                                                                              | { available: true, result }
//
// worker → page (events)
//   { type: 'progress', loaded, total?, fromCache, file? } while a model downloads (file: of an hf:// folder)
//   { type: 'trainState', runId, state, step, totalSteps, error? }
//   { type: 'metrics', runId, batch: Metrics[] }        after each optimizer call
//   { type: 'checkpoint', runId, checkpoint }           every checkpointEvery steps and at the end
//   { type: 'deviceLost', reason, message }             the WebGPU device is gone: the worker is of no more use
//   { type: 'candidates', id, done, total }             while generateCandidates runs
//   { type: 'token', id, piece }                        while `generate` with that id runs
//   { type: 'result', id, value } | { type: 'error', id, message }

/** Request types the worker knows (a typo fails loudly on both sides). */
export const REQUESTS = Object.freeze([
  'init',
  'loadModel',
  'startTraining',
  'pause',
  'resume',
  'stop',
  'generate',
  'evaluate',
  'agreement',
  'score',
  'weights',
  'generateCandidates',
  'cancelGenerate',
  'loseDevice',
]);

/**
 * Talks to the worker: `request(type, payload, onEvent)` resolves with the result. `replace(worker)` swaps in a
 * fresh worker (after a lost GPU device): the old one is terminated and its pending requests reject; event
 * listeners stay.
 */
export class WorkerClient {
  #worker;
  #next = 1;
  #pending = new Map();
  #listeners = new Set();

  constructor(worker) {
    this.#attach(worker);
  }

  #attach(worker) {
    this.#worker = worker;
    worker.addEventListener('message', (event) => worker === this.#worker && this.#receive(event.data));
    worker.addEventListener('error', (event) => {
      if (worker !== this.#worker) return;
      const message = event.message || 'the model worker failed to start';
      this.#rejectAll(message);
      this.#emit({ type: 'workerError', message });
    });
  }

  #rejectAll(message) {
    for (const { reject } of this.#pending.values()) reject(new Error(message));
    this.#pending.clear();
  }

  replace(worker, why = 'the model worker was restarted') {
    const old = this.#worker;
    this.#attach(worker);
    old.terminate();
    this.#rejectAll(why);
  }

  /** Events that belong to no request (progress, training). */
  onEvent(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  request(type, payload = {}, { onEvent, transfer = [] } = {}) {
    if (!REQUESTS.includes(type)) throw new TypeError(`unknown request ${type}`);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onEvent });
      this.#worker.postMessage({ ...payload, id, type }, transfer);
    });
  }

  #emit(message) {
    for (const listener of this.#listeners) listener(message);
  }

  #receive(message) {
    const pending = message.id !== undefined ? this.#pending.get(message.id) : undefined;
    if (message.type === 'result' || message.type === 'error') {
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.type === 'result') pending.resolve(message.value);
      else pending.reject(new Error(message.message));
      return;
    }
    if (pending?.onEvent) pending.onEvent(message);
    else this.#emit(message);
  }
}
