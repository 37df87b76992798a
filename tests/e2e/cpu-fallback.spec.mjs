// The page in a Chromium without a WebGPU adapter (no --enable-unsafe-webgpu: navigator.gpu exists but
// requestAdapter() gives null): it must fall back to the wasm CPU backend, say so, and train the same numbers.
import { test, expect } from '@playwright/test';
import { pageMatchesNode, shots, watchProblems } from '../helpers/page.mjs';

test.use({
  launchOptions: {
    executablePath: process.env.ALIGNLAB_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--disable-quic', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  },
});

test('without a WebGPU adapter the page falls back to the CPU, says so, and trains the same', async ({ page }) => {
  const problems = watchProblems(page);
  await pageMatchesNode(page, 'cpu');
  await expect(page.locator('#backend')).toHaveText('CPU (wasm; no WebGPU adapter)');
  await expect(page.locator('#model-info dd[data-key="backend"]')).toHaveText('cpu');
  await page.screenshot({ path: `${shots}/cpu-fallback.png` });
  expect(problems).toEqual([]);
});
