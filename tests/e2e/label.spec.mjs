// The Label view in real Chromium, without a model: keyboard labelling that loses nothing across reloads and
// browser restarts, byte-identical project export/import, merging annotators, every task type's export, hostile
// text, light/dark screenshots, and a 100k-item project (times printed, not asserted).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, expect, chromium } from '@playwright/test';
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
  pairsJsonl,
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
    const first = ['1', '2', '3', '4', '5', '0', '2', '4'];
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
    const second = ['4', '3', '2', '1', '0', '5', '4', '3', '2'];
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
    const decided = keysOf.filter((k) => k !== '3' && k !== '0').length;
    expect(pairs).toHaveLength(decided);
    for (const p of pairs) {
      const i = Number(p.prompt.match(/\d+/)[0]);
      expect(p.chosen).toBe(labels[i].value.winner === 0 ? `good answer ${i}` : `bad answer ${i}`);
      expect(p.swapped).toBe(labels[i].order.indexOf(labels[i].value.winner) === 1);
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
    await page.locator('#agreement-run').click();
    await expect(page.locator('#agreement-out')).toHaveText("agreement needs the core's eval module");
    await context.close();
  });
});
