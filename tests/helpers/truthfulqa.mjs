// Preference pairs from TruthfulQA (../shared/data/truthfulqa, Apache-2.0; see its SOURCE.md): the question as the
// prompt, "Best Answer" as chosen, "Best Incorrect Answer" as rejected, in file order. Short answers: small enough
// for the tiny byte-level model within max_length 256.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { sharedDataDir } from './paths.mjs';

export function truthfulqaCsvPath() {
  return path.join(sharedDataDir(), 'truthfulqa', 'TruthfulQA.csv');
}

/** The first `n` TruthfulQA questions as TRL preference records. */
export function truthfulqaPairs(n, { csvPath = truthfulqaCsvPath() } = {}) {
  const rows = parse(readFileSync(csvPath), { columns: true, skip_empty_lines: true });
  if (rows.length < n) throw new Error(`${csvPath}: ${rows.length} rows, wanted ${n}`);
  return rows.slice(0, n).map((row) => ({
    prompt: `Question: ${row.Question}\nAnswer:`,
    chosen: ` ${row['Best Answer']}`,
    rejected: ` ${row['Best Incorrect Answer']}`,
  }));
}

/** The same as JSONL text (one record per line, trailing newline). */
export function truthfulqaJsonl(n, options) {
  return truthfulqaPairs(n, options).map((p) => JSON.stringify(p)).join('\n') + '\n';
}
