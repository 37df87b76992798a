// The Label view's storage: projects, items and labels in IndexedDB (through `idb`). Every write resolves only
// once its transaction has committed, so the page shows the next item only after a label is on disk; failures
// (a full disk, a quota) are rethrown with words a person can act on, never swallowed.
import { openDB } from 'idb';

const DB_NAME = 'alignlab-label';
/** Items per write transaction on import: big enough to be fast, small enough to show progress. */
const BATCH = 5000;

// keys: projects by id; items by [project, index]; labels by [project, annotator, item], and by [project, item]
// to show every annotator's label of one item
function upgrade(db) {
  db.createObjectStore('projects', { keyPath: 'id' });
  db.createObjectStore('items', { keyPath: ['project', 'index'] });
  const labels = db.createObjectStore('labels', { keyPath: ['project', 'annotator', 'item'] });
  labels.createIndex('byItem', ['project', 'item']);
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
      return new LabelStore(await openDB(name, 1, { upgrade }));
    } catch (err) {
      throw storageError(err, 'open the label database');
    }
  }

  /** Runs `fn(tx)` in one read-write transaction and resolves once it has committed. */
  async #write(stores, what, fn) {
    try {
      const tx = this.#db.transaction(stores, 'readwrite', { durability: 'strict' });
      const result = fn(tx);
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
    for (let start = 0; start < items.length; start += BATCH) {
      const batch = items.slice(start, start + BATCH);
      const next = { ...project, itemCount: project.itemCount + batch.length };
      await this.#write(['projects', 'items'], `store items ${start + 1}–${start + batch.length}`, (tx) => {
        const store = tx.objectStore('items');
        batch.forEach((item, i) => store.put({ project: project.id, index: project.itemCount + i, prompt: item.prompt, responses: item.responses }));
        tx.objectStore('projects').put(next);
      });
      project = next;
      onProgress(start + batch.length, items.length);
    }
    return project;
  }

  item(projectId, index) {
    return this.#db.get('items', [projectId, index]);
  }

  /** Items `start` to `end - 1`, in order. */
  items(projectId, start = 0, end = Infinity) {
    return this.#db.getAll('items', IDBKeyRange.bound([projectId, start], [projectId, end], false, true));
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
