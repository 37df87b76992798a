// The page in real Chromium (WebGPU through SwiftShader): load the demo model, write pairs, train DPO with a live
// chart, pause and resume, compare before/after; the page's tiny DPO run agrees with Node's wasm CPU run; models
// load from files and URLs (cached). Screenshots go to test-results/screenshots/.
import { test, expect } from '@playwright/test';
import { LN2, expectedBackend, openWithModel, pageMatchesNode, shots, watchProblems } from '../helpers/page.mjs';
import { truthfulqaJsonl } from '../helpers/truthfulqa.mjs';

test('the page loads the demo model on WebGPU, trains DPO with a live chart and compares', async ({ page }) => {
  const problems = watchProblems(page);
  const wasmTypes = [];
  page.context().on('response', (r) => r.url().endsWith('.wasm') && wasmTypes.push(r.headers()['content-type']));
  await openWithModel(page);
  // streaming compilation needs the right type (the worker's fetch of the wasm)
  expect(wasmTypes.length).toBeGreaterThan(0);
  expect(new Set(wasmTypes)).toEqual(new Set(['application/wasm']));
  await expect(page.locator('#backend')).toContainText(expectedBackend === 'webgpu' ? 'WebGPU' : 'CPU');
  const info = page.locator('#model-info');
  await expect(info.locator('dd[data-key="backend"]')).toHaveText(expectedBackend);
  await expect(info.locator('dd[data-key="layers"]')).toHaveText('2');
  await expect(info.locator('dd[data-key="d_model"]')).toHaveText('64');

  // pairs: a file's worth pasted, a bad line reported with its line number, then fixed, then one added by the form
  const pairs = page.locator('#pairs-text');
  const status = page.locator('#pairs-status');
  await pairs.fill(truthfulqaJsonl(12));
  await expect(status).toHaveAttribute('data-count', '12');
  await pairs.fill(truthfulqaJsonl(12) + '{"prompt": "Q", "chosen": "A"}\n');
  await expect(status).toContainText('pairs.jsonl:13: missing field rejected');
  await expect(page.locator('#train-start')).toBeDisabled();
  await pairs.fill(truthfulqaJsonl(12));
  const form = page.locator('#add-pair-form');
  await form.locator('[name=prompt]').fill('Question: Is the Earth flat?\nAnswer:');
  await form.locator('[name=chosen]').fill(' No, the Earth is roughly a sphere');
  await form.locator('[name=rejected]').fill(' Yes, the Earth is flat');
  await form.locator('button[type=submit]').click();
  await expect(status).toHaveAttribute('data-count', '13');
  await expect(status).toHaveText('13 pairs');

  // train 20 DPO steps
  const train = page.locator('#train-form');
  await train.locator('[name=objective]').selectOption('dpo');
  await train.locator('[name=learningRate]').fill('0.001');
  await train.locator('[name=maxSteps]').fill('20');
  await train.locator('[name=batchSize]').fill('2');
  await page.locator('#train-start').click();
  // pause at once (it takes effect before the first optimizer step, or between two), check that nothing moves,
  // then resume
  await page.locator('#train-pause').click();
  const chart = page.locator('#chart');
  await expect(page.locator('#train-status')).toHaveAttribute('data-state', 'paused', { timeout: 300_000 });
  await expect(page.locator('#train-resume')).toBeEnabled();
  const pausedAt = await chart.getAttribute('data-points');
  await page.waitForTimeout(1500);
  await expect(chart).toHaveAttribute('data-points', pausedAt);
  await page.screenshot({ path: `${shots}/training-paused.png`, fullPage: true });
  await page.locator('#train-resume').click();
  await expect(chart).toHaveAttribute('data-points', /^[1-9]/, { timeout: 300_000 });
  await expect(chart.locator('canvas')).toBeVisible();
  const canvasEarly = await chart.locator('canvas').screenshot();

  await expect(page.locator('#train-status')).toHaveAttribute('data-state', 'finished', { timeout: 900_000 });
  await expect(chart).toHaveAttribute('data-points', '20');
  const canvasLate = await chart.locator('canvas').screenshot();
  expect(canvasLate.equals(canvasEarly)).toBe(false);

  // the loss started at ln 2 and fell; the table shows the last steps
  const summary = page.locator('#train-summary');
  const firstLoss = Number(await summary.getAttribute('data-first-loss'));
  const lastLoss = Number(await summary.getAttribute('data-last-loss'));
  expect(Math.abs(firstLoss - LN2)).toBeLessThan(1e-4);
  expect(lastLoss).toBeLessThan(firstLoss);
  const lastRow = page.locator('#metrics-table tbody tr').last();
  await expect(lastRow).toHaveAttribute('data-step', '20');
  const tableLoss = Number(await lastRow.locator('td[data-key="loss"]').getAttribute('data-value'));
  expect(tableLoss).toBeCloseTo(lastLoss, 10);
  await page.screenshot({ path: `${shots}/trained.png`, fullPage: true });

  // compare: the original model's and the trained policy's greedy answers side by side
  await page.locator('#compare-prompt').fill('Question: What happens to you if you eat watermelon seeds?\nAnswer:');
  await page.locator('#compare-form [name=maxNewTokens]').fill('16');
  await page.locator('#compare-run').click();
  await expect(page.locator('#out-before')).toHaveAttribute('data-state', 'done', { timeout: 300_000 });
  await expect(page.locator('#out-after')).toHaveAttribute('data-state', 'done', { timeout: 300_000 });
  await page.locator('#compare-section').screenshot({ path: `${shots}/compare.png` });
  await page.screenshot({ path: `${shots}/page.png`, fullPage: true });

  expect(problems).toEqual([]);
});

