// The page: wires the DOM to the model worker. Everything that came from data (model info, pairs, metrics,
// generated text, error messages) is written with textContent, never as HTML. Two views share it: Train (this
// file) and Label (label/view.js), chosen by the URL's hash so that a reload stays where it was.
import './style.css';
import { WorkerClient } from './protocol.js';
import { TrainingChart } from './chart.js';
import { initTheme } from './theme.js';
import { startLabelView } from './label/view.js';
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
  trainStatus: $('train-status'),
  chart: $('chart'),
  summary: $('train-summary'),
  table: $('metrics-table'),
  compareForm: $('compare-form'),
  compareRun: $('compare-run'),
  outBefore: $('out-before'),
  outAfter: $('out-after'),
  error: $('error'),
};

const TABLE_ROWS = 8;
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'alignlab-model' });
const client = new WorkerClient(worker);
const chart = new TrainingChart(el.chart);

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
  el.compareRun.disabled = !page.modelLoaded || running || page.busy;
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

async function start() {
  refreshButtons();
  const params = new URLSearchParams(location.search);
  const backend = params.get('backend') ?? 'auto';
  try {
    const result = await client.request('init', { backend });
    page.backend = result.backend;
    el.backend.dataset.backend = result.backend;
    const adapter = result.adapter?.architecture || result.adapter?.vendor;
    el.backend.textContent =
      result.backend === 'webgpu'
        ? `WebGPU${adapter ? ` (${adapter})` : ''}`
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
  if (params.has('test-hooks')) installTestHooks();
}

function showProgress({ loaded, total, fromCache }) {
  el.modelProgress.hidden = false;
  if (total) {
    el.modelProgress.max = total;
    el.modelProgress.value = loaded;
  } else {
    el.modelProgress.removeAttribute('value');
  }
  const mb = (n) => (n / 1e6).toFixed(1);
  el.modelStatus.textContent =
    (fromCache ? 'from cache: ' : 'downloading: ') + (total ? `${mb(loaded)} / ${mb(total)} MB` : `${mb(loaded)} MB`);
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

async function loadModel(source, transfer) {
  await task(async () => {
    el.modelStatus.textContent = 'loading…';
    let fromCache = false;
    const unsubscribe = client.onEvent((m) => {
      if (m.type !== 'progress') return;
      fromCache = m.fromCache;
      showProgress(m);
    });
    try {
      const { info, name } = await client.request('loadModel', { source }, { transfer });
      page.modelLoaded = true;
      el.modelStatus.textContent = `loaded: ${name}${fromCache ? ' (from the browser cache)' : ''}`;
      el.modelStatus.dataset.loaded = 'true';
      el.modelStatus.dataset.fromCache = String(fromCache);
      showModelInfo(name, info);
      resetTraining();
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
  const bytes = await file.arrayBuffer();
  el.modelFile.value = '';
  await loadModel({ kind: 'bytes', bytes, name: file.name }, [bytes]);
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
  if (message.type === 'metrics' && page.series) {
    page.series.push(message.batch);
    page.step = page.series.last?.step ?? page.step;
    chart.update();
    renderTable();
    renderSummary();
    renderTrainStatus();
  } else if (message.type === 'trainState') {
    page.trainState = message.state;
    page.step = message.step;
    page.totalSteps = message.totalSteps;
    renderTrainStatus(message.error);
    refreshButtons();
  } else if (message.type === 'workerError') {
    showError(message.message);
  }
});

el.start.addEventListener('click', async () => {
  clearError();
  let config;
  try {
    config = trainConfigFromForm(Object.fromEntries(new FormData(el.trainForm)));
  } catch (err) {
    showError(err);
    return;
  }
  page.series = new MetricsSeries(config.objective);
  page.trainState = 'preparing';
  renderTableHead();
  el.table.tBodies[0].replaceChildren();
  chart.reset(page.series);
  renderSummary();
  renderTrainStatus();
  refreshButtons();
  try {
    await client.request('startTraining', { config, data: el.pairsText.value });
  } catch (err) {
    page.trainState = 'failed';
    renderTrainStatus();
    showError(err);
    refreshButtons();
  }
});
el.pause.addEventListener('click', () => client.request('pause'));
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

el.compareForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(el.compareForm);
  const prompt = String(form.get('prompt'));
  const options = { maxNewTokens: Number(form.get('maxNewTokens')) || 32, chatTemplate: form.get('chatTemplate') === 'on' };
  task(async () => {
    await generateInto(el.outBefore, 'original', prompt, options);
    await generateInto(el.outAfter, 'policy', prompt, options);
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
        if (m.type === 'metrics') metrics.push(...m.batch);
        if (m.type === 'trainState' && ['finished', 'stopped', 'failed'].includes(m.state)) finish(m);
      });
      try {
        await client.request('startTraining', { config, data });
        const end = await finished;
        if (end.state === 'failed') throw new Error(end.error ?? 'training failed');
        return metrics;
      } finally {
        off();
      }
    },
  };
  document.documentElement.dataset.testHooks = 'ready';
}

initTheme($('theme-toggle'));
showView();
syncObjective();
refreshPairs();
start();
