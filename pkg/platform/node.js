// Node side of the few things that differ between a browser and Node: reading the wasm and local files,
// no Cache API, WebGPU only through the optional `webgpu` package (see ../node-webgpu.js).
import { readFile } from 'node:fs/promises';
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

/** Node has no Cache API worth using for model files: the file system is the cache. */
export async function openCache() {
  return null;
}

export async function installNodeWebGPU(options) {
  const { installNodeWebGPU } = await import('../node-webgpu.js');
  return installNodeWebGPU(options);
}
