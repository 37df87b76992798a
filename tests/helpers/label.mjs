// Steps of the Label view's Playwright tests: open the view, make a project, add candidates, read IndexedDB
// directly (what is on disk, not what the page says), and run downloads into memory.
import { readFile } from 'node:fs/promises';
import { expect } from '@playwright/test';

/** The pairwise key → [side shown (0 = A, left) or null, strength 1..3] of web/src/label/tasks.js. */
export const PAIR_KEYS = { 1: [0, 3], 2: [0, 2], 3: [0, 1], 4: [null, null], 5: [1, 1], 6: [1, 2], 7: [1, 3], 0: [null, null] };
/** The keys that record no preference (tie, both bad). */
export const NO_PREFERENCE_KEYS = ['4', '0'];

/** The label value a pairwise key must have produced for a label shown in `order`. */
export function expectedPairValue(key, order) {
  const [side, strength] = PAIR_KEYS[key];
  return { winner: side === null ? null : order[side], strength, both_bad: key === '0' };
}

/** `n` pairwise candidate lines. */
export function pairsJsonl(n, make = (i) => ({ prompt: `Question ${i}?`, chosen: `good answer ${i}`, rejected: `bad answer ${i}` })) {
  return Array.from({ length: n }, (_, i) => JSON.stringify(make(i)) + '\n').join('');
}

export async function openLabel(page) {
  await page.goto('./#label');
  await expect(page.locator('#label-view')).toHaveAttribute('data-ready', 'true', { timeout: 30_000 });
}

/** A new project with the given setup (no property tags unless `tags` names some); it becomes the selected one. */
export async function createProject(page, { name, task = 'pairwise', attributes, guidelines = '', tags = '' }) {
  const before = await page.locator('.project-card').count();
  await page.locator('#project-new').click();
  await expect(page.locator('.project-card')).toHaveCount(before + 1);
  const form = page.locator('#project-form');
  await form.locator('[name=name]').fill(name);
  await form.locator('[name=task]').selectOption(task);
  if (attributes) await form.locator('[name=attributes]').fill(attributes);
  await form.locator('[name=guidelines]').fill(guidelines);
  await form.locator('[name=tags]').fill(tags);
  await form.locator('button[type=submit]').click();
  await expect(page.locator('.project-card[aria-selected=true] strong')).toHaveText(name);
}

/** Adds candidates through the file input (as a person would load a .jsonl) and waits until they are stored. */
export async function addCandidates(page, jsonl, name = 'candidates.jsonl') {
  await page.locator('#candidates-file').setInputFiles({ name, mimeType: 'application/jsonl', buffer: Buffer.from(jsonl) });
  await expect(page.locator('#candidates-status')).toHaveAttribute('data-file', name);
  await page.locator('#candidates-add').click();
  await expect(page.locator('#candidates-status')).toHaveText(/^added /, { timeout: 120_000 });
}

/** Every label in the page's IndexedDB, read straight from the store. */
export function storedLabels(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('alignlab-label');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const get = open.result.transaction('labels').objectStore('labels').getAll();
          get.onsuccess = () => {
            open.result.close();
            resolve(get.result);
          };
          get.onerror = () => reject(get.error);
        };
      }),
  );
}

/** Clicks `button` and gives back the downloaded file's name and text. */
export async function downloadText(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator(button).click()]);
  return { name: download.suggestedFilename(), text: await readFile(await download.path(), 'utf8') };
}

export const jsonLines = (text) => text.split('\n').filter(Boolean).map((line) => JSON.parse(line));

/** Waits until the progress line says `labelled` labelled items (and `skipped` skipped ones). */
export async function expectProgress(page, labelled, skipped = 0, timeout = 30_000) {
  const progress = page.locator('#progress');
  await expect(progress).toHaveAttribute('data-labelled', String(labelled), { timeout });
  await expect(progress).toHaveAttribute('data-skipped', String(skipped), { timeout });
}

/**
 * Sends `keys` (single characters) through Chromium's input pipeline as fast as it takes them, without waiting
 * for the page between keys (Playwright's keyboard.press waits for each key's round trip, ~60 ms here).
 */
export async function rapidKeys(page, keys) {
  const cdp = await page.context().newCDPSession(page);
  const sent = keys.flatMap((key) => [
    cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key, text: key, windowsVirtualKeyCode: key.toUpperCase().charCodeAt(0) }),
    cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key, windowsVirtualKeyCode: key.toUpperCase().charCodeAt(0) }),
  ]);
  await Promise.all(sent);
  await cdp.detach();
}

/**
 * Milliseconds from each keydown to the next item on screen (#item's data-index changing), for `keys` pressed one
 * at a time, each after the previous item showed.
 */
export async function keyToNextItem(page, keys) {
  await page.evaluate(() => {
    const item = document.getElementById('item');
    window.__keyTimes = [];
    let down = 0;
    document.addEventListener('keydown', () => (down = performance.now()), true);
    new MutationObserver(() => window.__keyTimes.push(performance.now() - down)).observe(item, { attributes: true, attributeFilter: ['data-index'] });
  });
  for (const [i, key] of keys.entries()) {
    await page.keyboard.press(key);
    await expect.poll(() => page.evaluate(() => window.__keyTimes.length)).toBe(i + 1);
  }
  const times = (await page.evaluate(() => window.__keyTimes)).sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { median: at(0.5), p95: at(0.95), max: times.at(-1) };
}
