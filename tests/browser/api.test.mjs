// The client's API in headless Chromium, against the reference server on
// loopback: a client that gave up is connected again by `connect()`,
// `disconnect()` and `connect()` resume a live stream, `close({ force: true
// })` ends a publish pending through an outage, the `for await` loop ends
// with its `AbortSignal` and releases the stream, and an oversized publish
// is refused at once while the connection stays usable. The page
// (tests/browser/api/) imports the package as it is, from SEQSYNC_PKG; the
// test drives its clients through `window.__api` and checks what they
// recorded. The same behaviours on Node: node/lifecycle.test.mjs,
// node/listeners.test.mjs, node/oversize.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { StreamCheck, servePage, startServer, waitFor } from './support.mjs';

const COUNT = 40;
// Quick retries, so that the tests spend their time on the behaviour asked.
const QUICK = { reconnectInitialMs: 20, reconnectMaxMs: 100, connectTimeoutMs: 500 };
// Far longer than any test may take: a publish that settles did not time out.
const NEVER = 600_000;
const FRAME_LIMIT = 2000;

let server;
let pages;
let browser;
const cleanups = [];

before(async () => {
  const pkg = process.env.SEQSYNC_PKG;
  if (!pkg) throw new Error('SEQSYNC_PKG must name the built package directory');
  server = await startServer(['--heartbeat-ms', '200']);
  pages = await servePage({ dir: join(import.meta.dirname, 'api'), pkg, upstream: server.httpUrl });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  for (const stop of cleanups.reverse()) await stop();
  await browser?.close();
  await pages?.stop();
  await server?.stop();
});

/** A fresh page with the package loaded; page errors are collected in `errors`. */
async function openPage() {
  const context = await browser.newContext();
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  await page.goto(`${pages.url}/index.html`);
  await waitFor(() => page.evaluate(() => window.__loaded === true), 'the page to load');
  /** Calls `__api[name](...args)` in the page. */
  const api = (name, ...args) => page.evaluate(([n, a]) => window.__api[n](...a), [name, args]);
  const view = (id) => api('view', id);
  /** Polls the view of client `id` until `ok(view)`; resolves to that view. */
  const until = async (id, ok, what, ms) => {
    let last;
    await waitFor(async () => ok((last = await view(id))), what, ms);
    return last;
  };
  return { api, view, until, errors };
}

/** A loopback port that was free a moment ago: bound on port 0, read, released. */
async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const payload = (seq) => ({ n: seq });
const lastSeq = (events) => events.filter((e) => e[0] === 'message' || e[0] === 'snapshot').at(-1)?.[1] ?? -1;

test('a client that gave up is failed, keeps its subscription, and connect() delivers every message once', async () => {
  const stream = 'api:give-up';
  const port = await freePort();
  const { api, view, until, errors } = await openPage();
  const url = `ws://127.0.0.1:${port}/ws`;
  await api('open', 'c', url, { ...QUICK, initialConnectTimeoutMs: 300 });
  await api('subscribe', 'c', stream);
  const failed = await until('c', (v) => v.ready !== null, 'the client to give up');
  assert.equal(failed.ready.error?.code, 'connect_failed', JSON.stringify(failed.ready));
  assert.equal(failed.ready.error.seqsync, true);
  assert.deepEqual(failed.states.at(-1), { state: 'failed', error: failed.ready.error }, 'told to on(state)');
  assert.equal(failed.state, 'failed');
  assert.notEqual(failed.subStats[stream], null, 'the subscription is still registered');
  assert.deepEqual(failed.streams[stream], [], 'nothing delivered');
  const attempts = failed.stats.connectFailures;
  assert.ok(attempts > 0, 'it tried');

  const there = await startServer(['--heartbeat-ms', '200'], { port });
  cleanups.push(() => there.stop());
  assert.equal(there.wsUrl, url);
  assert.equal((await view('c')).stats.connectFailures, attempts, 'no attempt while failed');
  // Half before connect(), in the snapshot the subscription starts from; half after, as messages.
  await api('open', 'writer', url);
  const half = COUNT / 2;
  assert.deepEqual(await api('publishAll', 'writer', stream, 1, half), Array.from({ length: half }, (_, i) => i + 1));
  const connecting = await api('connect', 'c');
  const live = await until('c', (v) => v.connects[connecting] !== null && v.streams[stream].length > 0, 'the snapshot');
  assert.deepEqual(live.connects[connecting], { ok: null }, 'connect() resolved');
  assert.equal(live.state, 'connected');
  assert.deepEqual(live.states.at(-1), { state: 'connected' });
  await api('publishAll', 'writer', stream, half + 1, COUNT);
  const done = await until('c', (v) => lastSeq(v.streams[stream]) >= COUNT, `${COUNT} messages`);

  const events = done.streams[stream];
  const [kind, at, , state] = events[0];
  assert.deepEqual([kind, at], ['snapshot', half]);
  assert.deepEqual(state.messages, Array.from({ length: half }, (_, i) => ({ seq: i + 1, data: payload(i + 1) })));
  new StreamCheck(stream).replay(events).assertExact(COUNT, payload);
  assert.deepEqual(errors, []);
});

