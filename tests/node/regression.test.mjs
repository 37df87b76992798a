// Attribute regression and HelpSteer2-Preference's combined recipe (tiny model). Through the CLI: `alignlab
// regression` logs loss, mse/<attribute> and mae/<attribute> and saves one head per attribute under its name;
// `alignlab reward --init-from` that run starts a Scaled BT model from its helpfulness head. Through the package
// (wasm CPU): objective "regression" gives the same numbers.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as alignlab from 'alignlab';
import { wasmBuilt } from '../helpers/paths.mjs';

const exec = promisify(execFile);
const cli = process.env.ALIGNLAB_CLI;
const skip = !cli && 'ALIGNLAB_CLI is unset (set it to the alignlab binary, e.g. target/debug/alignlab)';
const LIMITS = ['--max-length', '64', '--max-prompt-length', '32'];

let dir;
const at = (name) => path.join(dir, name);
const run = (args) => exec(cli, args, { timeout: 5 * 60_000 });
const lines = (file) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const jsonl = (records) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

// helpfulness on all four, verbosity on three: a zero head costs (16 + 0) + (0 + 9) + (9 + 1) + 1 = 36 over 4 = 9.
const RATINGS = [
  { prompt: 'What is 2+2?', response: '4', attributes: { helpfulness: 4, verbosity: 0 } },
  { prompt: 'What is 2+2?', response: 'It is five, I think.', attributes: { helpfulness: 0, verbosity: 3 } },
  { prompt: 'Name a colour.', response: 'Blue.', attributes: { helpfulness: 3, verbosity: 1 } },
  { prompt: 'Name a colour.', response: 'I cannot answer that.', attributes: { helpfulness: 1 } },
];
const PAIRS = [
  { prompt: 'What is 2+2?', chosen: '4', rejected: 'It is five, I think.', strength: 3 },
  { prompt: 'Name a colour.', chosen: 'Blue.', rejected: 'I cannot answer that.', strength: 1 },
];

before(async () => {
  if (skip) return;
  assert.ok(existsSync(cli), `ALIGNLAB_CLI=${cli} does not exist`);
  dir = mkdtempSync(path.join(tmpdir(), 'alignlab-regression-'));
  await run(['tiny-model', '--seed', '0', '--out', at('tiny.gguf')]);
  writeFileSync(at('ratings.jsonl'), jsonl(RATINGS));
  writeFileSync(at('pairs.jsonl'), jsonl(PAIRS));
});

test('regression, then Scaled BT from its helpfulness head', { skip }, async () => {
  const reg = at('reg');
  await run(['regression', '--model', at('tiny.gguf'), '--data', at('ratings.jsonl'), ...LIMITS, '--max-steps', '3',
    '--batch-size', '4', '--learning-rate', '5e-3', '--out', reg]);
  const first = lines(path.join(reg, 'metrics.jsonl'))[0];
  assert.ok(Math.abs(first.loss - 9) < 1e-5, `first loss ${first.loss}`);
  // mse/helpfulness = (16 + 0 + 9 + 1)/4; mse/verbosity = (0 + 9 + 1)/3; mae/verbosity = (0 + 3 + 1)/3.
  assert.ok(Math.abs(first['mse/helpfulness'] - 6.5) < 1e-5, JSON.stringify(first));
  assert.ok(Math.abs(first['mse/verbosity'] - 10 / 3) < 1e-5, JSON.stringify(first));
  assert.ok(Math.abs(first['mae/verbosity'] - 4 / 3) < 1e-5, JSON.stringify(first));
  const config = JSON.parse(readFileSync(path.join(reg, 'hf', 'config.json'), 'utf8'));
  assert.deepEqual([config.num_labels, config.id2label], [2, { 0: 'helpfulness', 1: 'verbosity' }]);

  const bt = at('bt');
  const { stderr } = await run(['reward', '--model', at('tiny.gguf'), '--init-from', reg, '--reward-loss-type',
    'scaled_bt', '--data', at('pairs.jsonl'), ...LIMITS, '--max-steps', '2', '--out', bt]);
  assert.match(stderr, /head weights \[1\.0, 0\.0\] over \["helpfulness", "verbosity"\]/);
  assert.equal(JSON.parse(readFileSync(path.join(bt, 'hf', 'config.json'), 'utf8')).num_labels, 1);
  assert.ok(lines(path.join(bt, 'metrics.jsonl')).every((m) => Number.isFinite(m.loss) && 'accuracy' in m));

  // Ratings are not pairs: a reward run on them names what it wanted.
  await assert.rejects(run(['reward', '--model', at('tiny.gguf'), '--data', at('ratings.jsonl'), ...LIMITS]),
    /missing field "chosen"/);
});

test('the package trains regression with the same first numbers', async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
  const model = alignlab.Model.tiny(0);
  const config = { objective: 'regression', batchSize: 4, maxSteps: 3, learningRate: 5e-3, maxLength: 64, maxPromptLength: 32 };
  const trainer = await alignlab.Trainer.create(model, config, jsonl(RATINGS));
  try {
    const before = await trainer.evaluate();
    for (const [key, want] of [['loss', 9], ['mse/helpfulness', 6.5], ['mse/verbosity', 10 / 3], ['mae/helpfulness', 2]]) {
      assert.ok(Math.abs(before[key] - want) < 1e-5, `${key}: ${before[key]} vs ${want}`);
    }
    const steps = await trainer.step(3);
    assert.ok(steps[2].loss < steps[0].loss, JSON.stringify(steps));
  } finally {
    trainer.free();
    model.free();
  }
});
