// The package in Node on the wasm CPU backend: the tiny model, errors that say what is wrong, the tiny DPO run
// (loss ln 2 at step 1), the training loop's pause/resume/stop, and the SmolLM2 tokenizer when its file is here.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as alignlab from 'alignlab';
import { smollm2Path, wasmBuilt } from '../helpers/paths.mjs';
import { TINY_DPO, runTinyDpo, tinyDpoData } from '../helpers/tiny-dpo.mjs';
import { truthfulqaJsonl } from '../helpers/truthfulqa.mjs';

const LN2 = Math.log(2);
const { Model } = alignlab;

before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  const result = await alignlab.init({ backend: 'cpu' });
  assert.deepEqual(result, { backend: 'cpu' });
});

test('init is once per instance: a second call returns the first result', async () => {
  assert.deepEqual(await alignlab.init(), { backend: 'cpu' });
  await assert.rejects(alignlab.init({ backend: 'webgpu' }), /already initialised on cpu/);
  assert.equal(await alignlab.currentBackend(), 'cpu');
});

test('the tiny model reports its shape', () => {
  const model = Model.tiny(0);
  const info = model.info();
  assert.equal(info.arch.toLowerCase().includes('llama'), true, info.arch);
  assert.equal(info.n_layers, 2);
  assert.equal(info.d_model, 64);
  assert.equal(info.vocab_size, 259);
  assert.equal(info.backend, 'cpu');
  assert.ok(info.params > 0);
  model.free();
});

test('tokenize then decode gives the text back (byte-level tiny model)', () => {
  const model = Model.tiny(0);
  for (const text of ['Hello, world!', 'Grüße — 日本語 🙂', ' leading space\nand a newline', '']) {
    const ids = model.tokenize(text);
    assert.ok(ids instanceof Uint32Array);
    assert.equal(model.decode(ids), text);
    assert.equal(model.decode(Array.from(ids)), text);
  }
  model.free();
});

test('the chat template is ChatML', () => {
  const model = Model.tiny(0);
  const text = model.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
  assert.match(text, /<\|im_start\|>user\nHi<\|im_end\|>\n<\|im_start\|>assistant\n$/);
  const without = model.applyChatTemplate([{ role: 'user', content: 'Hi' }]);
  assert.doesNotMatch(without, /assistant/);
  model.free();
});

test('greedy generation is deterministic and streams its pieces', async () => {
  const model = Model.tiny(0);
  const pieces = [];
  const a = await model.generate('Once upon a time', { maxNewTokens: 12, onToken: (p) => pieces.push(p) });
  const b = await model.generate('Once upon a time', { maxNewTokens: 12 });
  assert.equal(a, b);
  assert.equal(pieces.join(''), a);
  assert.ok(pieces.length >= 1 && pieces.length <= 12, `${pieces.length} pieces`);
  const other = Model.tiny(0);
  assert.equal(await other.generate('Once upon a time', { maxNewTokens: 12 }), a);
  model.free();
  other.free();
});

test('an error thrown by onToken reaches the caller', async () => {
  const model = Model.tiny(0);
  await assert.rejects(
    model.generate('x', { maxNewTokens: 4, onToken: () => { throw new Error('stop here'); } }),
    /stop here/,
  );
  assert.equal(typeof (await model.generate('x', { maxNewTokens: 2 })), 'string'); // the instance still works
  model.free();
});

test('tinyGguf(seed) is the same model as Model.tiny(seed)', async () => {
  const bytes = alignlab.tinyGguf(0);
  assert.deepEqual(Array.from(bytes.subarray(0, 4)), [0x47, 0x47, 0x55, 0x46]); // "GGUF"
  const fromFile = Model.fromGguf(bytes);
  const direct = Model.tiny(0);
  assert.deepEqual(fromFile.info(), direct.info());
  const prompt = 'The capital of France is';
  assert.equal(await fromFile.generate(prompt, { maxNewTokens: 10 }), await direct.generate(prompt, { maxNewTokens: 10 }));
  assert.notDeepEqual(Array.from(alignlab.tinyGguf(1)), Array.from(bytes));
  fromFile.free();
  direct.free();
});

test('bad GGUF bytes give a clear Error, and the instance keeps working', () => {
  const good = alignlab.tinyGguf(0);
  const cases = [
    [new Uint8Array(0), 'empty'],
    [new TextEncoder().encode('<!doctype html><html></html>'), 'not GGUF'],
    [good.subarray(0, 20), 'truncated header'],
    [good.subarray(0, Math.floor(good.length / 2)), 'truncated tensors'],
  ];
  for (const [bytes, what] of cases) {
    assert.throws(
      () => Model.fromGguf(bytes),
      (err) => err instanceof Error && !(err instanceof WebAssembly.RuntimeError) && err.message.length > 10,
      what,
    );
  }
  assert.throws(() => Model.fromGguf('not bytes'), TypeError);
  assert.equal(Model.tiny(0).info().d_model, 64);
});

test('loadModel refuses a file that is not GGUF with its first bytes', async () => {
  await assert.rejects(alignlab.loadModel(new Blob(['<!doctype html>'])), /is not a GGUF file \(it starts with "<!doctyp"\)/);
});

