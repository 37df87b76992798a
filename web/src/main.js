// The page: wires the DOM to the model worker. Everything that came from data (model info, pairs, metrics,
// generated text, error messages) is written with textContent, never as HTML. Two views share it: Train (this
// file) and Label (label/view.js), chosen by the URL's hash so that a reload stays where it was.
import './style.css';
import { WorkerClient } from './protocol.js';
import { TrainingChart } from './chart.js';
import { initTheme } from './theme.js';
import { startLabelView } from './label/view.js';
import { CheckpointStore } from './checkpoints.js';
import {
  MetricsSeries,
  TABLE_COLUMNS,
  appendPair,
  describePairs,
  formatMetric,
  trainConfigFromForm,
} from './state.js';

const $ = (id) => document.getElementById(id);
const el = {
  backend: $('backend'),
  loadDemo: $('load-demo'),
  modelFile: $('model-file'),
  modelUrlForm: $('model-url-form'),
  modelUrl: $('model-url'),
  modelProgress: $('model-progress'),
  modelStatus: $('model-status'),
  modelInfo: $('model-info'),
  pairsFile: $('pairs-file'),
  loadSample: $('load-sample'),
  clearPairs: $('clear-pairs'),
  pairsText: $('pairs-text'),
  pairsStatus: $('pairs-status'),
  addPairForm: $('add-pair-form'),
  trainForm: $('train-form'),
  start: $('train-start'),
  pause: $('train-pause'),
  resume: $('train-resume'),
  stop: $('train-stop'),
  download: $('train-download'),
  trainStatus: $('train-status'),
  chart: $('chart'),
  summary: $('train-summary'),
  table: $('metrics-table'),
  compareForm: $('compare-form'),
  compareRun: $('compare-run'),
  compareRm: $('compare-rm'),
  compareTrainRm: $('compare-train-rm'),
  outBefore: $('out-before'),
  outAfter: $('out-after'),
  scoreBefore: $('score-before'),
  scoreAfter: $('score-after'),
  scoreDiff: $('score-diff'),
  checkpointStatus: $('checkpoint-status'),
  recovery: $('recovery'),
  recoveryText: $('recovery-text'),
  recoveryResume: $('recovery-resume'),
  recoveryDiscard: $('recovery-discard'),
  error: $('error'),
};

const TABLE_ROWS = 8;
const newWorker = () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'alignlab-model' });
const client = new WorkerClient(newWorker());
const chart = new TrainingChart(el.chart);
const params = new URLSearchParams(location.search);
/** The run's checkpoints in IndexedDB (null where storage is refused: training still works, unprotected). */
const checkpoints = CheckpointStore.open().catch((err) => {
  console.warn(err);
  return null;
});

const page = {
  backend: null,
  modelLoaded: false,
  pairsFile: 'pairs.jsonl',
  pairsOk: false,
  trainState: 'idle',
  step: 0,
  totalSteps: null,
  series: null,
  busy: false, // a model load or a generation is in flight
  modelSource: null, // what the loaded model came from: loaded again on the CPU after a lost device
  runId: null, // the run the chart follows
  runConfig: null, // { config, data, checkpointEvery } of that run
  rewardRuns: [], // { runId, steps }: reward models the worker keeps for scoring
  deviceLost: false,
};

// ---------------------------------------------------------------------------------------------------------------
// Errors and buttons

function showError(err) {
  const message = err instanceof Error ? err.message : String(err);
  el.error.textContent = message;
  el.error.hidden = false;
}

function clearError() {
  el.error.hidden = true;
  el.error.textContent = '';
}

