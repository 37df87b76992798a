// Bytes in and out of the Label view: candidates JSONL in (DESIGN.md §3), labels out as TRL JSONL, a whole project
// as one canonical JSON file (sorted keys, fixed order, so that export → import → export is byte-identical), and the
// merge of several annotators' exports of one project. No DOM, no storage: tested in Node.
import { TASKS, upgradePairwiseValue } from './tasks.js';

export const PROJECT_FORMAT = 'alignlab.label-project';
/** 2: pairwise strength 1..3 (DESIGN.md §3); version 1 files (strength 1 = better, 2 = much better) are read. */
export const PROJECT_VERSION = 2;
/** What a project file keeps of a project (itemCount is recounted from the items on import). */
const PROJECT_FIELDS = ['id', 'name', 'guidelines', 'task', 'attributes', 'seed', 'created'];
/** Fields a project file may lack (files written before them): the value they then have. */
const PROJECT_DEFAULTS = Object.freeze({ tags: [] });
const LABEL_FIELDS = ['annotator', 'item', 'value', 'order', 'justification', 'tags', 'ts', 'ms'];
const MAX_ERRORS = 100;

/** A new project (ids and seed random; everything else from `fields`). */
export function newProject({ name, task, guidelines = '', attributes = [], tags = [] }) {
  if (!(task in TASKS)) throw new TypeError(`unknown task type ${task}`);
  return {
    id: crypto.randomUUID(),
    name: name || 'Untitled project',
    guidelines,
    task,
    attributes: [...attributes],
    tags: [...tags],
    seed: crypto.getRandomValues(new Uint32Array(1))[0],
    created: new Date().toISOString(),
    itemCount: 0,
  };
}

