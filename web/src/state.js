// The page's state that is not the DOM: the metrics stream as chart columns, the pairs text, the option form's
// values. Plain classes and functions, tested in Node without a browser (tests/node/web-state.test.mjs).
import { checkPreferenceJsonl, preferenceLine } from 'alignlab/preferences';

/** The metric drawn beside the loss, per objective (TRL's names). */
export const ACCURACY_KEY = Object.freeze({ dpo: 'rewards/accuracies', reward: 'accuracy' });

/** The metrics table's columns, per objective. */
export const TABLE_COLUMNS = Object.freeze({
  dpo: ['step', 'loss', 'rewards/accuracies', 'rewards/margins', 'rewards/chosen', 'rewards/rejected', 'grad_norm', 'learning_rate'],
  reward: ['step', 'loss', 'accuracy', 'margin', 'mean_reward', 'grad_norm', 'learning_rate'],
});

/** The metrics of one run as uPlot columns: `[steps, loss, accuracy]` ("series[i] maps to data[i]"). */
export class MetricsSeries {
  constructor(objective) {
    if (!(objective in ACCURACY_KEY)) throw new TypeError(`unknown objective ${objective}`);
    this.objective = objective;
    this.accuracyKey = ACCURACY_KEY[objective];
    this.rows = [];
    this.steps = [];
    this.loss = [];
    this.accuracy = [];
  }

  push(batch) {
    for (const m of batch) {
      this.rows.push(m);
      this.steps.push(m.step);
      this.loss.push(m.loss);
      this.accuracy.push(m[this.accuracyKey] ?? null);
    }
  }

  get count() {
    return this.rows.length;
  }

  get last() {
    return this.rows.at(-1) ?? null;
  }

  columns() {
    return [this.steps, this.loss, this.accuracy];
  }

  /** The last `n` rows, oldest first. */
  tail(n) {
    return this.rows.slice(-n);
  }

  /** First and latest loss, for the line under the chart. */
  summary() {
    if (!this.count) return null;
    return { steps: this.count, firstLoss: this.loss[0], lastLoss: this.loss.at(-1), lastAccuracy: this.accuracy.at(-1) };
  }
}

/** A metric value as the table shows it. */
export function formatMetric(key, value) {
  if (value === null || value === undefined) return '–';
  if (typeof value !== 'number') return String(value);
  if (key === 'step' || key === 'num_tokens') return String(value);
  if (key === 'learning_rate') return value.toExponential(2);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1e-3 || value === 0 ? value.toFixed(4) : value.toExponential(3);
}

/** The pairs text with one more pair appended as a JSONL line. */
export function appendPair(text, { prompt, chosen, rejected }) {
  const line = preferenceLine({ prompt, chosen, rejected });
  const trimmed = text.replace(/\s+$/, '');
  return trimmed ? `${trimmed}\n${line}\n` : `${line}\n`;
}

/** What the pairs panel says: the count, or the first error in "file:line: message" form. */
export function describePairs(text, file) {
  const check = checkPreferenceJsonl(text, { file });
  if (check.firstError) {
    const more = check.bad > 1 ? ` (and ${check.bad - 1} more bad line${check.bad > 2 ? 's' : ''})` : '';
    return { ok: false, count: check.count, message: check.firstError + more };
  }
  return { ok: check.count > 0, count: check.count, message: check.count === 1 ? '1 pair' : `${check.count} pairs` };
}

/** The training form's values as a TrainConfig: numbers parsed, empty fields left to the core's defaults. */
export function trainConfigFromForm(values) {
  const config = { objective: values.objective };
  const numbers = ['learningRate', 'maxSteps', 'batchSize', 'maxLength', 'maxPromptLength'];
  if (values.objective === 'dpo') numbers.unshift('beta');
  for (const key of numbers) {
    const raw = String(values[key] ?? '').trim();
    if (raw === '') continue;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new TypeError(`${key}: ${JSON.stringify(raw)} is not a number`);
    config[key] = value;
  }
  return config;
}