function refreshButtons() {
  const running = page.trainState === 'running' || page.trainState === 'preparing';
  const active = running || page.trainState === 'paused';
  el.loadDemo.disabled = !page.backend || page.busy || active;
  el.modelFile.disabled = el.loadDemo.disabled;
  for (const b of el.modelUrlForm.querySelectorAll('button, input')) b.disabled = el.loadDemo.disabled;
  el.start.disabled = !page.modelLoaded || !page.pairsOk || active || page.busy;
  el.pause.disabled = !running; // a pause asked for while preparing takes effect before the first step
  el.resume.disabled = page.trainState !== 'paused';
  el.stop.disabled = !active;
  el.download.disabled = !['paused', 'finished', 'stopped'].includes(page.trainState) || page.busy;
  el.compareRun.disabled = !page.modelLoaded || running || page.busy;
  el.compareTrainRm.disabled = !page.modelLoaded || !page.pairsOk || active || page.busy;
  el.recoveryResume.disabled = !page.backend || active || page.busy;
}

async function task(fn) {
  clearError();
  page.busy = true;
  refreshButtons();
  try {
    return await fn();
  } catch (err) {
    showError(err);
    return undefined;
  } finally {
    page.busy = false;
    refreshButtons();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Backend and model

async function start(backend = params.get('backend') ?? 'auto') {
  refreshButtons();
  try {
    const result = await client.request('init', { backend, testHooks: params.has('test-hooks') });
    page.backend = result.backend;
    el.backend.dataset.backend = result.backend;
    const adapter = result.adapter?.architecture || result.adapter?.vendor;
    el.backend.textContent =
      result.backend === 'webgpu'
        ? `WebGPU${adapter ? ` (${adapter})` : ''}`
        : page.deviceLost
          ? 'CPU (wasm; the WebGPU device was lost)'
          : backend === 'cpu'
            ? 'CPU (wasm)'
            : 'CPU (wasm; no WebGPU adapter)';
    el.backend.title = result.adapter?.description ?? '';
  } catch (err) {
    el.backend.dataset.backend = 'error';
    el.backend.textContent = 'failed to start';
    showError(err);
  }
  refreshButtons();
}

function showProgress({ loaded, total, fromCache, file }) {
  el.modelProgress.hidden = false;
  if (total) {
    el.modelProgress.max = total;
    el.modelProgress.value = loaded;
  } else {
    el.modelProgress.removeAttribute('value');
  }
  const mb = (n) => (n / 1e6).toFixed(1);
  el.modelStatus.textContent =
    (fromCache ? 'from cache: ' : 'downloading: ') +
    (total ? `${mb(loaded)} / ${mb(total)} MB` : `${mb(loaded)} MB`) +
    (file ? ` (${file})` : ''); // the file of an hf:// folder
}

function showModelInfo(name, info) {
  el.modelInfo.replaceChildren();
  const rows = [
    ['model', name],
    ['architecture', info.arch],
    ['layers', info.n_layers],
    ['d_model', info.d_model],
    ['heads (kv)', `${info.n_heads} (${info.n_kv_heads})`],
    ['vocabulary', info.vocab_size],
    ['parameters', Number(info.params).toLocaleString('en-US')],
    ['backend', info.backend],
  ];
  for (const [key, value] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = key;
    const dd = document.createElement('dd');
    dd.textContent = String(value);
    dd.dataset.key = key;
    el.modelInfo.append(dt, dd);
  }
}

/**
 * Loads a model in the worker. `source` is what the page keeps to load it again (a File stays a File: its bytes
 * are read and handed to the worker each time).
 */
async function loadModel(source, { keepRun = false } = {}) {
  await task(async () => {
    el.modelStatus.textContent = 'loading…';
    let fromCache = false;
    const unsubscribe = client.onEvent((m) => {
      if (m.type !== 'progress') return;
      fromCache = m.fromCache;
      showProgress(m);
    });
    try {
      let request = source;
      let transfer = [];
      if (source.kind === 'file') {
        const bytes = await source.file.arrayBuffer();
        request = { kind: 'bytes', bytes, name: source.file.name };
        transfer = [bytes];
      }
      const { info, name } = await client.request('loadModel', { source: request }, { transfer });
      page.modelLoaded = true;
      page.modelSource = source;
      el.modelStatus.textContent = `loaded: ${name}${fromCache ? ' (from the browser cache)' : ''}`;
      el.modelStatus.dataset.loaded = 'true';
      el.modelStatus.dataset.fromCache = String(fromCache);
      showModelInfo(name, info);
      page.rewardRuns = [];
      renderRewardRuns();
      if (!keepRun) resetTraining();
    } catch (err) {
      el.modelStatus.textContent = page.modelLoaded ? 'kept the model loaded before' : 'not loaded';
      throw err;
    } finally {
      unsubscribe();
      el.modelProgress.hidden = true;
    }
  });
}

el.loadDemo.addEventListener('click', () =>
  loadModel({ kind: 'demo', url: new URL('tiny.gguf', document.baseURI).href }),
);
el.modelFile.addEventListener('change', async () => {
  const file = el.modelFile.files?.[0];
  if (!file) return;
  el.modelFile.value = '';
  await loadModel({ kind: 'file', file });
});
el.modelUrlForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const url = el.modelUrl.value.trim();
  if (url) loadModel({ kind: 'url', url: new URL(url, document.baseURI).href });
});

