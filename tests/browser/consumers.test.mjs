// The packed npm package as applications consume it: a Vite app, a webpack 5
// app and an esbuild app (tests/browser/apps/), each with the tarball
// installed as a user installs it, built for production, served by the
// reference server and run in headless Chromium under fault injection: in
// the page, in a dedicated worker that owns the client, and across a real
// page reload with `persist`; and a chat page over the package's store, in
// React (through `useSyncExternalStore`) and in Vue, each built with Vite.
// None of them puts `seqsync/foreign` in what a default page loads.
//
// Needs SEQSYNC_SERVER_BIN (the server binary) and SEQSYNC_TARBALL (the
// packed package); the apps' bundlers are installed by
// ensure_browser_toolchain (scripts/browser.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { StreamCheck, startServer, waitFor } from './support.mjs';

const apps = join(import.meta.dirname, 'apps');
const COUNT = 1000;
// Drops, duplicates and reordering of live messages, and a cut connection
// every 400 frames: reconnects, resubscribes and publishes sent again.
const FAULTS = 'drop=0.1,dup=0.1,reorder=0.3,window=8,cut_every_frames=400';

const builds = {
  vite: (out) => ['vite', 'build', '--outDir', out, '--logLevel', 'warn'],
  webpack: (out) => ['webpack', '--output-path', out, '--stats', 'errors-warnings'],
  react: (out) => ['vite', 'build', '--outDir', out, '--logLevel', 'warn'],
  vue: (out) => ['vite', 'build', '--outDir', out, '--logLevel', 'warn'],
  // As the package's README says to build with esbuild: ES modules with splitting (the foreign
  // module stays a chunk of its own), the WASM file emitted by the file loader.
  esbuild: (out) => [
    'esbuild', 'src/main.js', 'src/worker.js', 'src/index.html', '--bundle', '--format=esm', '--splitting',
    '--minify', '--loader:.wasm=file', '--loader:.html=copy', `--outdir=${out}`, '--log-level=warning',
  ],
};

let dist;
let server;
let browser;

