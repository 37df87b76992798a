// Runs a helper script in a fresh Node process (each wasm instance picks its backend once) and parses its JSON.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.mjs';

const run = promisify(execFile);

export async function tinyDpoIn(backend, { timeoutMs = 15 * 60_000 } = {}) {
  const script = path.join(repoRoot, 'tests', 'helpers', 'tiny-dpo.mjs');
  try {
    const { stdout } = await run(process.execPath, [script, '--backend', backend], {
      cwd: repoRoot,
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1));
  } catch (err) {
    throw new Error(`tiny DPO run on ${backend} failed: ${err.message}\n${err.stderr ?? ''}`);
  }
}
