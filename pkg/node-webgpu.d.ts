/** SwiftShader's Vulkan driver manifest as Debian's `chromium` package installs it. */
export const SWIFTSHADER_ICD: string;

export interface NodeWebGPUOptions {
  /**
   * The Vulkan driver manifest (sets `VK_ICD_FILENAMES`). `"auto"` (default): `VK_ICD_FILENAMES` as it is when
   * set, else the system's Vulkan drivers, else (when Dawn accepts none of them) SwiftShader from Debian's
   * chromium package. `null`/`false`: never touch `VK_ICD_FILENAMES`.
   */
  icd?: string | "auto" | null | false;
  /** Flags for Dawn (`webgpu`'s `create(flags)`), e.g. `["enable-dawn-features=allow_unsafe_apis"]`. */
  dawnFlags?: string[];
}

/**
 * Makes `navigator.gpu` exist in Node through the optional package `webgpu` (Dawn). Idempotent.
 * Call it before `init({ backend: "webgpu" })`, or pass `nodeWebgpu: true` to `init`.
 */
export function installNodeWebGPU(options?: NodeWebGPUOptions): Promise<GPU>;

declare global {
  interface GPU {}
}
