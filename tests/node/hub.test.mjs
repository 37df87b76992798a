// Models by name (hf://org/name[@revision][/file]) against local servers with the hub's layout
// (tests/helpers/hub-server.mjs): the npm package and the CLI download the same files into the same cache, a second
// load needs no network, and an interrupted CLI download continues with a range request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as alignlab from 'alignlab';
import { repoRoot, wasmBuilt } from '../helpers/paths.mjs';
import { startHub } from '../helpers/hub-server.mjs';

const exec = promisify(execFile);
/** A sharded checkpoint written by transformers (crates/alignlab-core/tests/fixtures/make_fixtures.py). */
const FOLDER = path.join(repoRoot, 'crates/alignlab-core/tests/fixtures/hf-tiny-llama-untied');
const SHARD = 'model-00001-of-00002.safetensors';
const FOLDER_FILES = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'model.safetensors.index.json',
  SHARD,
  'model-00002-of-00002.safetensors',
];
const GENERATE = { maxNewTokens: 8, chatTemplate: false };
let hub;
let ggufDir;

before(async () => {
  assert.ok(wasmBuilt(), 'pkg/wasm is not built: run `npm run build:wasm` first');
  await alignlab.init({ backend: 'cpu' });
  ggufDir = mkdtempSync(path.join(tmpdir(), 'alignlab-hub-gguf-'));
  writeFileSync(path.join(ggufDir, 'tiny.gguf'), alignlab.tinyGguf(0));
  hub = await startHub({ 'test/tiny-llama': FOLDER, 'test/tiny-gguf': ggufDir });
});
after(() => hub?.close());

function freshCache() {
  const dir = mkdtempSync(path.join(tmpdir(), 'alignlab-hub-cache-'));
  process.env.ALIGNLAB_CACHE = dir;
  return dir;
}

/** The requests `server` got while `fn` ran, as "file status". */
async function requestsDuring(server, fn) {
  const start = server.requests.length;
  const value = await fn();
  return { value, requests: server.requests.slice(start).map((r) => `${r.file} ${r.status}`) };
}

async function generate(model) {
  try {
    return await model.generate('Hello', GENERATE);
  } finally {
    model.free();
  }
}

test('hf:// names parse as the CLI parses them, and bad ones are refused', () => {
  assert.deepEqual(alignlab.parseHubRef('hf://HuggingFaceTB/SmolLM2-135M-Instruct'), {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    revision: 'main',
    file: null,
  });
  assert.deepEqual(alignlab.parseHubRef('hf://org/m@v1.0/sub/model.Q4_K.gguf'), {
    repo: 'org/m',
    revision: 'v1.0',
    file: 'sub/model.Q4_K.gguf',
  });
  assert.equal(alignlab.parseHubRef('models/x.gguf'), null);
  for (const bad of ['hf://', 'hf://org', 'hf://org/', 'hf://org/m@', 'hf://org/m/../x', 'hf://o rg/m']) {
    assert.throws(() => alignlab.parseHubRef(bad), /expected hf:\/\/org\/name/, bad);
  }
});

test('a sharded Hugging Face folder loads by name; the second load comes from the cache', async () => {
  const cache = freshCache();
  const progress = [];
  const first = await requestsDuring(hub, () =>
    alignlab.loadModel('hf://test/tiny-llama', { endpoint: hub.endpoint, onProgress: (p) => progress.push(p) }),
  );
  assert.deepEqual(first.requests, FOLDER_FILES.map((f) => `${f} 200`), 'the folder files, in order, each once');
  const last = progress.filter((p) => p.file === SHARD).at(-1);
  assert.equal(last.loaded, readFileSync(path.join(FOLDER, SHARD)).byteLength, 'progress reaches the file size');
  // the cache holds the files under the CLI's layout, byte for byte
  for (const f of FOLDER_FILES) {
    assert.deepEqual(readFileSync(path.join(cache, 'hub/test/tiny-llama/main', f)), readFileSync(path.join(FOLDER, f)));
  }
  const local = alignlab.Model.fromHfFiles(FOLDER_FILES.map((f) => [f, readFileSync(path.join(FOLDER, f))]));
  const expected = await generate(local);
  assert.equal(await generate(first.value), expected, 'hf:// and the local folder generate the same text');

  const second = await requestsDuring(hub, () => alignlab.loadModel('hf://test/tiny-llama', { endpoint: hub.endpoint }));
  assert.deepEqual(second.requests, [], 'nothing is downloaded again');
  assert.equal(await generate(second.value), expected);
});

