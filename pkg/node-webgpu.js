// WebGPU for Node, opt-in: the optional package `webgpu` (Google's Dawn, its binary ships inside the package)
// provides `navigator.gpu`. Used by `init({ nodeWebgpu: true })` or directly:
//
//   import { installNodeWebGPU } from 'alignlab/node-webgpu';
//   await installNodeWebGPU();                 // before alignlab.init({ backend: 'webgpu' })
//
// On a machine without a GPU, Dawn finds an adapter through a Vulkan driver; Debian's `chromium` package ships
// SwiftShader's (a CPU Vulkan), and Dawn needs the Vulkan loader (`libvulkan1`) to reach it.
import { existsSync } from 'node:fs';

/** SwiftShader's Vulkan driver as Debian's `chromium` package installs it. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let installed = null;

/**
 * Makes `navigator.gpu` (and the WebGPU globals such as `GPUBufferUsage`) exist in this Node process.
 * Idempotent; returns `navigator.gpu`.
 */
export async function installNodeWebGPU({ icd = 'auto', dawnFlags = [] } = {}) {
  if (installed) return installed;
  if (globalThis.navigator?.gpu) return (installed = globalThis.navigator.gpu);
  // The Vulkan loader reads VK_ICD_FILENAMES each time Dawn creates an instance, so setting it here still counts.
  if (icd && icd !== 'auto') {
    if (!existsSync(icd)) throw new Error(`alignlab: Vulkan driver manifest ${icd} does not exist`);
    process.env.VK_ICD_FILENAMES = icd;
  }
  let webgpu;
  try {
    webgpu = await import('webgpu');
  } catch (err) {
    throw new Error(
      "alignlab: WebGPU in Node needs the optional package 'webgpu' (npm install webgpu): " + err.message,
      { cause: err },
    );
  }
  let gpu = webgpu.create(dawnFlags);
  if (icd === 'auto' && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD) && !(await gpu.requestAdapter())) {
    // No Vulkan driver that Dawn accepts (Debian 12's lavapipe is refused): fall back to SwiftShader.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    gpu = webgpu.create(dawnFlags);
  }
  Object.assign(globalThis, webgpu.globals);
  if (!globalThis.navigator) globalThis.navigator = {};
  Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  // wgpu (inside the wasm) looks for `navigator.gpu` only where a global `Window` or `WorkerGlobalScope`
  // exists, the way it tells a page from a worker; Node has neither, so name one.
  if (globalThis.Window === undefined && globalThis.WorkerGlobalScope === undefined) {
    globalThis.Window = class Window {};
  }
  return (installed = gpu);
}
