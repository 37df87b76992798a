// One annotator labelling one project: the current item, the keys, the item list, progress and undo. Keys go
// through one queue and each is handled to the end (a label's write committed, the next item loaded) before the
// next key is looked at, so fast typing neither loses nor reorders labels.
import { COMMON_KEYS, TASKS, describeValue, displayOrder, dropRow, letter, tagKeys } from './tasks.js';
import { VirtualList } from './list.js';
import { preview, renderText } from './render.js';
import { PAGE } from './store.js';

const ROW_HEIGHT = 30;

function el(tag, { text, className, data } = {}, children = []) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [k, v] of Object.entries(data ?? {})) node.dataset[k] = String(v);
  node.append(...children);
  return node;
}

/** The key of a keydown as the tasks name keys: "1", "z", "ArrowUp", "Shift+ArrowUp", " ", "Enter". */
export function keyName(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return event.shiftKey && key.startsWith('Arrow') ? `Shift+${key}` : key;
}

export class Labeler {
  #queue = Promise.resolve();
  #pages = new Map(); // page number → items (as stored), for the list's previews
  #undo = [];
  #session = []; // times of this session's labels, for the pace
  #nextTask = null; // the task of the project last asked for: keys typed while it opens are for it
  #nextTagKeys = new Map(); // key → tag of the project last asked for

  /**
   * @param {{ store: import('./store.js').LabelStore, els: Record<string, HTMLElement>, onError: (err) => void,
   *   onLabelsChanged: () => void }} options
   */
  constructor({ store, els, onError, onLabelsChanged }) {
    this.store = store;
    this.els = els;
    this.onError = onError;
    this.onLabelsChanged = onLabelsChanged;
    this.project = null;
    this.mine = new Map(); // item index → this annotator's label
    this.list = new VirtualList(els.list, {
      rowHeight: ROW_HEIGHT,
      renderRow: (row, index) => this.#renderRow(row, index),
      onPick: (index) => this.enqueue(() => this.show(index)),
    });
  }

