// Text from data to DOM nodes. Everything goes through textContent (never innerHTML), so `<script>` or
// `<img onerror>` in a response or in guidelines is shown as the characters it is.

function node(tag, text, className) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

/** Inline markdown: `code`, **bold** and *emphasis*; everything else stays text. */
function inline(text) {
  const parts = [];
  const pattern = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*/g;
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > at) parts.push(document.createTextNode(text.slice(at, m.index)));
    parts.push(m[1] !== undefined ? node('code', m[1]) : m[2] !== undefined ? node('strong', m[2]) : node('em', m[3]));
    at = m.index + m[0].length;
  }
  if (at < text.length) parts.push(document.createTextNode(text.slice(at)));
  return parts;
}

/**
 * A small markdown subset as DOM nodes, for project guidelines: `#` headings, `-`/`*`/`1.` lists, fenced code
 * blocks, paragraphs, and inline code / bold / emphasis. Links and raw HTML stay literal text.
 */
export function renderMarkdown(source) {
  const out = [];
  const lines = String(source).replace(/\r\n?/g, '\n').split('\n');
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) out.push(withInline(node('p'), paragraph.join(' ')));
    paragraph = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('```')) {
      flush();
      const code = [];
      while (++i < lines.length && !lines[i].startsWith('```')) code.push(lines[i]);
      const pre = node('pre', undefined, 'code');
      pre.append(node('code', code.join('\n')));
      out.push(pre);
      continue;
    }
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const item = /^\s*(?:[-*]|(\d+)\.)\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      out.push(withInline(node(`h${heading[1].length + 2}`), heading[2]));
    } else if (item) {
      if (paragraph.length) flush();
      const tag = item[1] === undefined ? 'ul' : 'ol';
      if (list?.tagName.toLowerCase() !== tag) {
        list = node(tag);
        out.push(list);
      }
      list.append(withInline(node('li'), item[2]));
    } else if (line.trim() === '') {
      flush();
    } else {
      list = null;
      paragraph.push(line.trim());
    }
  }
  flush();
  return out;
}

function withInline(el, text) {
  el.append(...inline(text));
  return el;
}

/**
 * A prompt or response as the annotator reads it: whitespace kept (pre-wrap), fenced code blocks in monospace,
 * chat message lists as one block per turn with its role.
 */
export function renderText(text) {
  if (Array.isArray(text)) {
    return text.map((m) => {
      const turn = node('div', undefined, 'turn');
      turn.dataset.role = m.role;
      turn.append(node('span', m.role, 'role'), ...renderText(m.content));
      return turn;
    });
  }
  // split on fences: even parts are prose, odd parts code
  return String(text)
    .split(/^```[^\n]*\n?/m)
    .map((part, i) => (i % 2 ? node('pre', part.replace(/\n$/, ''), 'code') : node('div', part, 'prose')))
    .filter((el) => el.textContent !== '');
}

/** A one-line preview of a prompt for the item list. */
export function preview(text, length = 140) {
  const flat = (Array.isArray(text) ? text.map((m) => m.content).join(' ⏎ ') : String(text)).replace(/\s+/g, ' ').trim();
  return flat.length > length ? flat.slice(0, length - 1) + '…' : flat;
}
