// The Label view's domain without a DOM (web/src/label/tasks.js, formats.js): keys → label values in the item's
// own order, seeded display orders, candidates JSONL in, TRL JSONL and project files out, merging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as alignlab from 'alignlab';
import { agreementTables, describeReport } from '../../web/src/label/agreement.js';
import { wasmBuilt } from '../helpers/paths.mjs';
import { TASKS, displayOrder, dropRow, rankingGroups, describeValue, tagKeys, upgradePairwiseValue } from '../../web/src/label/tasks.js';
import {
  candidateItems,
  candidatesPerPrompt,
  labelsJsonl,
  newProject,
  newerLabels,
  parseCandidates,
  parsePrompts,
  projectFile,
  readProjectFile,
  stableStringify,
  trainingJsonl,
} from '../../web/src/label/formats.js';

test('displayOrder is a seeded permutation: the same for the same seed and item, varied across items', () => {
  const orders = Array.from({ length: 200 }, (_, i) => displayOrder(42, i, 2));
  assert.deepEqual(orders, Array.from({ length: 200 }, (_, i) => displayOrder(42, i, 2)));
  const swapped = orders.filter((o) => o[0] === 1).length;
  assert.ok(swapped > 70 && swapped < 130, `${swapped} of 200 swapped`);
  assert.notDeepEqual(orders, Array.from({ length: 200 }, (_, i) => displayOrder(43, i, 2)));
  const four = displayOrder(7, 3, 4);
  assert.deepEqual([...four].sort(), [0, 1, 2, 3]);
});

test('pairwise keys 1–7 are the 7-point scale, strength 1..3, with the winner in item order whatever side it was shown on', () => {
  const { key, keys } = TASKS.pairwise;
  // order [1, 0]: the item's second response was shown as A (left)
  assert.deepEqual(key({}, '1', [1, 0]).save, { winner: 1, strength: 3, both_bad: false });
  assert.deepEqual(key({}, '2', [1, 0]).save, { winner: 1, strength: 2, both_bad: false });
  assert.deepEqual(key({}, '3', [1, 0]).save, { winner: 1, strength: 1, both_bad: false });
  assert.deepEqual(key({}, '5', [1, 0]).save, { winner: 0, strength: 1, both_bad: false });
  assert.deepEqual(key({}, '7', [0, 1]).save, { winner: 1, strength: 3, both_bad: false });
  assert.deepEqual(key({}, '4', [0, 1]).save, { winner: null, strength: null, both_bad: false });
  assert.deepEqual(key({}, '0', [0, 1]).save, { winner: null, strength: null, both_bad: true });
  assert.equal(key({}, 'x', [0, 1]), null);
  assert.equal(key({}, '8', [0, 1]), null);
  assert.deepEqual(keys.map(([k, text]) => `${k} ${text}`), [
    '1 A much better', '2 A better', '3 A slightly better', '4 tie', '5 B slightly better', '6 B better', '7 B much better', '0 both bad',
  ]);
  assert.equal(describeValue('pairwise', { winner: 1, strength: 1, both_bad: false }, [0, 1]), 'B slightly better');
});

test('labels of the two-step scale (1 better, 2 much better) are read on the 1..3 scale from project files (IndexedDB: tests/e2e/label.spec.mjs)', () => {
  assert.deepEqual(upgradePairwiseValue({ winner: 0, strength: 1, both_bad: false }), { winner: 0, strength: 2, both_bad: false });
  assert.deepEqual(upgradePairwiseValue({ winner: 1, strength: 2, both_bad: false }), { winner: 1, strength: 3, both_bad: false });
  for (const same of [{ winner: null, strength: null, both_bad: true }, { winner: null, strength: null, both_bad: false }, { skip: true }]) {
    assert.deepEqual(upgradePairwiseValue(same), same);
  }
  // a version 1 project file: its pairwise strengths move up one step; the file written again is version 2
  const project = { ...newProject({ name: 'old', task: 'pairwise' }), itemCount: 3 };
  const old = JSON.parse(projectFile(project, items, [label(0, { winner: 1, strength: 2, both_bad: false }), label(1, { winner: 0, strength: 1, both_bad: false }), label(2, { skip: true })]));
  old.version = 1;
  const back = readProjectFile(JSON.stringify(old));
  assert.deepEqual(back.labels.map((l) => l.value), [{ winner: 1, strength: 3, both_bad: false }, { winner: 0, strength: 2, both_bad: false }, { skip: true }]);
  assert.equal(JSON.parse(projectFile(back.project, back.items, back.labels)).version, 2);
  // other tasks' labels are left alone; unknown versions are refused
  const ratings = JSON.parse(projectFile({ ...project, task: 'rating' }, items, [label(0, { attributes: { helpfulness: 1 } })]));
  ratings.version = 1;
  assert.deepEqual(readProjectFile(JSON.stringify(ratings)).labels[0].value, { attributes: { helpfulness: 1 } });
  assert.throws(() => readProjectFile(JSON.stringify({ ...old, version: 3 }), 'x.json'), /x.json: version 3 is not one this page reads/);
});

