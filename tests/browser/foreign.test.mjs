// The package against a server that does not speak the seqsync protocol:
// the foreign chat server of tests/foreign/ (Python; two instances over one
// SQLite file fanning out through Redis pub/sub), a client configured only
// with its description, in Node and in a page in headless Chromium, both at
// once. Each client reads instance 1 through a WebSocket proxy that drops,
// duplicates, reorders and cuts frames; a writer posts 10,000 messages to
// each room through instance 0's HTTP API, and instance 1 restarts a third
// of the way in. Each room must end up in each client exactly as the server
// stored it.
//
// Needs SEQSYNC_FOREIGN_FIXTURE_BIN (test-support's foreign_fixture) and
// the built package in SEQSYNC_PKG (default sdk-wasm/pkg). Run with
// `node --experimental-websocket --test` on Node 20.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { StreamCheck, servePage, startForeignFixture, waitFor } from './support.mjs';

const PER_ROOM = 10_000;
const WRITERS = 12;
// 3% dropped, 3% duplicated, 5% reordered within 8 frames, a cut every 4,000 frames.
const FAULTS = ['--seed', '7', '--drop', '3', '--duplicate', '3', '--reorder', '5', '--window', '8', '--cut-every', '4000'];
const pkg = process.env.SEQSYNC_PKG ?? join(import.meta.dirname, '..', '..', 'sdk-wasm', 'pkg');

let chat;
let Client;

before(async () => {
  ({ Client } = await import(pathToFileURL(join(pkg, 'seqsync.js')).href));
  chat = await startForeignFixture(FAULTS);
});

after(async () => {
  await chat?.stop();
});

/** The foreign chat server, described (its HTTP API at `http`), as tests/foreign/README.md has it. */
const description = (http) => ({
  message: { stream: { path: 'room' }, seq: 'sequence_id', payload: '$' },
  subscribe: '{"action":"join","room":"{stream}"}',
  unsubscribe: '{"action":"leave","room":"{stream}"}',
  history: {
    url: `${http}/rooms/{stream}/messages?since={since}&until={to}&limit={limit}`,
    messages: 'messages',
    earliest: 'earliest_sequence_id',
  },
  head: { url: `${http}/rooms/{stream}/head`, seq: 'sequence_id' },
  pollMs: 500,
  publish: { url: `${http}/rooms/{stream}/messages`, seq: 'sequence_id' },
});

/**
 * Posts PER_ROOM messages to each room through instance 0, WRITERS at a
 * time, and restarts instance 1 (the reader's) a third of the way in: what
 * is posted while it is down reaches its clients only through history.
 */
