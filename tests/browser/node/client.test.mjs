// The packed npm package `seqsync`, imported by name from a fresh project,
// against the reference server (started here on a free loopback port).
// Run by scripts/browser.sh with: node --experimental-websocket --test

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError } from 'seqsync';
import { createHmac } from 'node:crypto';
import { StreamCheck, startServer, waitFor } from './support.mjs';

let server;
const clients = [];

/** A client that is closed after the tests even when one fails. */
function client(url, options) {
  const c = new Client(url, options);
  clients.push(c);
  return c;
}

before(async () => {
  server = await startServer(['--heartbeat-ms', '200']);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.stop();
});

async function publishAll(client, stream, from, to) {
  const seqs = [];
  for (let start = from; start <= to; start += 500) {
    const end = Math.min(to, start + 499);
    const batch = [];
    for (let i = start; i <= end; i++) batch.push(client.publish(stream, { n: i }));
    seqs.push(...(await Promise.all(batch)));
  }
  return seqs;
}

test('a published message comes back with the seq the server assigned', async () => {
  const c = client(server.wsUrl);
  const got = [];
  let snapshotSeq = -1;
  c.subscribe('node:roundtrip', {
    onSnapshot: (_state, seq) => {
      snapshotSeq = seq;
    },
    onMessage: (data, seq) => got.push({ data, seq }),
  });
  await c.ready;
  await waitFor(() => snapshotSeq === 0, 'the snapshot of an empty stream');
  const seq = await c.publish('node:roundtrip', { text: 'hello' });
  assert.equal(seq, 1);
  await waitFor(() => got.length === 1, 'the message');
  assert.deepEqual(got, [{ data: { text: 'hello' }, seq: 1 }]);
  assert.equal(c.stats().published, 1);
  await c.close();
  assert.equal(c.connectionState.state, 'closed');
});

test('10,000 messages arrive exactly once, in order, through drops, duplicates and reordering', async () => {
  const stream = 'node:faults';
  const faults = 'seed=7,drop=0.05,dup=0.05,reorder=0.2,window=10';
  const reader = client(`${server.wsUrl}?faults=${faults}`, { core: { gapTimeoutMs: 50 } });
  const check = new StreamCheck(stream);
  const sub = reader.subscribe(stream, check.handlers());
  await reader.ready;
  await waitFor(() => check.snapshots.length > 0, 'the reader to be live');

  const writer = client(server.wsUrl);
  const assigned = await publishAll(writer, stream, 1, 10_000);
  assert.deepEqual(assigned, Array.from({ length: 10_000 }, (_, i) => i + 1));

  await waitFor(() => check.last >= 10_000 || check.breaches.length > 0, `10,000 messages (have ${check.last})`, 60_000);
  check.assertExact(10_000, (seq) => ({ n: seq }));
  const stats = sub.stats();
  assert.equal(stats.delivered, 10_000);
  assert.equal(stats.lastSeq, 10_000);
  assert.ok(stats.gaps > 0, 'the faults made holes');
  assert.ok(stats.duplicates > 0, 'the faults made duplicates');
  assert.equal(stats.buffered, 0);
  await writer.close();
  await reader.close();
});

test('a client resumes after its persisted position instead of taking a snapshot', async () => {
  const stream = 'node:resume';
  const storage = new Map();
  const store = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) };
  const writer = client(server.wsUrl);
  await publishAll(writer, stream, 1, 20);

  const first = client(server.wsUrl, { persist: true, storage: store });
  let lastSeen = 0;
  first.subscribe(stream, {
    onSnapshot: (_state, seq) => {
      lastSeen = seq;
    },
  });
  await waitFor(() => lastSeen === 20, 'the first snapshot');
  await first.close();
  assert.equal(storage.size, 1);
  assert.equal(JSON.parse([...storage.values()][0]).seq, 20);

  await publishAll(writer, stream, 21, 30);
  const second = client(server.wsUrl, { persist: true, storage: store });
  const check = new StreamCheck(stream, { resumingAfter: 20 });
  second.subscribe(stream, check.handlers());
  await waitFor(() => check.last >= 30 || check.breaches.length > 0, 'the ten messages after the resume point');
  check.assertExact(30, (seq) => ({ n: seq }));
  assert.equal(check.snapshots.length, 0, 'resumed, no snapshot');
  await second.close();
  await writer.close();
});