before(async () => {
  const tarball = process.env.SEQSYNC_TARBALL;
  if (!tarball) throw new Error('SEQSYNC_TARBALL must name the packed package');
  dist = mkdtempSync(join(tmpdir(), 'seqsync-apps-'));
  for (const [app, args] of Object.entries(builds)) {
    const cwd = join(apps, app);
    // As a user adds it; --no-save keeps the committed manifest and lock file as they are.
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--offline', tarball], { cwd, stdio: 'pipe' });
    execFileSync('npx', ['--no-install', ...args(join(dist, app))], { cwd, stdio: 'pipe' });
  }
  server = await startServer(['--static-dir', dist, '--heartbeat-ms', '300']);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

let seed = 0;

/** The app's page URL for `stream`, with the server URL (faults on) and more parameters. */
function pageUrl(app, stream, extra = {}) {
  const ws = `${server.wsUrl}?faults=seed=${++seed},${FAULTS}`;
  const query = new URLSearchParams({ ws, stream, ...extra });
  return `${server.httpUrl}/${app}/index.html?${query}`;
}

async function open(context, url, errors) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  await page.goto(url);
  await waitFor(() => page.evaluate(() => window.__loaded === true), 'the app to load');
  return page;
}

const result = (page) => page.evaluate(() => window.__check);

/**
 * The contract on what a page delivered (`reader`): replayed through the
 * suites' checker, every seq after the snapshot or resume point `from - 1`
 * up to `to` once, in order, no holes, each carrying the `n` that was
 * published as that seq (`published`, from the acks).
 */
function assertExact(reader, from, to, published) {
  const check = new StreamCheck('the app\'s stream', from > 1 ? { resumingAfter: from - 1 } : {}).replay(reader.events);
  const acked = Object.keys(published).length;
  assert.ok(acked >= to - from + 1, `every message acked (${acked})`);
  check.assertExact(to, (seq) => ({ n: published[seq] }));
}

// Text of `seqsync/foreign` (its description errors) that minifiers keep.
const FOREIGN_MARK = 'seqsync description:';

/**
 * The files of a build that its index.html loads before any dynamic
 * `import()`: the scripts it names (quoted or not: webpack minifies the
 * page) and every module they import statically
 * (`from"./x.js"`, `import"./x.js"`), paths relative to `root`.
 */
function staticFiles(root) {
  const html = readFileSync(join(root, 'index.html'), 'utf8');
  const todo = [...html.matchAll(/<script[^>]*\ssrc=["']?([^"'\s>]+)/g)].map((m) => join(root, m[1]));
  const seen = new Set();
  while (todo.length > 0) {
    const file = todo.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(file, 'utf8');
    for (const m of code.matchAll(/(?:\bfrom|\bimport)\s*["'](\.{1,2}\/[^"']+)["']/g)) todo.push(join(dirname(file), m[1]));
  }
  return [...seen];
}

/** Every file under `dir`, with its path. */
function allFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

for (const app of Object.keys(builds)) {
  test(`${app}: the foreign module is a chunk of its own, not in what a default page loads`, () => {
    const root = join(dist, app);
    const first = staticFiles(root);
    assert.ok(first.some((f) => f.endsWith('.js')), `the page loads a script (${first})`);
    for (const file of first) {
      assert.ok(!readFileSync(file, 'utf8').includes(FOREIGN_MARK), `${file} holds seqsync/foreign`);
    }
    // It is in the build, for the pages that use it: the check above would pass vacuously otherwise.
    const chunks = allFiles(root).filter((f) => f.endsWith('.js') && readFileSync(f, 'utf8').includes(FOREIGN_MARK));
    assert.ok(chunks.length > 0 && chunks.every((f) => !first.includes(f)), `a chunk of its own (${chunks})`);
  });
}

for (const app of ['vite', 'webpack', 'esbuild']) {
  for (const where of ['page', 'worker']) {
    test(`${app}: a production build ${where === 'worker' ? 'in a dedicated worker ' : ''}publishes and receives ${COUNT} messages under faults, exactly`, async () => {
      const errors = [];
      const context = await browser.newContext();
      try {
        const stream = `${app}-${where}`;
        const page = await open(context, pageUrl(app, stream, { publish: COUNT, worker: where === 'worker' ? '1' : '0' }), errors);
        await waitFor(async () => {
          const r = await result(page);
          return r.errors.length > 0 || (r.stats !== null && r.received.length >= COUNT);
        }, `${COUNT} messages acked and delivered`, 120_000);
        const r = await result(page);
        assert.equal(r.acked, COUNT);
        // The faults happened: connections were cut, and live messages lost or repeated.
        assert.ok(r.stats.client.connects >= 2, `reconnected (${JSON.stringify(r.stats.client)})`);
        assert.ok(r.stats.stream.gaps + r.stats.stream.duplicates > 0, `repaired (${JSON.stringify(r.stats.stream)})`);
        assert.deepEqual(r.errors, []);
        assert.deepEqual(r.snapshots, [0], 'one snapshot, of the empty stream');
        assertExact(r, 1, COUNT, r.published);
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  }
}

test('vite: after a real page reload with persist, what was published while the page was gone arrives once, by resume', async () => {
  const errors = [];
  const context = await browser.newContext();
  try {
    const stream = 'reload';
    const reader = await open(context, pageUrl('vite', stream, { persist: '1', hold: '1' }), errors);
    const writer = await open(context, pageUrl('vite', stream, { hold: '1' }), errors);
    await reader.evaluate(() => window.__start());
    await waitFor(async () => (await result(reader)).phase === 'live', 'the reader to go live');

    const before = 50;
    await writer.evaluate((n) => window.__publish(1, n), before);
    await waitFor(async () => (await result(reader)).received.length >= before, 'the first messages');
    const first = await result(reader);
    assert.deepEqual(first.snapshots, [0]);
    await waitFor(async () => (await result(writer)).acked === before, 'the first acks');
    assertExact(first, 1, before, (await result(writer)).published);

    // The reader's page is unloaded and loaded again; its client starts only
    // once the next messages are stored, so it has to resume to get them.
    await reader.reload();
    await waitFor(() => reader.evaluate(() => window.__loaded === true), 'the reloaded page');
    const after = 100;
    await writer.evaluate(([from, to]) => window.__publish(from, to), [before + 1, after]);
    await waitFor(async () => (await result(writer)).acked === after, 'the publishes while the reader is gone');
    await reader.evaluate(() => window.__start());
    await waitFor(async () => (await result(reader)).received.length >= after - before, 'the messages published while away');

    const second = await result(reader);
    assert.deepEqual(second.snapshots, [], 'resumed: no snapshot');
    // Delivery is in order, so a repeat of a message seen before the reload would come first.
    assertExact(second, before + 1, after, (await result(writer)).published);
    assert.deepEqual(second.errors, []);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

for (const app of ['react', 'vue']) {
  test(`${app}: a chat page over client.store renders every message once, in order, under faults, and publishes from its form`, async () => {
    const errors = [];
    const context = await browser.newContext();
    try {
      const page = await open(context, pageUrl(app, `${app}-chat`, { publish: COUNT }), errors);
      await waitFor(async () => {
        const r = await result(page);
        return r.errors.length > 0 || (r.stats !== null && r.received.length >= COUNT);
      }, `${COUNT} messages acked and rendered`, 120_000);
      // A message typed into the form and sent comes back into the list.
      await page.fill('#text', 'hello from the form');
      await page.click('button[type=submit]');
      await waitFor(async () => (await page.textContent('#messages li:last-child')) === 'hello from the form', 'the sent message in the list');
      await waitFor(async () => (await result(page)).received.length > COUNT, 'the sent message in the rendered log');
      const r = await result(page);
      assert.equal(r.acked, COUNT + 1);
      assert.ok(r.stats.client.connects >= 2, `reconnected (${JSON.stringify(r.stats.client)})`);
      assert.ok(r.stats.stream.gaps + r.stats.stream.duplicates > 0, `repaired (${JSON.stringify(r.stats.stream)})`);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.snapshots, [0], 'one snapshot, of the empty stream');
      // What the page rendered last: the store's log of every delivery, and the list's last 50.
      const check = new StreamCheck(`the ${app} page`).replay(r.events);
      check.assertExact(COUNT + 1, (seq) => (typeof r.published[seq] === 'string' ? { text: r.published[seq] } : { n: r.published[seq] }));
      const shown = await page.$$eval('#messages li', (items) => items.map((li) => Number(li.dataset.seq)));
      assert.deepEqual(shown, Array.from({ length: 50 }, (_, i) => COUNT + 1 - 49 + i));
      assert.equal(await page.textContent('#count'), String(COUNT + 2), 'the snapshot and every message');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
}