test('one GGUF file of a repository loads by name', async () => {
  freshCache();
  const got = await requestsDuring(hub, () =>
    alignlab.loadModel('hf://test/tiny-gguf@main/tiny.gguf', { endpoint: hub.endpoint }),
  );
  assert.deepEqual(got.requests, ['tiny.gguf 200']);
  assert.equal(await generate(got.value), await generate(alignlab.Model.tiny(0)));
});

test('a name the server does not have says which URL answered 404', async () => {
  freshCache();
  await assert.rejects(
    alignlab.loadModel('hf://test/nothing-here', { endpoint: hub.endpoint }),
    /GET http:\/\/127\.0\.0\.1:\d+\/test\/nothing-here\/resolve\/main\/config\.json: HTTP 404/,
  );
  await assert.rejects(
    alignlab.loadModel('hf://test/tiny-gguf/other.gguf', { endpoint: hub.endpoint }),
    /resolve\/main\/other\.gguf: HTTP 404/,
  );
});

const cli = process.env.ALIGNLAB_CLI;
test(
  'the CLI resumes a broken download, then works offline, and the package finds its cache',
  { skip: !cli && 'ALIGNLAB_CLI is unset (set it to the alignlab binary, e.g. target/debug/alignlab)' },
  async () => {
    assert.ok(existsSync(cli), `ALIGNLAB_CLI=${cli} does not exist`);
    const flaky = await startHub({ 'test/tiny-llama': FOLDER }, { breakOnce: { [SHARD]: 20_000 } });
    const cache = freshCache();
    const env = { ...process.env, HF_ENDPOINT: flaky.endpoint, ALIGNLAB_CACHE: cache };
    const args = ['generate', '--model', 'hf://test/tiny-llama', '--prompt', 'Hello', '--raw', '--max-new-tokens', '8'];
    try {
      const broken = await exec(cli, args, { env }).then(
        () => null,
        (err) => err,
      );
      assert.ok(broken, 'the first run fails when the connection breaks');
      assert.match(broken.stderr, /model-00001-of-00002\.safetensors.*run again to continue/s);
      const part = path.join(cache, 'hub/test/tiny-llama/main', `${SHARD}.part`);
      assert.equal(readFileSync(part).byteLength, 20_000, 'the bytes received are kept');

      const start = flaky.requests.length;
      const { stdout } = await exec(cli, args, { env });
      const again = flaky.requests.slice(start).map((r) => `${r.file} ${r.range} ${r.status}`);
      assert.deepEqual(again, [
        `${SHARD} bytes=20000- 206`,
        'model-00002-of-00002.safetensors null 200',
      ]);
      assert.deepEqual(
        readFileSync(path.join(cache, 'hub/test/tiny-llama/main', SHARD)),
        readFileSync(path.join(FOLDER, SHARD)),
        'the resumed file is the original',
      );
      const local = await exec(cli, ['generate', '--model', FOLDER, '--prompt', 'Hello', '--raw', '--max-new-tokens', '8']);
      assert.equal(stdout, local.stdout, 'hf:// and the local folder generate the same text');

      await flaky.close();
      const offline = await exec(cli, args, { env: { ...env, HF_HUB_OFFLINE: '1' } });
      assert.equal(offline.stdout, local.stdout, 'the cache alone serves the model');

      const fromPackage = await requestsDuring(hub, () =>
        alignlab.loadModel('hf://test/tiny-llama', { endpoint: hub.endpoint }),
      );
      assert.deepEqual(fromPackage.requests, [], 'the package finds the files the CLI downloaded');
      fromPackage.value.free();
    } finally {
      await flaky.close().catch(() => {});
    }
  },
);