  /**
   * Opens `project` for `annotator` at the first item they have not labelled (none: shows nothing), after the
   * keys already queued (which belong to the project open before).
   */
  open(project, annotator) {
    this.#nextTask = project ? TASKS[project.task] : null;
    this.#nextTagKeys = new Map(tagKeys(project?.tags ?? []).filter(([, key]) => key).map(([tag, key]) => [key, tag]));
    return this.enqueue(() => this.#open(project, annotator));
  }

  async #open(project, annotator) {
    this.project = project;
    this.annotator = annotator;
    this.index = -1;
    if (!project) {
      this.list.reset(0);
      for (const name of ['item', 'keys', 'others', 'tags']) this.els[name].replaceChildren();
      this.els.progress.textContent = '';
      return;
    }
    this.task = TASKS[project.task];
    this.#pages.clear();
    this.#undo = [];
    this.#session = [];
    this.mine = new Map((await this.store.labels(project.id, annotator)).map((l) => [l.item, l]));
    this.list.reset(project.itemCount);
    this.#renderLegend();
    this.#renderProgress();
    if (project.itemCount === 0) return this.#renderEmpty();
    await this.show(this.#nextUnlabelled(-1) ?? 0);
  }

  /** Runs `action` after every action before it has finished; errors are shown, not thrown. */
  enqueue(action) {
    this.#queue = this.#queue
      .then(() => {
        this.els.message.textContent = '';
        return action();
      })
      .catch((err) => this.onError(err));
    return this.#queue;
  }

  /**
   * Queues a keydown that is ours (the caller then prevents its default): it is handled once every key and
   * project change before it has been, even if the page is still opening the project.
   */
  onKey(event) {
    const key = keyName(event);
    const ours =
      key !== null &&
      this.#nextTask &&
      (COMMON_KEYS.some(([, , press]) => press === key) || key === ' ' || this.#nextTask.handles(key) || this.#nextTagKeys.has(key));
    if (ours) this.enqueue(() => this.#handle(key));
    return Boolean(ours);
  }

  async #handle(key) {
    if (this.index < 0) return undefined; // an empty project
    const tag = tagKeys(this.project.tags ?? []).find(([, k]) => k === key)?.[0];
    if (tag !== undefined) return this.#toggleTag(tag);
    const result = this.task.key(this.draft, key, this.order);
    if (result?.problem) this.els.message.textContent = result.problem;
    else if (result?.save) return this.#save(result.save);
    else if (result?.draft) {
      this.draft = result.draft;
      return this.#renderItem();
    }
    if (result) return undefined;
    const at = this.index;
    if (key === 'Enter' || key === ' ' || key === 'ArrowRight') return this.show(Math.min(at + 1, this.project.itemCount - 1));
    if (key === 'ArrowLeft') return this.show(Math.max(at - 1, 0));
    if (key === 'n') {
      const next = this.#nextUnlabelled(at);
      if (next === null) this.els.message.textContent = 'every item is labelled';
      else return this.show(next);
    }
    if (key === 's') return this.#save({ skip: true });
    if (key === 'z') return this.#undoLast();
    if (key === 'j') this.els.justification.focus();
    return undefined;
  }

  /** The first item after `from` (wrapping) without a label of this annotator, or null. */
  #nextUnlabelled(from) {
    const n = this.project.itemCount;
    for (let k = 1; k <= n; k++) {
      const i = (from + k + n) % n;
      if (!this.mine.has(i)) return i;
    }
    return null;
  }

  async #save(value) {
    const index = this.index;
    const justification = this.els.justification.value.trim();
    const tags = (this.project.tags ?? []).filter((t) => this.tags.has(t));
    const label = {
      project: this.project.id,
      annotator: this.annotator,
      item: index,
      value,
      ...(this.order.length > 1 ? { order: this.order } : {}),
      ...(justification ? { justification } : {}),
      ...(tags.length && !value.skip ? { tags } : {}),
      ts: new Date().toISOString(),
      ms: Math.round(performance.now() - this.shownAt),
    };
    this.els.saveState.textContent = 'saving…';
    this.els.saveState.dataset.state = 'saving';
    await this.store.putLabel(label); // on disk before anything else moves
    this.els.saveState.textContent = 'saved';
    this.els.saveState.dataset.state = 'saved';
    this.#undo.push({ index, before: this.mine.get(index) ?? null });
    this.mine.set(index, label);
    this.#session.push(performance.now());
    this.#changed(index);
    if (index + 1 < this.project.itemCount) await this.show(index + 1);
    else {
      await this.show(index);
      this.els.message.textContent = 'that was the last item (N goes to the next unlabelled one)';
    }
  }