test('listwise keys move, tie and save tie groups best to worst', () => {
  const task = TASKS.listwise;
  let draft = task.start([2, 0, 1]);
  const press = (k) => {
    const r = task.key(draft, k);
    if (r.draft) draft = r.draft;
    return r;
  };
  press('ArrowDown'); // cursor on response 0
  press('Shift+ArrowUp'); // response 0 first
  assert.deepEqual(draft.rows, [0, 2, 1]);
  press('ArrowDown');
  press('ArrowDown');
  press('t'); // response 1 tied with response 2
  assert.deepEqual(press('Enter').save, { ranking: [[0], [2, 1]] });
  assert.deepEqual(rankingGroups(task.start([0, 1, 2], { ranking: [[0], [2, 1]] })), [[0], [2, 1]]);
  // named by the letters they were shown under: order [2, 0, 1] shows response 2 as A
  assert.equal(describeValue('listwise', { ranking: [[0], [2, 1]] }, [2, 0, 1]), 'B > A=C');
  assert.equal(describeValue('pairwise', { winner: 0, strength: 3, both_bad: false }, [1, 0]), 'B much better');
});

test('rating keys rate the selected attribute and save only when every attribute is rated', () => {
  const task = TASKS.rating;
  let draft = task.start([0], undefined, ['helpfulness', 'verbosity']);
  assert.match(task.key(draft, 'Enter').problem, /rate helpfulness, verbosity first/);
  draft = task.key(draft, '4').draft;
  assert.equal(task.key(draft, '7'), null); // beyond the 0–4 scale
  draft = task.key(draft, '1').draft;
  assert.deepEqual(task.key(draft, 'Enter').save, { attributes: { helpfulness: 4, verbosity: 1 } });
});

test('parseCandidates reads pairs, lists and single responses, and names the first bad line', () => {
  const text = [
    '{"prompt": "p1", "chosen": "c1", "rejected": "r1"}',
    '',
    '{"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}',
  ].join('\n');
  const pairs = parseCandidates(text, 'pairwise');
  assert.equal(pairs.firstError, null);
  assert.deepEqual(pairs.items[0], { prompt: 'p1', responses: ['c1', 'r1'] });
  // a rating task judges one response at a time
  assert.equal(parseCandidates(text, 'rating').items.length, 4);
  const list = parseCandidates('{"prompt": "q", "completions": ["a", "b", "c"]}\n', 'listwise');
  assert.deepEqual(list.items, [{ prompt: 'q', responses: ['a', 'b', 'c'] }]);
  const bad = parseCandidates('{"prompt": "q", "completions": ["a", "b", "c"]}\n{"prompt": "only"}\nnot json\n', 'pairwise', { file: 'x.jsonl' });
  assert.equal(bad.bad, 3);
  assert.equal(bad.firstError, 'x.jsonl:1: a pairwise item needs 2 responses, this line has 3');
  assert.match(bad.errors[1].message, /prompt only/);
});

const items = [
  { index: 0, prompt: 'p0', responses: ['first', 'second'] },
  { index: 1, prompt: 'p1', responses: ['x', 'y'] },
  { index: 2, prompt: 'p2', responses: ['u', 'v'] },
];
const label = (item, value, extra = {}) => ({ project: 'P', annotator: 'ann', item, value, order: [1, 0], ts: '2025-01-01T00:00:00.000Z', ...extra });

