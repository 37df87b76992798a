// The page's state without a DOM (web/src/state.js): chart columns, table formatting, pairs text, form values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MetricsSeries,
  appendPair,
  describePairs,
  formatMetric,
  trainConfigFromForm,
} from '../../web/src/state.js';

test('MetricsSeries keeps uPlot columns: steps, loss, accuracy by objective', () => {
  const dpo = new MetricsSeries('dpo');
  dpo.push([
    { step: 1, loss: 0.69, 'rewards/accuracies': 0.5 },
    { step: 2, loss: 0.6, 'rewards/accuracies': 1 },
  ]);
  assert.deepEqual(dpo.columns(), [[1, 2], [0.69, 0.6], [0.5, 1]]);
  assert.deepEqual(dpo.summary(), { steps: 2, firstLoss: 0.69, lastLoss: 0.6, lastAccuracy: 1 });
  const rm = new MetricsSeries('reward');
  rm.push([{ step: 1, loss: 0.7, accuracy: 0.25 }]);
  assert.deepEqual(rm.columns(), [[1], [0.7], [0.25]]);
  assert.equal(rm.accuracyKey, 'accuracy');
  assert.throws(() => new MetricsSeries('ppo'), /unknown objective/);
});

test('tail gives the last rows oldest first', () => {
  const s = new MetricsSeries('dpo');
  s.push(Array.from({ length: 12 }, (_, i) => ({ step: i + 1, loss: 1 / (i + 1) })));
  assert.deepEqual(s.tail(3).map((m) => m.step), [10, 11, 12]);
});

test('formatMetric', () => {
  assert.equal(formatMetric('step', 3), '3');
  assert.equal(formatMetric('loss', 0.693147), '0.6931');
  assert.equal(formatMetric('learning_rate', 0.0005), '5.00e-4');
  assert.equal(formatMetric('rewards/margins', 0.00001234), '1.234e-5');
  assert.equal(formatMetric('loss', undefined), '–');
});

test('appendPair adds one JSONL line and describePairs counts it', () => {
  let text = '';
  text = appendPair(text, { prompt: 'p', chosen: 'c', rejected: 'r' });
  text = appendPair(text + '\n\n', { prompt: 'p2', chosen: 'c2', rejected: 'r2' });
  assert.equal(text.split('\n').filter(Boolean).length, 2);
  assert.deepEqual(describePairs(text, 'pairs.jsonl'), { ok: true, count: 2, message: '2 pairs' });
  const bad = describePairs(text + '{"prompt":"p","chosen":"c"}\n{}\n', 'pairs.jsonl');
  assert.equal(bad.ok, false);
  assert.equal(bad.message, 'pairs.jsonl:3: missing field rejected (and 1 more bad line)');
  assert.equal(describePairs('', 'pairs.jsonl').ok, false);
});

test('trainConfigFromForm parses numbers, drops empty fields and beta for the reward model', () => {
  assert.deepEqual(
    trainConfigFromForm({ objective: 'dpo', beta: '0.1', learningRate: '5e-4', maxSteps: '20', batchSize: '', maxLength: '256' }),
    { objective: 'dpo', beta: 0.1, learningRate: 5e-4, maxSteps: 20, maxLength: 256 },
  );
  assert.deepEqual(trainConfigFromForm({ objective: 'reward', beta: '0.1', maxSteps: '3' }), { objective: 'reward', maxSteps: 3 });
  assert.throws(() => trainConfigFromForm({ objective: 'dpo', beta: 'abc' }), /beta: "abc" is not a number/);
});
