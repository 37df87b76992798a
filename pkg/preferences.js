// Preference pairs as JSONL (TRL's format; DESIGN.md §3), checked in JS so that a page can show the count and the
// first bad line while someone types. The trainer (in the core) reads the same text again and is the authority;
// this check mirrors its rules and its message shape "file:line: message".

const PAIR_FIELDS = ['chosen', 'rejected'];

function isMessageList(value) {
  return (
    Array.isArray(value) &&
    value.every(
      (m) => m !== null && typeof m === 'object' && typeof m.role === 'string' && typeof m.content === 'string',
    )
  );
}

function checkText(record, field) {
  const value = record[field];
  if (typeof value === 'string' || isMessageList(value)) return null;
  return `field ${field}: expected a string or a list of {role, content} messages`;
}

/**
 * Checks preference JSONL: one `{"prompt", "chosen", "rejected"}` object per line (or `{"chosen", "rejected"}`
 * with an implicit shared prompt); blank lines are skipped.
 *
 * @param {string} text
 * @param {{ file?: string }} [options] the name used in messages (default "pairs.jsonl")
 * @returns {{ count: number, bad: number, errors: {line: number, message: string}[], firstError: string | null }}
 *   `count` good records, `bad` bad lines, `errors` each bad line, `firstError` as "file:line: message"
 */
export function checkPreferenceJsonl(text, { file = 'pairs.jsonl' } = {}) {
  const errors = [];
  let count = 0;
  const lines = String(text).split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let record;
    try {
      record = JSON.parse(raw);
    } catch (err) {
      errors.push({ line, message: `invalid JSON: ${err.message}` });
      return;
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      errors.push({ line, message: 'expected a JSON object' });
      return;
    }
    for (const field of PAIR_FIELDS) {
      if (!(field in record)) {
        errors.push({ line, message: `missing field ${field}` });
        return;
      }
    }
    for (const field of ['prompt', ...PAIR_FIELDS]) {
      if (field === 'prompt' && !('prompt' in record)) continue;
      const problem = checkText(record, field);
      if (problem) {
        errors.push({ line, message: problem });
        return;
      }
    }
    count += 1;
  });
  const first = errors[0];
  return {
    count,
    bad: errors.length,
    errors,
    firstError: first ? `${file}:${first.line}: ${first.message}` : null,
  };
}

/** One preference pair as a JSONL line (no trailing newline). */
export function preferenceLine({ prompt, chosen, rejected, ...extra }) {
  return JSON.stringify({ prompt, chosen, rejected, ...extra });
}
