// LoRA through the package (wasm CPU): the options reach the core, a LoRA run starts at ln 2, and the trained
// policy exports merged weights that differ from the base.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as alignlab from 'alignlab';
import { wasmBuilt } from '../helpers/paths.mjs';
import { truthfulqaJsonl } from '../helpers/truthfulqa.mjs';

before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
});

test('a LoRA DPO run starts at ln 2 and its policy exports merged weights', async () => {
  const config = {
    objective: 'dpo', learningRate: 1e-2, maxSteps: 2, batchSize: 2, maxLength: 256, maxPromptLength: 128,
    loraR: 4, loraAlpha: 8, loraDropout: 0, loraTargetModules: 'all-linear',
  };
  const model = alignlab.Model.tiny(0);
  const { metrics, trainer } = await alignlab.train(model, config, truthfulqaJsonl(4)).done;
  assert.ok(Math.abs(metrics[0].loss - Math.LN2) < 1e-6, `step-0 loss ${metrics[0].loss}`);
  assert.notEqual(metrics[1].loss, metrics[0].loss);
  const policy = trainer.policy();
  const [before, after] = [await model.toSafetensors(), await policy.toSafetensors()];
  assert.equal(after.byteLength, before.byteLength, 'the merged export has the base model\'s tensors and shapes');
  assert.ok(after.some((b, i) => b !== before[i]), 'the merged weights moved');
  policy.free();
  trainer.free();
  model.free();
});

test('bad LoRA options are errors that name the option', async () => {
  const bad = { objective: 'dpo', loraTargetModules: 3 };
  assert.throws(() => alignlab.trainConfigToWasm(bad), /loraTargetModules must be a name/);
  const model = alignlab.Model.tiny(0);
  await assert.rejects(
    alignlab.Trainer.create(model, { objective: 'dpo', loraR: 4, loraTargetModules: ['qproj'] }, truthfulqaJsonl(2)),
    /lora_target_modules: "qproj" is not a Llama projection/,
  );
  model.free();
});