// ---------------------------------------------------------------------------------------------------------------
// Pairs

function refreshPairs() {
  const result = describePairs(el.pairsText.value, page.pairsFile);
  page.pairsOk = result.ok;
  el.pairsStatus.textContent = result.message;
  el.pairsStatus.dataset.count = String(result.count);
  el.pairsStatus.classList.toggle('error', !result.ok && el.pairsText.value.trim() !== '');
  refreshButtons();
}

el.pairsText.addEventListener('input', () => {
  page.pairsFile = 'pairs.jsonl';
  refreshPairs();
});
el.pairsFile.addEventListener('change', async () => {
  const file = el.pairsFile.files?.[0];
  if (!file) return;
  el.pairsText.value = await file.text();
  page.pairsFile = file.name;
  el.pairsFile.value = '';
  refreshPairs();
});
el.loadSample.addEventListener('click', () =>
  task(async () => {
    const response = await fetch(new URL('truthfulqa-sample.jsonl', document.baseURI));
    if (!response.ok) throw new Error(`truthfulqa-sample.jsonl: HTTP ${response.status}`);
    el.pairsText.value = await response.text();
    page.pairsFile = 'truthfulqa-sample.jsonl';
    refreshPairs();
  }),
);
el.clearPairs.addEventListener('click', () => {
  el.pairsText.value = '';
  page.pairsFile = 'pairs.jsonl';
  refreshPairs();
});
el.addPairForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(el.addPairForm);
  el.pairsText.value = appendPair(el.pairsText.value, {
    prompt: String(form.get('prompt')),
    chosen: String(form.get('chosen')),
    rejected: String(form.get('rejected')),
  });
  el.addPairForm.reset();
  refreshPairs();
});

// ---------------------------------------------------------------------------------------------------------------
// Training

function objective() {
  return new FormData(el.trainForm).get('objective');
}

function syncObjective() {
  const current = objective();
  for (const label of el.trainForm.querySelectorAll('[data-for]')) label.hidden = label.dataset.for !== current;
}
el.trainForm.addEventListener('change', syncObjective);
el.trainForm.addEventListener('submit', (event) => event.preventDefault());

function renderTableHead() {
  const tr = document.createElement('tr');
  for (const key of TABLE_COLUMNS[page.series.objective]) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.title = key;
    // "rewards/accuracies" over two lines keeps the table narrow
    for (const [i, part] of key.split('/').entries()) {
      const span = document.createElement('span');
      span.textContent = i === 0 && key.includes('/') ? `${part}/` : part;
      th.append(span);
    }
    tr.append(th);
  }
  el.table.tHead.replaceChildren(tr);
}