test('disconnect() then connect() on a live stream: what was published meanwhile arrives once, no snapshot again', async () => {
  const stream = 'api:disconnect';
  const { api, view, until, errors } = await openPage();
  await api('open', 'c', server.wsUrl, QUICK);
  await api('open', 'writer', server.wsUrl);
  await api('subscribe', 'c', stream);
  await until('c', (v) => v.streams[stream].length > 0, 'the snapshot');
  await api('publishAll', 'writer', stream, 1, 10);
  await until('c', (v) => lastSeq(v.streams[stream]) >= 10, 'the first ten');

  assert.equal(await api('disconnect', 'c'), 'disconnected');
  const connects = (await view('c')).stats.connects;
  await api('publishAll', 'writer', stream, 11, COUNT);
  const away = await view('c');
  assert.equal(lastSeq(away.streams[stream]), 10, 'nothing arrives while disconnected');
  assert.equal(away.stats.connects, connects, 'no attempt while disconnected');
  assert.deepEqual(away.states.at(-1), { state: 'disconnected' });

  const connecting = await api('connect', 'c');
  const back = await until('c', (v) => v.connects[connecting] !== null && lastSeq(v.streams[stream]) >= COUNT, 'the rest');
  assert.deepEqual(back.connects[connecting], { ok: null });
  assert.equal(back.stats.connects, connects + 1);
  const check = new StreamCheck(stream).replay(back.streams[stream]);
  check.assertExact(COUNT, payload);
  assert.equal(check.snapshots.length, 1, 'resumed, never snapshotted again');
  assert.deepEqual(errors, []);
});

test('close({ force: true }) with a publish pending through an outage rejects it at once with publish_unconfirmed', async () => {
  const { api, view, until, errors } = await openPage();
  await api('open', 'c', server.wsUrl, { ...QUICK, publishTimeoutMs: NEVER });
  await until('c', (v) => v.ready !== null, 'the connection');
  assert.equal(await api('disconnect', 'c'), 'disconnected');
  const pending = await api('publish', 'c', 'api:force', { n: 1 });
  assert.equal((await view('c')).stats.pendingPublishes, 1, 'the publish waits for the connection');

  assert.equal(await api('close', 'c', { force: true }), 'closed', 'closed at once');
  const closed = await until('c', (v) => v.publishes[pending] !== null && v.closed !== null, 'the publish to settle');
  assert.deepEqual(closed.publishes[pending].error?.code, 'publish_unconfirmed', JSON.stringify(closed.publishes[pending]));
  assert.equal(closed.publishes[pending].error.seqsync, true);
  assert.deepEqual(closed.closed, { ok: null });
  assert.equal(closed.state, 'closed');
  assert.deepEqual(closed.states.at(-1), { state: 'closed' });
  assert.equal(closed.stats.pendingPublishes, 0);
  assert.deepEqual(errors, []);
});

test('the for await loop collects the events in order; abort() ends it with the reason and releases the stream', async () => {
  const stream = 'api:loop';
  const { api, until, errors } = await openPage();
  await api('open', 'c', server.wsUrl, QUICK);
  await api('open', 'writer', server.wsUrl);
  await api('loop', 'c', stream);
  await until('c', (v) => v.loops[stream].events.length > 0, 'the snapshot');
  await api('publishAll', 'writer', stream, 1, COUNT);
  const full = await until('c', (v) => lastSeq(v.loops[stream].events) >= COUNT, `${COUNT} events`);
  const events = full.loops[stream].events;
  assert.deepEqual(events[0].slice(0, 2), ['snapshot', 0]);
  new StreamCheck(stream).replay(events).assertExact(COUNT, payload);
  assert.equal(full.loops[stream].end, null, 'the loop is still running');

  const sent = full.stats.framesSent;
  await api('abort', 'c', stream);
  const ended = await until('c', (v) => v.loops[stream].end !== null, 'the loop to end');
  assert.deepEqual(ended.loops[stream].end, { reason: true }, 'it threw the signal reason');
  assert.equal(ended.stats.framesSent, sent + 1, 'one frame sent: the unsubscribe');
  // Released: subscribing again starts from a snapshot; a subscription that
  // joined a stream still followed would get none.
  await api('subscribe', 'c', stream);
  const again = await until('c', (v) => v.streams[stream].length > 0, 'a new snapshot');
  assert.deepEqual(again.streams[stream][0].slice(0, 2), ['snapshot', COUNT]);
  assert.deepEqual(errors, []);
});

test('a publish over the server frame limit is refused at once, naming it; the connection stays usable', async () => {
  const stream = 'api:oversize';
  const small = await startServer(['--heartbeat-ms', '200', '--max-frame-bytes', String(FRAME_LIMIT)]);
  cleanups.push(() => small.stop());
  const { api, view, until, errors } = await openPage();
  await api('open', 'c', small.wsUrl, { ...QUICK, publishTimeoutMs: NEVER });
  await api('subscribe', 'c', stream);
  // The server announces its limit in its first frame.
  await until('c', (v) => v.ready !== null && v.stats.frames > 0, 'the first frame');
  const sent = (await view('c')).stats.framesSent;

  const large = await api('publish', 'c', stream, 'x'.repeat(3 * FRAME_LIMIT));
  const refused = await until('c', (v) => v.publishes[large] !== null, 'the large publish to settle');
  const { error } = refused.publishes[large];
  assert.equal(error?.code, 'publish_too_large', JSON.stringify(refused.publishes[large]));
  assert.equal(error.seqsync, true);
  assert.ok(error.message.includes("server's limit of 2,000 bytes"), error.message);
  assert.equal(refused.stats.framesSent, sent, 'refused before it was sent');

  const normal = await api('publish', 'c', stream, { n: 1 });
  const after = await until('c', (v) => v.publishes[normal] !== null && lastSeq(v.streams[stream]) >= 1, 'the normal publish');
  assert.deepEqual(after.publishes[normal], { ok: 1 });
  assert.equal(after.stats.connects, 1, 'on the same connection');
  assert.equal(after.stats.disconnects, 0);
  new StreamCheck(stream).replay(after.streams[stream]).assertExact(1, payload);
  assert.deepEqual(errors, []);
});
