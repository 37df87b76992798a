// Browser (and worker) side of the few things that differ from Node: the wasm is streamed from its URL, models
// are cached with the Cache API, and WebGPU is the page's own `navigator.gpu`.

export const platform = 'browser';

/** The wasm for `init`: a URL is handed to `WebAssembly.instantiateStreaming` as is. */
export async function wasmSource(url) {
  return url;
}

/** Browsers read everything through fetch. */
export async function readLocal() {
  return null;
}

const CACHE_NAME = 'alignlab-models-v1';

/** The model cache, or null where the Cache API is missing (insecure contexts, some private modes). */
export async function openCache() {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

export async function installNodeWebGPU() {
  throw new Error('alignlab: nodeWebgpu is for Node; a browser brings its own navigator.gpu');
}
