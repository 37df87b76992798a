// Writes web/public/tiny.gguf, the page's "Tiny demo model": `tinyGguf(0)` from the alignlab package, run in Node
// on the wasm CPU backend (the same bytes the native `alignlab tiny-model --seed 0` writes). Without a wasm build
// it says so and leaves the page to make the same bytes itself.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const out = new URL('../public/tiny.gguf', import.meta.url);
const bindings = new URL('../../pkg/wasm/alignlab_wasm.js', import.meta.url);
if (!existsSync(bindings)) {
  console.warn('tiny-model: pkg/wasm is not built (npm run build:wasm); the page will make the demo model itself');
  process.exit(0);
}
const alignlab = await import('alignlab');
await alignlab.init({ backend: 'cpu' });
const bytes = alignlab.tinyGguf(0);
mkdirSync(new URL('.', out), { recursive: true });
writeFileSync(out, bytes);
console.log(`tiny-model: wrote ${bytes.byteLength} bytes to ${fileURLToPath(out)}`);
