// The Label view's storage: projects, items and labels in IndexedDB (through `idb`). Every write resolves only
// once its transaction has committed, so the page shows the next item only after a label is on disk; failures
// (a full disk, a quota) are rethrown with words a person can act on, never swallowed.
import { openDB } from 'idb';
import { upgradePairwiseValue } from './tasks.js';

const DB_NAME = 'alignlab-label';
/**
 * Items are stored in pages of this many: IndexedDB costs ~0.2 ms per record here whatever its size, so 100k
 * items as 1,000 records import in seconds instead of half a minute.
 */
export const PAGE = 100;
/** Items per write transaction on import: big enough to be fast, small enough to show progress. */
const BATCH = 50 * PAGE;

/** Version 2: pairwise strength on DESIGN.md §3's 1..3 scale (version 1 stored 1 = better, 2 = much better). */
const DB_VERSION = 2;

// keys: projects by id; item pages by [project, page]; labels by [project, annotator, item], and by
// [project, item] to show every annotator's label of one item
async function upgrade(db, oldVersion, newVersion, tx) {
  if (oldVersion < 1) {
    db.createObjectStore('projects', { keyPath: 'id' });
    db.createObjectStore('items', { keyPath: ['project', 'page'] });
    const labels = db.createObjectStore('labels', { keyPath: ['project', 'annotator', 'item'] });
    labels.createIndex('byItem', ['project', 'item']);
    return;
  }
  if (oldVersion < 2) {
    // in the upgrade's own transaction: the page sees either every old label upgraded or none
    for (const project of await tx.objectStore('projects').getAll()) {
      if (project.task !== 'pairwise') continue;
      let cursor = await tx.objectStore('labels').openCursor(prefix(project.id));
      while (cursor) {
        await cursor.update({ ...cursor.value, value: upgradePairwiseValue(cursor.value.value) });
        cursor = await cursor.continue();
      }
    }
  }
}

/** Every key that starts with `prefix` (arrays sort after numbers and strings). */
const prefix = (...parts) => IDBKeyRange.bound(parts, [...parts, []]);

function storageError(err, what) {
  const full = err?.name === 'QuotaExceededError';
  return new Error(
    `could not ${what}: ${err?.name ?? 'Error'}: ${err?.message ?? err}` +
      (full ? ' — the browser has no more storage for this page: export and delete a project, then try again' : ''),
    { cause: err },
  );
}

export class LabelStore {
  #db;

  constructor(db) {
    this.#db = db;
  }

  static async open(name = DB_NAME) {
    try {
      return new LabelStore(await openDB(name, DB_VERSION, { upgrade }));
    } catch (err) {
      throw storageError(err, 'open the label database');
    }
  }

  /** Runs `fn(tx)` in one read-write transaction and resolves once it has committed. */
  async #write(stores, what, fn) {
    try {
      const tx = this.#db.transaction(stores, 'readwrite', { durability: 'strict' });
      const result = await fn(tx);
      await tx.done;
      return result;
    } catch (err) {
      throw storageError(err, what);
    }
  }

  /** Asks the browser not to evict this page's data under storage pressure (it may say no). */
  async persist() {
    return (await navigator.storage?.persist?.()) ?? false;
  }

  projects() {
    return this.#db.getAll('projects');
  }

  project(id) {
    return this.#db.get('projects', id);
  }

  putProject(project) {
    return this.#write('projects', `save project ${project.name}`, (tx) => tx.objectStore('projects').put(project));
  }

  deleteProject(id) {
    return this.#write(['projects', 'items', 'labels'], 'delete the project', (tx) => {
      tx.objectStore('projects').delete(id);
      tx.objectStore('items').delete(prefix(id));
      tx.objectStore('labels').delete(prefix(id));
    });
  }

  /**
   * Appends `items` ({prompt, responses}) to a project in batches; each batch also advances the project's
   * itemCount in the same transaction, so an interrupted import leaves a consistent, shorter project.
   */
  async addItems(project, items, onProgress = () => {}) {
    for (let done = 0; done < items.length; done += BATCH) {
      const batch = items.slice(done, done + BATCH);
      const next = { ...project, itemCount: project.itemCount + batch.length };
      await this.#write(['projects', 'items'], `store items ${done + 1}–${done + batch.length}`, async (tx) => {
        const pages = tx.objectStore('items');
        let page = Math.floor(project.itemCount / PAGE);
        // the last page may be part full: it is filled up first
        let rows = project.itemCount % PAGE ? (await pages.get([project.id, page])).items : [];
        for (const { prompt, responses } of batch) {
          rows.push({ prompt, responses });
          if (rows.length === PAGE) {
            pages.put({ project: project.id, page: page++, items: rows });
            rows = [];
          }
        }
        if (rows.length) pages.put({ project: project.id, page, items: rows });
        tx.objectStore('projects').put(next);
      });
      project = next;
      onProgress(done + batch.length, items.length);
    }
    return project;
  }

  /** Item `index`: `{ index, prompt, responses }`, or undefined. */
  async item(projectId, index) {
    const page = await this.#db.get('items', [projectId, Math.floor(index / PAGE)]);
    const item = page?.items[index % PAGE];
    return item && { index, ...item };
  }

  /** Items `start` to `end - 1`, in order. */
  async items(projectId, start = 0, end = Infinity) {
    const range = IDBKeyRange.bound([projectId, Math.floor(start / PAGE)], [projectId, Math.ceil(end / PAGE)], false, true);
    const items = (await this.#db.getAll('items', range)).flatMap((p) => p.items.map((item, i) => ({ index: p.page * PAGE + i, ...item })));
    return items.filter((item) => item.index >= start && item.index < end);
  }

  putLabel(label) {
    return this.#write('labels', `save the label of item ${label.item + 1}`, (tx) => tx.objectStore('labels').put(label));
  }

  putLabels(labels) {
    return this.#write('labels', `save ${labels.length} labels`, (tx) => {
      const store = tx.objectStore('labels');
      for (const label of labels) store.put(label);
    });
  }

  deleteLabel({ project, annotator, item }) {
    return this.#write('labels', `undo the label of item ${item + 1}`, (tx) => tx.objectStore('labels').delete([project, annotator, item]));
  }

  /** Every label of a project, or one annotator's. */
  labels(projectId, annotator) {
    return this.#db.getAll('labels', annotator === undefined ? prefix(projectId) : prefix(projectId, annotator));
  }

  /** Every annotator's label of one item. */
  labelsOfItem(projectId, index) {
    return this.#db.getAllFromIndex('labels', 'byItem', [projectId, index]);
  }
}
