// A model by name in the page: `hf://test/tiny-llama` typed into the model field downloads the folder's files from
// the hub with progress shown, and after a reload loads again from the Cache API without one request reaching the
// server. The hub is tests/helpers/hub-server.mjs; the page asks https://huggingface.co (its default endpoint, which
// the Content-Security-Policy allows), and Playwright hands those requests to the local server, which counts them.
import { test, expect } from '@playwright/test';
import path from 'node:path';
import { expectedBackend, watchProblems } from '../helpers/page.mjs';
import { repoRoot } from '../helpers/paths.mjs';
import { startHub } from '../helpers/hub-server.mjs';

/** A sharded checkpoint written by transformers (crates/alignlab-core/tests/fixtures/make_fixtures.py). */
const FOLDER = path.join(repoRoot, 'crates/alignlab-core/tests/fixtures/hf-tiny-llama-untied');
const WEIGHTS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
const NAME = 'hf://test/tiny-llama';
let hub;

test.beforeAll(async () => {
  hub = await startHub({ 'test/tiny-llama': FOLDER });
});
test.afterAll(() => hub?.close());

/** Opens the page, loads NAME through the model field and returns the status texts shown while it loaded. */
async function loadByName(page) {
  await page.goto('./');
  await expect(page.locator('#backend')).toHaveAttribute('data-backend', expectedBackend, { timeout: 180_000 });
  // every status text and progress bar state while loading, recorded in the page so that none is missed
  await page.evaluate(() => {
    window.seen = [];
    const status = document.querySelector('#model-status');
    const bar = document.querySelector('#model-progress');
    new MutationObserver(() => {
      window.seen.push({ text: status.textContent, bar: bar.hidden ? null : [bar.value, bar.max] });
    }).observe(status, { childList: true, characterData: true, subtree: true });
  });
  await page.locator('#model-url').fill(NAME);
  await page.locator('#model-url-form button[type=submit]').click();
  const status = page.locator('#model-status');
  await expect(status).toHaveAttribute('data-loaded', 'true', { timeout: 180_000 });
  await expect(page.locator('#model-info dd[data-key="layers"]')).toHaveText('2');
  return page.evaluate(() => window.seen);
}

test('hf:// names load from the hub with progress, and from the Cache API after a reload', async ({ page }) => {
  const problems = watchProblems(page);
  const routed = [];
  // dedicated workers' requests go through the context's routes
  await page.context().route('https://huggingface.co/**', async (route) => {
    const url = new URL(route.request().url());
    routed.push(url.pathname);
    const response = await route.fetch({ url: hub.endpoint + url.pathname });
    await route.fulfill({ response });
  });

  const first = await loadByName(page);
  const status = page.locator('#model-status');
  await expect(status).toHaveText(`loaded: ${NAME}`);
  await expect(status).toHaveAttribute('data-from-cache', 'false');
  const files = hub.requests.map((r) => `${r.file} ${r.status}`);
  // the folder's files, each once; the optional ones it lacks are asked for and remembered as missing
  expect(files).toEqual([
    'config.json 200',
    'tokenizer.json 200',
    'tokenizer_config.json 200',
    'chat_template.jinja 200',
    'model.safetensors.index.json 200',
    ...WEIGHTS.map((w) => `${w} 200`),
  ]);
  expect(hub.requests.every((r) => r.repo === 'test/tiny-llama' && r.revision === 'main')).toBe(true);
  // progress: the weights' downloads were shown, named, with the bar at their byte counts
  for (const weights of WEIGHTS) {
    const shown = first.filter((s) => s.text.startsWith('downloading: ') && s.text.endsWith(`(${weights})`));
    expect(shown.length, `progress of ${weights}: ${JSON.stringify(first)}`).toBeGreaterThan(0);
    expect(shown.some((s) => s.bar && s.bar[1] > 0 && s.bar[0] === s.bar[1])).toBe(true);
  }

  // after a reload: the same name loads from the Cache API, and no request reaches the server
  const before = hub.requests.length;
  const routedBefore = routed.length;
  await page.reload();
  const second = await loadByName(page);
  await expect(status).toHaveText(`loaded: ${NAME} (from the browser cache)`);
  await expect(status).toHaveAttribute('data-from-cache', 'true');
  expect(hub.requests.slice(before)).toEqual([]);
  expect(routed.slice(routedBefore)).toEqual([]);
  expect(second.some((s) => s.text.startsWith('from cache: ') && s.text.endsWith(`(${WEIGHTS[1]})`))).toBe(true);
  expect(second.some((s) => s.text.startsWith('downloading: '))).toBe(false);

  expect(problems).toEqual([]);
});