/** JSON with object keys sorted at every level: one byte sequence per value. */
export function stableStringify(value) {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const pick = (object, fields) => Object.fromEntries(fields.filter((f) => object[f] !== undefined).map((f) => [f, object[f]]));

// ---------------------------------------------------------------------------------------------------------------
// Candidates in

function isText(value) {
  return (
    typeof value === 'string' ||
    (Array.isArray(value) && value.every((m) => m && typeof m.role === 'string' && typeof m.content === 'string'))
  );
}

/** The responses of one record, whatever §3 format it is in. */
function responsesOf(record) {
  if ('chosen' in record || 'rejected' in record) return [record.chosen, record.rejected];
  for (const key of ['completions', 'responses']) if (key in record) return record[key];
  for (const key of ['completion', 'response']) if (key in record) return [record[key]];
  return [];
}

/**
 * Items to label from JSONL: pairs (`prompt/chosen/rejected`, or implicit-prompt `chosen/rejected`) become A/B
 * items with chosen first; listwise `prompt` + `completions` (or `responses`); `prompt` + `completion`
 * (or `response`); prompts alone. A rating or thumbs task labels one response at a time, so each response of a
 * line becomes its own item. Blank lines are skipped; bad lines are reported as "file:line: message".
 *
 * @returns {{ items: {prompt, responses}[], bad: number, errors: {line, message}[], firstError: string | null }}
 */
export function parseCandidates(text, task, { file = 'candidates.jsonl' } = {}) {
  const [min, max] = TASKS[task].responses;
  const items = [];
  const errors = [];
  let bad = 0;
  const fail = (line, message) => {
    bad += 1;
    if (errors.length < MAX_ERRORS) errors.push({ line, message });
  };
  String(text)
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((raw, i) => {
      const line = i + 1;
      if (raw.trim() === '') return;
      let record;
      try {
        record = JSON.parse(raw);
      } catch (err) {
        return fail(line, `invalid JSON: ${err.message}`);
      }
      if (record === null || typeof record !== 'object' || Array.isArray(record)) return fail(line, 'expected a JSON object');
      const prompt = record.prompt ?? '';
      if (!isText(prompt)) return fail(line, 'field prompt: expected a string or a list of {role, content} messages');
      const responses = responsesOf(record);
      if (!Array.isArray(responses) || !responses.every(isText)) {
        return fail(line, 'responses: expected strings or lists of {role, content} messages');
      }
      if (responses.length === 0) return fail(line, `prompt only: a ${task} task needs responses to judge`);
      if (min === 1 && max === 1) {
        for (const response of responses) items.push({ prompt, responses: [response] });
        return;
      }
      if (responses.length < min || responses.length > max) {
        const want = min === max ? `${min}` : `at least ${min}`;
        return fail(line, `a ${task} item needs ${want} responses, this line has ${responses.length}`);
      }
      items.push({ prompt, responses });
    });
  const first = errors[0];
  return { items, bad, errors, firstError: first ? `${file}:${first.line}: ${first.message}` : null };
}

/**
 * The prompts of JSONL lines for generating candidates: every line's `prompt` (a string or chat messages), with or
 * without responses; blank lines skipped, bad lines reported as `parseCandidates` does.
 *
 * @returns {{ prompts: (string | {role, content}[])[], bad: number, firstError: string | null }}
 */
export function parsePrompts(text, { file = 'prompts.jsonl' } = {}) {
  const prompts = [];
  let bad = 0;
  let firstError = null;
  String(text)
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((raw, i) => {
      if (raw.trim() === '') return;
      let record;
      try {
        record = JSON.parse(raw);
      } catch (err) {
        bad += 1;
        firstError ??= `${file}:${i + 1}: invalid JSON: ${err.message}`;
        return;
      }
      const prompt = record?.prompt;
      if (prompt === undefined || !isText(prompt) || prompt.length === 0) {
        bad += 1;
        firstError ??= `${file}:${i + 1}: field prompt: expected a non-empty string or a list of {role, content} messages`;
        return;
      }
      prompts.push(prompt);
    });
  return { prompts, bad, firstError };
}

/**
 * Items from generated candidates (`{ prompt, responses }` per prompt) shaped for a task: pairwise and listwise
 * items keep a prompt's candidates together; a rating or thumbs item judges one response, so each candidate
 * becomes its own item (as `parseCandidates` does with imported lines).
 */
export function candidateItems(task, generated) {
  const [min, max] = TASKS[task].responses;
  if (min === 1 && max === 1) return generated.flatMap(({ prompt, responses }) => responses.map((r) => ({ prompt, responses: [r] })));
  return generated.filter(({ responses }) => responses.length >= min && responses.length <= max);
}

/** Candidates generated per prompt at most. */
export const MAX_CANDIDATES = 16;

/**
 * How many candidates per prompt a task takes of the `asked` number: exactly 2 for pairwise, 2 or more for
 * listwise, 1 or more for ratings and thumbs (each its own item); at most MAX_CANDIDATES.
 */
export function candidatesPerPrompt(task, asked) {
  const [min, max] = TASKS[task].responses;
  const n = Math.min(MAX_CANDIDATES, Math.max(1, Math.floor(Number(asked) || 0)));
  if (min === 1 && max === 1) return n;
  return Math.min(Math.max(n, min), max);
}

// ---------------------------------------------------------------------------------------------------------------
// Labels out (TRL JSONL; DESIGN.md §3)

/** Listwise scores from tie groups: the best group gets the highest score, tied responses the same one. */
function groupScores(ranking, n) {
  const scores = new Array(n).fill(0);
  ranking.forEach((group, g) => group.forEach((r) => (scores[r] = ranking.length - 1 - g)));
  return scores;
}

/**
 * What every exported record carries besides the judgement: the annotator, the written justification, and the
 * property tags as `properties` (METHODS.md §3.17): every tag of the project, true where the annotator set it.
 */
function extras(label, tags = []) {
  const set = new Set(label.tags ?? []);
  const names = [...tags, ...[...set].filter((t) => !tags.includes(t))]; // tags since removed from the project stay
  return {
    annotator: label.annotator,
    ...(label.justification ? { justification: label.justification } : {}),
    ...(names.length ? { properties: Object.fromEntries(names.map((t) => [t, set.has(t)])) } : {}),
  };
}

/** The preference pair of a pairwise label with a winner (A/B back in the item's order). */
function pairRecord(item, label, tags) {
  const { winner, strength } = label.value;
  return {
    prompt: item.prompt,
    chosen: item.responses[winner],
    rejected: item.responses[1 - winner],
    strength,
    swapped: label.order ? label.order.indexOf(winner) === 1 : false, // the chosen one was shown on the right
    ...extras(label, tags),
  };
}

/** The records of one label in the task's export format (none for a skip, or a tie when ties are left out). */
function exportRecords(task, item, label, { keepTies, tags }) {
  const value = label.value;
  if (value.skip) return [];
  if (task === 'pairwise') {
    if (value.winner !== null) return [pairRecord(item, label, tags)];
    if (!keepTies) return [];
    const [chosen, rejected] = item.responses;
    return [{ prompt: item.prompt, chosen, rejected, tie: true, ...(value.both_bad ? { both_bad: true } : {}), ...extras(label, tags) }];
  }
  if (task === 'listwise') {
    const { ranking } = value;
    return [{ prompt: item.prompt, responses: item.responses, ranking: ranking.flat(), scores: groupScores(ranking, item.responses.length), ...extras(label, tags) }];
  }
  if (task === 'rating') return [{ prompt: item.prompt, response: item.responses[0], attributes: value.attributes, ...extras(label, tags) }];
  if (task === 'thumbs') return [{ prompt: item.prompt, completion: item.responses[0], label: value.label, ...extras(label, tags) }];
  throw new TypeError(`unknown task type ${task}`);
}

/**
 * The labels as JSONL in the task's §3 format: pairwise → `prompt/chosen/rejected` (+ strength, swapped; ties and
 * "both bad" only with `keepTies`, marked `tie`), listwise → `prompt/responses/ranking/scores`, rating →
 * `prompt/response/attributes`, thumbs → KTO's `prompt/completion/label`. `rows` are `{ item, label }`; `tags`
 * are the project's property tags (each record's `properties`).
 */
export function labelsJsonl(task, rows, { keepTies = false, tags = [] } = {}) {
  return rows.flatMap(({ item, label }) => exportRecords(task, item, label, { keepTies, tags }).map((r) => JSON.stringify(r) + '\n')).join('');
}

/**
 * Preference pairs for the training view (DPO / reward model): pairwise labels with a winner, and every pair of
 * responses a listwise ranking orders (METHODS.md §3.4: "convert to pairs for BT/DPO"); ties never train.
 */
export function trainingJsonl(task, rows, { tags = [] } = {}) {
  if (task === 'pairwise') return labelsJsonl(task, rows, { tags });
  if (task !== 'listwise') {
    throw new Error(`${task} labels do not make preference pairs; export them as JSONL instead`);
  }
  const lines = [];
  for (const { item, label } of rows) {
    if (label.value.skip) continue;
    const { ranking } = label.value;
    ranking.forEach((better, g) =>
      ranking.slice(g + 1).flat().forEach((worse) =>
        better.forEach((b) =>
          lines.push(JSON.stringify({ prompt: item.prompt, chosen: item.responses[b], rejected: item.responses[worse], ...extras(label, tags) }) + '\n'),
        ),
      ),
    );
  }
  return lines.join('');
}

// ---------------------------------------------------------------------------------------------------------------
// Whole projects

/** One project (its items in index order, its labels by annotator then item) as canonical JSON. */
export function projectFile(project, items, labels) {
  const sorted = [...labels].sort((a, b) => (a.annotator < b.annotator ? -1 : a.annotator > b.annotator ? 1 : a.item - b.item));
  return (
    stableStringify({
      format: PROJECT_FORMAT,
      version: PROJECT_VERSION,
      project: pick({ ...PROJECT_DEFAULTS, ...project }, [...PROJECT_FIELDS, ...Object.keys(PROJECT_DEFAULTS)]),
      items: items.map(({ index, prompt, responses }) => ({ index, prompt, responses })),
      labels: sorted.map((label) => pick(label, LABEL_FIELDS)),
    }) + '\n'
  );
}

/** A project file read back: `{ project, items, labels }`, each checked; throws naming what is wrong. */
export function readProjectFile(text, file = 'project.json') {
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON (${err.message})`);
  }
  if (data?.format !== PROJECT_FORMAT) throw new Error(`${file}: not an alignlab label project (format ${JSON.stringify(data?.format)})`);
  if (data.version !== PROJECT_VERSION && data.version !== 1) {
    throw new Error(`${file}: version ${data.version} is not one this page reads (1 or ${PROJECT_VERSION})`);
  }
  const { project, items, labels } = data;
  for (const field of PROJECT_FIELDS) if (!(field in (project ?? {}))) throw new Error(`${file}: project.${field} is missing`);
  if (!(project.task in TASKS)) throw new Error(`${file}: unknown task type ${project.task}`);
  if (project.tags !== undefined && !(Array.isArray(project.tags) && project.tags.every((t) => typeof t === 'string'))) {
    throw new Error(`${file}: project.tags must be a list of strings`);
  }
  if (!Array.isArray(items) || !Array.isArray(labels)) throw new Error(`${file}: items and labels must be lists`);
  items.forEach((item, i) => {
    if (item.index !== i || !isText(item.prompt) || !Array.isArray(item.responses) || !item.responses.every(isText)) {
      throw new Error(`${file}: items[${i}] is not item ${i} with a prompt and responses`);
    }
  });
  labels.forEach((label, i) => {
    if (typeof label.annotator !== 'string' || !(label.item >= 0 && label.item < items.length) || typeof label.value !== 'object') {
      throw new Error(`${file}: labels[${i}] needs an annotator, an item index below ${items.length} and a value`);
    }
    if (label.tags !== undefined && !(Array.isArray(label.tags) && label.tags.every((t) => typeof t === 'string'))) {
      throw new Error(`${file}: labels[${i}].tags must be a list of strings`);
    }
  });
  return {
    project: { ...PROJECT_DEFAULTS, ...pick(project, [...PROJECT_FIELDS, ...Object.keys(PROJECT_DEFAULTS)]), itemCount: items.length },
    items,
    labels: labels.map((label) => {
      const upgraded = data.version === 1 && project.task === 'pairwise' ? { ...label, value: upgradePairwiseValue(label.value) } : label;
      return { ...pick(upgraded, LABEL_FIELDS), project: project.id };
    }),
  };
}

/** The labels of `incoming` that `current` lacks or has older (same annotator and item; the later `ts` wins). */
export function newerLabels(current, incoming) {
  const key = (l) => `${l.annotator}\u0000${l.item}`;
  const have = new Map(current.map((l) => [key(l), l.ts]));
  return incoming.filter((l) => !have.has(key(l)) || l.ts > have.get(key(l)));
}
