// The last checkpoint of the page's training run, in IndexedDB (through `idb`), so that a lost WebGPU device, a
// crashed worker or a reload loses at most the steps since it: weights (safetensors), the run's state, AdamW's
// moments where the backend could read them (the CPU), and what is needed to start the run again — its model's
// source, options and data. One run is kept: a new run replaces the old one's checkpoint.
import { openDB } from 'idb';

const DB_NAME = 'alignlab-runs';

function storageError(err) {
  const full = err?.name === 'QuotaExceededError';
  return new Error(
    `could not keep the training checkpoint: ${err?.name ?? 'Error'}: ${err?.message ?? err}` +
      (full ? ' — the browser has no more storage for this page (export and delete a label project, or use fewer steps between checkpoints)' : ''),
    { cause: err },
  );
}

export class CheckpointStore {
  #db;

  constructor(db) {
    this.#db = db;
  }

  static async open(name = DB_NAME) {
    return new CheckpointStore(await openDB(name, 1, { upgrade: (db) => db.createObjectStore('checkpoints', { keyPath: 'runId' }) }));
  }

  /**
   * Keeps `record` ({ runId, objective, config, data, source, totalSteps, metrics, checkpoint, savedAt }) as the
   * only checkpoint; resolves once it is on disk.
   */
  async put(record) {
    try {
      const tx = this.#db.transaction('checkpoints', 'readwrite', { durability: 'strict' });
      const store = tx.objectStore('checkpoints');
      for (const key of await store.getAllKeys()) if (key !== record.runId) store.delete(key);
      store.put(record);
      await tx.done;
    } catch (err) {
      throw storageError(err);
    }
  }

  /** The kept checkpoint, or undefined. */
  async latest() {
    return (await this.#db.getAll('checkpoints')).at(-1);
  }

  clear() {
    return this.#db.clear('checkpoints');
  }
}
