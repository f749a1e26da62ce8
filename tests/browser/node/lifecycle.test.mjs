// The client's lifecycle: `connect()` and `disconnect()`, a give-up that is
// not the end, `close({ force: true })` and an `AbortSignal`. Against the
// reference server (behind a TCP proxy that can refuse every connection) and
// on stand-in sockets. Run by scripts/browser.sh with node --test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError } from 'seqsync';
import { StandIn, StreamCheck, startProxy, startServer, waitFor } from './support.mjs';

let server;
const cleanups = [];

/** A client that is closed after the tests even when one fails. */
function client(url, options) {
  const c = new Client(url, options);
  cleanups.push(() => c.close({ force: true }));
  return c;
}

/** A client on stand-in sockets; resolves once its first socket exists. */
async function standIn(options = {}) {
  const before = StandIn.opened.length;
  const c = client('ws://stand.in/ws', { WebSocket: StandIn, reconnectInitialMs: 5, reconnectMaxMs: 10, ...options });
  await waitFor(() => StandIn.opened.length > before, 'a socket');
  return { c, socket: () => StandIn.opened[StandIn.opened.length - 1] };
}

// Quick retries, so that the tests spend their time on the behaviour asked.
const quick = { reconnectInitialMs: 20, reconnectMaxMs: 100, connectTimeoutMs: 500 };
// Far longer than any test may take: a publish that settles did not time out.
const never = 600_000;

before(async () => {
  server = await startServer(['--heartbeat-ms', '100']);
});

after(async () => {
  for (const stop of cleanups.reverse()) await stop();
  await server?.stop();
});

async function publishAll(writer, stream, from, to) {
  for (let i = from; i <= to; i++) await writer.publish(stream, { n: i });
}

const isCode = (code) => (e) => e instanceof SeqsyncError && e.code === code;

test('a client that gives up is failed, not closed, keeps its subscriptions, and connect() brings them back exactly', async () => {
  const stream = 'node:life-give-up';
  const net = await startProxy(server.wsUrl);
  cleanups.push(() => net.stop());
  net.setMode('down');
  const states = [];
  const c = client(net.url, { ...quick, initialConnectTimeoutMs: 300, onConnection: (s) => states.push(s) });
  const check = new StreamCheck(stream);
  c.subscribe(stream, check.handlers());
  await assert.rejects(c.ready, isCode('connect_failed'));
  const failed = c.connectionState;
  assert.equal(failed.state, 'failed');
  assert.ok(isCode('connect_failed')(failed.error), 'the state carries the error');
  assert.equal(states.at(-1), failed, 'told to onConnection');
  // Usable while failed: a publish waits, a new subscription is kept.
  const published = c.publish(stream, { n: 1 });
  const late = new StreamCheck('node:life-late');
  c.subscribe('node:life-late', late.handlers());
  // Another attempt while the server is still out of reach gives up again.
  await assert.rejects(c.connect(), isCode('connect_failed'));
  assert.equal(c.connectionState.state, 'failed');

  net.setMode('pass');
  await c.connect();
  assert.equal(c.connectionState.state, 'connected');
  assert.equal(await published, 1, 'the publish made while failed is stored once');
  const writer = client(server.wsUrl);
  await publishAll(writer, stream, 2, 10);
  await publishAll(writer, 'node:life-late', 1, 3);
  await waitFor(() => check.last >= 10 && late.last >= 3, 'every message');
  check.assertExact(10, (seq) => ({ n: seq }));
  late.assertExact(3, (seq) => ({ n: seq }));
  await c.close();
  await writer.close();
});

test('disconnect() stops until connect(), which resumes without loss or duplicate, any number of times', async () => {
  const stream = 'node:life-disconnect';
  const states = [];
  const c = client(server.wsUrl, { ...quick, onConnection: (s) => states.push(s) });
  const writer = client(server.wsUrl);
  const check = new StreamCheck(stream);
  let live = false;
  c.subscribe(stream, check.handlers({ onSnapshot: () => { live = true; } }));
  await waitFor(() => live, 'the snapshot');
  await publishAll(writer, stream, 1, 5);
  await waitFor(() => check.last >= 5, 'the first five');

  for (let round = 1; round <= 3; round++) {
    c.disconnect();
    assert.deepEqual(c.connectionState, { state: 'disconnected', reason: 'disconnect() called', retryInMs: -1 });
    const connects = c.stats().connects;
    const from = 5 * round + 1;
    await publishAll(writer, stream, from, from + 4);
    assert.equal(check.last, from - 1, 'nothing arrives while disconnected');
    assert.equal(c.stats().connects, connects, 'no attempt while disconnected');
    const connecting = c.connect();
    assert.equal(c.connectionState.state, 'connecting', 'an attempt at once');
    await connecting;
    await waitFor(() => check.last >= from + 4, `round ${round}`);
  }
  check.assertExact(20, (seq) => ({ n: seq }));
  assert.equal(check.snapshots.length, 1, 'resumed, never snapshotted again');
  // Already connected: resolves at once.
  await c.connect();
  await c.close();
  await writer.close();
});

