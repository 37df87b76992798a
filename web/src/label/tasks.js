// The labelling task types (METHODS.md §3): what an item shows, which keys act on it, and the label value a key
// produces. Plain functions over plain objects, no DOM: tested in Node (tests/node/web-label.test.mjs).
//
// Label values are stored in the item's own response order (index 0 = the first response of the imported line,
// e.g. `chosen` of a pair), never in the randomised display order; the display order is stored beside them.
//   pairwise: { winner: 0 | 1 | null, strength: 1 | 2 | 3 | null, both_bad: bool }
//             (DESIGN.md §3's strength 1..3: slightly better, better, much better; labels stored before the
//             scale had three steps are upgraded by store.js and formats.js through upgradePairwiseValue)
//   listwise: { ranking: [[response index, …], …] }   tie groups, best → worst
//   rating:   { attributes: { name: 0..4, … } }
//   thumbs:   { label: bool }                          (KTO's desirable / undesirable)
//   any task: { skip: true }                           (seen and passed over; never exported)

/** HelpSteer2's attributes, the default of a rating project. */
export const DEFAULT_ATTRIBUTES = Object.freeze(['helpfulness', 'correctness', 'coherence', 'complexity', 'verbosity']);
/** Ratings are 0..RATING_MAX (HelpSteer2's Likert scale). */
export const RATING_MAX = 4;

/**
 * Property tags a new project offers (METHODS.md §3.8: what explains a preference); each project sets its own.
 * A label keeps the tags the annotator toggled, and exports them as `properties`.
 */
export const DEFAULT_TAGS = Object.freeze(['hallucination', 'contains an error', 'unsafe', 'off-topic', 'admits limitations']);
/** The keys of the first tags, in order: letters no task and no common key uses. */
export const TAG_KEYS = Object.freeze(['q', 'w', 'e', 'r', 'y', 'u', 'i', 'o', 'p']);

/** The key of each tag (null past the ninth: those are clicked). */
export function tagKeys(tags) {
  return tags.map((tag, i) => [tag, TAG_KEYS[i] ?? null]);
}

/**
 * Keys every task shares, as the legend shows them: [shown, what it does, the key name it presses] (no key name:
 * a legend entry only, e.g. a range of keys).
 */
export const COMMON_KEYS = Object.freeze([
  ['Enter / Space', 'next item', 'Enter'],
  ['N', 'next unlabelled', 'n'],
  ['←', 'previous', 'ArrowLeft'],
  ['→', 'next', 'ArrowRight'],
  ['S', 'skip', 's'],
  ['Z', 'undo', 'z'],
  ['J', 'write a justification (Esc returns)', 'j'],
]);

/** Preference strength in words, 1..3 (DESIGN.md §3; HelpSteer2-Preference's 7-point scale without its middle). */
export const STRENGTH_WORDS = Object.freeze({ 1: 'slightly better', 2: 'better', 3: 'much better' });

// key → the side shown (0 = A, left) that won and how strongly, in legend order: the 7-point forced choice
// (METHODS.md §3.1) from "A much better" to "B much better" with the tie in the middle, then "both bad"
const PAIRWISE_CHOICES = new Map([
  ['1', { side: 0, strength: 3 }],
  ['2', { side: 0, strength: 2 }],
  ['3', { side: 0, strength: 1 }],
  ['4', { side: null, strength: null, text: 'tie' }],
  ['5', { side: 1, strength: 1 }],
  ['6', { side: 1, strength: 2 }],
  ['7', { side: 1, strength: 3 }],
  ['0', { side: null, strength: null, text: 'both bad' }],
]);
for (const choice of PAIRWISE_CHOICES.values()) choice.text ??= `${choice.side === 0 ? 'A' : 'B'} ${STRENGTH_WORDS[choice.strength]}`;

/**
 * A pairwise value stored on the two-step scale of the first page (strength 1 = "better", 2 = "much better")
 * on today's 1..3 scale (2 = "better", 3 = "much better"); ties, "both bad" and skips are unchanged.
 */
export function upgradePairwiseValue(value) {
  if (!value || value.skip || value.winner === null || value.winner === undefined) return value;
  return { ...value, strength: value.strength + 1 };
}