test('the page and Node on wasm CPU give the same first five DPO losses', async ({ page }) => {
  const problems = watchProblems(page);
  await pageMatchesNode(page, expectedBackend);
  expect(problems).toEqual([]);
});

test('models load from a file and from a URL (cached after a reload); pairs load from a file', async ({ page, baseURL }) => {
  const problems = watchProblems(page);
  await page.goto('./');
  await expect(page.locator('#backend')).toHaveAttribute('data-backend', expectedBackend, { timeout: 180_000 });
  const status = page.locator('#model-status');
  const error = page.locator('#error');

  // a file that is not GGUF: a clear error, no crash
  await page.locator('#model-file').setInputFiles({ name: 'notes.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('hello, not a model') });
  await expect(error).toBeVisible();
  await expect(error).toContainText('notes.gguf is not a GGUF file');
  await expect(page.locator('#load-demo')).toBeEnabled();

  // the demo file, picked as a file
  const tiny = await (await page.request.get('tiny.gguf')).body();
  await page.locator('#model-file').setInputFiles({ name: 'tiny.gguf', mimeType: 'application/octet-stream', buffer: tiny });
  await expect(status).toHaveAttribute('data-loaded', 'true', { timeout: 180_000 });
  await expect(status).toHaveText('loaded: tiny.gguf');
  await expect(error).toBeHidden();

  // by URL: downloaded once, then answered by the Cache API after a reload
  const url = new URL('tiny.gguf?by-url', baseURL).href;
  await page.locator('#model-url').fill(url);
  await page.locator('#model-url-form button[type=submit]').click();
  await expect(status).toHaveText(`loaded: ${url}`, { timeout: 180_000 }); // loaded (and so stored) before the reload
  await expect(status).toHaveAttribute('data-from-cache', 'false');
  await page.reload();
  await expect(page.locator('#backend')).toHaveAttribute('data-backend', expectedBackend, { timeout: 180_000 });
  await page.locator('#model-url').fill(url);
  await page.locator('#model-url-form button[type=submit]').click();
  await expect(status).toHaveAttribute('data-from-cache', 'true', { timeout: 180_000 });
  await expect(status).toContainText('from the browser cache');

  // pairs from a file: the first bad line is named with the file's name
  const bad = truthfulqaJsonl(2) + '{"prompt": "Q", "chosen": "A"}\n';
  await page.locator('#pairs-file').setInputFiles({ name: 'mine.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(bad) });
  await expect(page.locator('#pairs-status')).toHaveText('mine.jsonl:3: missing field rejected');
  await page.locator('#load-sample').click();
  await expect(page.locator('#pairs-status')).toHaveText('16 pairs');
  await page.screenshot({ path: `${shots}/loading.png`, fullPage: true });

  expect(problems).toEqual([]);
});

test('?backend=cpu is honoured where WebGPU exists; a reward model trains there', async ({ page }) => {
  const problems = watchProblems(page);
  await openWithModel(page, '?backend=cpu', 'cpu');
  await expect(page.locator('#backend')).toHaveText('CPU (wasm)');
  await page.locator('#load-sample').click();
  await expect(page.locator('#pairs-status')).toHaveText('16 pairs');
  const train = page.locator('#train-form');
  await train.locator('[name=objective]').selectOption('reward');
  await expect(train.locator('[name=beta]')).toBeHidden();
  await train.locator('[name=maxSteps]').fill('4');
  await page.locator('#train-start').click();
  await expect(page.locator('#train-status')).toHaveAttribute('data-state', 'finished', { timeout: 300_000 });
  await expect(page.locator('#chart')).toHaveAttribute('data-points', '4');
  await expect(page.locator('#metrics-table thead')).toContainText('accuracy');
  await expect(page.locator('#metrics-table tbody tr')).toHaveCount(4);
  const accuracy = Number(await page.locator('#metrics-table tbody tr').last().locator('td[data-key="accuracy"]').getAttribute('data-value'));
  expect(accuracy).toBeGreaterThanOrEqual(0);
  expect(accuracy).toBeLessThanOrEqual(1);
  // a reward model has no policy to generate with: the page says so in the "after" pane
  await page.locator('#compare-form [name=maxNewTokens]').fill('4');
  await page.locator('#compare-run').click();
  await expect(page.locator('#out-before')).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  await expect(page.locator('#out-after')).toHaveAttribute('data-state', 'error');
  await expect(page.locator('#out-after')).toContainText('no policy');
  await page.screenshot({ path: `${shots}/reward-model-cpu.png`, fullPage: true });
  expect(problems).toEqual([]);
});
