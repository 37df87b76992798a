// KTO and LiPO through the package (wasm CPU): the step-0 identities the Rust tests pin, on the tiny model.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as alignlab from 'alignlab';
import { wasmBuilt } from '../helpers/paths.mjs';
import { truthfulqaPairs } from '../helpers/truthfulqa.mjs';

before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
});

const close = (got, want, tol, what) => assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want}`);
const jsonl = (records) => records.map((r) => JSON.stringify(r)).join('\n');
const base = { learningRate: 2e-3, batchSize: 4, maxLength: 160, maxPromptLength: 80 };

test('KTO trains on unpaired examples: at policy = reference each costs λ/2', async () => {
  // Four desirable examples (λ_D = 1) and four undesirable ones (λ_U = 1.5): (4·0.5 + 4·0.75)/8 = 0.625.
  const pairs = truthfulqaPairs(4);
  const data = jsonl([
    ...pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen, label: true })),
    ...pairs.map((p) => ({ prompt: p.prompt, completion: p.rejected, label: false })),
  ]);
  const model = alignlab.Model.tiny(0);
  const trainer = await alignlab.Trainer.create(model, { ...base, objective: 'kto', undesirableWeight: 1.5, maxSteps: 3 }, data);
  try {
    const before = await trainer.evaluate();
    close(before.loss, 0.625, 1e-6, 'loss');
    assert.equal(before.kl, 0);
    assert.equal(before['rewards/margins'], 0);
    const steps = await trainer.step(3);
    assert.ok(steps.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.kl)), JSON.stringify(steps));
    await assert.rejects(alignlab.Trainer.create(model, { objective: 'kto' }, jsonl(pairs)), /missing field "completion"/);
  } finally {
    trainer.free();
    model.free();
  }
});

test('LiPO trains on ranked lists: LiPO-λ with lists of two starts at 0.369·ln 2', async () => {
  const data = jsonl(
    truthfulqaPairs(4).map((p) => ({ prompt: p.prompt, responses: [p.rejected, p.chosen], ranking: [1, 0] })),
  );
  const model = alignlab.Model.tiny(0);
  const trainer = await alignlab.Trainer.create(model, { ...base, objective: 'lipo', maxSteps: 2 }, data);
  try {
    const before = await trainer.evaluate();
    close(before.loss, 0.369070246 * Math.LN2, 1e-6, 'loss');
    assert.equal(before['rewards/accuracies'], 0);
    const steps = await trainer.step(2);
    assert.equal(steps.length, 2);
  } finally {
    trainer.free();
    model.free();
  }
  assert.throws(() => alignlab.trainConfigToWasm({ objective: 'lipo', lipoLossType: 3 }), /lipoLossType must be a string/);
});
