import { defineConfig } from 'vite';

// The page's Content-Security-Policy: no inline script, no eval except WebAssembly compilation, scripts and
// workers from this origin only; models may be fetched from any https origin (a hub or a CDN) and this origin.
// Added at build time only, because Vite's dev server injects inline styles and scripts.
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self' https:",
  "img-src 'self' data: blob:",
  "style-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

const csp = {
  name: 'alignlab-csp',
  apply: 'build',
  transformIndexHtml: () => [
    { tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CSP }, injectTo: 'head-prepend' },
  ],
};

export default defineConfig({
  base: './',
  plugins: [csp],
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    // the wasm is one big file by nature; everything else should stay small
    chunkSizeWarningLimit: 200,
    assetsInlineLimit: 0,
  },
  server: { port: 5173 },
  preview: { port: 4173, strictPort: true },
});
