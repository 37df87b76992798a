// Reference log-probs cached beside the data, through the CLI: `alignlab ref-logps` writes the data with its values and
// a key; a run from it has the identical loss curve (metrics.jsonl byte for byte); a run of another model or another
// tokenisation refuses it, naming both keys; `--precompute-ref-log-probs` writes the cache once and reuses it.
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
const RUN = [...LIMITS, '--max-steps', '3', '--batch-size', '2', '--learning-rate', '5e-3'];

let dir;
const at = (name) => path.join(dir, name);
const run = (args) => exec(cli, args, { timeout: 5 * 60_000 });
const metrics = (out) => readFileSync(path.join(out, 'metrics.jsonl'), 'utf8');

before(async () => {
  if (skip) return;
  assert.ok(existsSync(cli), `ALIGNLAB_CLI=${cli} does not exist`);
  dir = mkdtempSync(path.join(tmpdir(), 'alignlab-ref-logps-'));
  await run(['tiny-model', '--seed', '0', '--out', at('t0.gguf')]);
  await run(['tiny-model', '--seed', '1', '--out', at('t1.gguf')]);
  // LLaMA-Factory's DPO and KTO demos (ShareGPT records, read as they are), six records each.
  for (const [file, name] of [['dpo_en_demo.json', 'pairs.jsonl'], ['kto_en_demo.json', 'kto.jsonl']]) {
    const rows = JSON.parse(readFileSync(path.join(sharedDataDir(), 'llamafactory-demo', file), 'utf8')).slice(0, 6);
    writeFileSync(at(name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
});

test('ref-logps fills every record and a run from the cache has the identical loss curve', { skip }, async () => {
  for (const [data, command] of [['pairs', 'dpo'], ['kto', 'kto']]) {
    const { stdout } = await run(['ref-logps', '--model', at('t0.gguf'), '--data', at(`${data}.jsonl`), ...LIMITS]);
    const summary = JSON.parse(stdout);
    assert.equal(summary.records, 6);
    assert.equal(summary.out, at(`${data}.ref.jsonl`));
    const records = readFileSync(summary.out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const fields = command === 'dpo' ? ['ref_chosen_logps', 'ref_rejected_logps'] : ['reference_logps', 'reference_KL_logps'];
    for (const r of records) for (const f of fields) assert.ok(Number.isFinite(r[f]) && r[f] < 0, `${f}: ${JSON.stringify(r).slice(0, 200)}`);
    const key = JSON.parse(readFileSync(`${summary.out}.key.json`, 'utf8'));
    assert.equal(key.key, summary.key);

    await run([command, '--model', at('t0.gguf'), '--data', at(`${data}.jsonl`), ...RUN, '--out', at(`${data}-plain`)]);
    await run([command, '--model', at('t0.gguf'), '--data', summary.out, ...RUN, '--out', at(`${data}-cached`)]);
    assert.equal(metrics(at(`${data}-cached`)), metrics(at(`${data}-plain`)), `${command}: metrics.jsonl differ`);
  }
});

test('a cache of another model or another tokenisation is refused, naming both keys', { skip }, async () => {
  const { key } = JSON.parse(readFileSync(at('pairs.ref.jsonl.key.json'), 'utf8'));
  const refused = async (args, differs) => {
    await assert.rejects(run(['dpo', '--data', at('pairs.ref.jsonl'), '--max-steps', '1', ...args, '--out', at('bad')]), (err) => {
      const message = err.stderr;
      assert.match(message, new RegExp(`computed under key ${key}, and this run's key is [0-9a-f]{64} \\(`), message);
      assert.ok(message.includes(differs), `${differs} missing from: ${message}`);
      return true;
    });
  };
  await refused(['--model', at('t1.gguf'), ...LIMITS], 'model sha256');
  await refused(['--model', at('t0.gguf'), '--max-length', '80', '--max-prompt-length', '32'], 'max_length 64 vs 80');
  await refused(['--model', at('t0.gguf'), ...LIMITS, '--chat-template'], 'chat_template false vs true');
});

test('--precompute-ref-log-probs writes the cache once, then reuses it', { skip }, async () => {
  const fresh = at('fresh.jsonl');
  writeFileSync(fresh, readFileSync(at('pairs.jsonl')));
  const first = await run(['dpo', '--model', at('t0.gguf'), '--data', fresh, ...RUN, '--precompute-ref-log-probs', '--out', at('pre1')]);
  assert.match(first.stderr, /reference log-probs of 6 examples written to .*fresh\.ref\.jsonl/);
  const second = await run(['dpo', '--model', at('t0.gguf'), '--data', fresh, ...RUN, '--precompute-ref-log-probs', '--out', at('pre2')]);
  assert.match(second.stderr, /reference log-probs: reusing .*fresh\.ref\.jsonl/);
  assert.equal(metrics(at('pre2')), metrics(at('pre1')));
  // another model makes the cache stale: computed again, not refused
  const other = await run(['dpo', '--model', at('t1.gguf'), '--data', fresh, ...RUN, '--precompute-ref-log-probs', '--out', at('pre3')]);
  assert.match(other.stderr, /stale \(another model or tokenisation\): computing them again/);
});
