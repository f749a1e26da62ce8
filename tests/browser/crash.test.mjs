// A tab that crashes mid-stream (the DevTools protocol's `Page.crash`: the
// renderer dies, no `pagehide`), then a fresh page of the same origin that
// resumes, in headless Chromium against the reference server:
// - with `persist`: nothing is lost, and what comes again is exactly what
//   the crashed page was given after the last position the client wrote;
// - with the position the application owns (stored with its state, in one
//   write inside `onMessage`, given back as `since` and `epoch`): every
//   message is applied once.
//
// Needs SEQSYNC_SERVER_BIN (the server binary) and SEQSYNC_PKG (the built
// package, sdk-wasm/pkg).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { StreamCheck, servePage, startServer, waitFor } from './support.mjs';

// Published at a pace (PER_TICK every TICK_MS) from before the crash until
// the fresh page has resumed: the stream flows when the reader crashes, once
// it has CRASH_AT messages, and while the fresh page loads.
const PER_TICK = 1;
const TICK_MS = 20;
const CRASH_AT = 100;

let server;
let pages;
let browser;
/** What each page reported, by the page's id: its deliveries in the order they came. */
const reports = new Map();

/**
 * Serves the page (tests/browser/crash/) and the package (`/pkg/`) on a
 * free loopback port, and takes the pages' reports: `POST /report?page=ID`
 * with one delivery as JSON, answered once it is recorded.
 */
function servePages(pkg) {
  return servePage({
    dir: join(import.meta.dirname, 'crash'),
    pkg,
    route: async (req, res, url) => {
      if (req.method !== 'POST' || url.pathname !== '/report') return false;
      let body = '';
      for await (const chunk of req) body += chunk;
      const page = url.searchParams.get('page');
      if (!reports.has(page)) reports.set(page, []);
      reports.get(page).push(JSON.parse(body));
      res.writeHead(204);
      res.end();
      return true;
    },
  });
}

before(async () => {
  const pkg = process.env.SEQSYNC_PKG;
  if (!pkg) throw new Error('SEQSYNC_PKG must name the built package');
  server = await startServer();
  pages = await servePages(pkg);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await pages?.stop();
  await server?.stop();
});

let pageIds = 0;