function renderTable() {
  const columns = TABLE_COLUMNS[page.series.objective];
  const rows = page.series.tail(TABLE_ROWS).map((m) => {
    const tr = document.createElement('tr');
    tr.dataset.step = String(m.step);
    for (const key of columns) {
      const td = document.createElement('td');
      td.dataset.key = key;
      td.dataset.value = String(m[key] ?? '');
      td.textContent = formatMetric(key, m[key]);
      tr.append(td);
    }
    return tr;
  });
  el.table.tBodies[0].replaceChildren(...rows);
}

function renderSummary() {
  const s = page.series.summary();
  if (!s) {
    el.summary.textContent = '';
    return;
  }
  el.summary.dataset.firstLoss = String(s.firstLoss);
  el.summary.dataset.lastLoss = String(s.lastLoss);
  el.summary.textContent =
    `loss ${s.firstLoss.toFixed(4)} → ${s.lastLoss.toFixed(4)} over ${s.steps} step${s.steps === 1 ? '' : 's'}` +
    (s.lastAccuracy == null ? '' : `; ${page.series.accuracyKey} ${s.lastAccuracy.toFixed(3)}`);
}

function renderTrainStatus(error) {
  const { trainState, step, totalSteps } = page;
  el.trainStatus.dataset.state = trainState;
  const words = {
    idle: '',
    preparing: 'preparing (tokenising; reference log-probs for DPO)…',
    running: 'training',
    paused: 'paused',
    finished: 'finished',
    stopped: 'stopped',
    failed: 'failed',
    lost: 'stopped: the WebGPU device was lost',
  };
  const progress = totalSteps ? ` — step ${step} / ${totalSteps}` : '';
  el.trainStatus.textContent = (words[trainState] ?? trainState) + (trainState === 'idle' ? '' : progress);
  if (error) showError(error);
}

function resetTraining() {
  page.series = null;
  page.trainState = 'idle';
  page.step = 0;
  page.totalSteps = null;
  el.table.tHead.replaceChildren();
  el.table.tBodies[0].replaceChildren();
  el.summary.textContent = '';
  el.chart.dataset.points = '0';
  el.outAfter.textContent = '';
  el.outAfter.dataset.state = 'empty';
  renderTrainStatus();
  refreshButtons();
}

client.onEvent((message) => {
  const ours = message.runId === undefined || message.runId === page.runId;
  if (message.type === 'metrics' && page.series && ours) {
    page.series.push(message.batch);
    page.step = page.series.last?.step ?? page.step;
    chart.update();
    renderTable();
    renderSummary();
    renderTrainStatus();
  } else if (message.type === 'trainState' && ours) {
    page.trainState = message.state;
    page.step = message.step;
    page.totalSteps = message.totalSteps;
    renderTrainStatus(message.error);
    if (page.runConfig?.config.objective === 'reward' && ['finished', 'stopped', 'paused'].includes(message.state)) {
      keepRewardRun(message.runId, message.step);
    }
    refreshButtons();
  } else if (message.type === 'checkpoint') {
    saveCheckpoint(message.runId, message.checkpoint);
  } else if (message.type === 'deviceLost') {
    onDeviceLost(message);
  } else if (message.type === 'workerError') {
    showError(message.message);
  }
});

/** The training form's checkpoint interval (not a training option: the page's own). */
function checkpointEvery() {
  const n = Number(new FormData(el.trainForm).get('checkpointEvery'));
  return Number.isInteger(n) && n >= 1 ? n : 5;
}

/** Starts a run (a fresh one, or one continued from `resume`, a stored checkpoint record). */
async function startRun({ config, data, every, runId = crypto.randomUUID(), resume = null }) {
  clearError();
  page.runId = runId;
  page.runConfig = { config, data, checkpointEvery: every };
  page.series = new MetricsSeries(config.objective);
  if (resume) page.series.push(resume.metrics);
  page.trainState = 'preparing';
  renderTableHead();
  el.table.tBodies[0].replaceChildren();
  chart.reset(page.series);
  chart.update();
  if (resume) renderTable();
  renderSummary();
  renderTrainStatus();
  if (!resume) renderCheckpointStatus(null);
  refreshButtons();
  try {
    await client.request('startTraining', { runId, config, data, checkpointEvery: every, resumeFrom: resume?.checkpoint });
  } catch (err) {
    if (page.runId !== runId) return;
    page.trainState = 'failed';
    renderTrainStatus();
    showError(err);
    refreshButtons();
  }
}

