// Node side of the few things that differ between a browser and Node: reading the wasm and local files, a file
// cache for hub downloads instead of the Cache API, WebGPU only through the optional `webgpu` package (see
// ../node-webgpu.js).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const platform = 'node';

/** The wasm for `init`: Node's fetch cannot read file: URLs, so the bytes are read here. */
export async function wasmSource(url) {
  if (url instanceof URL && url.protocol !== 'file:') return url;
  return new Uint8Array(await readFile(url));
}

/** A local path or file: URL, read whole; null for anything fetch should handle. */
export async function readLocal(source) {
  let url;
  if (source instanceof URL) url = source;
  else if (/^[a-z][a-z0-9+.-]*:/i.test(source) && !/^[a-z]:[\\/]/i.test(source)) url = new URL(source);
  else url = pathToFileURL(source);
  if (url.protocol !== 'file:') return null;
  return new Uint8Array(await readFile(url));
}

/**
 * Node has no Cache API: files of hub URLs (`…/{org}/{name}/resolve/{revision}/{file}`) are kept in the CLI's cache
 * folder under the same paths (`$ALIGNLAB_CACHE`, else `$XDG_CACHE_HOME/alignlab`, else `~/.cache/alignlab`), so
 * either finds what the other downloaded; other URLs are not cached. A 404 is remembered as `<file>.absent`.
 */
export async function openCache(url) {
  const match = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url ? new URL(url).pathname : '');
  const root = cacheRoot();
  if (!match || !root || match.slice(1).some((p) => p.split('/').some((s) => s === '..' || s === '.'))) return null;
  const file = path.join(root, 'hub', ...match.slice(1));
  const absent = `${file}.absent`;
  return {
    async match() {
      if (existsSync(file)) return new Response(await readFile(file));
      if (existsSync(absent)) return new Response(null, { status: 404 });
      return undefined;
    },
    async put(_, response) {
      await mkdir(path.dirname(file), { recursive: true });
      if (response.status === 404) return writeFile(absent, '');
      const part = `${file}.part`;
      await writeFile(part, new Uint8Array(await response.arrayBuffer()));
      await rename(part, file); // never a half-written file under the final name
    },
    async delete() {
      await rm(file, { force: true });
    },
  };
}

function cacheRoot() {
  const env = (k) => process.env[k] || undefined;
  if (env('ALIGNLAB_CACHE')) return env('ALIGNLAB_CACHE');
  if (env('XDG_CACHE_HOME')) return path.join(env('XDG_CACHE_HOME'), 'alignlab');
  const home = env('HOME') ?? homedir();
  return home ? path.join(home, '.cache', 'alignlab') : null;
}

export async function installNodeWebGPU(options) {
  const { installNodeWebGPU } = await import('../node-webgpu.js');
  return installNodeWebGPU(options);
}
