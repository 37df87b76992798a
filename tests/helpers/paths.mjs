// Where the tests find things: the repository, the shared data beside it, the optional model and CLI.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** ../shared/data beside the repository, or $ALIGNLAB_SHARED (the shared folder or its data/ folder). */
export function sharedDataDir() {
  const fromEnv = process.env.ALIGNLAB_SHARED;
  if (fromEnv) {
    const data = path.join(fromEnv, 'data');
    return existsSync(data) ? data : fromEnv;
  }
  return path.resolve(repoRoot, '../shared/data');
}

export const smollm2Path = path.join(repoRoot, 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');

export const wasmBuilt = () =>
  existsSync(path.join(repoRoot, 'pkg', 'wasm', 'alignlab_wasm.js')) &&
  existsSync(path.join(repoRoot, 'pkg', 'wasm', 'alignlab_wasm_bg.wasm'));