test('pairwise labels export as TRL pairs with A/B un-randomised; ties only when kept', () => {
  const rows = [
    { item: items[0], label: label(0, { winner: 1, strength: 2, both_bad: false }, { justification: 'more precise' }) },
    { item: items[1], label: label(1, { winner: null, strength: null, both_bad: false }) },
    { item: items[2], label: label(2, { skip: true }) },
  ];
  const lines = labelsJsonl('pairwise', rows).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines, [
    { prompt: 'p0', chosen: 'second', rejected: 'first', strength: 2, swapped: false, annotator: 'ann', justification: 'more precise' },
  ]);
  const withTies = labelsJsonl('pairwise', rows, { keepTies: true }).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(withTies[1], { prompt: 'p1', chosen: 'x', rejected: 'y', tie: true, annotator: 'ann' });
  assert.equal(trainingJsonl('pairwise', rows), labelsJsonl('pairwise', rows));
});

test('listwise, rating and thumbs labels export in their DESIGN.md §3 formats; rankings train as pairs', () => {
  const list = { index: 0, prompt: 'q', responses: ['a', 'b', 'c'] };
  const ranked = [{ item: list, label: label(0, { ranking: [[2], [0, 1]] }) }];
  assert.deepEqual(JSON.parse(labelsJsonl('listwise', ranked)), { prompt: 'q', responses: ['a', 'b', 'c'], ranking: [2, 0, 1], scores: [0, 0, 1], annotator: 'ann' });
  assert.deepEqual(
    trainingJsonl('listwise', ranked).trim().split('\n').map((l) => JSON.parse(l)).map((p) => [p.chosen, p.rejected]),
    [['c', 'a'], ['c', 'b']],
  );
  const one = { index: 0, prompt: 'q', responses: ['a'] };
  assert.deepEqual(JSON.parse(labelsJsonl('rating', [{ item: one, label: label(0, { attributes: { helpfulness: 3 } }) }])), {
    prompt: 'q', response: 'a', attributes: { helpfulness: 3 }, annotator: 'ann',
  });
  assert.deepEqual(JSON.parse(labelsJsonl('thumbs', [{ item: one, label: label(0, { label: false }) }])), {
    prompt: 'q', completion: 'a', label: false, annotator: 'ann',
  });
  assert.throws(() => trainingJsonl('thumbs', []), /thumbs labels do not make preference pairs/);
});

test('a project file is canonical: read back and written again it is the same bytes', () => {
  const project = { ...newProject({ name: 'Q&A <b>', task: 'pairwise', guidelines: '# Be kind' }), itemCount: 3 };
  const labels = [label(2, { winner: 0, strength: 1, both_bad: false }, { annotator: 'zoe' }), label(0, { skip: true })];
  const text = projectFile(project, items.map((i) => ({ ...i, project: project.id })), labels);
  const back = readProjectFile(text);
  assert.equal(back.project.itemCount, 3);
  assert.equal(projectFile(back.project, back.items, back.labels.reverse()), text);
  assert.equal(stableStringify({ b: 1, a: [{ d: 2, c: undefined }] }), '{"a":[{"d":2}],"b":1}');
  assert.throws(() => readProjectFile('{"format": "other"}', 'f.json'), /f.json: not an alignlab label project/);
});

test('merging keeps both annotators and the later of two labels of one annotator', () => {
  const mine = [label(0, { skip: true }, { annotator: 'a', ts: '2025-01-02' })];
  const theirs = [label(0, { skip: true }, { annotator: 'b' }), label(0, { label: true }, { annotator: 'a', ts: '2025-01-01' }), label(1, { label: true }, { annotator: 'a', ts: '2025-01-03' })];
  assert.deepEqual(newerLabels(mine, theirs).map((l) => [l.annotator, l.item]), [['b', 0], ['a', 1]]);
});

test('agreement tables: integer or string labels per task, and the core computes κ and α from them', async (t) => {
  const pair = (annotator, item, winner, strength) => ({ annotator, item, value: { winner, strength, both_bad: false } });
  const labels = [
    pair('a', 0, 0, 3), pair('b', 0, 0, 3),
    pair('a', 1, 1, 1), pair('b', 1, 1, 1),
    pair('a', 2, null, null), pair('b', 2, null, null),
    { annotator: 'a', item: 3, value: { skip: true } },
  ];
  const [pref] = agreementTables('pairwise', labels);
  assert.equal(pref.level, 'ordinal');
  assert.deepEqual(pref.table.filter((r) => r.annotator === 'a').map((r) => r.label), [3, -1, 0]);
  const [rate] = agreementTables('rating', [{ annotator: 'a', item: 0, value: { attributes: { helpfulness: 3 } } }], ['helpfulness']);
  assert.deepEqual(rate, { name: 'helpfulness', level: 'interval', table: [{ item: 0, annotator: 'a', label: 3 }] });
  assert.deepEqual(agreementTables('listwise', [{ annotator: 'a', item: 0, value: { ranking: [[2], [0, 1]] } }])[0].table[0].label, '2>0=1');
  if (!wasmBuilt()) return t.skip('pkg/wasm is not built');
  await alignlab.init({ backend: 'cpu' });
  const report = alignlab.agreement(pref.table, { level: pref.level });
  assert.equal(report.items, 3);
  assert.equal(report.unanimous, 3);
  assert.equal(report.alpha, 1); // full agreement
  assert.match(describeReport('preference', report), /^preference: Krippendorff α \(ordinal\) 1\.000, .* — 3 items, 2 annotators, 3 unanimous$/);
});