el.start.addEventListener('click', () => {
  let config;
  try {
    config = trainConfigFromForm(Object.fromEntries(new FormData(el.trainForm)));
  } catch (err) {
    showError(err);
    return;
  }
  el.recovery.hidden = true;
  startRun({ config, data: el.pairsText.value, every: checkpointEvery() });
});

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints, a lost device, resuming

function renderCheckpointStatus(record) {
  el.checkpointStatus.dataset.step = record ? String(record.checkpoint.step) : '';
  el.checkpointStatus.textContent = record
    ? `checkpoint: step ${record.checkpoint.step} kept in this browser (${(record.checkpoint.weights.byteLength / 1e6).toFixed(1)} MB)`
    : '';
}

/** Keeps the run's checkpoint with what it takes to start the run again (model source, options, data). */
async function saveCheckpoint(runId, checkpoint) {
  if (runId !== page.runId || !page.runConfig) return;
  const store = await checkpoints;
  if (!store) return;
  const source = page.modelSource;
  const record = {
    runId,
    ...page.runConfig,
    objective: page.runConfig.config.objective,
    source: source?.kind === 'file' ? { kind: 'file', file: source.file } : source,
    totalSteps: page.totalSteps,
    metrics: page.series ? page.series.rows.filter((m) => m.step <= checkpoint.step) : [],
    checkpoint,
    savedAt: new Date().toISOString(),
  };
  try {
    await store.put(record);
    renderCheckpointStatus(record);
  } catch (err) {
    showError(err); // a full disk is said, not swallowed
  }
}

/** Words for a stored checkpoint. */
function describeRecord(record) {
  const what = record.objective === 'dpo' ? 'DPO' : record.objective === 'reward' ? 'reward-model' : record.objective;
  return (
    `The ${what} run’s checkpoint of step ${record.checkpoint.step}` +
    (record.totalSteps ? ` of ${record.totalSteps}` : '') +
    ` (${new Date(record.savedAt).toLocaleString()}) is kept in this browser.` +
    ' Resume continues the run from it (same data order and reference; AdamW’s moments start again).'
  );
}

async function offerRecovery(prefix = '') {
  let record = await (await checkpoints)?.latest();
  if (record && record.totalSteps && record.checkpoint.step >= record.totalSteps) record = null; // a finished run
  if (!record) {
    el.recovery.hidden = !prefix;
    el.recoveryText.textContent = prefix + (prefix ? ' No checkpoint of a run was kept.' : '');
    el.recoveryResume.hidden = true;
    el.recoveryDiscard.hidden = true;
    return;
  }
  el.recoveryText.textContent = (prefix ? `${prefix} ` : '') + describeRecord(record);
  el.recoveryResume.hidden = false;
  el.recoveryDiscard.hidden = false;
  el.recovery.hidden = false;
  el.recovery.dataset.step = String(record.checkpoint.step);
  refreshButtons();
}

el.recoveryResume.addEventListener('click', async () => {
  const record = await (await checkpoints)?.latest();
  if (!record) return;
  const sameSource =
    page.modelLoaded &&
    page.modelSource &&
    record.source &&
    page.modelSource.kind === record.source.kind &&
    (page.modelSource.url ?? page.modelSource.file) === (record.source.url ?? record.source.file);
  if (!sameSource) {
    if (!record.source) {
      showError('the checkpoint does not say which model it started from: load it, then resume');
      return;
    }
    await loadModel(record.source, { keepRun: true });
    if (!page.modelLoaded) return;
  }
  el.recovery.hidden = true;
  el.pairsText.value = record.data;
  refreshPairs();
  await startRun({ config: record.config, data: record.data, every: record.checkpointEvery, runId: record.runId, resume: record });
});

