// The JS check of preference JSONL (pkg/preferences.js): counts, and the first bad line as "file:line: message".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPreferenceJsonl, preferenceLine } from 'alignlab/preferences';

const good = (i) => JSON.stringify({ prompt: `p${i}`, chosen: `c${i}`, rejected: `r${i}` });

test('counts good records and skips blank lines', () => {
  const check = checkPreferenceJsonl([good(1), '', '  ', good(2), ''].join('\n'));
  assert.equal(check.count, 2);
  assert.equal(check.bad, 0);
  assert.equal(check.firstError, null);
});

test('a line missing rejected is reported with its file and line number', () => {
  const text = [good(1), good(2), JSON.stringify({ prompt: 'p', chosen: 'c' })].join('\n');
  const check = checkPreferenceJsonl(text, { file: 'pairs.jsonl' });
  assert.equal(check.count, 2);
  assert.equal(check.firstError, 'pairs.jsonl:3: missing field rejected');
});

test('invalid JSON, non-objects and wrong types name the line', () => {
  const text = ['{"prompt": ', '[1, 2]', JSON.stringify({ chosen: 1, rejected: 'r' })].join('\n');
  const check = checkPreferenceJsonl(text, { file: 'x.jsonl' });
  assert.equal(check.bad, 3);
  assert.match(check.errors[0].message, /^invalid JSON/);
  assert.equal(check.errors[1].message, 'expected a JSON object');
  assert.equal(check.errors[2].message, 'field chosen: expected a string or a list of {role, content} messages');
  assert.match(check.firstError, /^x\.jsonl:1: invalid JSON/);
});

test('implicit prompts and chat-message lists are pairs', () => {
  const messages = (answer) => [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: answer },
  ];
  const text = [
    JSON.stringify({ chosen: 'Q: hi A: hello', rejected: 'Q: hi A: go away' }),
    JSON.stringify({ chosen: messages('Hello!'), rejected: messages('Go away.') }),
    JSON.stringify({ prompt: [{ role: 'user', content: 'Hi' }], chosen: [{ role: 'assistant', content: 'Hello' }], rejected: 'x' }),
  ].join('\n');
  assert.equal(checkPreferenceJsonl(text).count, 3);
});

test('preferenceLine round-trips through the check', () => {
  const line = preferenceLine({ prompt: 'a "quoted"\nprompt', chosen: 'yes', rejected: 'no' });
  assert.deepEqual(JSON.parse(line), { prompt: 'a "quoted"\nprompt', chosen: 'yes', rejected: 'no' });
  assert.equal(checkPreferenceJsonl(line).count, 1);
});
