// The JS layer of pkg/ that needs no wasm: option names, errors before init.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TRAIN_OPTIONS, trainConfigToWasm, Model, Trainer, train, TrainingRun } from 'alignlab';

test('training options map camelCase to the core snake_case words', () => {
  assert.deepEqual(
    trainConfigToWasm({
      objective: 'dpo',
      beta: 0.1,
      learningRate: 5e-4,
      maxSteps: 5,
      numEpochs: 1,
      batchSize: 2,
      maxLength: 256,
      maxPromptLength: 128,
      warmupSteps: 0,
      weightDecay: 0,
      maxGradNorm: 1,
      seed: 0,
      chatTemplate: false,
      lossType: 'sigmoid',
      labelSmoothing: 0,
      logitsChunkBytes: 1 << 20,
    }),
    {
      objective: 'dpo',
      beta: 0.1,
      learning_rate: 5e-4,
      max_steps: 5,
      num_epochs: 1,
      batch_size: 2,
      max_length: 256,
      max_prompt_length: 128,
      warmup_steps: 0,
      weight_decay: 0,
      max_grad_norm: 1,
      seed: 0,
      chat_template: false,
      loss_type: 'sigmoid',
      label_smoothing: 0,
      logits_chunk_bytes: 1 << 20,
    },
  );
  // tests/node/eval.test.mjs checks the list against the core's own field names.
  assert.equal(new Set(TRAIN_OPTIONS).size, TRAIN_OPTIONS.length);
});

test('bad training options are TypeErrors that name the option', () => {
  assert.throws(() => trainConfigToWasm({ objective: 'dpo', learningrate: 1 }), /unknown training option "learningrate"/);
  assert.throws(() => trainConfigToWasm({ objective: 'ppo' }), /objective "ppo" is not one of dpo, reward/);
  assert.throws(() => trainConfigToWasm({ beta: 0.1 }), /needs an objective/);
  assert.throws(() => trainConfigToWasm({ objective: 'dpo', beta: '0.1' }), /beta must be a finite number/);
  assert.throws(() => trainConfigToWasm({ objective: 'dpo', maxSteps: NaN }), /maxSteps must be a finite number/);
  assert.deepEqual(trainConfigToWasm({ objective: 'reward', beta: undefined }), { objective: 'reward' });
});

test('using the API before init says so', () => {
  assert.throws(() => Model.tiny(0), /call `await init\(\)` first/);
  assert.throws(() => new Model(), /made by its static functions/);
  assert.throws(() => new Trainer(), /made by its static functions/);
  assert.throws(() => new TrainingRun(), /made by its static functions/);
});

test('a training run over a non-model fails through done, not by throwing', async () => {
  const run = train({}, { objective: 'dpo' }, '');
  await assert.rejects(run.done, /Trainer.create needs a Model/);
  assert.equal(run.state, 'failed');
  assert.match(run.error.message, /needs a Model/);
});
