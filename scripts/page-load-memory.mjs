// One-off measurement: time from picking a GGUF file in the page (or typing hf://local/model for a Hugging Face
// folder, served by tests/helpers/hub-server.mjs in place of the hub) to "model ready", and the peak resident memory
// (VmHWM) of each Chromium process while it loads (the page and its worker live in the renderer; WebGPU buffers
// in the GPU process). Needs web/dist (npm run build) and the system Chromium, as the Playwright tests do.
// Usage: node scripts/page-load-memory.mjs [model.gguf | HF folder] [cpu|webgpu]
import { chromium } from '@playwright/test';
import { execFileSync, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHub } from '../tests/helpers/hub-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const model = path.resolve(process.argv[2] ?? path.join(root, 'models/SmolLM2-135M-Instruct.Q4_1.gguf'));
const backend = process.argv[3] ?? 'cpu';
const port = 4190 + Math.floor(Math.random() * 100);

/** pid → { ppid, type, hwm, rss } (kB) for every process under this one. */
function processTree() {
  const all = new Map();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const type = /--type=([a-z-]+)/.exec(cmd)?.[1] ?? (cmd.includes('chrom') ? 'browser' : 'other');
      all.set(Number(pid), { ppid: field('PPid'), type, hwm: field('VmHWM'), rss: field('VmRSS') });
    } catch {
      // the process ended
    }
  }
  const mine = new Map();
  for (const [pid, p] of all) {
    for (let up = p.ppid; up > 1; up = all.get(up)?.ppid ?? 0) {
      if (up === process.pid) {
        mine.set(pid, p);
        break;
      }
    }
  }
  return mine;
}

/**
 * An HTTPS front for the local hub that Chromium reaches as https://huggingface.co (host-resolver rules and a
 * throwaway self-signed certificate): the page's own endpoint and CSP stay as they are, and files of any size pass
 * (Playwright's route.fulfill cannot carry a 100 MB body).
 */
async function httpsHub(folder) {
  const hub = await startHub({ 'local/model': folder });
  const dir = mkdtempSync(path.join(tmpdir(), 'alignlab-cert-'));
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=huggingface.co', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const front = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const upstream = request(hub.endpoint + req.url, { headers: req.headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    upstream.end();
  });
  await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve));
  return { port: front.address().port, close: () => Promise.all([hub.close(), new Promise((r) => front.close(r))]) };
}

const folder = statSync(model).isDirectory();
const hub = folder ? await httpsHub(model) : null;
const server = spawn('npx', ['vite', 'preview', 'web', '--outDir', 'dist', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
  cwd: root,
  stdio: 'ignore',
  detached: true,
});
try {
  const browser = await chromium.launch({
    executablePath: process.env.ALIGNLAB_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--enable-unsafe-webgpu',
      '--no-sandbox',
      '--disable-background-networking',
      '--no-first-run',
      ...(hub ? [`--host-resolver-rules=MAP huggingface.co:443 127.0.0.1:${hub.port}`, '--ignore-certificate-errors'] : []),
    ],
  });
  const page = await browser.newPage();
  page.on('crash', () => console.log('the page crashed'));
  page.on('console', (m) => m.type() === 'error' && console.log('console:', m.text()));
  for (let i = 0; ; i++) {
    try {
      await page.goto(`http://127.0.0.1:${port}/?backend=${backend}`);
      break;
    } catch (err) {
      if (i > 60) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await page.locator('#backend').and(page.locator(`[data-backend="${backend}"]`)).waitFor({ timeout: 180_000 });
  const before = processTree();
  const start = performance.now();
  if (folder) {
    await page.locator('#model-url').fill('hf://local/model');
    await page.locator('#model-url-form button[type=submit]').click();
  } else {
    await page.locator('#model-file').setInputFiles(model);
  }
  await page.locator('#model-status[data-loaded="true"]').waitFor({ timeout: 600_000 });
  const seconds = (performance.now() - start) / 1000;
  const after = processTree();
  const info = await page.locator('#model-info').innerText();
  console.log(`${path.basename(model)} in Chromium (${backend}): model ready after ${seconds.toFixed(2)} s`);
  console.log(info.replace(/\n/g, ' | '));
  for (const [pid, p] of after) {
    if (p.type === 'other') continue;
    const was = before.get(pid);
    console.log(`${p.type.padEnd(9)} pid ${pid}: peak RSS ${(p.hwm / 1024).toFixed(0)} MiB (RSS before loading ${((was?.rss ?? 0) / 1024).toFixed(0)} MiB, after ${(p.rss / 1024).toFixed(0)} MiB)`);
  }
  await browser.close();
  await hub?.close();
} finally {
  process.kill(-server.pid);
}