test('a publish pending through a disconnect keeps its own timeout', async () => {
  const { c, socket } = await standIn({ publishTimeoutMs: 200 });
  socket().open();
  const publish = c.publish('s', 1);
  c.disconnect();
  await assert.rejects(publish, isCode('publish_timeout'));
  assert.equal(c.stats().connects, 1, 'no new connection for it');
});

test('close({ force: true }) rejects pending publishes with publish_unconfirmed at once', { timeout: 20_000 }, async () => {
  const { c, socket } = await standIn({ publishTimeoutMs: never });
  socket().open();
  const pending = [c.publish('s', 1), c.publish('s', 2)];
  assert.equal(c.stats().pendingPublishes, 2);
  const closing = c.close({ force: true });
  assert.equal(c.connectionState.state, 'closed', 'closed at once');
  assert.notEqual(socket().closedWith, null, 'the socket is closed');
  for (const p of pending) await assert.rejects(p, isCode('publish_unconfirmed'));
  await closing;
  assert.throws(() => c.connect(), isCode('closed'));
  await assert.rejects(c.publish('s', 3), isCode('closed'));
});

test('close({ force: true }) during a graceful close does not wait for the pending publish', { timeout: 20_000 }, async () => {
  const { c, socket } = await standIn({ publishTimeoutMs: never });
  socket().open();
  const pending = c.publish('s', 1);
  let closed = false;
  const graceful = c.close().then(() => { closed = true; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(closed, false, 'close() waits for the publish');
  await c.close({ force: true });
  await assert.rejects(pending, isCode('publish_unconfirmed'));
  await graceful;
});

test('close() while disconnected does not reconnect: pending publishes are unconfirmed at once', { timeout: 20_000 }, async () => {
  const { c, socket } = await standIn({ publishTimeoutMs: never });
  socket().open();
  const pending = c.publish('s', 1);
  const sockets = StandIn.opened.length;
  c.disconnect();
  await c.close();
  await assert.rejects(pending, isCode('publish_unconfirmed'));
  assert.equal(StandIn.opened.length, sockets);
});

test('an AbortSignal closes the client at once when aborted', { timeout: 20_000 }, async () => {
  const controller = new AbortController();
  const { c, socket } = await standIn({ publishTimeoutMs: never, signal: controller.signal });
  socket().open();
  const pending = c.publish('s', 1);
  controller.abort();
  assert.equal(c.connectionState.state, 'closed');
  await assert.rejects(pending, isCode('publish_unconfirmed'));
  assert.throws(() => c.connect(), isCode('closed'));
});

test('an AbortSignal already aborted closes the client in the constructor', async () => {
  const before = StandIn.opened.length;
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn, signal: AbortSignal.abort() });
  assert.equal(c.connectionState.state, 'closed');
  await assert.rejects(c.ready, isCode('closed'));
  await assert.rejects(c.publish('s', 1), isCode('closed'));
  await c.close();
  assert.equal(StandIn.opened.length, before, 'no socket was opened');
});

test('signal and close options are checked at the call', () => {
  assert.throws(() => new Client('ws://stand.in/ws', { WebSocket: StandIn, signal: 'abort' }), isCode('invalid_argument'));
  assert.throws(() => new Client('ws://stand.in/ws', { WebSocket: StandIn, signal: {} }), /options\.signal/);
  const c = client('ws://stand.in/ws', { WebSocket: StandIn });
  assert.throws(() => c.close({ force: 'yes' }), /force/);
  assert.throws(() => c.close({ forced: true }), isCode('invalid_argument'));
});

test('disconnect() before the first connection makes connect() reject, and connect() starts again', async () => {
  const { c, socket } = await standIn();
  const first = c.connect();
  c.disconnect();
  await assert.rejects(first, isCode('connect_failed'));
  assert.notEqual(socket().closedWith, null, 'the attempt is abandoned');
  const sockets = StandIn.opened.length;
  const again = c.connect();
  await waitFor(() => StandIn.opened.length > sockets, 'a new attempt');
  socket().open();
  await again;
  assert.equal(c.connectionState.state, 'connected');
});