test('every key a task acts on is one it says it handles (so the page queues it even while a project opens)', () => {
  const keys = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 't', 'x', 'Enter', ' ', 'ArrowUp', 'ArrowDown', 'Shift+ArrowUp', 'Shift+ArrowDown'];
  for (const [name, task] of Object.entries(TASKS)) {
    const draft = task.start([0, 1, 2], undefined, ['helpfulness']);
    for (const key of keys) {
      const acts = task.key({ ...draft, cursor: 1 }, key, [0, 1, 2]) !== null;
      assert.equal(task.handles(key) || !acts, true, `${name} acts on ${JSON.stringify(key)} without handling it`);
    }
  }
});

test('dropping a listwise row before, on (tie) or after another gives the ranking the keyboard would', () => {
  const task = TASKS.listwise;
  const draft = task.start([0, 1, 2, 3]); // rows 0 1 2 3, no ties
  const groups = (d) => rankingGroups(d);
  assert.deepEqual(groups(dropRow(draft, 3, 0, 'before')), [[3], [0], [1], [2]]);
  assert.deepEqual(groups(dropRow(draft, 0, 3, 'after')), [[1], [2], [3], [0]]);
  assert.deepEqual(groups(dropRow(draft, 2, 0, 'tie')), [[0, 2], [1], [3]]);
  assert.deepEqual(groups(dropRow(draft, 0, 2, 'tie')), [[1], [2, 0], [3]]);
  assert.equal(dropRow(draft, 2, 0, 'tie').cursor, 1);
  assert.deepEqual(dropRow(draft, 1, 1, 'tie'), { ...draft, cursor: 1 }); // onto itself: nothing moves
  // a tie group [0, 1, 2]: moving its first member out leaves the other two tied; dropping inside splits it
  const tiedDraft = { rows: [0, 1, 2, 3], tied: [false, true, true, false], cursor: 0 };
  assert.deepEqual(groups(dropRow(tiedDraft, 0, 3, 'after')), [[1, 2], [3], [0]]);
  assert.deepEqual(groups(dropRow(tiedDraft, 3, 1, 'before')), [[0], [3], [1, 2]]);
  assert.deepEqual(groups(dropRow(tiedDraft, 3, 1, 'after')), [[0, 1], [3], [2]]);
  assert.deepEqual(groups(dropRow(tiedDraft, 3, 2, 'tie')), [[0, 1, 2, 3]]);
  // saved by Enter like a keyboard ranking
  assert.deepEqual(task.key(dropRow(draft, 2, 0, 'tie'), 'Enter').save, { ranking: [[0, 2], [1], [3]] });
});