async function writeThroughARestart(rooms) {
  const total = PER_ROOM * rooms.length;
  let next = 0;
  let posted = 0;
  let restart;
  const writer = async () => {
    while (next < total) {
      const i = next++;
      const room = rooms[i % rooms.length];
      const answer = await fetch(`${chat.http[0]}/rooms/${room}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: 'writer', message: `line ${i}` }),
      });
      assert.equal(answer.status, 201, `POST to ${room}`);
      await answer.arrayBuffer();
      posted += 1;
      if (restart === undefined && posted >= total / 3) restart = chat.command('restart 1');
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  assert.deepEqual(await restart, { restarted: 1 }, 'the instance restarted while posts went on');
}

/** Every message the server stored in `room`, page by page. */
async function logOf(room) {
  const log = [];
  for (;;) {
    const since = log.length === 0 ? 0 : log.at(-1).sequence_id;
    const answer = await fetch(`${chat.http[0]}/rooms/${room}/messages?since=${since}`);
    assert.equal(answer.status, 200);
    const { messages } = await answer.json();
    if (messages.length === 0) return log;
    log.push(...messages);
  }
}

/** `delivered` (a room's payloads, in delivery order) is the server's log, message for message; returns the log. */
async function assertExactly(room, delivered) {
  const log = await logOf(room);
  assert.equal(log.length, PER_ROOM, `${room}: the server stored every post`);
  assert.equal(delivered.length, log.length, `${room}: as many delivered as stored, no repeat`);
  const first = log.findIndex((stored, i) => stored.sequence_id !== i + 1 || !isDeepStrictEqual(delivered[i], stored));
  assert.equal(first, -1, `${room}: message ${first + 1} differs: ${JSON.stringify(delivered[first])} vs ${JSON.stringify(log[first])}`);
  return log;
}

/** What the proxy in front of instance 1 did since `before`. */
async function faultsSince(before) {
  const now = (await chat.command('stats')).proxies[1];
  return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - before[k]]));
}

function assertFaultsHappened(faults, clientStats, streams) {
  assert.ok(faults.dropped > 0 && faults.duplicated > 0 && faults.reordered > 0, JSON.stringify(faults));
  assert.ok(clientStats.disconnects >= 2, `a cut and the restart: ${JSON.stringify(clientStats)}`);
  const resyncs = streams.reduce((n, s) => n + s.resyncs, 0);
  const repeats = streams.reduce((n, s) => n + s.duplicates, 0);
  assert.ok(resyncs > 0 && clientStats.historyMessages > 0, 'holes were fetched');
  assert.ok(repeats > 0, 'repeats were dropped');
}

/** A Node client of instance 1 (through the fault proxy), subscribed to `rooms`. */
function nodeReader(rooms) {
  const client = new Client(`${chat.ws[1]}/ws?user=node-reader`, {
    description: description(chat.http[1]),
    core: { gapTimeoutMs: 100 },
    reconnectInitialMs: 50,
    reconnectMaxMs: 500,
  });
  const got = {};
  const subs = rooms.map((room) => {
    const r = (got[room] = { check: new StreamCheck(`Node ${room}`), messages: [], live: false });
    return client.subscribe(
      room,
      r.check.handlers({
        onMessage: (data) => r.messages.push(data),
        onState: (phase) => {
          if (phase === 'live') r.live = true;
        },
      }),
    );
  });
  return {
    client,
    live: () => rooms.every((room) => got[room].live),
    caughtUp: () => rooms.every((room) => got[room].messages.length >= PER_ROOM),
    messages: (room) => got[room].messages,
    check: (room) => got[room].check,
    streamStats: () => subs.map((s) => s.stats()),
  };
}

/** A page in headless Chromium with a client of instance 1 (through the fault proxy), subscribed to `rooms`. */
async function pageReader(browser, site, rooms) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const ws = `${chat.ws[1]}/ws?user=page-reader`;
  await page.goto(`${site.url}/?ws=${encodeURIComponent(ws)}&rooms=${rooms.join(',')}`);
  return { page, errors };
}

// Both clients read the same rooms while one writer posts through a restart
// of the instance they read: one write phase for the two platforms, each
// client behind the same faults with connections of its own.
test('Node and Chromium: clients configured only with a description deliver two rooms exactly as stored, through faults and a restart', { timeout: 300_000 }, async () => {
  const rooms = ['north', 'south'];
  const site = await servePage({ dir: join(import.meta.dirname, 'foreign'), pkg, upstream: chat.http[1] });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  const node = nodeReader(rooms);
  try {
    const { page, errors } = await pageReader(browser, site, rooms);
    await node.client.ready;
    await waitFor(() => node.live(), 'both rooms live in Node');
    await page.waitForFunction((names) => names.every((room) => window.result?.rooms[room]?.live), rooms, { timeout: 30_000 });
    const before = (await chat.command('stats')).proxies[1];
    const started = Date.now();
    await writeThroughARestart(rooms);
    const written = Date.now();
    await waitFor(() => node.caughtUp(), 'every message in Node', 120_000);
    const nodeCaughtUp = Date.now();
    await page.waitForFunction(
      ([names, n]) => names.every((room) => window.result.rooms[room].delivered >= n),
      [rooms, PER_ROOM],
      { timeout: 120_000, polling: 250 },
    );
    const pageCaughtUp = Date.now();
    const result = await page.evaluate(() => window.result);
    for (const room of rooms) {
      const log = await assertExactly(room, node.messages(room));
      node.check(room).assertExact(PER_ROOM, (seq) => log[seq - 1]);
      const { events } = result.rooms[room];
      await assertExactly(room, events.filter(([kind]) => kind === 'message').map(([, , data]) => data));
      new StreamCheck(`Chromium ${room}`).replay(events).assertExact(PER_ROOM, (seq) => log[seq - 1]);
    }
    const faults = await faultsSince(before);
    const nodeStats = node.client.stats();
    assertFaultsHappened(faults, nodeStats, node.streamStats());
    const pageStats = await page.evaluate(() => window.client.stats());
    assertFaultsHappened(faults, pageStats, Object.values(await page.evaluate(() => window.streamStats())));
    assert.deepEqual([...result.errors, ...errors], []);
    console.log(
      `${rooms.length} x ${PER_ROOM} messages written in ${written - started} ms, delivered ${nodeCaughtUp - written} ms later in Node,`,
      `${pageCaughtUp - written} ms later in Chromium; proxy ${JSON.stringify(faults)};`,
      `Node client ${JSON.stringify(nodeStats)}; Chromium client ${JSON.stringify(pageStats)}`,
    );
    await page.evaluate(() => window.client.close());
  } finally {
    await node.client.close();
    await browser.close();
    await site.stop();
  }
});
