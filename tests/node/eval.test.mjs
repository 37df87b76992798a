// The core's eval module and DPO family through the package (wasm CPU): the numbers the Rust tests pin, and the
// CLI's numbers for the KL and the implicit-reward metrics of KTO examples and lists (with ALIGNLAB_CLI).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as alignlab from 'alignlab';
import { sharedDataDir, wasmBuilt } from '../helpers/paths.mjs';
import { truthfulqaJsonl, truthfulqaPairs } from '../helpers/truthfulqa.mjs';

before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
});

const close = (got, want, tol, what) => assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want}`);

test('agreement of a hand-computed table: Cohen κ = 0.4 (Wikipedia yes/no example)', () => {
  // 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15: p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5,
  // κ = (0.7 − 0.5)/(1 − 0.5) = 0.4.
  const labels = [];
  const add = (n, a, b) => {
    for (let i = 0; i < n; i++) {
      const item = labels.length / 2;
      labels.push({ item, annotator: 'A', label: a }, { item, annotator: 'B', label: b });
    }
  };
  add(20, 'yes', 'yes');
  add(5, 'yes', 'no');
  add(10, 'no', 'yes');
  add(15, 'no', 'no');
  const report = alignlab.agreement(labels);
  assert.deepEqual(report.annotatorIds, ['A', 'B']);
  assert.equal(report.items, 50);
  close(report.cohen_kappa[0][1], 0.4, 1e-12, 'Cohen κ');
  assert.equal(report.disagreements, 15);
  assert.equal(report.item_agreement.filter((a) => a === 0).length, 15);
  assert.throws(() => alignlab.agreement([{ item: 1, annotator: 'A', label: 1.5 }]), /integer or a string/);
});

const pandalm = path.join(sharedDataDir(), 'pandalm-human-pairwise', 'testset-v1.json');

test('PandaLM three-rater agreement equals the core test (scripts/pandalm_agreement.py)', { skip: !existsSync(pandalm) && `${pandalm} is absent` }, () => {
  const rows = JSON.parse(readFileSync(pandalm, 'utf8'));
  const labels = rows.flatMap((r) => [1, 2, 3].map((a) => ({ item: r.idx, annotator: `annotator${a}`, label: r[`annotator${a}`] })));
  const report = alignlab.agreement(labels);
  assert.equal(report.items, 999);
  assert.equal(report.unanimous, 879);
  close(report.fleiss_kappa, 0.8641753649975505, 1e-12, "Fleiss' κ");
  close(report.alpha, 0.8642206851960816, 1e-12, "Krippendorff's α");
  close(report.cohen_kappa[0][1], 0.8520226785167023, 1e-12, 'κ(1, 2)');
});

test('reward metrics and AUROC', () => {
  // Margins 1, 2, −1, 0: accuracy (1 + 1 + 0 + ½)/4 = 0.625 with the tie as half.
  const m = alignlab.rewardMetrics([1, 2, 0, 0.5], [0, 0, 1, 0.5]);
  close(m['rewards/accuracies'], 0.625, 1e-12, 'accuracy');
  close(m['rewards/margins'], 0.5, 1e-12, 'margin');
  assert.equal(m.reliability.length, 10);
  close(alignlab.auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75, 1e-12, 'AUROC');
});

test('every DPO-family loss trains through the package; reference-free ones start without a reference', async () => {
  const data = truthfulqaJsonl(8);
  const model = alignlab.Model.tiny(0);
  try {
    for (const [lossType, extra] of [
      ['ipo', {}],
      ['simpo', { beta: 2 }],
      [['sigmoid', 'sft'], { lossWeights: [1, 0.5] }],
      ['orpo', { gradientAccumulationSteps: 2 }],
    ]) {
      const config = { objective: 'dpo', lossType, learningRate: 2e-3, batchSize: 2, maxSteps: 3, maxLength: 160, maxPromptLength: 80, ...extra };
      const trainer = await alignlab.Trainer.create(model, config, data);
      const metrics = await trainer.step(3);
      trainer.free();
      assert.equal(metrics.length, 3, JSON.stringify(lossType));
      assert.ok(metrics.every((m) => Number.isFinite(m.loss)), JSON.stringify(metrics));
    }
    await assert.rejects(
      alignlab.Trainer.create(model, { objective: 'dpo', lossType: 'dpoo' }, data),
      /unknown variant `dpoo`/,
    );
  } finally {
    model.free();
  }
});

test("the package's option list is the core's: no option is missing or extra", () => {
  const core = Object.keys(alignlab.defaultTrainConfig()).sort();
  assert.deepEqual([...alignlab.TRAIN_OPTIONS].sort(), core);
});

test('held-out pairs start at ln 2 and report eval_ metrics', async () => {
  const model = alignlab.Model.tiny(0);
  const trainer = await alignlab.Trainer.create(
    model,
    { objective: 'dpo', learningRate: 2e-3, maxSteps: 2, maxLength: 160, maxPromptLength: 80, evalSplit: 0.25 },
    truthfulqaJsonl(8),
  );
  try {
    const before = await trainer.evaluateHeldOut();
    assert.ok(Math.abs(before.eval_loss - Math.log(2)) < 1e-5, JSON.stringify(before));
    await trainer.step(2);
    const after = await trainer.evaluateHeldOut();
    assert.ok(Number.isFinite(after['eval_rewards/accuracies']) && after.step === 2, JSON.stringify(after));
  } finally {
    trainer.free();
    model.free();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// KL to the reference and implicit-reward evaluation of KTO examples and lists (the core's eval/kl, eval/implicit)

const execCli = promisify(execFile);
const cli = process.env.ALIGNLAB_CLI;
const needsCli = !cli && 'ALIGNLAB_CLI is unset (set it to the alignlab binary, e.g. target/debug/alignlab)';
const KL_PROMPTS = ['Question: What is the capital of France?\nAnswer:', [{ role: 'user', content: 'Say hi.' }]];
const KL_OPTIONS = { samples: 3, maxNewTokens: 6, seed: 5 };

/** LLaMA-Factory's KTO demo (6 records) and lists of three TruthfulQA answers (best, incorrect, another question's). */
function evalData() {
  const kto = JSON.parse(readFileSync(path.join(sharedDataDir(), 'llamafactory-demo', 'kto_en_demo.json'), 'utf8'));
  const pairs = truthfulqaPairs(7);
  const lists = pairs.slice(0, 6).map((p, i) => ({
    prompt: p.prompt,
    responses: [p.chosen, p.rejected, pairs[i + 1].rejected],
    ranking: [0, 1, 2],
  }));
  const jsonl = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  return { kto: jsonl(kto.slice(0, 6)), lists: jsonl(lists) };
}
const EVAL_LIMITS = { maxLength: 64, maxPromptLength: 32 };

test('KL to the reference is exactly 0 at policy = reference', async () => {
  const model = alignlab.Model.tiny(0);
  try {
    const r = await alignlab.klToReference(model, model, KL_PROMPTS, KL_OPTIONS);
    assert.equal(r['objective/kl'], 0);
    assert.deepEqual(r.per_prompt, [0, 0]);
    assert.equal(r.samples_per_prompt, 3);
    assert.ok(r['objective/entropy'] > 0 && r['completions/mean_length'] > 0 && r['completions/mean_length'] <= 6, JSON.stringify(r));
    await assert.rejects(alignlab.klToReference(model, model, KL_PROMPTS, { samples: 1, maxNewTokens: 0 }), /max_new_tokens: must be at least 1/);
    assert.throws(() => alignlab.unpairedMetrics([], [], []), /no items/);
  } finally {
    model.free();
  }
});

test('implicit-reward metrics of KTO examples and lists at policy = reference are chance', async () => {
  const model = alignlab.Model.tiny(0);
  const { kto, lists } = evalData();
  try {
    const u = await alignlab.evaluateData(model, model, kto, EVAL_LIMITS);
    assert.equal(u.format, 'unpaired');
    assert.equal(u.examples, 6);
    assert.equal(u.overall['rewards/chosen'], 0);
    assert.equal(u.overall.sign_accuracy, 0.5);
    assert.equal(u.overall.kl, 0);
    assert.equal(u.overall['count/chosen'] + u.overall['count/rejected'], 6);
    const l = await alignlab.evaluateData(model, model, lists, EVAL_LIMITS);
    assert.equal(l.format, 'lists');
    assert.equal(l.overall['count/pairs'], 18);
    assert.equal(l.overall['rewards/accuracies'], 0.5);
    assert.equal(l.overall.kendall_tau, null, 'every reward is tied: τ_b is 0/0');
  } finally {
    model.free();
  }
});

test('KTO and ranking metrics of hand-computed numbers', () => {
  // The core's unit-test values: rewards/chosen 0.1, rewards/rejected −0.3, sign accuracy 2.5/4, z0 = 1, AUROC 3/4.
  const u = alignlab.unpairedMetrics([0.4, -0.2, -0.6, 0], [-10, -12, -20, -30], [true, true, false, false], { klRatios: [-1, 3, 0, 2] });
  close(u['rewards/chosen'], 0.1, 1e-12, 'rewards/chosen');
  close(u['rewards/margins'], 0.4, 1e-12, 'rewards/margins');
  assert.deepEqual([u.sign_accuracy, u.kl, u.auroc, u['logps/rejected']], [0.625, 1, 0.75, -25]);
  // One list reversed: accuracy 0, τ_b −1; gains 1, √2 − 1, 0 at positions 3, 2, 1 → NDCG (g/log2 3 + 1/2)/(1 + g/log2 3).
  const r = alignlab.rankingMetrics([[1, 2, 3]], [[1, 0.5, 0]]);
  const g = Math.SQRT2 - 1;
  assert.deepEqual([r['rewards/accuracies'], r.kendall_tau, r['count/pairs']], [0, -1, 3]);
  close(r.ndcg, (g / Math.log2(3) + 0.5) / (1 + g / Math.log2(3)), 1e-12, 'NDCG');
});

test('the package gives the CLI numbers: KL (same models, prompts, seed) and eval --data on KTO examples and lists', { skip: needsCli }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'alignlab-eval-'));
  const file = (name, text) => {
    writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const [t0, t1] = [file('t0.gguf', alignlab.tinyGguf(0)), file('t1.gguf', alignlab.tinyGguf(1))];
  const [reference, policy] = [alignlab.Model.fromGguf(readFileSync(t0)), alignlab.Model.fromGguf(readFileSync(t1))];
  const cliJson = async (args) => JSON.parse((await execCli(cli, ['eval', '--model', t0, '--policy', t1, ...args], { timeout: 5 * 60_000 })).stdout);
  try {
    const prompts = file('prompts.jsonl', KL_PROMPTS.map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
    const native = (await cliJson(['--kl-prompts', prompts, '--kl-samples', '3', '--kl-max-new-tokens', '6', '--seed', '5'])).kl;
    const js = await alignlab.klToReference(policy, reference, KL_PROMPTS, KL_OPTIONS);
    console.log(`KL tiny(1)‖tiny(0): CLI ${native['objective/kl']}, npm ${js['objective/kl']}`);
    assert.equal(js['completions/mean_length'], native['completions/mean_length']);
    assert.ok(Math.abs(js['objective/kl']) > 1e-3, 'two different models: the KL is not 0');
    close(js['objective/kl'], native['objective/kl'], 1e-4, 'objective/kl');
    close(js['objective/entropy'], native['objective/entropy'], 1e-3, 'objective/entropy');

    const { kto, lists } = evalData();
    for (const [name, text] of [['kto.jsonl', kto], ['lists.jsonl', lists]]) {
      const want = await cliJson(['--data', file(name, text), '--max-length', '64', '--max-prompt-length', '32']);
      const got = await alignlab.evaluateData(policy, reference, text, EVAL_LIMITS);
      assert.equal(got.format, want.format);
      for (const [key, value] of Object.entries(want.overall)) {
        if (value === null) assert.equal(got.overall[key], null, key);
        else close(got.overall[key], value, 1e-4 * Math.max(1, Math.abs(value)), `${name} ${key}`);
      }
    }
  } finally {
    policy.free();
    reference.free();
  }
});
