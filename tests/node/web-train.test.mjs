// What the page's worker relies on for training that survives a lost device and for scoring with a reward
// model, on the wasm CPU backend: a checkpoint (weights, state, AdamW) taken mid-run continues in a fresh trainer;
// a reward-model run scores responses as its training pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as alignlab from 'alignlab';
import { wasmBuilt } from '../helpers/paths.mjs';
import { TINY_DPO, tinyDpoData } from '../helpers/tiny-dpo.mjs';
import { truthfulqaJsonl } from '../helpers/truthfulqa.mjs';

const skip = !wasmBuilt() && 'pkg/wasm is not built';

async function steps(trainer) {
  const metrics = [];
  while (trainer.stepCount() < trainer.totalSteps()) metrics.push(...(await trainer.step(1)));
  return metrics;
}

test('a DPO run checkpointed at step 2 continues in a fresh trainer: the same step, data order and reference, AdamW afresh', { skip }, async () => {
  await alignlab.init({ backend: 'cpu' });
  const base = alignlab.Model.fromGguf(alignlab.tinyGguf(0));
  const data = tinyDpoData();
  const whole = await alignlab.Trainer.create(base, TINY_DPO, data);
  const straight = await steps(whole);
  whole.free();

  const checkpoints = [];
  const first = alignlab.train(base, TINY_DPO, data, { checkpointEvery: 2, onCheckpoint: (c) => checkpoints.push(c) });
  const done = await first.done;
  done.trainer.free();
  assert.deepEqual(first.metrics.map((m) => m.loss), straight.map((m) => m.loss)); // checkpoints change nothing
  // every second step and the last one
  assert.deepEqual(checkpoints.map((c) => c.step), [2, 4, 5]);
  const [c2] = checkpoints;
  assert.equal(c2.state.step, 2);
  assert.equal(c2.state.reference.length, 16); // the starting policy's reference log-probs travel with it
  assert.match(c2.state.rng, /^\d+$/); // a u64, exact as a string
  assert.ok(c2.weights instanceof Uint8Array && c2.weights.byteLength > 1000);
  // a checkpoint survives the structured clone of IndexedDB and postMessage
  const cloned = structuredClone(c2);

  // step 3 is computed on the checkpoint's weights and the same batch, before any update: the same loss as
  // the uninterrupted run's step 3. AdamW restarts, so step 4 moves differently.
  const resumed = alignlab.train(base, TINY_DPO, data, { resumeFrom: cloned });
  const rest = (await resumed.done).metrics;
  resumed.trainer.free();
  assert.deepEqual(rest.map((m) => m.step), [3, 4, 5]);
  assert.ok(Math.abs(rest[0].loss - straight[2].loss) < 1e-6, `step 3: ${rest[0].loss} vs ${straight[2].loss}`);
  assert.ok(Math.abs(rest[0]['rewards/margins'] - straight[2]['rewards/margins']) < 1e-6);
  assert.notEqual(rest[1].loss, straight[3].loss);
  // the checkpoint's weights as a model of their own (Model.withSafetensors) give the same step 3
  const policy = base.withSafetensors(cloned.weights);
  const again = await alignlab.Trainer.resume(policy, TINY_DPO, data, { state: cloned.state });
  assert.ok(Math.abs((await again.step(1))[0].loss - straight[2].loss) < 1e-6);
  again.free();
  policy.free();
  // without the weights the base model is the policy: step 3 on other weights, so the check above can fail
  const wrong = await alignlab.Trainer.resume(base, TINY_DPO, data, { state: cloned.state });
  const [w3] = await wrong.step(1);
  assert.ok(Math.abs(w3.loss - straight[2].loss) > 1e-6);
  wrong.free();

  // bad checkpoints are refused with a reason
  await assert.rejects(alignlab.Trainer.resume(base, TINY_DPO, truthfulqaJsonl(8), c2), /trained on 16 pairs, this run has 8/);
  await assert.rejects(alignlab.Trainer.resume(base, TINY_DPO, data, { state: { ...c2.state, rng: 'x' } }), /checkpoint state: rng "x"/);
  assert.throws(() => base.withSafetensors(new Uint8Array([1, 2, 3])));
  await assert.rejects(alignlab.Trainer.resume(base, TINY_DPO, data, { ...c2, weights: new Uint8Array(8) }), /checkpoint weights: /);
  await assert.rejects(alignlab.Trainer.resume(base, { ...TINY_DPO, objective: 'reward' }, data, { state: c2.state }), /needs its checkpoint's weights/);
  base.free();
});

test('a reward-model run scores responses (zero head first, the trained order after) and resumes from a checkpoint with its head', { skip }, async () => {
  await alignlab.init({ backend: 'cpu' });
  const base = alignlab.Model.fromGguf(alignlab.tinyGguf(0));
  const pairs = Array.from({ length: 8 }, (_, i) => ({ prompt: `Q${i}: is it true?`, chosen: ' Yes, it is true.', rejected: ' nope' }));
  const data = pairs.map((p) => JSON.stringify(p)).join('\n');
  const config = { objective: 'reward', learningRate: 5e-3, maxSteps: 12, batchSize: 4, seed: 0 };
  const trainer = await alignlab.Trainer.create(base, config, data);
  const before = await trainer.scoreResponses('Q0: is it true?', [' Yes, it is true.', ' nope']);
  assert.deepEqual(before, [0, 0]); // the head starts at zero
  await steps(trainer);
  const [good, bad] = await trainer.scoreResponses('Q0: is it true?', [' Yes, it is true.', ' nope']);
  assert.ok(good > bad, `trained reward model prefers the chosen response: ${good} vs ${bad}`);
  // the same numbers as the training metrics' view of the pairs: accuracy 1 once it has learned them
  assert.equal((await trainer.evaluate()).accuracy, 1);
  assert.deepEqual(await trainer.scoreResponses('Q0: is it true?', []), []);
  trainer.free();

  // a reward run checkpointed at step 4 continues with its head: step 5 has the uninterrupted run's loss
  const whole = await alignlab.Trainer.create(base, config, data);
  const straight = await steps(whole);
  whole.free();
  const kept = [];
  const run = alignlab.train(base, config, data, { checkpointEvery: 4, onCheckpoint: (c) => kept.push(structuredClone(c)) });
  (await run.done).trainer.free();
  assert.deepEqual(kept.map((c) => c.step), [4, 8, 12]);
  const resumed = alignlab.train(base, config, data, { resumeFrom: kept[0] });
  const rest = (await resumed.done).metrics;
  assert.equal(rest[0].step, 5);
  assert.ok(Math.abs(rest[0].loss - straight[4].loss) < 1e-6, `step 5: ${rest[0].loss} vs ${straight[4].loss}`);
  assert.ok(Math.abs(rest[0].accuracy - straight[4].accuracy) < 1e-6);
  // the resumed trainer scores with the reloaded head
  assert.equal((await resumed.trainer.scoreResponses('Q0: is it true?', [' nope'])).length, 1);
  resumed.trainer.free();

  const dpo = await alignlab.Trainer.create(base, TINY_DPO, tinyDpoData());
  await assert.rejects(dpo.scoreResponses('p', ['a']), /only a reward-model run scores responses/);
  dpo.free();
  base.free();
});
