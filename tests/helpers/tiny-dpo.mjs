// The fixed tiny DPO run that every surface must agree on: the tiny model of seed 0, the first 16 TruthfulQA pairs,
// 5 optimizer steps. Step 1's loss is ln 2 on every surface (the policy equals the reference before any update).
//
// As a script it runs the run in a fresh process (one wasm instance chooses one backend) and prints JSON:
//   node tests/helpers/tiny-dpo.mjs --backend cpu|webgpu [--model gguf|tiny]
//   → {"backend": "cpu", "metrics": [{"step": 1, "loss": 0.6931…, …}, …]}
import { pathToFileURL } from 'node:url';
import { truthfulqaJsonl } from './truthfulqa.mjs';

/** The run's options (camelCase, as the JS API takes them). */
export const TINY_DPO = Object.freeze({
  objective: 'dpo',
  beta: 0.1,
  learningRate: 5e-4,
  maxSteps: 5,
  batchSize: 2,
  maxLength: 256,
  maxPromptLength: 128,
  seed: 0,
});

/** The same options as the CLI's flags. */
export const TINY_DPO_FLAGS = [
  '--beta', '0.1',
  '--learning-rate', '5e-4',
  '--max-steps', '5',
  '--batch-size', '2',
  '--max-length', '256',
  '--max-prompt-length', '128',
  '--seed', '0',
];

export const TINY_DPO_PAIRS = 16;
export const tinyDpoData = () => truthfulqaJsonl(TINY_DPO_PAIRS);

/** Runs the tiny DPO run with an initialised alignlab module; resolves with every step's metrics. */
export async function runTinyDpo(alignlab, { model: which = 'gguf' } = {}) {
  const model = which === 'tiny' ? alignlab.Model.tiny(0) : alignlab.Model.fromGguf(alignlab.tinyGguf(0));
  const trainer = await alignlab.Trainer.create(model, TINY_DPO, tinyDpoData());
  try {
    const metrics = [];
    while (trainer.stepCount() < trainer.totalSteps()) metrics.push(...(await trainer.step(1)));
    return metrics;
  } finally {
    trainer.free();
    model.free();
  }
}

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const backend = arg('--backend', 'cpu');
  const alignlab = await import('alignlab');
  const result = await alignlab.init({ backend, nodeWebgpu: backend === 'webgpu' });
  const metrics = await runTinyDpo(alignlab, { model: arg('--model', 'gguf') });
  process.stdout.write(JSON.stringify({ backend: result.backend, adapter: result.adapter, metrics }) + '\n');
  // Dawn may keep the event loop alive; the answer is out, so leave.
  process.exit(0);
}
