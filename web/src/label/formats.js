// Bytes in and out of the Label view: candidates JSONL in (DESIGN.md §3), labels out as TRL JSONL, a whole project
// as one canonical JSON file (sorted keys, fixed order, so that export → import → export is byte-identical), and the
// merge of several annotators' exports of one project. No DOM, no storage: tested in Node.
import { TASKS } from './tasks.js';

export const PROJECT_FORMAT = 'alignlab.label-project';
export const PROJECT_VERSION = 1;
/** What a project file keeps of a project (itemCount is recounted from the items on import). */
const PROJECT_FIELDS = ['id', 'name', 'guidelines', 'task', 'attributes', 'seed', 'created'];
const LABEL_FIELDS = ['annotator', 'item', 'value', 'order', 'justification', 'ts', 'ms'];
const MAX_ERRORS = 100;

/** A new project (ids and seed random; everything else from `fields`). */
export function newProject({ name, task, guidelines = '', attributes = [] }) {
  if (!(task in TASKS)) throw new TypeError(`unknown task type ${task}`);
  return {
    id: crypto.randomUUID(),
    name: name || 'Untitled project',
    guidelines,
    task,
    attributes: [...attributes],
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

// ---------------------------------------------------------------------------------------------------------------
// Labels out (TRL JSONL; DESIGN.md §3)

/** Listwise scores from tie groups: the best group gets the highest score, tied responses the same one. */
function groupScores(ranking, n) {
  const scores = new Array(n).fill(0);
  ranking.forEach((group, g) => group.forEach((r) => (scores[r] = ranking.length - 1 - g)));
  return scores;
}

function extras(label) {
  return { annotator: label.annotator, ...(label.justification ? { justification: label.justification } : {}) };
}

/** The preference pair of a pairwise label with a winner (A/B back in the item's order). */
function pairRecord(item, label) {
  const { winner, strength } = label.value;
  return {
    prompt: item.prompt,
    chosen: item.responses[winner],
    rejected: item.responses[1 - winner],
    strength,
    swapped: label.order ? label.order.indexOf(winner) === 1 : false, // the chosen one was shown on the right
    ...extras(label),
  };
}

/** The records of one label in the task's export format (none for a skip, or a tie when ties are left out). */
function exportRecords(task, item, label, { keepTies }) {
  const value = label.value;
  if (value.skip) return [];
  if (task === 'pairwise') {
    if (value.winner !== null) return [pairRecord(item, label)];
    if (!keepTies) return [];
    const [chosen, rejected] = item.responses;
    return [{ prompt: item.prompt, chosen, rejected, tie: true, ...(value.both_bad ? { both_bad: true } : {}), ...extras(label) }];
  }
  if (task === 'listwise') {
    const { ranking } = value;
    return [{ prompt: item.prompt, responses: item.responses, ranking: ranking.flat(), scores: groupScores(ranking, item.responses.length), ...extras(label) }];
  }
  if (task === 'rating') return [{ prompt: item.prompt, response: item.responses[0], attributes: value.attributes, ...extras(label) }];
  if (task === 'thumbs') return [{ prompt: item.prompt, completion: item.responses[0], label: value.label, ...extras(label) }];
  throw new TypeError(`unknown task type ${task}`);
}

/**
 * The labels as JSONL in the task's §3 format: pairwise → `prompt/chosen/rejected` (+ strength, swapped; ties and
 * "both bad" only with `keepTies`, marked `tie`), listwise → `prompt/responses/ranking/scores`, rating →
 * `prompt/response/attributes`, thumbs → KTO's `prompt/completion/label`. `rows` are `{ item, label }`.
 */
export function labelsJsonl(task, rows, { keepTies = false } = {}) {
  return rows.flatMap(({ item, label }) => exportRecords(task, item, label, { keepTies }).map((r) => JSON.stringify(r) + '\n')).join('');
}

/**
 * Preference pairs for the training view (DPO / reward model): pairwise labels with a winner, and every pair of
 * responses a listwise ranking orders (METHODS.md §3.4: "convert to pairs for BT/DPO"); ties never train.
 */
export function trainingJsonl(task, rows) {
  if (task === 'pairwise') return labelsJsonl(task, rows);
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
          lines.push(JSON.stringify({ prompt: item.prompt, chosen: item.responses[b], rejected: item.responses[worse], ...extras(label) }) + '\n'),
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
      project: pick(project, PROJECT_FIELDS),
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
  if (data.version !== PROJECT_VERSION) throw new Error(`${file}: version ${data.version} is not ${PROJECT_VERSION}`);
  const { project, items, labels } = data;
  for (const field of PROJECT_FIELDS) if (!(field in (project ?? {}))) throw new Error(`${file}: project.${field} is missing`);
  if (!(project.task in TASKS)) throw new Error(`${file}: unknown task type ${project.task}`);
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
  });
  return {
    project: { ...pick(project, PROJECT_FIELDS), itemCount: items.length },
    items,
    labels: labels.map((label) => ({ ...pick(label, LABEL_FIELDS), project: project.id })),
  };
}

/** The labels of `incoming` that `current` lacks or has older (same annotator and item; the later `ts` wins). */
export function newerLabels(current, incoming) {
  const key = (l) => `${l.annotator}\u0000${l.item}`;
  const have = new Map(current.map((l) => [key(l), l.ts]));
  return incoming.filter((l) => !have.has(key(l)) || l.ts > have.get(key(l)));
}
