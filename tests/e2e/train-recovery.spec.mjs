// The Train view beyond one run: a reward model trained in the page scores the before/after answers (the same
// numbers as the same reward model trained in Node), and training survives a lost WebGPU device (the page says
// so, moves to the CPU and resumes from the checkpoint it kept in IndexedDB).
import { readFile } from 'node:fs/promises';
import { test, expect } from '@playwright/test';
import * as alignlab from 'alignlab';
import { LN2, openWithModel, shots, watchProblems } from '../helpers/page.mjs';
import { TINY_DPO, runTinyDpo, tinyDpoData } from '../helpers/tiny-dpo.mjs';

test.setTimeout(15 * 60_000);

const sample = () => readFile(new URL('../../web/public/truthfulqa-sample.jsonl', import.meta.url), 'utf8');

test('a reward model trained in the page scores the before/after answers as the same model trained in Node', async ({ page }) => {
  const problems = watchProblems(page);
  await openWithModel(page, '?backend=cpu', 'cpu');
  await page.locator('#load-sample').click();
  await expect(page.locator('#pairs-status')).toHaveText('16 pairs');
  const form = page.locator('#train-form');
  const status = page.locator('#train-status');
  await expect(page.locator('#compare-rm option')).toHaveText(['no reward model yet']);

  // a reward model from the compare view's button (the form's options, objective switched to reward)
  await form.locator('[name=maxSteps]').fill('4');
  await page.locator('#compare-train-rm').click();
  await expect(form.locator('[name=objective]')).toHaveValue('reward');
  await expect(status).toHaveAttribute('data-state', 'finished', { timeout: 300_000 });
  await expect(page.locator('#compare-rm option')).toHaveText(['no reward model', 'reward model 1 (4 steps)']);
  await expect(page.locator('#compare-rm')).toHaveValue(/.+/); // the new one is chosen
  // the trained reward model downloads as safetensors with its head
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#train-download').click()]);
  expect(download.suggestedFilename()).toBe('alignlab-reward-model-step4.safetensors');
  const bytes = await readFile(await download.path());
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
  expect(header['score.weight'].shape).toEqual([1, 64]);
  expect(header.__metadata__.step).toBe('4');

  // a DPO run for the "after" answer; the reward model stays for scoring
  await form.locator('[name=objective]').selectOption('dpo');
  await form.locator('[name=maxSteps]').fill('3');
  await page.locator('#train-start').click();
  await expect(status).toHaveAttribute('data-state', 'finished', { timeout: 300_000 });
  await expect(page.locator('#compare-rm option')).toHaveCount(2);

  const prompt = 'Question: What happens to you if you eat watermelon seeds?\nAnswer:';
  await page.locator('#compare-prompt').fill(prompt);
  await page.locator('#compare-form [name=maxNewTokens]').fill('6');
  await page.locator('#compare-run').click();
  const scoreBefore = page.locator('#score-before');
  await expect(scoreBefore).toHaveText(/^reward -?\d+\.\d{4}$/, { timeout: 300_000 });
  await expect(page.locator('#score-after')).toHaveText(/^reward -?\d+\.\d{4}$/);
  await expect(page.locator('#score-diff')).toContainText('reward model 1: after − before = ');
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.locator('#compare-section').screenshot({ path: `${shots}/compare-scores-${scheme}.png` });
  }

  // the same reward model (tiny model, same options and pairs) trained in Node scores the page's two answers
  const before = await page.locator('#out-before').textContent();
  const after = await page.locator('#out-after').textContent();
  await alignlab.init({ backend: 'cpu' });
  const model = alignlab.Model.fromGguf(alignlab.tinyGguf(0));
  const config = { objective: 'reward', learningRate: 5e-4, maxSteps: 4, batchSize: 2, maxLength: 256, maxPromptLength: 128 };
  const trainer = await alignlab.Trainer.create(model, config, await sample());
  while (trainer.stepCount() < trainer.totalSteps()) await trainer.step(1);
  const [rb, ra] = await trainer.scoreResponses(prompt, [before, after]);
  trainer.free();
  model.free();
  console.log(`rewards: before ${rb}, after ${ra}; page ${await scoreBefore.getAttribute('data-score')}, ${await page.locator('#score-after').getAttribute('data-score')}`);
  expect(Math.abs(Number(await scoreBefore.getAttribute('data-score')) - rb)).toBeLessThan(1e-5);
  expect(Math.abs(Number(await page.locator('#score-after').getAttribute('data-score')) - ra)).toBeLessThan(1e-5);
  expect(rb).not.toBe(0); // trained: the zero-initialised head has moved
  expect(problems).toEqual([]);
});