el.recoveryDiscard.addEventListener('click', async () => {
  await (await checkpoints)?.clear();
  el.recovery.hidden = true;
  renderCheckpointStatus(null);
});

/**
 * The WebGPU device is gone: the worker cannot go on (its wasm holds buffers of the dead device), so a CPU
 * worker takes its place, the model is loaded again, and the run's last checkpoint is offered.
 */
async function onDeviceLost({ reason, message }) {
  if (page.deviceLost) return;
  page.deviceLost = true;
  // the run may already have failed on the dead device before the loss was reported
  const wasTraining = ['running', 'paused', 'preparing', 'failed'].includes(page.trainState);
  const stoppedAt = page.step;
  client.replace(newWorker(), 'the WebGPU device was lost');
  page.backend = null;
  page.modelLoaded = false;
  page.busy = false;
  page.rewardRuns = [];
  renderRewardRuns();
  if (wasTraining) page.trainState = 'lost';
  renderTrainStatus();
  el.backend.dataset.backend = 'lost';
  el.backend.textContent = 'WebGPU device lost: starting the CPU…';
  clearError();
  const said =
    `The WebGPU device was lost (${reason}: ${message}); the page now computes on the CPU (wasm), slower but the same numbers.` +
    (wasTraining ? ` Training stopped at step ${stoppedAt}.` : '');
  el.recovery.hidden = false;
  el.recoveryText.textContent = said;
  el.recoveryResume.hidden = true;
  await start('cpu');
  if (page.modelSource) await loadModel(page.modelSource, { keepRun: true });
  await offerRecovery(said);
}

el.compareTrainRm.addEventListener('click', () => {
  el.trainForm.elements.objective.value = 'reward';
  syncObjective();
  el.start.click();
});
el.pause.addEventListener('click', () => client.request('pause'));
el.download.addEventListener('click', () =>
  task(async () => {
    const { bytes, step, objective } = await client.request('weights');
    const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `alignlab-${objective === 'reward' ? 'reward-model' : 'policy'}-step${step}.safetensors`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }),
);
el.resume.addEventListener('click', () => client.request('resume'));
el.stop.addEventListener('click', () => client.request('stop'));

// ---------------------------------------------------------------------------------------------------------------
// Compare

async function generateInto(pre, which, prompt, options) {
  pre.textContent = '';
  pre.dataset.state = 'running';
  try {
    const { text } = await client.request(
      'generate',
      { which, prompt, options },
      { onEvent: (m) => m.type === 'token' && pre.append(m.piece) },
    );
    pre.textContent = text;
    pre.dataset.state = 'done';
  } catch (err) {
    pre.textContent = err.message;
    pre.dataset.state = 'error';
  }
}

/** A reward-model run the worker keeps for scoring (listed once, with its latest step count). */
function keepRewardRun(runId, steps) {
  const known = page.rewardRuns.find((r) => r.runId === runId);
  if (known) known.steps = steps;
  else page.rewardRuns.push({ runId, steps, number: page.rewardRuns.length + 1 });
  page.rewardRuns = page.rewardRuns.slice(-3); // the worker keeps the last three
  renderRewardRuns(runId);
}

function renderRewardRuns(select) {
  const chosen = select ?? el.compareRm.value;
  const options = page.rewardRuns.map((r) => {
    const option = document.createElement('option');
    option.value = r.runId;
    option.textContent = `reward model ${r.number} (${r.steps} step${r.steps === 1 ? '' : 's'})`;
    return option;
  });
  const none = document.createElement('option');
  none.value = '';
  none.textContent = page.rewardRuns.length ? 'no reward model' : 'no reward model yet';
  el.compareRm.replaceChildren(none, ...options);
  el.compareRm.value = page.rewardRuns.some((r) => r.runId === chosen) ? chosen : '';
}

