// Writes web/public/truthfulqa-sample.jsonl, the page's "Sample pairs" button: the first 16 TruthfulQA questions
// as preference pairs (Best Answer ≻ Best Incorrect Answer). TruthfulQA: sylinrl/TruthfulQA, Apache-2.0; read from
// ../shared/data/truthfulqa (or $ALIGNLAB_SHARED). Run: node web/scripts/make-sample-pairs.mjs
import { writeFileSync } from 'node:fs';
import { truthfulqaPairs } from '../../tests/helpers/truthfulqa.mjs';

const out = new URL('../public/truthfulqa-sample.jsonl', import.meta.url);
const pairs = truthfulqaPairs(16).map((p) => ({ ...p, source: 'truthfulqa (sylinrl/TruthfulQA, Apache-2.0)' }));
writeFileSync(out, pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
console.log(`wrote ${pairs.length} pairs to ${out.pathname}`);