test('a lost WebGPU device: the page says so, moves to the CPU and resumes the run from its IndexedDB checkpoint', async ({ page }) => {
  const problems = watchProblems(page);
  const reference = alignlab.init({ backend: 'cpu' }).then(() => runTinyDpo(alignlab)); // the uninterrupted run, meanwhile
  await openWithModel(page, '?test-hooks', 'webgpu');
  await expect(page.locator('html')).toHaveAttribute('data-test-hooks', 'ready');
  await page.locator('#pairs-text').fill(tinyDpoData());
  const form = page.locator('#train-form');
  await form.locator('[name=learningRate]').fill(String(TINY_DPO.learningRate));
  await form.locator('[name=maxSteps]').fill(String(TINY_DPO.maxSteps));
  await form.locator('[name=checkpointEvery]').fill('1');
  await page.locator('#train-start').click();
  const checkpoint = page.locator('#checkpoint-status');
  await expect(checkpoint).toHaveAttribute('data-step', /^[1-4]$/, { timeout: 600_000 });

  await page.evaluate(() => window.alignlabTest.loseDevice());
  const recovery = page.locator('#recovery');
  await expect(recovery).toBeVisible();
  await expect(page.locator('#recovery-text')).toContainText('The WebGPU device was lost (destroyed');
  await expect(page.locator('#train-status')).toHaveAttribute('data-state', 'lost');
  await expect(page.locator('#backend')).toHaveAttribute('data-backend', 'cpu', { timeout: 180_000 });
  await expect(page.locator('#backend')).toHaveText('CPU (wasm; the WebGPU device was lost)');
  await expect(page.locator('#model-status')).toHaveAttribute('data-loaded', 'true', { timeout: 180_000 });
  await expect(page.locator('#model-info dd[data-key="backend"]')).toHaveText('cpu');
  const resume = page.locator('#recovery-resume');
  await expect(resume).toBeVisible();
  await expect(resume).toBeEnabled();
  const kept = Number(await recovery.getAttribute('data-step'));
  expect(kept).toBeGreaterThanOrEqual(1);
  expect(kept).toBeLessThan(TINY_DPO.maxSteps);
  await expect(page.locator('#recovery-text')).toContainText(`checkpoint of step ${kept} of ${TINY_DPO.maxSteps}`);
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.locator('#train-section').screenshot({ path: `${shots}/device-lost-${scheme}.png` });
  }
  await page.emulateMedia({ colorScheme: 'light' });

  await resume.click();
  await expect(recovery).toBeHidden();
  await expect(page.locator('#train-status')).toHaveAttribute('data-state', 'finished', { timeout: 300_000 });
  await expect(page.locator('#chart')).toHaveAttribute('data-points', String(TINY_DPO.maxSteps));
  // the kept steps and the resumed ones in one table; the first resumed step ran on the checkpoint's weights
  // and batch before any update, so its loss is the uninterrupted run's (AdamW restarts after it)
  const rows = page.locator('#metrics-table tbody tr');
  await expect(rows).toHaveCount(TINY_DPO.maxSteps);
  const loss = async (step) => Number(await rows.nth(step - 1).locator('td[data-key="loss"]').getAttribute('data-value'));
  const straight = await reference;
  expect(Math.abs((await loss(1)) - LN2)).toBeLessThan(1e-4);
  console.log(`resumed after step ${kept}: step ${kept + 1} loss ${await loss(kept + 1)} vs uninterrupted ${straight[kept].loss}`);
  expect(Math.abs((await loss(kept + 1)) - straight[kept].loss)).toBeLessThan(1e-4);
  await page.locator('#train-section').screenshot({ path: `${shots}/resumed-cpu.png` });

  // a finished run's checkpoint is not offered again after a reload
  await page.reload();
  await expect(page.locator('#backend')).not.toHaveAttribute('data-backend', '', { timeout: 180_000 });
  await expect(recovery).toBeHidden();
  console.log('page problems around the lost device:', problems);
});
