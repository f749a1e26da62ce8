// The connection policy of the packed npm package, against the reference
// server, with the network faults a TCP proxy in front of it makes: a peer
// that stalls, an endpoint that refuses, a server out of reach, an outage
// during close(). Run by scripts/browser.sh with:
//   node --experimental-websocket --test

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError } from 'seqsync';
import { closedPortUrl, startProxy, startServer, waitFor } from './support.mjs';

let server;
const cleanups = [];

/** Something to stop after the tests, even when one fails. */
function later(stop) {
  cleanups.push(stop);
}

/** A client that is closed after the tests even when one fails. */
function client(url, options) {
  const c = new Client(url, options);
  later(() => c.close());
  return c;
}

async function proxy() {
  const p = await startProxy(server.wsUrl);
  later(() => p.stop());
  return p;
}

// Quick retries, so that the tests spend their time on the behaviour asked.
const quick = { reconnectInitialMs: 20, reconnectMaxMs: 100, connectTimeoutMs: 500 };

before(async () => {
  server = await startServer(['--heartbeat-ms', '100']);
});

after(async () => {
  for (const stop of cleanups.reverse()) await stop();
  await server?.stop();
});

async function publishAll(writer, stream, from, to) {
  const batch = [];
  for (let i = from; i <= to; i++) batch.push(writer.publish(stream, { n: i }));
  return Promise.all(batch);
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('a stalled peer is declared dead by the heartbeat timeout, and the stream resumes exactly', async () => {
  const stream = 'node:dead-peer';
  const heartbeatTimeoutMs = 1_000;
  const net = await proxy();
  const changes = [];
  const reader = client(net.url, {
    ...quick,
    heartbeatTimeoutMs,
    onConnection: (state) => changes.push({ ...state, at: performance.now() }),
  });
  const writer = client(server.wsUrl);
  const got = [];
  let live = false;
  reader.subscribe(stream, {
    onSnapshot: () => {
      live = true;
    },
    onMessage: (data, seq) => got.push([seq, data.n]),
  });
  await waitFor(() => live, 'the reader to be live');
  // Before any of the ten messages is sent, so before the last frame that comes before the stall.
  const sending = performance.now();
  await publishAll(writer, stream, 1, 10);
  await waitFor(() => got.length === 10, 'the first ten messages');

  net.setMode('stall');
  const stalled = changes.length;
  await publishAll(writer, stream, 11, 20);
  const dead = () => changes.slice(stalled).find((c) => c.state === 'disconnected');
  await waitFor(() => dead() !== undefined, 'the stalled peer to be declared dead');
  assert.match(dead().reason, /heartbeat/);
  assert.deepEqual(
    changes.slice(0, stalled).filter((c) => c.state === 'disconnected'),
    [],
    'the peer was not given up while its frames came',
  );
  // How late is up to the machine; never earlier than the timeout after the last frame, which
  // came after `sending` (the few ms allow for the timer's rounding).
  const since = dead().at - sending;
  assert.ok(since >= heartbeatTimeoutMs - 5, `declared dead ${since} ms after the ten were sent`);
  assert.equal(got.length, 10, 'nothing came through the stalled connection');

  net.setMode('pass');
  await waitFor(() => got.length >= 20, `twenty messages (have ${got.length})`);
  assert.deepEqual(
    got,
    range(1, 20).map((n) => [n, n]),
  );
  const stats = reader.stats();
  assert.ok(stats.connects >= 2, `reconnected (${stats.connects} connections)`);
  assert.ok(stats.disconnects >= 1);
});

test('when the first endpoint refuses, the client fails over to the second', async () => {
  const refusing = await closedPortUrl();
  const states = [];
  const c = client(refusing, { ...quick, endpoints: [server.wsUrl], onConnection: (s) => states.push(s) });
  await c.ready;
  assert.deepEqual(states[0], { state: 'connecting', endpoint: refusing, attempt: 0 });
  assert.deepEqual(c.connectionState, { state: 'connected', endpoint: server.wsUrl });
  assert.ok(c.stats().connectFailures >= 1, 'the first endpoint failed');
  assert.equal(await c.publish('node:failover', { n: 1 }), 1);
  await c.close();
});

/**
 * What `ready` rejects with for a client at `url`, which gives up after its first failed attempt:
 * its next wait is drawn up to far beyond `initialConnectTimeoutMs`, so none follows.
 */
function firstFailure(url) {
  const c = client(url, { initialConnectTimeoutMs: 5_000, reconnectInitialMs: 1e9, reconnectMaxMs: 1e9 });
  return c.ready.then(() => assert.fail('connected'), (e) => e);
}

// What a WebSocket lets a client tell apart: a socket that never opened, whatever the cause (a
// refused port, an upgrade the server refused), from one that closed after opening, with its code.
test('a refused port is reported as a socket that never opened, in the state and in connect_failed', async () => {
  const url = await closedPortUrl();
  const error = await firstFailure(url);
  assert.ok(error instanceof SeqsyncError && error.code === 'connect_failed', String(error));
  assert.match(error.message, /^could not connect: not opened \(.+\)$/);

  const states = [];
  client(url, { ...quick, initialConnectTimeoutMs: 0, onConnection: (s) => states.push(s) });
  await waitFor(() => states.some((s) => s.state === 'disconnected'), 'a failed attempt');
  assert.match(states.find((s) => s.state === 'disconnected').reason, /^not opened \(.+\)$/);
});

test('an upgrade the server refuses (a wrong path, a refused token) is a socket that never opened too', async () => {
  const guarded = await startServer(['--token-secret', 'load-secret']);
  later(() => guarded.stop());
  for (const url of [server.wsUrl.replace(/\/ws$/, '/nowhere'), `${guarded.wsUrl}?token=not-a-token`]) {
    const error = await firstFailure(url);
    assert.equal(error.code, 'connect_failed', url);
    assert.match(error.message, /^could not connect: not opened \(.+\)$/, url);
  }
});

test('a connection lost after it opened is reported as closed, with its close code', async () => {
  const net = await proxy();
  const states = [];
  const c = client(net.url, { ...quick, onConnection: (s) => states.push(s) });
  await c.ready;
  net.setMode('down');
  await waitFor(() => states.some((s) => s.state === 'disconnected'), 'the loss to be reported');
  const first = states.find((s) => s.state === 'disconnected');
  // Cut without a closing handshake: 1006, the code a WebSocket reports for a lost connection.
  assert.equal(first.reason, 'closed (1006)');
  await c.close();
});

test('a publish to a server out of reach rejects with publish_timeout after publishTimeoutMs', async () => {
  const publishTimeoutMs = 300;
  const c = client(await closedPortUrl(), { ...quick, publishTimeoutMs, initialConnectTimeoutMs: 0 });
  const started = performance.now();
  await assert.rejects(
    c.publish('node:unreachable', { n: 1 }),
    (e) => e instanceof SeqsyncError && e.code === 'publish_timeout',
  );
  // How late is up to the machine; never before the timeout (the few ms allow for the timer's rounding).
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= publishTimeoutMs - 5, `rejected after ${elapsed} ms, not before the timeout`);
  const stats = c.stats();
  assert.equal(stats.publishFailures, 1);
  assert.equal(stats.pendingPublishes, 0);
  assert.ok(stats.connectFailures >= 1);
  await c.close();
});

