// transformers.js (@huggingface/transformers, ONNX Runtime for Node) loads alignlab's Hugging Face export:
// tests/fixtures/transformersjs-tiny-llama is a folder alignlab's exporter wrote plus onnx/model.onnx converted from
// it with optimum (scripts/make-onnx-fixture.py). The same folder is loaded by alignlab's npm package from its
// safetensors, and the two must agree: token ids and chat template render, and log-probs of responses to 1e-4.
// transformers.js's logits are also checked against transformers' (Python) for the same weights.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as alignlab from 'alignlab';
import { AutoModelForCausalLM, AutoTokenizer, Tensor, env } from '@huggingface/transformers';
import { repoRoot, wasmBuilt } from '../helpers/paths.mjs';

const NAME = 'transformersjs-tiny-llama';
const FOLDER = path.join(repoRoot, 'tests', 'fixtures', NAME);
const HF_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
// transformers' logits for the weights this folder was exported from (scripts/make-hf-fixture.py).
const TRANSFORMERS = JSON.parse(
  readFileSync(path.join(repoRoot, 'crates/alignlab-core/tests/fixtures/hf-tiny-llama/expected.json'), 'utf8'),
);
const TOL = 1e-4;

env.allowRemoteModels = false;
env.localModelPath = path.join(repoRoot, 'tests', 'fixtures');

let ours, tokenizer, model, eosId;
before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
  ours = alignlab.Model.fromHfFiles(HF_FILES.map((f) => [f, readFileSync(path.join(FOLDER, f))]));
  tokenizer = await AutoTokenizer.from_pretrained(NAME);
  model = await AutoModelForCausalLM.from_pretrained(NAME, { dtype: 'fp32', device: 'cpu' });
  eosId = JSON.parse(readFileSync(path.join(FOLDER, 'config.json'), 'utf8')).eos_token_id;
});

/** transformers.js's logits for `ids` (one sequence, no cache) as rows of the vocabulary. */
async function logitsOf(ids) {
  const n = ids.length;
  const inputIds = new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]);
  const attentionMask = new Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
  const { logits } = await model({ input_ids: inputIds, attention_mask: attentionMask });
  const [, rows, vocab] = logits.dims;
  assert.equal(rows, n);
  return Array.from({ length: n }, (_, i) => logits.data.subarray(i * vocab, (i + 1) * vocab));
}

/** Σ log p(response[t] | prompt, response[<t]) from transformers.js's logits, log-softmax in f64. */
async function responseLogp(prompt, response) {
  const rows = await logitsOf([...prompt, ...response]);
  let sum = 0;
  response.forEach((token, t) => {
    const row = rows[prompt.length + t - 1];
    const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
    const logZ = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    sum += row[token] - logZ;
  });
  return sum;
}

const TEXTS = [
  'The capital of France is Paris.',
  'What is the capital of Germany? Berlin',
  'Once upon a time, there was a little girl named Lily.',
  '  odd   spacing\nand a newline, émigré ☃',
];
const MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'What is the capital of France?' },
  { role: 'assistant', content: 'Paris.' },
  { role: 'user', content: 'And of Germany?' },
];

test('transformers.js tokenizes as alignlab does, special tokens and chat template included', () => {
  for (const text of [...TEXTS, '<|im_start|>user\nhi<|im_end|>\n']) {
    const want = Array.from(ours.tokenize(text));
    assert.deepEqual(tokenizer.encode(text, { add_special_tokens: false }), want, JSON.stringify(text));
    assert.deepEqual(tokenizer.encode(text), want, `${JSON.stringify(text)} with special tokens (none are added)`);
    assert.equal(tokenizer.decode(want), text);
  }
  assert.equal(tokenizer.eos_token_id, eosId);
  for (const addGenerationPrompt of [false, true]) {
    const rendered = ours.applyChatTemplate(MESSAGES, { addGenerationPrompt });
    const js = tokenizer.apply_chat_template(MESSAGES, { tokenize: false, add_generation_prompt: addGenerationPrompt });
    assert.equal(js, rendered);
    const ids = tokenizer.apply_chat_template(MESSAGES, {
      add_generation_prompt: addGenerationPrompt,
      return_tensor: false,
      return_dict: false,
    });
    assert.deepEqual(ids, Array.from(ours.tokenize(rendered)));
  }
  // The chat prompt transformers (Python) encoded for its reference logits.
  assert.deepEqual(tokenizer.encode(TRANSFORMERS.chat, { add_special_tokens: false }), TRANSFORMERS.chat_ids);
});

test("transformers.js's logits equal transformers' for the weights alignlab exported", async () => {
  const rows = await logitsOf(TRANSFORMERS.input_ids);
  let worst = 0;
  rows.forEach((row, i) => row.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - TRANSFORMERS.logits[i][j])))));
  assert.ok(worst <= TOL, `max |logit diff| ${worst}`);
  console.log(`transformers.js vs transformers: max |logit diff| ${worst.toExponential(2)} over ${rows.length}×300`);
});

test("alignlab's log-probs of responses equal transformers.js's on the same export", async () => {
  // Plain records: alignlab scores prompt ids ++ response ids ++ eos (data.rs tokenize_responses). Evaluated as
  // unpaired examples, one desirable and one undesirable, logps/chosen and logps/rejected are those two sums.
  const pairs = [
    { prompt: 'What is the capital of France?', chosen: ' Paris is the capital of France.', rejected: ' Berlin.' },
    { prompt: 'Once upon a time,', chosen: ' there was a little girl named Lily.', rejected: ' she loved the park' },
    { prompt: TRANSFORMERS.chat, chosen: 'Paris<|im_end|>', rejected: ' ' },
  ];
  let worst = 0;
  for (const pair of pairs) {
    const data = [
      { prompt: pair.prompt, completion: pair.chosen, label: true },
      { prompt: pair.prompt, completion: pair.rejected, label: false },
    ];
    const jsonl = data.map((r) => JSON.stringify(r)).join('\n');
    const { format, overall } = await alignlab.evaluateData(ours, ours, jsonl, { chatTemplate: false });
    assert.equal(format, 'unpaired');
    const prompt = Array.from(ours.tokenize(pair.prompt));
    for (const which of ['chosen', 'rejected']) {
      const response = [...ours.tokenize(pair[which]), eosId];
      const js = await responseLogp(prompt, response);
      const got = overall[`logps/${which}`];
      worst = Math.max(worst, Math.abs(got - js));
      const what = `${which} of ${JSON.stringify(pair.prompt)}`;
      assert.ok(Math.abs(got - js) <= TOL, `${what}: alignlab ${got}, transformers.js ${js}`);
    }
  }
  const n = 2 * pairs.length;
  console.log(`alignlab vs transformers.js: max |Δ log-prob| ${worst.toExponential(2)} over ${n} responses`);
});
