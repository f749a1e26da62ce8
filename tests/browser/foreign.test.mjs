// The package against a server that does not speak the seqsync protocol:
// the foreign chat server of tests/foreign/ (Python; two instances over one
// SQLite file fanning out through Redis pub/sub), a client configured only
// with its description, in Node and in a page in headless Chromium. The
// client reads instance 1 through a WebSocket proxy that drops, duplicates,
// reorders and cuts frames; a writer posts 10,000 messages to each room
// through instance 0's HTTP API, and instance 1 restarts a third of the way
// in. Each room must end up exactly as the server stored it.
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

test('Node: a client configured only with a description delivers two rooms exactly as stored, through faults and a restart', { timeout: 300_000 }, async () => {
  const rooms = ['node-north', 'node-south'];
  const client = new Client(`${chat.ws[1]}/ws?user=node-reader`, {
    description: description(chat.http[1]),
    core: { gapTimeoutMs: 100 },
    reconnectInitialMs: 50,
    reconnectMaxMs: 500,
  });
  const got = {};
  const subs = rooms.map((room) => {
    const r = (got[room] = { check: new StreamCheck(room), messages: [], live: false });
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
  try {
    await client.ready;
    await waitFor(() => rooms.every((room) => got[room].live), 'both rooms live');
    const before = (await chat.command('stats')).proxies[1];
    const started = Date.now();
    await writeThroughARestart(rooms);
    const written = Date.now();
    await waitFor(() => rooms.every((room) => got[room].messages.length >= PER_ROOM), 'every message', 120_000);
    const caughtUp = Date.now();
    for (const room of rooms) {
      const log = await assertExactly(room, got[room].messages);
      got[room].check.assertExact(PER_ROOM, (seq) => log[seq - 1]);
    }
    const faults = await faultsSince(before);
    const stats = client.stats();
    const streams = subs.map((s) => s.stats());
    assertFaultsHappened(faults, stats, streams);
    console.log(
      `Node: ${rooms.length} x ${PER_ROOM} messages written in ${written - started} ms, delivered ${caughtUp - written} ms later;`,
      `proxy ${JSON.stringify(faults)}; client ${JSON.stringify(stats)}`,
    );
  } finally {
    await client.close();
  }
});

test('Chromium: a page configured only with a description delivers two rooms exactly as stored, through faults and a restart', { timeout: 300_000 }, async () => {
  const rooms = ['page-east', 'page-west'];
  const site = await servePage({ dir: join(import.meta.dirname, 'foreign'), pkg, upstream: chat.http[1] });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const ws = `${chat.ws[1]}/ws?user=page-reader`;
    await page.goto(`${site.url}/?ws=${encodeURIComponent(ws)}&rooms=${rooms.join(',')}`);
    await page.waitForFunction((names) => names.every((room) => window.result?.rooms[room]?.live), rooms, { timeout: 30_000 });
    const before = (await chat.command('stats')).proxies[1];
    const started = Date.now();
    await writeThroughARestart(rooms);
    const written = Date.now();
    await page.waitForFunction(
      ([names, n]) => names.every((room) => window.result.rooms[room].messages.length >= n),
      [rooms, PER_ROOM],
      { timeout: 120_000, polling: 250 },
    );
    const caughtUp = Date.now();
    const result = await page.evaluate(() => window.result);
    for (const room of rooms) {
      assert.equal(result.rooms[room].outOfOrder, 0, `${room}: in order`);
      assert.equal(result.rooms[room].resets, 0, `${room}: nothing was gone`);
      await assertExactly(room, result.rooms[room].messages);
    }
    const faults = await faultsSince(before);
    const stats = await page.evaluate(() => window.client.stats());
    const streams = Object.values(await page.evaluate(() => window.streamStats()));
    assertFaultsHappened(faults, stats, streams);
    assert.deepEqual([...result.errors, ...errors], []);
    console.log(
      `Chromium: ${rooms.length} x ${PER_ROOM} messages written in ${written - started} ms, delivered ${caughtUp - written} ms later;`,
      `proxy ${JSON.stringify(faults)}; client ${JSON.stringify(stats)}`,
    );
    await page.evaluate(() => window.client.close());
  } finally {
    await browser.close();
    await site.stop();
  }
});
