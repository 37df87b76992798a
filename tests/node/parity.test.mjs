// The same tiny DPO run (tests/helpers/tiny-dpo.mjs) on every surface gives the same first five losses ± 1e-4:
// Node on wasm CPU, Node on WebGPU (the `webgpu` package, Dawn over SwiftShader here), and the native CLI on CPU.
// Each run is its own process: one wasm instance chooses its backend once.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { wasmBuilt } from '../helpers/paths.mjs';
import { tinyDpoIn } from '../helpers/run-node.mjs';
import { TINY_DPO_FLAGS, tinyDpoData } from '../helpers/tiny-dpo.mjs';

const LN2 = Math.log(2);
const TOLERANCE = 1e-4;
const exec = promisify(execFile);

function assertSameLosses(actual, expected, what) {
  const a = actual.map((m) => m.loss);
  const e = expected.map((m) => m.loss);
  assert.equal(a.length, 5, `${what}: ${a.length} steps`);
  for (let i = 0; i < 5; i++) {
    assert.ok(Math.abs(a[i] - e[i]) <= TOLERANCE, `${what}: step ${i + 1} loss ${a[i]} vs wasm CPU ${e[i]}\n${a}\n${e}`);
  }
}

let cpu;
before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  cpu = await tinyDpoIn('cpu');
});

test('wasm CPU: step 1 loss is ln 2', () => {
  assert.equal(cpu.backend, 'cpu');
  assert.ok(Math.abs(cpu.metrics[0].loss - LN2) < TOLERANCE, `${cpu.metrics[0].loss}`);
});

test('Node WebGPU (webgpu package) gives the wasm CPU losses', async () => {
  const gpu = await tinyDpoIn('webgpu');
  assert.equal(gpu.backend, 'webgpu');
  console.log(`webgpu adapter: ${JSON.stringify(gpu.adapter)}; losses ${gpu.metrics.map((m) => m.loss)}`);
  assertSameLosses(gpu.metrics, cpu.metrics, 'Node WebGPU');
});

const cli = process.env.ALIGNLAB_CLI;
test(
  'native CLI on CPU gives the wasm CPU losses',
  { skip: !cli && 'ALIGNLAB_CLI is unset (set it to the alignlab binary, e.g. target/debug/alignlab)' },
  async () => {
    assert.ok(existsSync(cli), `ALIGNLAB_CLI=${cli} does not exist`);
    const dir = mkdtempSync(path.join(tmpdir(), 'alignlab-parity-'));
    const model = path.join(dir, 'tiny.gguf');
    const data = path.join(dir, 'pairs.jsonl');
    const out = path.join(dir, 'run');
    await exec(cli, ['tiny-model', '--seed', '0', '--out', model]);
    writeFileSync(data, tinyDpoData());
    await exec(cli, ['dpo', '--model', model, '--data', data, ...TINY_DPO_FLAGS, '--out', out], { timeout: 10 * 60_000 });
    const metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l))
      .filter((m) => typeof m.loss === 'number' && 'learning_rate' in m);
    console.log(`native CLI losses ${metrics.map((m) => m.loss)}`);
    assertSameLosses(metrics, cpu.metrics, 'native CLI');
    // the CLI's tiny model is the wasm's tinyGguf(0), byte for byte
    const alignlab = await import('alignlab');
    await alignlab.init({ backend: 'cpu' });
    assert.deepEqual(readFileSync(model), Buffer.from(alignlab.tinyGguf(0)));
  },
);