test('close() during an outage resolves only once the pending publish is acked, and it is stored once', async () => {
  const stream = 'node:close-drains';
  const net = await proxy();
  const c = client(net.url, quick);
  await c.ready;
  net.setMode('down');
  await waitFor(() => c.connectionState.state !== 'connected', 'the outage to be noticed');

  const order = [];
  const published = c.publish(stream, { text: 'sent during the outage' });
  published.then(() => order.push('acked'));
  const closing = c.close();
  closing.then(() => order.push('closed'));
  const failures = c.stats().connectFailures;
  await waitFor(() => c.stats().connectFailures >= failures + 2, 'attempts to reconnect during the outage');
  assert.deepEqual(order, [], 'close() waits while the publish is pending');
  assert.equal(c.stats().pendingPublishes, 1);

  net.setMode('pass');
  const seq = await published;
  await closing;
  assert.deepEqual(order, ['acked', 'closed']);
  assert.equal(c.connectionState.state, 'closed');

  // Read the stream's whole log up to a marker published after it.
  const writer = client(server.wsUrl);
  const end = await writer.publish(stream, { text: 'end' });
  const log = [];
  const reader = client(server.wsUrl);
  reader.subscribe(stream, { since: 0, onMessage: (data, s) => log.push([s, data.text]) });
  await waitFor(() => log.length > 0 && log[log.length - 1][0] === end, 'the whole log');
  assert.deepEqual(log, [
    [seq, 'sent during the outage'],
    [end, 'end'],
  ]);
});

test('without crypto.getRandomValues a client refuses to start: no_crypto', () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true });
  try {
    assert.throws(
      () => new Client(server.wsUrl),
      (e) => e instanceof SeqsyncError && e.code === 'no_crypto',
    );
  } finally {
    Object.defineProperty(globalThis, 'crypto', saved);
  }
  assert.equal(typeof globalThis.crypto.getRandomValues, 'function');
});