test('invalid stream names and a second subscription from another position throw SeqsyncError', async () => {
  const c = client(server.wsUrl);
  assert.throws(() => c.subscribe(''), SeqsyncError);
  assert.throws(() => c.subscribe('bad\nname'), SeqsyncError);
  c.subscribe('node:once');
  assert.throws(() => c.subscribe('node:once', { since: 3 }), (e) => e instanceof SeqsyncError && e.code === 'already_subscribed');
  await assert.rejects(c.publish('', 1), SeqsyncError);
  await c.close();
  await assert.rejects(c.publish('node:once', 1), (e) => e.code === 'closed');
});

test('a client whose connection is cut reconnects by itself and resumes without a hole', async () => {
  // The server's fault injection cuts the reader's connection (no close
  // frame) after every 25 frames it sends, while the writer keeps
  // publishing.
  const own = await startServer(['--heartbeat-ms', '200']);
  const stream = 'node:reconnect';
  const reader = client(`${own.wsUrl}?faults=cut_every_frames=25`, { reconnectInitialMs: 20, reconnectMaxMs: 100 });
  const writer = client(own.wsUrl);
  try {
    const got = [];
    let live = false;
    reader.subscribe(stream, {
      onSnapshot: () => {
        live = true;
      },
      onMessage: (_data, seq) => got.push(seq),
    });
    await waitFor(() => live, 'the reader to be live');
    await publishAll(writer, stream, 1, 100);
    await waitFor(() => got.length >= 100, `100 messages (have ${got.length})`);
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i + 1));
    assert.ok(reader.stats().connects >= 2, `reconnected (${reader.stats().connects} connections)`);
    assert.ok(reader.stats().disconnects >= 1);
  } finally {
    await reader.close();
    await writer.close();
    await own.stop();
  }
});

test('a token function gives every connection a fresh token when the server closes an expired one', async () => {
  const secret = 'node-secret';
  // Signed as docs/protocol.md section 10.1 says: base64url(claims) "." base64url(HMAC-SHA256).
  const sign = (claims) => {
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  };
  const own = await startServer(['--heartbeat-ms', '200', '--token-secret', secret]);
  const stream = 'node:tokens';
  let issued = 0;
  // Each token lasts 2 s: the server closes the connection (1008) when it expires.
  const reader = client(own.wsUrl, {
    reconnectInitialMs: 20,
    reconnectMaxMs: 100,
    token: async () => {
      issued += 1;
      return sign({ read: ['node:*'], exp: Math.floor(Date.now() / 1000) + 2 });
    },
  });
  const writer = client(own.wsUrl, { token: sign({ read: ['*'], write: ['*'] }) });
  try {
    const got = [];
    let live = false;
    reader.subscribe(stream, {
      onSnapshot: () => {
        live = true;
      },
      onMessage: (_data, seq) => got.push(seq),
    });
    await waitFor(() => live, 'the reader to be live');
    // Messages keep coming across at least two expiries.
    for (let n = 1; n <= 45; n++) {
      await writer.publish(stream, { n });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor(() => got.length >= 45, `45 messages (have ${got.length})`);
    assert.deepEqual(got, Array.from({ length: 45 }, (_, i) => i + 1), 'exactly once, in order');
    assert.ok(issued >= 3, `a token per connection (${issued} issued)`);
    assert.ok(reader.stats().disconnects >= 2, 'the server closed expired connections');
    assert.ok(reader.stats().connects <= issued, 'no connection without a token of its own');
  } finally {
    await reader.close();
    await writer.close();
    await own.stop();
  }
});