function clearScores() {
  for (const p of [el.scoreBefore, el.scoreAfter, el.scoreDiff]) {
    p.textContent = '';
    p.dataset.score = '';
  }
  el.scoreDiff.dataset.diff = '';
}

/** Both answers under the chosen reward model: r(prompt, before) and r(prompt, after). */
async function scoreBoth(runId, prompt) {
  const [before, after] = [el.outBefore, el.outAfter];
  if (before.dataset.state !== 'done' || after.dataset.state !== 'done') {
    el.scoreDiff.textContent = 'scores need both answers';
    return;
  }
  const run = page.rewardRuns.find((r) => r.runId === runId);
  const [rb, ra] = await client.request('score', { runId, prompt, responses: [before.textContent, after.textContent] });
  el.scoreBefore.dataset.score = String(rb);
  el.scoreAfter.dataset.score = String(ra);
  el.scoreBefore.textContent = `reward ${rb.toFixed(4)}`;
  el.scoreAfter.textContent = `reward ${ra.toFixed(4)}`;
  el.scoreDiff.dataset.diff = String(ra - rb);
  el.scoreDiff.textContent =
    `reward model ${run?.number ?? ''}: after − before = ${(ra - rb >= 0 ? '+' : '') + (ra - rb).toFixed(4)}` +
    ` (${ra > rb ? 'the trained policy’s answer scores higher' : ra < rb ? 'the original answer scores higher' : 'equal'})`;
}

el.compareForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(el.compareForm);
  const prompt = String(form.get('prompt'));
  const options = { maxNewTokens: Number(form.get('maxNewTokens')) || 32, chatTemplate: form.get('chatTemplate') === 'on' };
  const rewardRun = el.compareRm.value;
  clearScores();
  task(async () => {
    await generateInto(el.outBefore, 'original', prompt, options);
    await generateInto(el.outAfter, 'policy', prompt, options);
    if (rewardRun) await scoreBoth(rewardRun, prompt);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Views

let labelView = null; // started the first time the Label view is shown

function showView() {
  const label = location.hash === '#label';
  $('train-view').hidden = label;
  $('label-view').hidden = !label;
  $('tab-train').setAttribute('aria-current', String(!label));
  $('tab-label').setAttribute('aria-current', String(label));
  if (label) {
    labelView ??= startLabelView({
      client,
      isShown: () => location.hash === '#label',
      onTrain: (jsonl, file) => {
        el.pairsText.value = jsonl;
        page.pairsFile = file;
        refreshPairs();
        location.hash = '#train';
      },
    }).catch(showError);
  }
}
window.addEventListener('hashchange', showView);

// ---------------------------------------------------------------------------------------------------------------
// Test hooks (only with ?test-hooks): lets a browser test run a fixed training through the same worker.

function installTestHooks() {
  window.alignlabTest = {
    /** Trains with `config` on `data` and resolves with every step's metrics (the page's model, as loaded). */
    async train(config, data) {
      const metrics = [];
      let finish;
      const finished = new Promise((resolve) => (finish = resolve));
      const off = client.onEvent((m) => {
        if (m.runId !== 'test-hook') return;
        if (m.type === 'metrics') metrics.push(...m.batch);
        if (m.type === 'trainState' && ['finished', 'stopped', 'failed'].includes(m.state)) finish(m);
      });
      try {
        await client.request('startTraining', { runId: 'test-hook', config, data });
        const end = await finished;
        if (end.state === 'failed') throw new Error(end.error ?? 'training failed');
        return metrics;
      } finally {
        off();
      }
    },
  };
  /** Destroys the worker's WebGPU device, as a driver reset would lose it. */
  window.alignlabTest.loseDevice = () => client.request('loseDevice');
  document.documentElement.dataset.testHooks = 'ready';
}

initTheme($('theme-toggle'));
showView();
syncObjective();
refreshPairs();
renderRewardRuns();
start().then(() => {
  if (params.has('test-hooks')) installTestHooks();
  return offerRecovery();
});
