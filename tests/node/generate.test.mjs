// Sampling through the package (wasm CPU backend, tiny model): seeds, stop strings, n samples per prompt and
// the streamed pieces. The sampler runs on the host from read-back logits, so these are the core's draws.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as alignlab from 'alignlab';
import { wasmBuilt } from '../helpers/paths.mjs';

const { Model } = alignlab;
const PROMPT = 'Once upon a time';

before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
});

test('the same seed gives the same text; another seed another text', async () => {
  const model = Model.tiny(0);
  const options = { maxNewTokens: 16, temperature: 1, seed: 42 };
  const a = await model.generate(PROMPT, options);
  assert.equal(typeof a, 'string');
  assert.equal(await model.generate(PROMPT, options), a);
  // Another instance of the same model draws the same tokens.
  const other = Model.tiny(0);
  assert.equal(await other.generate(PROMPT, options), a);
  // 16 draws from a near-uniform distribution over 259 tokens: two seeds agreeing would be a broken sampler.
  assert.notEqual(await model.generate(PROMPT, { ...options, seed: 43 }), a);
  // Sampled text differs from greedy text.
  assert.notEqual(await model.generate(PROMPT, { maxNewTokens: 16 }), a);
  model.free();
  other.free();
});

test('a stop string ends the completion and is cut off, and is never streamed', async () => {
  const model = Model.tiny(0);
  const full = await model.generate(PROMPT, { maxNewTokens: 12 });
  // Two whole characters from inside the greedy text (no replacement character, which a token boundary can make).
  const chars = Array.from(full);
  const at = chars.findIndex((c, i) => i >= 2 && c !== '\uFFFD' && chars[i + 1] !== undefined && chars[i + 1] !== '\uFFFD');
  assert.ok(at >= 2, `the greedy text ${JSON.stringify(full)} has two whole characters after the first two`);
  const stop = chars[at] + chars[at + 1];
  const pieces = [];
  const cut = await model.generate(PROMPT, { maxNewTokens: 12, stop, onToken: (p) => pieces.push(p) });
  assert.equal(cut, full.slice(0, full.indexOf(stop)));
  assert.equal(pieces.join(''), cut);
  // A list of stop strings: the earliest match wins.
  assert.equal(await model.generate(PROMPT, { maxNewTokens: 12, stop: ['\u0000never', stop] }), cut);
  model.free();
});

test('n returns n samples, streamed per sample, and sample 0 does not depend on n', async () => {
  const model = Model.tiny(0);
  const pieces = [[], [], []];
  const samples = await model.generate(PROMPT, {
    maxNewTokens: 10,
    temperature: 1,
    topP: 0.95,
    seed: 7,
    n: 3,
    onToken: (piece, sample) => pieces[sample].push(piece),
  });
  assert.ok(Array.isArray(samples));
  assert.equal(samples.length, 3);
  assert.equal(new Set(samples).size, 3, 'three different samples');
  samples.forEach((text, i) => assert.equal(pieces[i].join(''), text));
  const one = await model.generate(PROMPT, { maxNewTokens: 10, temperature: 1, topP: 0.95, seed: 7, n: 1 });
  assert.deepEqual(one, [samples[0]]);
  // Greedy samples are all the same.
  const greedy = await model.generate(PROMPT, { maxNewTokens: 6, n: 2 });
  assert.equal(greedy[0], greedy[1]);
  model.free();
});

test('top-k 1 is greedy, and bad sampling options are errors that name them', async () => {
  const model = Model.tiny(0);
  const greedy = await model.generate(PROMPT, { maxNewTokens: 8 });
  assert.equal(await model.generate(PROMPT, { maxNewTokens: 8, temperature: 1.3, topK: 1, seed: 3 }), greedy);
  await assert.rejects(model.generate(PROMPT, { topP: 0 }), /top_p/);
  await assert.rejects(model.generate(PROMPT, { temperature: -1 }), /temperature/);
  await assert.rejects(model.generate(PROMPT, { n: 0 }), /option n/);
  await assert.rejects(model.generate(PROMPT, { stop: [''] }), /stop string 0 is empty/);
  model.free();
});

test('batchSize changes how many samples share a forward, not the samples', async () => {
  const model = Model.tiny(0);
  const options = { maxNewTokens: 10, temperature: 1, seed: 11, n: 5 };
  const together = await model.generate(PROMPT, { ...options, batchSize: 5 });
  // 5 samples in batches of 2, 2 and 1, and one at a time
  assert.deepEqual(await model.generate(PROMPT, { ...options, batchSize: 2 }), together);
  assert.deepEqual(await model.generate(PROMPT, { ...options, batchSize: 1 }), together);
  assert.equal(new Set(together).size, 5, 'five different samples');
  await assert.rejects(model.generate(PROMPT, { batchSize: 0 }), /option batch_size/);
  model.free();
});

const cli = process.env.ALIGNLAB_CLI;
test(
  'the CLI writes the same candidates at every --batch-size (prompts of different lengths, a stop string)',
  { skip: !cli && 'ALIGNLAB_CLI is unset (set it to the alignlab binary, e.g. target/debug/alignlab)' },
  async () => {
    assert.ok(existsSync(cli), `ALIGNLAB_CLI=${cli} does not exist`);
    const exec = promisify(execFile);
    const dir = mkdtempSync(path.join(tmpdir(), 'alignlab-batch-'));
    const model = path.join(dir, 'tiny.gguf');
    writeFileSync(model, alignlab.tinyGguf(0));
    const prompts = path.join(dir, 'prompts.jsonl');
    const texts = ['Hi', 'Once upon a time there was a long prompt with many more tokens than the others', 'Why?'];
    writeFileSync(prompts, texts.map((prompt) => JSON.stringify({ prompt }) + '\n').join(''));
    const run = async (batchSize) => {
      const out = path.join(dir, `candidates-${batchSize}.jsonl`);
      const args = ['generate', '--model', model, '--prompts', prompts, '--raw', '--n', '3', '--temperature', '1'];
      args.push('--seed', '4', '--max-new-tokens', '12', '--stop', 'e', '--batch-size', String(batchSize), '--out', out);
      await exec(cli, args);
      return readFileSync(out, 'utf8');
    };
    const alone = await run(1);
    const sets = alone.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(sets.map((s) => s.responses.length), [3, 3, 3]);
    assert.equal(await run(4), alone);
    assert.equal(await run(9), alone);
  },
);