/** Opens the page in `role`; returns it and a function that reads what it reported. */
async function open(context, role, stream, errors) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${role}: page error: ${e.message}`));
  const id = String(++pageIds);
  const query = new URLSearchParams({ ws: server.wsUrl, stream, role, page: id });
  await page.goto(`${pages.url}/index.html?${query}`);
  await waitFor(() => page.evaluate(() => window.__loaded === true), `the ${role} page to load`);
  return { page, log: () => reports.get(id) ?? [] };
}

/** Crashes the page's renderer through the DevTools protocol; resolves once Playwright saw it. */
async function crash(context, page) {
  const crashed = new Promise((resolve) => page.once('crash', resolve));
  const cdp = await context.newCDPSession(page);
  // The answer never comes: the renderer is gone.
  cdp.send('Page.crash').catch(() => {});
  await crashed;
}

const messages = (events) => events.filter((e) => e[0] === 'message');

/**
 * Runs one scenario for `role`: the reader subscribes, the messages are
 * published at a pace (by a page of another context: its renderer is not
 * the reader's), the reader crashes mid-stream once `crashWhen` says so, a
 * fresh page resumes while they still flow. Returns what each reader page
 * was given, what the fresh page found saved, the acks and, for `owned`,
 * the application's final state.
 */
async function crashAndResume(role, stream, crashWhen) {
  const context = await browser.newContext();
  const publishing = await browser.newContext();
  const errors = [];
  try {
    const { page: publisher } = await open(publishing, 'publish', stream, errors);
    const { page: first, log: firstLog } = await open(context, role, stream, errors);
    await waitFor(() => firstLog().some((e) => e[0] === 'snapshot'), 'the reader\'s snapshot');
    await publisher.evaluate((args) => window.__publish(...args), [1, PER_TICK, TICK_MS]);
    await waitFor(() => crashWhen(first, messages(firstLog()).length), 'the moment to crash');
    await crash(context, first);
    const crashedWith = [...firstLog()];

    const { page: second, log: secondLog } = await open(context, role, stream, errors);
    const saved = await second.evaluate(() => window.__saved);
    await waitFor(() => messages(secondLog()).length > 0, 'the fresh page to resume');
    const count = await publisher.evaluate(() => window.__stop());
    await waitFor(async () => (await publisher.evaluate(() => window.__acked)) === count, 'every publish acked', 60_000);
    await waitFor(() => messages(secondLog()).at(-1)?.[1] === count, 'the fresh page to reach the last message', 60_000);
    assert.deepEqual(await publisher.evaluate(() => window.__failed), []);
    assert.deepEqual(errors, []);
    const published = await publisher.evaluate(() => window.__published);
    const state = role === 'owned' ? await second.evaluate(() => window.__state()) : undefined;
    return { crashedWith, resumed: [...secondLog()], saved, published, state, count };
  } finally {
    await publishing.close();
    await context.close();
  }
}

/**
 * Asserts that `events` (one page's deliveries) are every seq after `after`
 * up to `last`, once each, in order, each with the `n` published as it
 * (`published`, from the acks).
 */
function assertContiguous(what, events, after, last, published) {
  const check = new StreamCheck(what, after > 0 ? { resumingAfter: after } : {});
  check.replay(events.map(([kind, seq, epoch, n]) => (kind === 'message' ? [kind, seq, { n }] : [kind, seq, epoch])));
  check.assertExact(last, (seq) => ({ n: published[seq] }));
}

test('persist across a crash: nothing lost, and only what came after the last saved position comes again', async (t) => {
  const run = await crashAndResume('persist', 'crash-persist', async (page, n) =>
    // A position was written (at most every persistIntervalMs) before the crash.
    n >= CRASH_AT && (await page.evaluate(() => window.__savedNow()))?.seq > 0);
  const { crashedWith, resumed, saved, published, count } = run;
  const before = messages(crashedWith);
  const lastBefore = before.at(-1)[1];
  // The crashed page: a snapshot of the empty stream, then every seq in order.
  assertContiguous('the crashed page', crashedWith, 0, lastBefore, published);
  const epoch = crashedWith[0][2];
  assert.ok(before.every((m) => m[2] === epoch), 'every message carried the stream\'s epoch');

  // What the client wrote before the crash: a position the crashed page was given.
  assert.equal(saved?.epoch, epoch);
  assert.ok(saved.seq >= 1 && saved.seq <= lastBefore, `saved ${saved.seq} of ${lastBefore} delivered`);
  // The fresh page resumed right after it, without a snapshot, and got everything from there once.
  assert.equal(resumed.filter((e) => e[0] !== 'message').length, 0, 'resumed: no snapshot, no reset');
  assertContiguous('the fresh page', resumed, saved.seq, count, published);
  // Nothing lost: the two pages together were given every seq.
  const seen = new Set([...before, ...messages(resumed)].map((m) => m[1]));
  assert.equal(seen.size, count);
  // What came again is exactly what the crashed page was given after the saved position.
  const again = messages(resumed).map((m) => m[1]).filter((seq) => seq <= lastBefore);
  assert.deepEqual(again, before.map((m) => m[1]).filter((seq) => seq > saved.seq));
  t.diagnostic(`crashed at ${lastBefore}, saved ${saved.seq}: ${again.length} repeated`);
});

test('a position the application owns, saved with its state in onMessage: every message applied once across a crash', async (t) => {
  const run = await crashAndResume('owned', 'crash-owned', (_page, n) => n >= CRASH_AT);
  const { crashedWith, resumed, saved, published, state, count } = run;
  const lastBefore = messages(crashedWith).at(-1)[1];
  assertContiguous('the crashed page', crashedWith, 0, lastBefore, published);
  // The stored position and the stored state agree: the state holds every message up to it.
  assert.equal(saved?.epoch, crashedWith[0][2]);
  const inOrder = (last) => Array.from({ length: last }, (_, i) => published[i + 1]);
  assert.deepEqual(saved.state.applied, inOrder(saved.seq));
  // The fresh page went on right after it, and the state ends with every message once.
  assertContiguous('the fresh page', resumed, saved.seq, count, published);
  assert.deepEqual(state.applied, inOrder(count));
  t.diagnostic(`crashed at ${lastBefore}, saved with the state at ${saved.seq}`);
});