const ARROWS = ['ArrowUp', 'ArrowDown'];
const SUBMIT = ['Enter', ' '];

/**
 * Each task: `responses` it needs per item ([min, max]), the `keys` its legend lists (as COMMON_KEYS),
 * `handles(key)` whether a key is the task's at all, `start(order, value, attributes)` the draft for an item (from
 * its saved value, if any), and `key(draft, key, order)` → `{ draft }` (a changed draft), `{ save: value }`,
 * `{ problem }` or null when the key does nothing to this draft.
 */
export const TASKS = Object.freeze({
  pairwise: {
    title: 'Pairwise A/B (graded, ties, both bad)',
    responses: [2, 2],
    keys: [...PAIRWISE_CHOICES].map(([k, c]) => [k, c.text, k]),
    handles: (key) => PAIRWISE_CHOICES.has(key),
    start: () => ({}),
    key(draft, key, order) {
      const choice = PAIRWISE_CHOICES.get(key);
      if (!choice) return null;
      return {
        save: {
          winner: choice.side === null ? null : order[choice.side],
          strength: choice.strength,
          both_bad: key === '0',
        },
      };
    },
  },

  listwise: {
    title: 'Listwise ranking (ties allowed)',
    responses: [2, Infinity],
    keys: [
      ['↑ / ↓', 'select'],
      ['Shift+↑ / Shift+↓', 'move up / down'],
      ['T', 'tie with the one above (again: untie)', 't'],
      ['drag', 'a card onto another: above, tied (middle) or below it'],
      ['Enter', 'save the ranking and go on', 'Enter'],
    ],
    handles: (key) => [...ARROWS, ...ARROWS.map((a) => `Shift+${a}`), 't', ...SUBMIT].includes(key),
    // rows: display order, best first; tied[i]: row i is tied with row i-1
    start(order, value) {
      if (value?.ranking) {
        const rows = value.ranking.flat();
        const tied = value.ranking.flatMap((group) => group.map((_, i) => i > 0));
        return { rows, tied, cursor: 0 };
      }
      return { rows: [...order], tied: order.map(() => false), cursor: 0 };
    },
    key(draft, key) {
      const { rows, tied, cursor } = draft;
      const last = rows.length - 1;
      if (key === 'ArrowUp' || key === 'ArrowDown') {
        return { draft: { ...draft, cursor: Math.max(0, Math.min(last, cursor + (key === 'ArrowUp' ? -1 : 1))) } };
      }
      if (key === 'Shift+ArrowUp' || key === 'Shift+ArrowDown') {
        const to = cursor + (key === 'Shift+ArrowUp' ? -1 : 1);
        if (to < 0 || to > last) return { draft };
        const next = [...rows];
        [next[cursor], next[to]] = [next[to], next[cursor]];
        // a moved response leaves its tie group: ties are between positions, re-made with T
        const nextTied = [...tied];
        for (const i of [cursor, to, Math.max(cursor, to) + 1]) if (i <= last) nextTied[i] = false;
        return { draft: { rows: next, tied: nextTied, cursor: to } };
      }
      if (key === 't' && cursor > 0) {
        const nextTied = [...tied];
        nextTied[cursor] = !nextTied[cursor];
        return { draft: { ...draft, tied: nextTied } };
      }
      if (SUBMIT.includes(key)) return { save: { ranking: rankingGroups(draft) } };
      return null;
    },
  },

  rating: {
    title: 'Per-attribute ratings (0–4)',
    responses: [1, 1],
    keys: [
      [`0–${RATING_MAX}`, 'rate the selected attribute (then the next is selected)'],
      ['↑ / ↓', 'select an attribute'],
      ['Enter', 'save the ratings and go on', 'Enter'],
    ],
    handles: (key) => [...ARROWS, ...SUBMIT].includes(key) || (/^[0-9]$/.test(key) && Number(key) <= RATING_MAX),
    start(order, value, attributes) {
      const values = Object.fromEntries(attributes.map((a) => [a, value?.attributes?.[a] ?? null]));
      return { values, cursor: 0, attributes };
    },
    key(draft, key) {
      const { values, cursor, attributes } = draft;
      const last = attributes.length - 1;
      if (key === 'ArrowUp' || key === 'ArrowDown') {
        return { draft: { ...draft, cursor: Math.max(0, Math.min(last, cursor + (key === 'ArrowUp' ? -1 : 1))) } };
      }
      if (/^[0-9]$/.test(key) && Number(key) <= RATING_MAX) {
        const next = { ...values, [attributes[cursor]]: Number(key) };
        return { draft: { ...draft, values: next, cursor: Math.min(last, cursor + 1) } };
      }
      if (SUBMIT.includes(key)) {
        const missing = attributes.filter((a) => values[a] === null);
        if (missing.length) return { problem: `rate ${missing.join(', ')} first` };
        return { save: { attributes: { ...values } } };
      }
      return null;
    },
  },

  thumbs: {
    title: 'Thumbs up / down (KTO)',
    responses: [1, 1],
    keys: [
      ['1', '👍 good', '1'],
      ['2', '👎 bad', '2'],
    ],
    handles: (key) => key === '1' || key === '2',
    start: () => ({}),
    key(draft, key) {
      if (key === '1' || key === '2') return { save: { label: key === '1' } };
      return null;
    },
  },
});