  async #undoLast() {
    const last = this.#undo.pop();
    if (!last) {
      this.els.message.textContent = 'nothing to undo';
      return;
    }
    const { index, before } = last;
    if (before) {
      await this.store.putLabel(before);
      this.mine.set(index, before);
    } else {
      await this.store.deleteLabel(this.mine.get(index));
      this.mine.delete(index);
    }
    this.#session.pop();
    this.#changed(index);
    await this.show(index);
  }

  #changed(index) {
    this.list.refresh(index);
    this.#renderProgress();
    this.onLabelsChanged();
  }

  /** Loads and shows item `index`. */
  async show(index) {
    const item = await this.store.item(this.project.id, index);
    if (!item) throw new Error(`item ${index + 1} of ${this.project.name} is missing from storage`);
    const mine = this.mine.get(index);
    this.index = index;
    this.item = item;
    this.order = displayOrder(this.project.seed, index, item.responses.length);
    this.draft = this.task.start(this.order, mine?.value, this.project.attributes);
    this.els.justification.value = mine?.justification ?? '';
    this.tags = new Set(mine?.tags ?? []);
    this.#renderItem();
    this.#renderTags();
    this.list.select(index);
    this.shownAt = performance.now();
    const others = (await this.store.labelsOfItem(this.project.id, index)).filter((l) => l.annotator !== this.annotator);
    this.els.others.replaceChildren(
      ...others.map((l) => el('span', { text: `${l.annotator}: ${describeValue(this.project.task, l.value, l.order)}`, className: 'other' })),
    );
  }

  // -------------------------------------------------------------------------------------------------------------
  // Rendering

  #renderEmpty() {
    this.els.item.replaceChildren(el('p', { className: 'hint', text: 'No items yet: add candidates (JSONL) in the setup panel.' }));
    this.els.item.dataset.index = '';
    this.els.others.replaceChildren();
  }

  #renderItem() {
    const { item, project, draft, order } = this;
    const mine = this.mine.get(this.index);
    const root = this.els.item;
    root.dataset.index = String(this.index);
    root.dataset.labelled = String(Boolean(mine));
    const head = el('div', { className: 'item-head' }, [
      el('span', { text: `Item ${this.index + 1} of ${project.itemCount}` }),
      el('span', { className: 'item-label', text: mine ? `your label: ${describeValue(project.task, mine.value, mine.order)}` : 'not labelled' }),
    ]);
    const prompt = el('div', { className: 'prompt' }, [el('div', { className: 'caption', text: 'Prompt' }), ...renderText(item.prompt)]);
    root.replaceChildren(head, prompt, this.#renderResponses(project.task, item, order, draft));
  }

  #renderResponses(task, item, order, draft) {
    const card = (caption, response, data) =>
      el('div', { className: 'response', data }, [el('div', { className: 'caption', text: caption }), ...renderText(item.responses[response])]);
    if (task === 'pairwise') {
      return el('div', { className: 'pair' }, order.map((r, side) => card(side === 0 ? 'A' : 'B', r, { side: side === 0 ? 'A' : 'B' })));
    }
    if (task === 'listwise') {
      const rows = draft.rows.map((r, i) => {
        const rank = i + 1 - draft.tied.slice(0, i + 1).filter(Boolean).length;
        const row = card(`${draft.tied[i] ? '= ' : ''}#${rank} · ${letter(order, r)}`, r, { rank: i });
        row.classList.toggle('cursor', i === draft.cursor);
        row.classList.toggle('tied', draft.tied[i]);
        row.addEventListener('click', () => this.enqueue(() => this.#moveCursor(i)));
        this.#draggable(row, i);
        return row;
      });
      return el('ol', { className: 'ranking' }, rows);
    }
    const single = card('Response', 0, {});
    if (task === 'rating') {
      const rows = draft.attributes.map((name, i) => {
        const buttons = Array.from({ length: 5 }, (_, v) => {
          const b = el('button', { text: String(v), data: { value: v } });
          b.type = 'button';
          b.setAttribute('aria-pressed', String(draft.values[name] === v));
          b.addEventListener('click', () =>
            this.enqueue(() => {
              this.draft = { ...this.draft, cursor: i };
              return this.#handle(String(v));
            }),
          );
          return b;
        });
        const row = el('div', { className: 'attribute', data: { attribute: name } }, [el('span', { text: name }), el('span', { className: 'scale' }, buttons)]);
        row.classList.toggle('cursor', i === draft.cursor);
        return row;
      });
      return el('div', { className: 'rated' }, [single, el('div', { className: 'attributes' }, rows)]);
    }
    return single;
  }

  /**
   * HTML5 drag and drop of a ranking card: dropped on another card's upper third it goes above it, on the
   * middle third it ties with it, on the lower third below it. The drop changes the draft like the keys do;
   * Enter saves it.
   */
  #draggable(row, i) {
    row.draggable = true;
    const zone = (event) => {
      const box = row.getBoundingClientRect();
      const y = (event.clientY - box.top) / box.height;
      return y < 1 / 3 ? 'before' : y > 2 / 3 ? 'after' : 'tie';
    };
    const clear = () => delete row.dataset.drop;
    row.addEventListener('dragstart', (event) => {
      event.dataTransfer.setData('application/x-alignlab-row', String(i));
      event.dataTransfer.effectAllowed = 'move';
      row.classList.add('dragging');
    });
    row.addEventListener('dragend', () => row.classList.remove('dragging'));
    row.addEventListener('dragover', (event) => {
      if (!event.dataTransfer.types.includes('application/x-alignlab-row')) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'move';
      row.dataset.drop = zone(event);
    });
    row.addEventListener('dragleave', clear);
    row.addEventListener('drop', (event) => {
      event.preventDefault();
      clear();
      const from = Number(event.dataTransfer.getData('application/x-alignlab-row'));
      const where = zone(event);
      if (!Number.isInteger(from)) return;
      this.enqueue(() => {
        this.draft = dropRow(this.draft, from, i, where);
        this.#renderItem();
      });
    });
  }

  /** Sets or clears a property tag of the item shown; it is saved with the next label of this item. */
  #toggleTag(tag) {
    if (this.tags.has(tag)) this.tags.delete(tag);
    else this.tags.add(tag);
    this.#renderTags();
  }

  /** The project's property tags as toggle buttons with their keys. */
  #renderTags() {
    const buttons = tagKeys(this.project.tags ?? []).map(([tag, key]) => {
      const b = el('button', { className: 'tag', data: { tag } }, key ? [el('kbd', { text: key.toUpperCase() }), document.createTextNode(` ${tag}`)] : [tag]);
      b.type = 'button';
      b.setAttribute('aria-pressed', String(this.tags.has(tag)));
      b.addEventListener('click', () => this.enqueue(() => this.#toggleTag(tag)));
      return b;
    });
    this.els.tags.replaceChildren(...(buttons.length ? [el('span', { className: 'caption', text: 'Tags' }), ...buttons] : []));
  }

  #moveCursor(i) {
    this.draft = { ...this.draft, cursor: i };
    this.#renderItem();
  }

  /** The legend: every key as a button that does what the key does. */
  #renderLegend() {
    const button = ([shown, text, press]) => {
      const b = el('button', { className: 'key', data: { key: press ?? '' } }, [el('kbd', { text: shown }), document.createTextNode(` ${text}`)]);
      b.type = 'button';
      if (press) b.addEventListener('click', () => this.enqueue(() => this.#handle(press)));
      else b.disabled = true;
      return b;
    };
    this.els.keys.replaceChildren(
      el('div', { className: 'keys-task' }, this.task.keys.map(button)),
      el('div', { className: 'keys-common' }, COMMON_KEYS.map(button)),
    );
  }

  #renderProgress() {
    const total = this.project.itemCount;
    let skipped = 0;
    for (const l of this.mine.values()) if (l.value.skip) skipped += 1;
    const labelled = this.mine.size - skipped;
    const p = this.els.progress;
    p.dataset.labelled = String(labelled);
    p.dataset.skipped = String(skipped);
    p.dataset.total = String(total);
    p.textContent = `${labelled} / ${total} labelled` + (skipped ? `, ${skipped} skipped` : '');
    const s = this.#session;
    const minutes = s.length > 1 ? (s.at(-1) - s[0]) / 60_000 : 0;
    this.els.pace.textContent = minutes > 0 ? `${((s.length - 1) / minutes).toFixed(1)} labels / min this session` : '';
  }

  #renderRow(row, index) {
    const label = this.mine.get(index);
    const page = Math.floor(index / PAGE);
    if (!this.#pages.has(page)) this.#loadPage(page);
    const item = this.#pages.get(page)?.[index % PAGE];
    row.dataset.state = label ? (label.value.skip ? 'skipped' : 'labelled') : 'open';
    row.replaceChildren(
      el('span', { className: 'num', text: String(index + 1) }),
      el('span', { className: 'mark', text: label ? (label.value.skip ? '↷' : '✓') : '·' }),
      el('span', { className: 'text', text: item ? preview(item.prompt) : '…' }),
      el('span', { className: 'value', text: label && !label.value.skip ? describeValue(this.project.task, label.value, label.order) : '' }),
    );
  }

  #loadPage(page) {
    this.#pages.set(page, null); // asked for; rows show "…" until it comes
    const project = this.project;
    this.store.items(project.id, page * PAGE, (page + 1) * PAGE).then(
      (items) => {
        if (this.project !== project) return;
        this.#pages.set(page, items);
        this.list.refreshAll();
      },
      (err) => this.onError(err),
    );
  }
}
