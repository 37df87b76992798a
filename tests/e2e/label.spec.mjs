// The Label view in real Chromium, without a model: keyboard labelling that loses nothing across reloads and
// browser restarts, byte-identical project export/import, merging annotators, every task type's export, hostile
// text, light/dark screenshots, and a 100k-item project (times printed, not asserted).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, expect, chromium } from '@playwright/test';
import * as alignlab from 'alignlab';
import config from '../../playwright.config.mjs';
import { shots, watchProblems } from '../helpers/page.mjs';
import {
  addCandidates,
  createProject,
  downloadText,
  expectedPairValue,
  expectProgress,
  jsonLines,
  openLabel,
  keyToNextItem,
  NO_PREFERENCE_KEYS,
  PAIR_KEYS,
  pairsJsonl,
  rapidKeys,
  storedLabels,
} from '../helpers/label.mjs';

test.setTimeout(180_000);

/** A browser with a profile on disk that outlives it (a person closing and reopening Chromium). */
function launchProfile(dir) {
  const { launchOptions, baseURL, viewport } = config.use;
  return chromium.launchPersistentContext(dir, { ...launchOptions, headless: true, baseURL, viewport, acceptDownloads: true });
}

async function withProfiles(fn) {
  const dirs = [];
  const profile = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'alignlab-profile-'));
    dirs.push(dir);
    return dir;
  };
  try {
    await fn(profile);
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** Presses `keys` one after another (each dispatched, not each handled: the page queues them). */
async function press(page, keys) {
  for (const key of keys) await page.keyboard.press(key);
}

test('pairwise labels by keyboard survive a reload and a browser restart; a project exports and imports byte-identically; annotators merge', async () => {
  await withProfiles(async (profile) => {
    const dir = await profile();
    let context = await launchProfile(dir);
    let page = context.pages()[0] ?? (await context.newPage());
    const problems = watchProblems(page);
    await openLabel(page);
    await createProject(page, { name: 'Pairs', guidelines: '# Pick the better answer\n\nPrefer **correct** answers.' });
    await addCandidates(page, pairsJsonl(20));
    await expect(page.locator('#progress')).toHaveText('0 / 20 labelled');
    await expect(page.locator('#guidelines-body h3')).toHaveText('Pick the better answer');

    // ten items by keyboard, with an undo in the middle (the undone item is labelled again)
    const first = ['1', '2', '3', '4', '5', '6', '7', '0'];
    await press(page, first);
    await press(page, ['z', '5', '1', '2']);
    const keysOf = [...first.slice(0, 7), '5', '1', '2']; // what each of items 0..9 ends up with
    await expectProgress(page, 10);

    await page.reload();
    await expect(page.locator('#label-view')).toHaveAttribute('data-ready', 'true');
    await expectProgress(page, 10);
    await expect(page.locator('#item')).toHaveAttribute('data-index', '10'); // the first unlabelled one

    // ten more, the last one skipped, one with a written justification
    await page.keyboard.press('j');
    await expect(page.locator('#justification')).toBeFocused();
    await page.keyboard.type('B explains why');
    await page.keyboard.press('Escape');
    const second = ['7', '6', '5', '4', '3', '2', '1', '0', '3'];
    await press(page, [...second, 's']);
    keysOf.push(...second);
    await expectProgress(page, 19, 1);
    await expect(page.locator('#label-message')).toContainText('last item');
    expect(problems).toEqual([]);
    await context.close();

    // the browser closed and opened again on the same profile
    context = await launchProfile(dir);
    page = context.pages()[0] ?? (await context.newPage());
    await openLabel(page);
    await expectProgress(page, 19, 1);
    const labels = (await storedLabels(page)).sort((a, b) => a.item - b.item);
    expect(labels).toHaveLength(20);
    labels.slice(0, 19).forEach((label, i) => {
      expect(label.annotator).toBe('annotator-1');
      expect(label.value, `item ${i} (key ${keysOf[i]})`).toEqual(expectedPairValue(keysOf[i], label.order));
    });
    expect(labels[19].value).toEqual({ skip: true });
    expect(labels[10].justification).toBe('B explains why');

    // labels as TRL pairs: A/B back in the item's order, ties and "both bad" left out unless asked for
    const pairs = jsonLines((await downloadText(page, '#export-labels')).text);
    const decided = keysOf.filter((k) => !NO_PREFERENCE_KEYS.includes(k)).length;
    expect(pairs).toHaveLength(decided);
    for (const p of pairs) {
      const i = Number(p.prompt.match(/\d+/)[0]);
      expect(p.chosen).toBe(labels[i].value.winner === 0 ? `good answer ${i}` : `bad answer ${i}`);
      expect(p.swapped).toBe(labels[i].order.indexOf(labels[i].value.winner) === 1);
      expect(p.strength).toBe(PAIR_KEYS[keysOf[i]][1]); // DESIGN.md §3: 1..3
    }
    await page.locator('#export-ties').check();
    const withTies = jsonLines((await downloadText(page, '#export-labels')).text);
    expect(withTies).toHaveLength(19);
    expect(withTies.filter((p) => p.tie)).toHaveLength(19 - decided);

    const exported = await downloadText(page, '#export-project');
    expect(exported.name).toBe('pairs.alignlab.json');

    // a fresh profile imports it and exports the same bytes; there "bob" labels three items
    const fresh = await launchProfile(await profile());
    const other = fresh.pages()[0] ?? (await fresh.newPage());
    await openLabel(other);
    await other.locator('#project-import').setInputFiles({ name: exported.name, mimeType: 'application/json', buffer: Buffer.from(exported.text) });
    await expect(other.locator('#projects-status')).toHaveText(/imported Pairs \(20 items, 20 labels\)/);
    const again = await downloadText(other, '#export-project');
    expect(again.text === exported.text, 'export → import → export is byte-identical').toBe(true);
    await other.locator('#annotator').fill('bob');
    await other.locator('#annotator').press('Enter');
    await other.locator('#annotator').blur();
    await expectProgress(other, 0);
    await press(other, ['2', '3', '4']);
    await expectProgress(other, 3);
    const bobs = await downloadText(other, '#export-project');
    await fresh.close();

    // back in the first browser, bob's export merges in beside annotator-1's labels
    await page.locator('#project-import').setInputFiles({ name: 'bob.json', mimeType: 'application/json', buffer: Buffer.from(bobs.text) });
    await expect(page.locator('#projects-status')).toHaveText('bob.json: merged 3 labels');
    await expect(page.locator('#annotators')).toHaveText('Labels by annotator: annotator-1 20, bob 3');
    await page.locator('#item-list [data-index="0"]').click();
    await expect(page.locator('#others')).toContainText('bob:');
    // agreement is the core's: computed by it where the package has it, otherwise the page says it is missing
    await page.locator('#agreement-run').click();
    await expect(page.locator('#agreement-out')).toHaveText(
      typeof alignlab.agreement === 'function'
        ? /^preference: Krippendorff α \(ordinal\) -?\d\.\d{3}, Fleiss κ .* — 19 items, 2 annotators, \d+ unanimous$/
        : "agreement needs the core's eval module",
    );
    await context.close();
  });
});

test('labels stored by the page of the two-step scale are upgraded once to strength 1..3 when the page opens', async ({ page }) => {
  // the database as the first page left it (version 1): a pairwise and a thumbs project, one label each
  await page.goto('./truthfulqa-sample.jsonl'); // any document of the page's origin that does not open the database
  await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('alignlab-label', 1);
        open.onupgradeneeded = () => {
          const db = open.result;
          db.createObjectStore('projects', { keyPath: 'id' });
          db.createObjectStore('items', { keyPath: ['project', 'page'] });
          db.createObjectStore('labels', { keyPath: ['project', 'annotator', 'item'] }).createIndex('byItem', ['project', 'item']);
        };
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const tx = db.transaction(['projects', 'items', 'labels'], 'readwrite');
          const project = (id, task) => ({ id, name: id, guidelines: '', task, attributes: [], seed: 1, created: `2025-01-0${id.length}`, itemCount: 2 });
          tx.objectStore('projects').put(project('old', 'pairwise'));
          tx.objectStore('projects').put(project('thumb', 'thumbs'));
          for (const id of ['old', 'thumb']) tx.objectStore('items').put({ project: id, page: 0, items: [{ prompt: 'p', responses: ['a', 'b'] }, { prompt: 'q', responses: ['c', 'd'] }] });
          const label = (p, item, value) => ({ project: p, annotator: 'annotator-1', item, value, order: [0, 1], ts: '2025-01-01T00:00:00.000Z', ms: 1 });
          tx.objectStore('labels').put(label('old', 0, { winner: 1, strength: 2, both_bad: false }));
          tx.objectStore('labels').put(label('old', 1, { winner: 0, strength: 1, both_bad: false }));
          tx.objectStore('labels').put(label('thumb', 0, { label: true }));
          tx.oncomplete = () => {
            db.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
  );
  await openLabel(page);
  await expectProgress(page, 2);
  await expect(page.locator('#item-list [data-index="0"] .value')).toHaveText('B much better');
  await expect(page.locator('#item-list [data-index="1"] .value')).toHaveText('A better');
  const labels = (await storedLabels(page)).sort((a, b) => a.project.localeCompare(b.project) || a.item - b.item);
  expect(labels.map((l) => l.value)).toEqual([
    { winner: 1, strength: 3, both_bad: false },
    { winner: 0, strength: 2, both_bad: false },
    { label: true },
  ]);
  // opened again, nothing moves a second step
  await page.reload();
  await openLabel(page);
  expect((await storedLabels(page)).find((l) => l.project === 'old' && l.item === 0).value.strength).toBe(3);
});

test('1000 rapid keypresses lose no label: IndexedDB holds one label per key, each the key pressed', async ({ page }) => {
  await openLabel(page);
  await createProject(page, { name: 'Rapid' });
  await addCandidates(page, pairsJsonl(1000));
  const cycle = ['1', '2', '3', '4', '5', '6', '7', '0'];
  const keys = Array.from({ length: 1000 }, (_, i) => cycle[i % cycle.length]);
  const started = Date.now();
  await rapidKeys(page, keys);
  const dispatched = Date.now() - started;
  await expectProgress(page, 1000, 0, 120_000);
  console.log(`1000 keypresses: sent in ${dispatched} ms, every label on disk after ${Date.now() - started} ms`);
  const labels = (await storedLabels(page)).sort((a, b) => a.item - b.item);
  expect(labels).toHaveLength(1000);
  labels.forEach((label, i) => expect(label.value, `item ${i}`).toEqual(expectedPairValue(keys[i], label.order)));
});

test('a listwise ranking with a tie group, end to end to its exported JSONL', async ({ page }) => {
  const problems = watchProblems(page);
  await openLabel(page);
  await createProject(page, { name: 'Rank', task: 'listwise', guidelines: 'Rank best first; tie what is equal.' });
  await addCandidates(page, [
    JSON.stringify({ prompt: 'Name a prime.', completions: ['2', '4', '9'] }),
    JSON.stringify({ prompt: 'Name a colour.', responses: ['red', 'blue', 'car', 'seven'] }),
    JSON.stringify({ prompt: 'Say hi.', chosen: 'hi', rejected: 'bye' }),
  ].join('\n'));
  // item 1: the second shown moves to the top; item 2: the third shown ties with the second; item 3: as shown
  await press(page, ['ArrowDown', 'Shift+ArrowUp', 'Enter']);
  await press(page, ['ArrowDown', 'ArrowDown', 't', 'Enter']);
  await press(page, ['Enter']);
  await expectProgress(page, 3);
  await page.locator('#item-list [data-index="1"]').click();
  await page.screenshot({ path: `${shots}/label-listwise-light.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${shots}/label-listwise-dark.png`, fullPage: true });

  const labels = (await storedLabels(page)).sort((a, b) => a.item - b.item);
  const [o0, o1, o2] = labels.map((l) => l.order);
  expect(labels.map((l) => l.value.ranking)).toEqual([
    [[o0[1]], [o0[0]], [o0[2]]],
    [[o1[0]], [o1[1], o1[2]], [o1[3]]],
    [[o2[0]], [o2[1]]],
  ]);
  const lines = jsonLines((await downloadText(page, '#export-labels')).text);
  expect(lines[0]).toEqual({ prompt: 'Name a prime.', responses: ['2', '4', '9'], ranking: [o0[1], o0[0], o0[2]], scores: scoresOf(labels[0]), annotator: 'annotator-1' });
  expect(lines[1].ranking).toEqual([o1[0], o1[1], o1[2], o1[3]]);
  expect(lines[1].scores[o1[1]]).toBe(lines[1].scores[o1[2]]); // the tie
  expect(lines[2]).toMatchObject({ prompt: 'Say hi.', responses: ['hi', 'bye'], ranking: o2 });

  // train from labels: every ordered pair of the rankings lands in the training view's JSONL
  await page.locator('#train-from-labels').click();
  await expect(page.locator('#train-view')).toBeVisible();
  await expect(page.locator('#pairs-status')).toHaveAttribute('data-count', String(3 + 5 + 1));
  expect(problems).toEqual([]);
});

test('a listwise ranking by dragging cards (above, tied, below), saved like a keyboard ranking', async ({ page }) => {
  const problems = watchProblems(page);
  await openLabel(page);
  await createProject(page, { name: 'Drag', task: 'listwise' });
  await addCandidates(page, [
    JSON.stringify({ prompt: 'Order these.', completions: ['one', 'two', 'three', 'four'] }),
    JSON.stringify({ prompt: 'And these.', completions: ['x', 'y', 'z'] }),
  ].join('\n'));
  const card = (row) => page.locator(`#item .ranking .response[data-rank="${row}"]`);
  /** Drags the card at row `from` onto row `to`'s upper third, middle or lower third. */
  const drag = async (from, to, where) => {
    const box = await card(to).boundingBox();
    const y = { before: 3, tie: box.height / 2, after: box.height - 3 }[where];
    await card(from).dragTo(card(to), { targetPosition: { x: box.width / 2, y } });
  };
  const shown = async () => (await page.locator('#item .ranking .response .caption').allTextContents()).map((t) => t.trim());
  // rows A B C D (display order): D above A, then C tied with A, then A's group below B
  await drag(3, 0, 'before');
  expect(await shown()).toEqual(['#1 · D', '#2 · A', '#3 · B', '#4 · C']);
  await drag(3, 1, 'tie');
  expect(await shown()).toEqual(['#1 · D', '#2 · A', '= #2 · C', '#3 · B']);
  await drag(0, 3, 'after');
  expect(await shown()).toEqual(['#1 · A', '= #1 · C', '#2 · B', '#3 · D']);
  await page.screenshot({ path: `${shots}/label-listwise-drag-light.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${shots}/label-listwise-drag-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.keyboard.press('Enter');
  await expect(page.locator('#item')).toHaveAttribute('data-index', '1');
  // the second item: a drag, then the keyboard on the same draft
  await drag(2, 0, 'tie');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Shift+ArrowUp');
  await page.keyboard.press('Enter');
  await expectProgress(page, 2);

  const labels = (await storedLabels(page)).sort((a, b) => a.item - b.item);
  const [o0, o1] = labels.map((l) => l.order);
  expect(labels[0].value).toEqual({ ranking: [[o0[0], o0[2]], [o0[1]], [o0[3]]] });
  // item 2: C tied with A, then B moved up a row, out of the group: A > B > C
  expect(labels[1].value).toEqual({ ranking: [[o1[0]], [o1[1]], [o1[2]]] });
  // reopened, the first item's cards show the saved ranking with its tie
  await page.locator('#item-list [data-index="0"]').click();
  expect(await shown()).toEqual(['#1 · A', '= #1 · C', '#2 · B', '#3 · D']);
  expect(problems).toEqual([]);
});

test('property tags by key and click and a written justification are saved, exported and round-trip through a project file', async ({ page, browser }) => {
  const problems = watchProblems(page);
  await openLabel(page);
  await createProject(page, { name: 'Tags', tags: 'hallucination, unsafe, off-topic' });
  await addCandidates(page, pairsJsonl(3));
  const tag = (name) => page.locator(`#tags .tag[data-tag="${name}"]`);
  await expect(tag('hallucination')).toHaveText('Q hallucination');
  await expect(tag('off-topic')).toHaveText('E off-topic');
  // item 1: Q (hallucination) and E (off-topic), E again (off), then "A better"
  await press(page, ['q', 'e', 'e']);
  await expect(tag('hallucination')).toHaveAttribute('aria-pressed', 'true');
  await expect(tag('off-topic')).toHaveAttribute('aria-pressed', 'false');
  await page.screenshot({ path: `${shots}/label-tags-light.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${shots}/label-tags-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await press(page, ['2']);
  await expect(page.locator('#item')).toHaveAttribute('data-index', '1');
  await expect(tag('hallucination')).toHaveAttribute('aria-pressed', 'false'); // a new item starts untagged
  // item 2: a click on "unsafe", a justification with quotes, a newline and markup, then "both bad"
  await tag('unsafe').click();
  await page.keyboard.press('j');
  await expect(page.locator('#justification')).toBeFocused();
  await page.keyboard.type('both invent a "law" <b>');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('and are rude');
  await page.keyboard.press('Escape');
  await press(page, ['0', '4']);
  await expectProgress(page, 3);
  const labels = (await storedLabels(page)).sort((a, b) => a.item - b.item);
  expect(labels.map((l) => l.tags)).toEqual([['hallucination'], ['unsafe'], undefined]);
  expect(labels[1].justification).toBe('both invent a "law" <b>\nand are rude');
  // going back shows the saved tags
  await page.locator('#item-list [data-index="0"]').click();
  await expect(tag('hallucination')).toHaveAttribute('aria-pressed', 'true');

  await page.locator('#export-ties').check();
  const lines = jsonLines((await downloadText(page, '#export-labels')).text);
  expect(lines.map((l) => l.properties)).toEqual([
    { hallucination: true, unsafe: false, 'off-topic': false },
    { hallucination: false, unsafe: true, 'off-topic': false },
    { hallucination: false, unsafe: false, 'off-topic': false },
  ]);
  expect(lines[1]).toMatchObject({ tie: true, both_bad: true, justification: 'both invent a "law" <b>\nand are rude' });

  // a fresh profile imports the project: same tags, same justification, same bytes out
  const exported = await downloadText(page, '#export-project');
  const fresh = await browser.newContext({ baseURL: config.use.baseURL, viewport: config.use.viewport, acceptDownloads: true });
  const other = await fresh.newPage();
  await openLabel(other);
  await other.locator('#project-import').setInputFiles({ name: exported.name, mimeType: 'application/json', buffer: Buffer.from(exported.text) });
  await expect(other.locator('#projects-status')).toHaveText(/imported Tags \(3 items, 3 labels\)/);
  await expect(other.locator('#project-form [name=tags]')).toHaveValue('hallucination, unsafe, off-topic');
  expect((await downloadText(other, '#export-project')).text === exported.text).toBe(true);
  const imported = (await storedLabels(other)).sort((a, b) => a.item - b.item);
  expect(imported.map((l) => [l.tags, l.justification])).toEqual(labels.map((l) => [l.tags, l.justification]));
  await fresh.close();
  expect(problems).toEqual([]);
});

test('candidates generated by the loaded model, n per prompt with progress, become a listwise project; Cancel keeps what was done', async ({ page }) => {
  const problems = watchProblems(page);
  await page.goto('./?backend=cpu#label');
  await expect(page.locator('#label-view')).toHaveAttribute('data-ready', 'true', { timeout: 30_000 });
  await expect(page.locator('#backend')).toHaveAttribute('data-backend', 'cpu', { timeout: 180_000 });
  // without a model: said, nothing added
  await createProject(page, { name: 'Generated', task: 'listwise' });
  const status = page.locator('#generate-status');
  await page.locator('#candidates-text').fill('{"prompt": "Name a colour."}');
  await page.locator('#generate-run').click();
  await expect(page.locator('#label-error')).toHaveText('load a model first (in the Train view)');
  await expect(status).toHaveText('nothing generated');
  await page.locator('#tab-train').click();
  await page.locator('#load-demo').click();
  await expect(page.locator('#model-status')).toHaveAttribute('data-loaded', 'true', { timeout: 180_000 });
  await page.locator('#tab-label').click();

  const prompts = ['Name a colour.', 'Say hi.', 'Count to three.'];
  await page.locator('#candidates-text').fill(prompts.map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n{"prompt": "Rank these.", "completions": ["ignored"]}');
  const form = page.locator('#generate-form');
  await form.locator('[name=n]').fill('3');
  await form.locator('[name=maxNewTokens]').fill('5');
  await page.locator('#generate-run').click();
  await expect(status).toHaveText(/^added 4 items in \d+\.\d s/, { timeout: 180_000 });
  await expect(page.locator('#progress')).toHaveText('0 / 4 labelled');
  const cards = page.locator('#item .ranking .response');
  await expect(cards).toHaveCount(3);
  await expect(page.locator('#item .prompt')).toContainText('Name a colour.');
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: `${shots}/label-generated-${scheme}.png`, fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
  // the items are what the model wrote: the same completions as the package gives in Node for these prompts
  await alignlab.init({ backend: 'cpu' });
  const model = alignlab.Model.fromGguf(alignlab.tinyGguf(0));
  const sampled = !(await status.textContent()).includes('greedy');
  const shown = new Set(await cards.evaluateAll((els) => els.map((e) => e.querySelector('.caption').nextSibling?.textContent ?? '')));
  // the first prompt's candidates, in any display order: a seeded batch of 3 (seed 0 for the first prompt), or
  // greedy decoding three times where this build of the package does not sample
  const expected = sampled
    ? await model.generate('Name a colour.', { n: 3, maxNewTokens: 5, temperature: 0.8, topP: 0.95, seed: 0, chatTemplate: false })
    : [await model.generate('Name a colour.', { maxNewTokens: 5 })];
  expect(shown).toEqual(new Set(expected));
  console.log(`candidates ${sampled ? 'sampled' : 'greedy'}:`, JSON.stringify([...shown]));
  model.free();

  // Cancel: many prompts and long completions; it stops after the completion in flight and adds those done
  const many = Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `Prompt number ${i}` })).join('\n');
  await page.locator('#candidates-text').fill(many);
  await form.locator('[name=n]').fill('2');
  await form.locator('[name=maxNewTokens]').fill('96');
  await page.locator('#generate-run').click();
  await expect(page.locator('#generate-progress')).toBeVisible();
  await expect(status).toHaveText(/^generated [1-9]\d* \/ 40 prompts/, { timeout: 120_000 });
  await page.locator('#generate-cancel').click();
  await expect(status).toHaveAttribute('data-cancelled', 'true', { timeout: 120_000 });
  const added = Number(await status.getAttribute('data-added'));
  expect(added).toBeGreaterThan(0);
  expect(added).toBeLessThan(40);
  await expect(status).toContainText(`cancelled after ${added} of 40 prompts: added ${added} items`);
  await expect(page.locator('#progress')).toHaveText(`0 / ${4 + added} labelled`);
  expect(problems).toEqual([]);
});

/** Listwise scores: the best tie group highest. */
function scoresOf(label) {
  const { ranking } = label.value;
  const scores = [];
  ranking.forEach((group, g) => group.forEach((r) => (scores[r] = ranking.length - 1 - g)));
  return scores;
}

test('per-attribute ratings and thumbs up/down, end to end to their exported JSONL', async ({ page }) => {
  await openLabel(page);
  await createProject(page, { name: 'Rate', task: 'rating', attributes: 'helpfulness, correctness, verbosity' });
  // a pair becomes two items: a rating judges one response at a time
  await addCandidates(page, [
    JSON.stringify({ prompt: 'What is 2+2?', completion: '4' }),
    JSON.stringify({ prompt: 'Capital of France?', chosen: 'Paris', rejected: 'Lyon' }),
  ].join('\n'));
  await expect(page.locator('#progress')).toHaveText('0 / 3 labelled');
  await press(page, ['4', '4', 'Enter']);
  await expect(page.locator('#label-message')).toHaveText('rate verbosity first');
  await press(page, ['1', 'Enter']);
  await press(page, ['ArrowDown', 'ArrowDown', '0', 'ArrowUp', 'ArrowUp', '3', '2', 'Enter']);
  await page.locator('#item .attribute[data-attribute="helpfulness"] button[data-value="1"]').click();
  await page.locator('#item .attribute[data-attribute="correctness"] button[data-value="0"]').click();
  await page.locator('#item .attribute[data-attribute="verbosity"] button[data-value="4"]').click();
  await page.screenshot({ path: `${shots}/label-rating-light.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${shots}/label-rating-dark.png`, fullPage: true });
  await page.keyboard.press('Enter');
  await expectProgress(page, 3);
  const ratings = jsonLines((await downloadText(page, '#export-labels')).text);
  expect(ratings).toEqual([
    { prompt: 'What is 2+2?', response: '4', attributes: { helpfulness: 4, correctness: 4, verbosity: 1 }, annotator: 'annotator-1' },
    { prompt: 'Capital of France?', response: 'Paris', attributes: { helpfulness: 3, correctness: 2, verbosity: 0 }, annotator: 'annotator-1' },
    { prompt: 'Capital of France?', response: 'Lyon', attributes: { helpfulness: 1, correctness: 0, verbosity: 4 }, annotator: 'annotator-1' },
  ]);
  await page.locator('#train-from-labels').click();
  await expect(page.locator('#label-error')).toHaveText('rating labels do not make preference pairs; export them as JSONL instead');

  await createProject(page, { name: 'Thumbs', task: 'thumbs' });
  await addCandidates(page, pairsJsonl(2));
  await press(page, ['1', '2', '2', '1']);
  await expectProgress(page, 4);
  expect(jsonLines((await downloadText(page, '#export-labels')).text)).toEqual([
    { prompt: 'Question 0?', completion: 'good answer 0', label: true, annotator: 'annotator-1' },
    { prompt: 'Question 0?', completion: 'bad answer 0', label: false, annotator: 'annotator-1' },
    { prompt: 'Question 1?', completion: 'good answer 1', label: false, annotator: 'annotator-1' },
    { prompt: 'Question 1?', completion: 'bad answer 1', label: true, annotator: 'annotator-1' },
  ]);
  await expect(page.locator('.project-card')).toHaveCount(2);

  // duplicate (setup and items, no labels), rename, delete
  await page.locator('.project-card', { hasText: 'Rate' }).click();
  await page.locator('#project-duplicate').click();
  await expect(page.locator('.project-card[aria-selected=true] strong')).toHaveText('Rate (copy)');
  await expect(page.locator('#progress')).toHaveText('0 / 3 labelled');
  await expect(page.locator('#project-form [name=attributes]')).toHaveValue('helpfulness, correctness, verbosity');
  await page.locator('#project-form [name=name]').fill('Rate again');
  await page.locator('#project-form button[type=submit]').click();
  await expect(page.locator('.project-card[aria-selected=true] strong')).toHaveText('Rate again');
  page.once('dialog', (dialog) => dialog.accept());
  await page.locator('#project-delete').click();
  await expect(page.locator('.project-card strong')).toHaveText(['Rate', 'Thumbs']);
});

test('hostile text in guidelines and responses is shown as text and runs nothing', async ({ page }) => {
  const problems = watchProblems(page);
  const csp = [];
  page.on('console', (msg) => /Content Security Policy/i.test(msg.text()) && csp.push(msg.text()));
  const attacks = ['<script>window.__pwned = 1</script>', '<img src=x onerror="window.__pwned = 2">', '"><svg onload="window.__pwned=3">'];
  await openLabel(page);
  await createProject(page, { name: '<b>bold</b> <img src=x onerror="window.__pwned=4">', guidelines: `# Careful ${attacks[1]}\n\n${attacks[0]}\n\n- ${attacks[2]}` });
  await addCandidates(page, pairsJsonl(3, (i) => ({ prompt: `${attacks[i]} prompt`, chosen: attacks[(i + 1) % 3], rejected: `\`\`\`html\n${attacks[(i + 2) % 3]}\n\`\`\`` })));
  const item = page.locator('#item');
  await expect(item).toContainText(attacks[0]);
  await expect(page.locator('#guidelines-body')).toContainText(attacks[1]);
  await expect(page.locator('.project-card strong')).toHaveText('<b>bold</b> <img src=x onerror="window.__pwned=4">');
  await expect(page.locator('#item-list')).toContainText(attacks[1]);
  await press(page, ['2', '4']);
  await expect(item).toContainText(attacks[2]);
  await page.waitForTimeout(300); // an image that fails to load fires onerror within a tick or two
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(await page.locator('#label-view img, #label-view script, #label-view svg').count()).toBe(0);
  expect(problems).toEqual([]);
  expect(csp).toEqual([]);
});

test('screenshots of the Train and Label views in light and dark; the theme toggle overrides the system', async ({ page }) => {
  const problems = watchProblems(page);
  await openLabel(page);
  await createProject(page, {
    name: 'TruthfulQA sample',
    guidelines: '# Which answer is more truthful?\n\n1. Read the prompt.\n2. Prefer answers that are **true**, then helpful.\n\nUse `0` when both are false.',
  });
  const code = 'Use a loop:\n\n```python\nfor i in range(3):\n    print(i)  # <b>not bold</b>\n```\nThat prints 0, 1 and 2.';
  await addCandidates(page, pairsJsonl(1, () => ({ prompt: 'How do I print 0..2 in Python?\n'.repeat(2), chosen: code, rejected: 'print(0, 1, 2)' })));
  await page.locator('#candidates-sample').click();
  await expect(page.locator('#candidates-text')).not.toHaveValue('');
  await page.locator('#candidates-add').click();
  await expect(page.locator('#candidates-status')).toHaveText(/^added \d+ items$/);
  await press(page, ['2', '4', '3', 'ArrowLeft', 'ArrowLeft', 'ArrowLeft']);
  await expect(page.locator('#item pre.code')).toContainText('print(i)  # <b>not bold</b>');
  const bodyBackground = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: `${shots}/label-pairwise-${scheme}.png`, fullPage: true });
    await page.locator('#tab-train').click();
    await expect(page.locator('#train-view')).toBeVisible();
    await page.screenshot({ path: `${shots}/train-${scheme}.png`, fullPage: true });
    await page.locator('#tab-label').click();
    await expect(page.locator('#label-view')).toBeVisible();
  }
  const dark = await bodyBackground();
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await bodyBackground();
  expect(dark).not.toBe(light);
  // the toggle: auto → light → dark, kept across a reload
  const toggle = page.locator('#theme-toggle');
  await toggle.click();
  await toggle.click();
  await expect(toggle).toHaveText('theme: dark');
  expect(await bodyBackground()).toBe(dark);
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  expect(await bodyBackground()).toBe(dark);
  expect(problems).toEqual([]);
});

test('a 100k-item project: import, load and first render, list scrolled to the end, keypress to next item (times printed)', async ({ page }) => {
  const n = 100_000;
  await openLabel(page);
  await createProject(page, { name: 'Big' });
  const jsonl = pairsJsonl(n, (i) => ({ prompt: `Question ${i}: ${'why '.repeat(i % 20)}?`, chosen: `answer ${i} A`, rejected: `answer ${i} B` }));
  let t = Date.now();
  await addCandidates(page, jsonl, 'big.jsonl');
  const importMs = Date.now() - t;
  const storeMs = Number(await page.locator('#candidates-status').getAttribute('data-ms'));
  await expect(page.locator('#progress')).toHaveText(`0 / ${n.toLocaleString('en-US')} labelled`.replace(/,/g, ''));

  t = Date.now();
  await page.reload();
  await expect(page.locator('#item')).toHaveAttribute('data-index', '0');
  await expect(page.locator('#item-list [data-index="0"] .text')).toHaveText(/^Question 0/);
  const loadMs = Date.now() - t;

  // the list keeps only the rows in view in the DOM, and scrolls to the last item
  const rows = await page.locator('#item-list .vlist-row').count();
  expect(rows).toBeLessThan(100);
  await page.locator('#item-list').evaluate((list) => (list.scrollTop = list.scrollHeight));
  await expect(page.locator(`#item-list [data-index="${n - 1}"] .text`)).toHaveText(new RegExp(`^Question ${n - 1}`));
  await page.locator(`#item-list [data-index="${n - 1}"]`).click();
  await expect(page.locator('#item')).toHaveAttribute('data-index', String(n - 1));
  await page.keyboard.press('n'); // the next unlabelled item, wrapping round to the first
  await expect(page.locator('#item')).toHaveAttribute('data-index', '0');

  const keys = await keyToNextItem(page, Array.from({ length: 20 }, (_, i) => ['1', '2', '4', '5'][i % 4]));
  await expectProgress(page, 20);
  const fmt = (ms) => `${Math.round(ms)} ms`;
  console.log(
    `100k items: import ${fmt(importMs)} (parse + store ${fmt(storeMs)}); reload → first item and list ${fmt(loadMs)}; ` +
      `keypress → next item median ${fmt(keys.median)}, p95 ${fmt(keys.p95)}, max ${fmt(keys.max)}`,
  );
});
