// Models by name: `hf://org/name[@revision][/file]`, fetched from the Hugging Face hub or any server with its layout
// (`{endpoint}/{org}/{name}/resolve/{revision}/{file}`). The rules are the CLI's (crates/alignlab-cli/src/hub.rs):
// the same name syntax, the same files of a model folder, and in Node the same cache folder, so a model downloaded
// by one is found by the other. In a browser the Cache API keeps the files, so a reload downloads nothing.

const SCHEME = 'hf://';
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
const MAX_PART = 96;
/** The files of a model folder that the loader reads, besides the weights; config.json is required. */
const FOLDER_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];
const INDEX_FILE = 'model.safetensors.index.json';
const WEIGHTS_FILE = 'model.safetensors';

function validPart(part) {
  return part.length >= 1 && part.length <= MAX_PART && part !== '.' && part !== '..' && /^[A-Za-z0-9._-]+$/.test(part);
}

/**
 * `{ repo, revision, file }` for an `hf://` name, null for anything else; throws on a malformed name.
 * @param {string} name
 */
export function parseHubRef(name) {
  if (typeof name !== 'string' || !name.startsWith(SCHEME)) return null;
  const bad = (why) => new Error(`alignlab: ${name}: ${why} (expected hf://org/name[@revision][/file])`);
  const [org = '', nameRev, ...rest] = name.slice(SCHEME.length).split('/');
  if (nameRev === undefined) throw bad('no model name');
  const at = nameRev.indexOf('@');
  const [model, revision] = at < 0 ? [nameRev, 'main'] : [nameRev.slice(0, at), nameRev.slice(at + 1)];
  const file = rest.filter((p) => p !== '');
  const wrong = [org, model, revision, ...file].find((p) => !validPart(p));
  if (wrong !== undefined) {
    throw bad(`${JSON.stringify(wrong)} must be 1 to ${MAX_PART} letters, digits, '-', '_' or '.' (and not '.' or '..')`);
  }
  return { repo: `${org}/${model}`, revision, file: file.length ? file.join('/') : null };
}

/** The URL of one file of `ref` on `endpoint`. */
export function hubUrl(endpoint, ref, file) {
  return `${endpoint.replace(/\/+$/, '')}/${ref.repo}/resolve/${ref.revision}/${file}`;
}

/**
 * The files of `ref`: `{ gguf }` for a single GGUF file, `{ files: [[name, bytes], …] }` for a model folder.
 * `fetchBytes(url, { allowMissing, … })` is index.js's fetch with progress and caching.
 */
export async function fetchHubModel(ref, { endpoint = DEFAULT_HUB_ENDPOINT, token, onProgress, cache, signal, fetchBytes }) {
  const headers = token ? { authorization: `Bearer ${token}` } : undefined;
  const get = (file, allowMissing = false) =>
    fetchBytes(hubUrl(endpoint, ref, file), {
      allowMissing,
      headers,
      cache,
      signal,
      onProgress: onProgress && ((p) => onProgress({ ...p, file })),
    });
  if (ref.file) {
    if (!ref.file.endsWith('.gguf')) {
      throw new Error(`alignlab: hf://${ref.repo}/${ref.file}: name a .gguf file, or no file for a model folder`);
    }
    return { gguf: await get(ref.file) };
  }
  const files = [];
  for (const name of FOLDER_FILES) {
    const bytes = await get(name, name !== 'config.json');
    if (bytes) files.push([name, bytes]);
  }
  const index = await get(INDEX_FILE, true);
  if (index) {
    files.push([INDEX_FILE, index]);
    let map;
    try {
      map = JSON.parse(new TextDecoder().decode(index)).weight_map;
    } catch (err) {
      throw new Error(`alignlab: hf://${ref.repo}@${ref.revision}/${INDEX_FILE} is not JSON: ${err.message}`);
    }
    const shards = [...new Set(Object.values(map ?? {}))].sort();
    if (!shards.length || !shards.every((s) => typeof s === 'string' && s.split('/').every(validPart))) {
      throw new Error(`alignlab: hf://${ref.repo}@${ref.revision}/${INDEX_FILE} has no valid weight_map`);
    }
    for (const shard of shards) files.push([shard, await get(shard)]);
  } else {
    files.push([WEIGHTS_FILE, await get(WEIGHTS_FILE)]);
  }
  return { files };
}