test('property tags and justifications: exported as properties and justification, kept byte-exact by a project file', () => {
  const tags = ['hallucination', 'unsafe', 'off-topic'];
  const project = { ...newProject({ name: 'Tagged', task: 'pairwise', tags }), itemCount: 3 };
  assert.deepEqual(project.tags, tags);
  const labels = [
    label(0, { winner: 1, strength: 3, both_bad: false }, { tags: ['unsafe'], justification: 'A invents a law: "§ 12"\nand is rude' }),
    label(1, { winner: null, strength: null, both_bad: true }, { tags: ['hallucination', 'off-topic'] }),
    label(2, { winner: 0, strength: 1, both_bad: false }),
  ];
  const rows = labels.map((l) => ({ item: items[l.item], label: l }));
  const lines = labelsJsonl('pairwise', rows, { keepTies: true, tags }).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines[0].properties, { hallucination: false, unsafe: true, 'off-topic': false });
  assert.equal(lines[0].justification, 'A invents a law: "§ 12"\nand is rude');
  assert.deepEqual(lines[1].properties, { hallucination: true, unsafe: false, 'off-topic': true });
  assert.deepEqual(lines[2].properties, { hallucination: false, unsafe: false, 'off-topic': false });
  // without project tags nothing is added; a tag since removed from the project is still exported
  assert.equal('properties' in JSON.parse(labelsJsonl('pairwise', [rows[2]])), false);
  assert.deepEqual(JSON.parse(labelsJsonl('pairwise', [rows[0]], { tags: ['hallucination'] })).properties, { hallucination: false, unsafe: true });
  // the training JSONL carries them too (the core ignores fields it does not read)
  assert.deepEqual(JSON.parse(trainingJsonl('pairwise', [rows[0]], { tags })).properties, lines[0].properties);
  const list = { index: 0, prompt: 'q', responses: ['a', 'b'] };
  assert.deepEqual(JSON.parse(labelsJsonl('listwise', [{ item: list, label: label(0, { ranking: [[1], [0]] }, { tags: ['off-topic'] }) }], { tags })).properties['off-topic'], true);

  const text = projectFile(project, items, labels);
  const back = readProjectFile(text);
  assert.deepEqual(back.project.tags, tags);
  assert.deepEqual(back.labels.map((l) => [l.tags, l.justification]), labels.map((l) => [l.tags, l.justification]));
  assert.equal(projectFile(back.project, back.items, back.labels), text);
  // a file from before tags existed reads with none; bad tags are named
  const untagged = JSON.parse(text);
  delete untagged.project.tags;
  assert.deepEqual(readProjectFile(JSON.stringify(untagged)).project.tags, []);
  untagged.labels[0].tags = 'unsafe';
  assert.throws(() => readProjectFile(JSON.stringify(untagged), 't.json'), /t.json: labels\[\d\]\.tags must be a list of strings/);
});

test('tag keys: the first nine tags get letters no task or common key uses', () => {
  const many = Array.from({ length: 11 }, (_, i) => `tag${i}`);
  const keys = tagKeys(many);
  assert.deepEqual(keys.slice(0, 3), [['tag0', 'q'], ['tag1', 'w'], ['tag2', 'e']]);
  assert.equal(keys[9][1], null);
  const used = ['n', 's', 'z', 'j', 't', ...Object.values(TASKS).flatMap((t) => t.keys.map(([, , k]) => k))];
  for (const [, key] of keys) assert.equal(used.includes(key), false, `${key} is taken`);
  for (const task of Object.values(TASKS)) for (const [, key] of keys) if (key) assert.equal(task.handles(key), false);
});

test('generating candidates: prompts read from any JSONL with a prompt; n fitted to the task; items shaped like imports', () => {
  const text = '{"prompt": "a"}\n\n{"prompt": [{"role": "user", "content": "hi"}]}\nnope\n{"completion": "x"}\n{"prompt": "b", "chosen": "c", "rejected": "d"}\n';
  const { prompts, bad, firstError } = parsePrompts(text, { file: 'p.jsonl' });
  assert.deepEqual(prompts, ['a', [{ role: 'user', content: 'hi' }], 'b']);
  assert.equal(bad, 2);
  assert.match(firstError, /^p\.jsonl:4: invalid JSON/);
  assert.equal(parsePrompts('{"prompt": ""}').firstError, 'prompts.jsonl:1: field prompt: expected a non-empty string or a list of {role, content} messages');
  assert.deepEqual(['pairwise', 'listwise', 'rating', 'thumbs'].map((t) => candidatesPerPrompt(t, 5)), [2, 5, 5, 5]);
  assert.deepEqual(['pairwise', 'listwise', 'rating'].map((t) => candidatesPerPrompt(t, 1)), [2, 2, 1]);
  assert.equal(candidatesPerPrompt('listwise', 1000), 16);
  const generated = [{ prompt: 'p', responses: ['x', 'y', 'z'] }];
  assert.deepEqual(candidateItems('listwise', generated), generated);
  assert.deepEqual(candidateItems('thumbs', generated), [{ prompt: 'p', responses: ['x'] }, { prompt: 'p', responses: ['y'] }, { prompt: 'p', responses: ['z'] }]);
  assert.deepEqual(candidateItems('pairwise', generated), []); // three do not make a pair
});
