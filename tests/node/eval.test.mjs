// The core's eval module and DPO family through the package (wasm CPU): the numbers the Rust tests pin.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as alignlab from 'alignlab';
import { sharedDataDir, wasmBuilt } from '../helpers/paths.mjs';
import { truthfulqaJsonl } from '../helpers/truthfulqa.mjs';

before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
});

const close = (got, want, tol, what) => assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want}`);

test('agreement of a hand-computed table: Cohen κ = 0.4 (Wikipedia yes/no example)', () => {
  // 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15: p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5,
  // κ = (0.7 − 0.5)/(1 − 0.5) = 0.4.
  const labels = [];
  const add = (n, a, b) => {
    for (let i = 0; i < n; i++) {
      const item = labels.length / 2;
      labels.push({ item, annotator: 'A', label: a }, { item, annotator: 'B', label: b });
    }
  };
  add(20, 'yes', 'yes');
  add(5, 'yes', 'no');
  add(10, 'no', 'yes');
  add(15, 'no', 'no');
  const report = alignlab.agreement(labels);
  assert.deepEqual(report.annotatorIds, ['A', 'B']);
  assert.equal(report.items, 50);
  close(report.cohen_kappa[0][1], 0.4, 1e-12, 'Cohen κ');
  assert.equal(report.disagreements, 15);
  assert.equal(report.item_agreement.filter((a) => a === 0).length, 15);
  assert.throws(() => alignlab.agreement([{ item: 1, annotator: 'A', label: 1.5 }]), /integer or a string/);
});

const pandalm = path.join(sharedDataDir(), 'pandalm-human-pairwise', 'testset-v1.json');

test('PandaLM three-rater agreement equals the core test (scripts/pandalm_agreement.py)', { skip: !existsSync(pandalm) && `${pandalm} is absent` }, () => {
  const rows = JSON.parse(readFileSync(pandalm, 'utf8'));
  const labels = rows.flatMap((r) => [1, 2, 3].map((a) => ({ item: r.idx, annotator: `annotator${a}`, label: r[`annotator${a}`] })));
  const report = alignlab.agreement(labels);
  assert.equal(report.items, 999);
  assert.equal(report.unanimous, 879);
  close(report.fleiss_kappa, 0.8641753649975505, 1e-12, "Fleiss' κ");
  close(report.alpha, 0.8642206851960816, 1e-12, "Krippendorff's α");
  close(report.cohen_kappa[0][1], 0.8520226785167023, 1e-12, 'κ(1, 2)');
});

test('reward metrics and AUROC', () => {
  // Margins 1, 2, −1, 0: accuracy (1 + 1 + 0 + ½)/4 = 0.625 with the tie as half.
  const m = alignlab.rewardMetrics([1, 2, 0, 0.5], [0, 0, 1, 0.5]);
  close(m['rewards/accuracies'], 0.625, 1e-12, 'accuracy');
  close(m['rewards/margins'], 0.5, 1e-12, 'margin');
  assert.equal(m.reliability.length, 10);
  close(alignlab.auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75, 1e-12, 'AUROC');
});

test('every DPO-family loss trains through the package; reference-free ones start without a reference', async () => {
  const data = truthfulqaJsonl(8);
  const model = alignlab.Model.tiny(0);
  try {
    for (const [lossType, extra] of [
      ['ipo', {}],
      ['simpo', { beta: 2 }],
      [['sigmoid', 'sft'], { lossWeights: [1, 0.5] }],
      ['orpo', { gradientAccumulationSteps: 2 }],
    ]) {
      const config = { objective: 'dpo', lossType, learningRate: 2e-3, batchSize: 2, maxSteps: 3, maxLength: 160, maxPromptLength: 80, ...extra };
      const trainer = await alignlab.Trainer.create(model, config, data);
      const metrics = await trainer.step(3);
      trainer.free();
      assert.equal(metrics.length, 3, JSON.stringify(lossType));
      assert.ok(metrics.every((m) => Number.isFinite(m.loss)), JSON.stringify(metrics));
    }
    await assert.rejects(
      alignlab.Trainer.create(model, { objective: 'dpo', lossType: 'dpoo' }, data),
      /unknown variant `dpoo`/,
    );
  } finally {
    model.free();
  }
});

test("the package's option list is the core's: no option is missing or extra", () => {
  const core = Object.keys(alignlab.defaultTrainConfig()).sort();
  assert.deepEqual([...alignlab.TRAIN_OPTIONS].sort(), core);
});

test('held-out pairs start at ln 2 and report eval_ metrics', async () => {
  const model = alignlab.Model.tiny(0);
  const trainer = await alignlab.Trainer.create(
    model,
    { objective: 'dpo', learningRate: 2e-3, maxSteps: 2, maxLength: 160, maxPromptLength: 80, evalSplit: 0.25 },
    truthfulqaJsonl(8),
  );
  try {
    const before = await trainer.evaluateHeldOut();
    assert.ok(Math.abs(before.eval_loss - Math.log(2)) < 1e-5, JSON.stringify(before));
    await trainer.step(2);
    const after = await trainer.evaluateHeldOut();
    assert.ok(Number.isFinite(after['eval_rewards/accuracies']) && after.step === 2, JSON.stringify(after));
  } finally {
    trainer.free();
    model.free();
  }
});
