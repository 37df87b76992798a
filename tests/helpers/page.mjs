// Shared steps of the Playwright tests.
import { expect } from '@playwright/test';
import { tinyDpoIn } from './run-node.mjs';
import { TINY_DPO, TINY_DPO_PAIRS, tinyDpoData } from './tiny-dpo.mjs';

export const LN2 = Math.log(2);
export const shots = 'test-results/screenshots';
/** The backend the page must report in the WebGPU-enabled browser (ALIGNLAB_E2E_BACKEND=cpu to run without). */
export const expectedBackend = process.env.ALIGNLAB_E2E_BACKEND ?? 'webgpu';

/** Console errors, uncaught errors and CSP violations of a page, to assert there were none. */
export function watchProblems(page) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  return problems;
}

export async function openWithModel(page, query = '', backend = expectedBackend) {
  await page.goto(`./${query}`);
  const badge = page.locator('#backend');
  await expect(badge).not.toHaveAttribute('data-backend', '', { timeout: 180_000 });
  await expect(badge).toHaveAttribute('data-backend', backend);
  await page.locator('#load-demo').click();
  await expect(page.locator('#model-status')).toHaveAttribute('data-loaded', 'true', { timeout: 180_000 });
}

/** The tiny DPO run in the page (through the worker, as the page trains) next to the same run in Node. */
export async function pageMatchesNode(page, backend) {
  const node = tinyDpoIn('cpu'); // in parallel with the page's run
  await openWithModel(page, '?test-hooks', backend);
  await expect(page.locator('html')).toHaveAttribute('data-test-hooks', 'ready');
  const data = tinyDpoData();
  const pageMetrics = await page.evaluate(([config, jsonl]) => window.alignlabTest.train(config, jsonl), [TINY_DPO, data]);
  const nodeMetrics = (await node).metrics;
  const losses = (ms) => ms.map((m) => m.loss);
  console.log(`page (${backend}) losses:`, losses(pageMetrics));
  console.log('node (cpu) losses:', losses(nodeMetrics));
  expect(pageMetrics).toHaveLength(5);
  expect(nodeMetrics).toHaveLength(5);
  expect(Math.abs(pageMetrics[0].loss - LN2)).toBeLessThan(1e-4);
  for (let i = 0; i < 5; i++) {
    expect(Math.abs(pageMetrics[i].loss - nodeMetrics[i].loss), `loss at step ${i + 1}`).toBeLessThan(1e-4);
  }
  expect(TINY_DPO_PAIRS).toBeGreaterThanOrEqual(TINY_DPO.batchSize * TINY_DPO.maxSteps);
}