test('a JSONL line missing "rejected" is an error naming the line', async () => {
  const model = Model.tiny(0);
  const data = truthfulqaJsonl(3) + JSON.stringify({ prompt: 'Q', chosen: 'A' }) + '\n';
  await assert.rejects(
    alignlab.Trainer.create(model, { objective: 'dpo' }, data),
    (err) => {
      assert.match(err.message, /:4: .*rejected/);
      return true;
    },
  );
  await assert.rejects(alignlab.Trainer.create(model, { objective: 'dpo' }, 'not json\n'), /:1: /);
  model.free();
});

test('tiny DPO: loss at step 1 is ln 2, then it falls; the same from Model.tiny and from its GGUF', async () => {
  const metrics = await runTinyDpo(alignlab, { model: 'gguf' });
  assert.equal(metrics.length, 5);
  assert.deepEqual(metrics.map((m) => m.step), [1, 2, 3, 4, 5]);
  assert.ok(Math.abs(metrics[0].loss - LN2) < 1e-4, `step 1 loss ${metrics[0].loss}`);
  assert.ok(Math.abs(metrics[0]['rewards/margins']) < 1e-4);
  for (const key of ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'logps/chosen', 'logps/rejected', 'learning_rate', 'grad_norm', 'num_tokens', 'epoch']) {
    assert.equal(typeof metrics[0][key], 'number', key);
  }
  assert.ok(metrics[4].loss < metrics[0].loss, `loss ${metrics.map((m) => m.loss)}`);
  const again = await runTinyDpo(alignlab, { model: 'tiny' });
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(again[i].loss - metrics[i].loss) < 1e-6, `step ${i + 1}`);
});

test('train(): iterate, pause, resume; the policy differs from the model afterwards', async () => {
  const model = Model.tiny(0);
  const seen = [];
  const states = [];
  const run = alignlab.train(model, { ...TINY_DPO, maxSteps: 6 }, tinyDpoData(), {
    onMetrics: (batch) => seen.push(...batch),
    onStateChange: (s) => states.push(s),
  });
  run.pause(); // asked for while preparing: no step runs until resume
  while (run.state !== 'paused') await new Promise((r) => setTimeout(r, 10));
  assert.equal(run.metrics.length, 0);
  const iterated = [];
  const iterating = (async () => {
    for await (const m of run) iterated.push(m.step);
  })();
  run.resume();
  const result = await run.done;
  await iterating;
  assert.equal(result.state, 'finished');
  assert.deepEqual(iterated, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(seen.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(states, ['paused', 'running', 'finished']);
  const evaluation = await result.trainer.evaluate();
  assert.equal(typeof evaluation.loss, 'number');
  assert.equal('learning_rate' in evaluation, false);
  const policy = result.trainer.policy();
  const prompt = 'Question: What happens to you if you eat watermelon seeds?\nAnswer:';
  const before = await model.generate(prompt, { maxNewTokens: 8 });
  assert.equal(await Model.tiny(0).generate(prompt, { maxNewTokens: 8 }), before, 'training must not change the model');
  const safetensors = await policy.toSafetensors();
  const headerLength = Number(new DataView(safetensors.buffer, safetensors.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(safetensors.subarray(8, 8 + headerLength)));
  assert.ok(Object.keys(header).some((k) => k.startsWith('model.layers.0.')), Object.keys(header).join(', '));
  policy.free();
  result.trainer.free();
  model.free();
});

test('train(): stop() and an AbortSignal end the run early with state stopped', async () => {
  const model = Model.tiny(0);
  const run = alignlab.train(model, { ...TINY_DPO, maxSteps: 50 }, tinyDpoData(), {
    onMetrics: (_, r) => r.metrics.length >= 2 && r.stop(),
  });
  const result = await run.done;
  assert.equal(result.state, 'stopped');
  assert.equal(result.metrics.length, 2);
  result.trainer.free();

  const controller = new AbortController();
  const aborted = alignlab.train(model, { ...TINY_DPO, maxSteps: 50 }, tinyDpoData(), {
    signal: controller.signal,
    onMetrics: () => controller.abort(),
    stepsPerCall: 3,
  });
  const end = await aborted.done;
  assert.equal(end.state, 'stopped');
  assert.equal(end.metrics.length, 3);
  end.trainer.free();
  model.free();
});

test('reward model: metrics use TRL names and the loss starts near ln 2', async () => {
  const model = Model.tiny(0);
  const trainer = await alignlab.Trainer.create(model, { ...TINY_DPO, objective: 'reward', beta: undefined }, tinyDpoData());
  const [first] = await trainer.step(1);
  for (const key of ['loss', 'accuracy', 'margin', 'mean_reward', 'min_reward', 'max_reward', 'learning_rate', 'grad_norm']) {
    assert.equal(typeof first[key], 'number', key);
  }
  assert.ok(first.min_reward <= first.mean_reward && first.mean_reward <= first.max_reward);
  assert.ok(Number.isFinite(first.loss));
  trainer.free();
  model.free();
});

test('SmolLM2-135M: the France prompt tokenizes to the golden ids', { skip: !existsSync(smollm2Path) && `no ${smollm2Path} (scripts/fetch-models.sh)` }, () => {
  const model = Model.fromGguf(readFileSync(smollm2Path));
  // golden ids: DESIGN.md §5, measured with an independent implementation (SmolLM2's own template would add a
  // default system turn, so the ChatML text is spelled out here)
  const prompt = '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n';
  const golden = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198];
  assert.deepEqual(Array.from(model.tokenize(prompt)), golden);
  assert.equal(model.decode(Uint32Array.from(golden)), prompt);
  assert.equal(model.info().vocab_size, 49152);
  model.free();
});