/**
 * A listwise draft with row `from` dropped on row `to` (the rows as shown before the drop): `where` is 'tie'
 * (join its tie group), 'before' or 'after' (a group of its own there; a tie group it lands inside is split
 * there). As with Shift+↑/↓, the moved response leaves its old tie group. The cursor follows it.
 */
export function dropRow({ rows, tied }, from, to, where) {
  if (from === to || !['tie', 'before', 'after'].includes(where)) return { rows, tied, cursor: from };
  const nextRows = [...rows];
  const nextTied = [...tied];
  const [moved] = nextRows.splice(from, 1);
  const [wasTied] = nextTied.splice(from, 1);
  // the row after it started a group with it: now it starts that group
  if (!wasTied && from < nextTied.length) nextTied[from] = false;
  const target = to > from ? to - 1 : to;
  const at = where === 'before' ? target : target + 1;
  nextRows.splice(at, 0, moved);
  nextTied.splice(at, 0, where === 'tie' && at > 0);
  if (where !== 'tie' && at + 1 < nextTied.length) nextTied[at + 1] = false;
  nextTied[0] = false;
  return { rows: nextRows, tied: nextTied, cursor: at };
}

/** The tie groups of a listwise draft, best → worst, in item response indices. */
export function rankingGroups({ rows, tied }) {
  const groups = [];
  rows.forEach((response, i) => (tied[i] && groups.length ? groups.at(-1).push(response) : groups.push([response])));
  return groups;
}

/** The letter a response is shown under: A, B, C… by its display position. */
export function letter(order, response) {
  return String.fromCharCode(65 + order.indexOf(response));
}

/**
 * A label value in words, for the item list and for other annotators' labels; responses are named by the letter
 * they are shown under (`order`, the label's display order), as the annotator saw them.
 */
export function describeValue(task, value, order = [0, 1]) {
  if (!value) return '';
  if (value.skip) return 'skipped';
  if (task === 'pairwise') {
    if (value.both_bad) return 'both bad';
    if (value.winner === null) return 'tie';
    return `${letter(order, value.winner)} ${STRENGTH_WORDS[value.strength] ?? 'better'}`;
  }
  if (task === 'listwise') return value.ranking.map((g) => g.map((r) => letter(order, r)).join('=')).join(' > ');
  if (task === 'rating') return Object.entries(value.attributes).map(([a, v]) => `${a} ${v}`).join(', ');
  if (task === 'thumbs') return value.label ? '👍' : '👎';
  return JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------------------------
// Display order: a permutation per item from the project's seed, so that a reload, another annotator or an audit
// sees the same order, and position bias can be measured from the recorded order.

/** mulberry32: a small, well-mixed 32-bit PRNG (public domain, Tommy Ettinger). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The display order of an item's `n` responses: `order[position] = response index` (Fisher–Yates). */
export function displayOrder(seed, index, n) {
  const random = mulberry32(Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
