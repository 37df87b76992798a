// `alignlab export` through the CLI: a DPO run's weights written as a Hugging Face folder load back as the same
// policy (eval of the folder = eval of the run's weights), a loaded-then-exported folder exports to the same bytes,
// and weights that are not safetensors are refused naming the file. (transformers loads the same writer's folders:
// crates/alignlab-core/tests/hf.rs; transformers.js: tests/node/transformersjs.test.mjs.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sharedDataDir } from '../helpers/paths.mjs';

const exec = promisify(execFile);
const cli = process.env.ALIGNLAB_CLI;
const skip = !cli && 'ALIGNLAB_CLI is unset (set it to the alignlab binary, e.g. target/debug/alignlab)';
const LIMITS = ['--max-length', '64', '--max-prompt-length', '32'];

let dir;
const at = (name) => path.join(dir, name);
const run = (args) => exec(cli, args, { timeout: 5 * 60_000 });
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

before(async () => {
  if (skip) return;
  assert.ok(existsSync(cli), `ALIGNLAB_CLI=${cli} does not exist`);
  dir = mkdtempSync(path.join(tmpdir(), 'alignlab-export-'));
  await run(['tiny-model', '--seed', '0', '--out', at('t0.gguf')]);
  const rows = JSON.parse(readFileSync(path.join(sharedDataDir(), 'llamafactory-demo', 'dpo_en_demo.json'), 'utf8')).slice(0, 6);
  writeFileSync(at('pairs.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  await run(['dpo', '--model', at('t0.gguf'), '--data', at('pairs.jsonl'), ...LIMITS, '--max-steps', '3', '--batch-size', '2',
    '--learning-rate', '5e-3', '--out', at('run')]);
});

test('an exported run loads back as the same policy', { skip }, async () => {
  const { stdout } = await run(['export', '--model', at('t0.gguf'), '--weights', at('run/model.safetensors'), '--out', at('exp')]);
  assert.match(stdout, /wrote/);
  for (const f of FILES) assert.ok(existsSync(at(`exp/${f}`)), f);
  const config = JSON.parse(readFileSync(at('exp/config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
  const evaluate = async (policy) =>
    JSON.parse((await run(['eval', '--model', at('t0.gguf'), ...policy, '--data', at('pairs.jsonl'), ...LIMITS])).stdout);
  const fromRun = await evaluate(['--weights', at('run/model.safetensors')]);
  const fromFolder = await evaluate(['--policy', at('exp')]);
  assert.deepEqual(fromFolder, fromRun);
  // the run moved the policy, so equal metrics are not the reference's zeros
  assert.ok(fromRun.overall['rewards/margins'] > 0, JSON.stringify(fromRun.overall));
});

test('exporting an exported folder gives the same files byte for byte', { skip }, async () => {
  await run(['export', '--model', at('exp'), '--out', at('exp2')]);
  for (const f of FILES) assert.ok(readFileSync(at(`exp2/${f}`)).equals(readFileSync(at(`exp/${f}`))), `${f} differs`);
});

test('weights that are not safetensors are refused, naming the file', { skip }, async () => {
  writeFileSync(at('bad.safetensors'), 'not a safetensors file');
  await assert.rejects(run(['export', '--model', at('t0.gguf'), '--weights', at('bad.safetensors'), '--out', at('bad')]), (err) => {
    assert.match(err.stderr, /bad\.safetensors/);
    return true;
  });
  assert.ok(!existsSync(at('bad')), 'nothing written');
});
