// A local stand-in for the Hugging Face hub: serves folders under the hub's URL layout
// (`/{org}/{name}/resolve/{revision}/{file}`) with byte ranges, logs every request, and can cut a download short
// once to test resuming. Used by tests/node/hub.test.mjs for the CLI and the npm package alike.
import { createServer } from 'node:http';
import { readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Serves `repos` ({ 'org/name': folder }) on 127.0.0.1; `breakOnce` ({ file: bytes }) makes the first full
 * download of that file stop after that many bytes (the connection is destroyed, as a network failure would).
 * Resolves to { endpoint, requests, close }; `requests` holds { file, range, status } per request.
 */
export async function startHub(repos, { breakOnce = {} } = {}) {
  const requests = [];
  const broken = new Set();
  const server = createServer((req, res) => {
    // As the hub does, so that a page on another origin can read the files.
    res.setHeader('access-control-allow-origin', '*');
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const dir = m && repos[m[1]];
    const file = m && m[3];
    const full = dir && path.join(dir, file);
    const entry = { repo: m?.[1], revision: m?.[2], file, range: req.headers.range ?? null, status: 404 };
    requests.push(entry);
    if (!full || !full.startsWith(dir) || !existsSync(full) || !statSync(full).isFile()) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    const bytes = readFileSync(full);
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      if (start >= bytes.length) {
        entry.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
        return;
      }
      entry.status = 206;
      res.writeHead(206, {
        'content-length': bytes.length - start,
        'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`,
      });
      res.end(bytes.subarray(start));
      return;
    }
    entry.status = 200;
    res.writeHead(200, { 'content-length': bytes.length, 'accept-ranges': 'bytes' });
    const cut = breakOnce[file];
    if (cut !== undefined && !broken.has(file)) {
      broken.add(file);
      entry.status = 'cut';
      res.write(bytes.subarray(0, cut), () => res.destroy());
      return;
    }
    res.end(bytes);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
