// What the packed npm package refuses at the call, before anything is sent:
// handlers and options of the wrong kind (`invalid_argument`, naming the
// stream, key or option), and values JSON would alter (`invalid_payload`).
// Also the code of a server's refusal of a publish. Through a stand-in
// WebSocket (`options.WebSocket`) that records what the client sends.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError } from 'seqsync';
import { StandIn, waitFor } from './support.mjs';

const clients = [];

function client(options = {}) {
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn, ...options });
  clients.push(c);
  return c;
}

after(() => {
  // Nothing is pending on these clients: each closes at once.
  for (const c of clients) c.close();
});

/** Asserts that `fn` throws `SeqsyncError` `code` with a message that contains each of `names`. */
function refused(fn, code, ...names) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof SeqsyncError, `a SeqsyncError, not ${e}`);
    assert.equal(e.code, code);
    for (const name of names) assert.ok(e.message.includes(name), `${JSON.stringify(e.message)} names ${name}`);
    return true;
  });
}

/** Asserts that `promise` rejects with `SeqsyncError` `code` with a message that contains each of `names`. */
async function rejected(promise, code, ...names) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof SeqsyncError, `a SeqsyncError, not ${e}`);
    assert.equal(e.code, code);
    for (const name of names) assert.ok(e.message.includes(name), `${JSON.stringify(e.message)} names ${name}`);
    return true;
  });
}

test('a handler that is not a function is refused at the call, the stream and handler named', () => {
  const c = client();
  refused(() => c.subscribe('room:1', { onMessage: 'notafunction' }), 'invalid_argument', 'room:1', 'onMessage', 'function');
  refused(() => c.subscribe('room:1', { onReset: 42 }), 'invalid_argument', 'room:1', 'onReset');
  refused(() => c.subscribe('room:1', { onGap: {} }), 'invalid_argument', 'room:1', 'onGap');
  // Nothing was subscribed: the stream can still be subscribed properly.
  const got = c.subscribe('room:1', { onMessage: () => {} });
  assert.equal(got.stream, 'room:1');
});

test('an unknown handler key is refused, named, with the known keys listed', () => {
  const c = client();
  refused(() => c.subscribe('room:2', { onmessage: () => {} }), 'invalid_argument', 'room:2', 'onmessage', 'onMessage');
  refused(() => c.subscribe('room:2', { onSnapshot: () => {}, onError: () => {} }), 'invalid_argument', 'onError', 'onRefused');
});

test('a function, or another value that is not an object, in place of the handlers is refused', () => {
  const c = client();
  refused(() => c.subscribe('room:3', () => {}), 'invalid_argument', 'room:3', 'handlers');
  refused(() => c.subscribe('room:3', null), 'invalid_argument', 'room:3', 'handlers');
  refused(() => c.subscribe('room:3', 'onMessage'), 'invalid_argument', 'room:3', 'handlers');
});

test('absent handlers (undefined or null members) and positions are still accepted', () => {
  const c = client();
  const sub = c.subscribe('room:4', { onMessage: undefined, onGap: null, since: 3, epoch: 1, mode: 'ordered' });
  assert.equal(sub.stream, 'room:4');
  // A bad position keeps its own code.
  refused(() => c.subscribe('room:5', { since: -1 }), 'invalid_subscription', 'room:5');
});

test('an option of the wrong type or out of range is refused by the constructor, its path named', () => {
  const make = (options) => () => client(options);
  refused(make({ core: { window: -5 } }), 'invalid_argument', 'options.core.window', 'number');
  refused(make({ core: { gapTimeoutMs: '100' } }), 'invalid_argument', 'options.core.gapTimeoutMs');
  refused(make({ core: 5 }), 'invalid_argument', 'options.core');
  refused(make({ heartbeatTimeoutMs: '5000' }), 'invalid_argument', 'options.heartbeatTimeoutMs');
  refused(make({ publishTimeoutMs: NaN }), 'invalid_argument', 'options.publishTimeoutMs');
  refused(make({ maxPublishBytes: Infinity }), 'invalid_argument', 'options.maxPublishBytes');
  refused(make({ reconnectInitialMs: -1 }), 'invalid_argument', 'options.reconnectInitialMs');
  refused(make({ token: 7 }), 'invalid_argument', 'options.token', 'string or function');
  refused(make({ endpoints: ['ws://a/ws', 7] }), 'invalid_argument', 'options.endpoints');
  refused(make({ persist: 1 }), 'invalid_argument', 'options.persist');
  refused(make({ onConnection: 'log' }), 'invalid_argument', 'options.onConnection');
  // A client of a foreign server takes the same options, checked the same way.
  const description = { message: { seq: 'seq' } };
  refused(make({ description, core: { maxFetch: -1 } }), 'invalid_argument', 'options.core.maxFetch');
  refused(() => new Client('ws://stand.in/ws', 'fast'), 'invalid_argument', 'options');
  refused(() => new Client(8080), 'invalid_argument', 'url');
});

test('options of the right kinds are accepted', () => {
  const c = client({
    endpoints: 'ws://other/ws', token: () => 't', persist: 'app:', storage: { getItem: () => null, setItem: () => {} }, core: { window: 64, maxStreams: 0 },
    heartbeatTimeoutMs: 0, onConnection: null, reconnectMaxMs: 2.5,
  });
  assert.equal(c.connectionState.state, 'connecting');
});

test('values JSON would alter are refused by publish with invalid_payload, and nothing is sent', async () => {
  const c = client();
  const before = StandIn.opened.length;
  await rejected(c.publish('room', { n: NaN }), 'invalid_payload', 'n', 'NaN');
  await rejected(c.publish('room', [1, Infinity]), 'invalid_payload', 'Infinity');
  await rejected(c.publish('room', { deep: { x: -Infinity } }), 'invalid_payload', 'x');
  await rejected(c.publish('room', new Map([['a', 1]])), 'invalid_payload', 'Map');
  await rejected(c.publish('room', { tags: new Set(['a']) }), 'invalid_payload', 'tags', 'Set');
  await rejected(c.publish('room', { big: 10n }), 'invalid_payload', 'BigInt');
  const cycle = { name: 'loop' };
  cycle.self = cycle;
  await rejected(c.publish('room', cycle), 'invalid_payload', 'circular');
  await rejected(c.publish('room', undefined), 'invalid_payload', 'undefined');
  await rejected(c.publish('room', () => {}), 'invalid_payload', 'function');
  assert.equal(c.stats().pendingPublishes, 0);
  await waitFor(() => StandIn.opened.length > before, 'the socket');
  const socket = StandIn.opened[StandIn.opened.length - 1];
  socket.open();
  assert.deepEqual(socket.sent.filter((f) => f.type === 'publish'), []);
});

test('a payload JSON carries as it is goes out unchanged', async () => {
  const c = client();
  const before = StandIn.opened.length;
  const data = { n: 1.5, none: null, list: [0, -2, 'x'], when: new Date(0), nested: { ok: true } };
  const published = c.publish('room', data);
  await waitFor(() => StandIn.opened.length > before, 'the socket');
  const socket = StandIn.opened[StandIn.opened.length - 1];
  socket.open();
  await waitFor(() => socket.sent.some((f) => f.type === 'publish'), 'the publish frame');
  const frame = socket.sent.find((f) => f.type === 'publish');
  assert.equal(frame.stream, 'room');
  assert.deepEqual(frame.data, { n: 1.5, none: null, list: [0, -2, 'x'], when: '1970-01-01T00:00:00.000Z', nested: { ok: true } });
  socket.receive({ type: 'ack', id: frame.id, stream: 'room', seq: 7 });
  assert.equal(await published, 7);
});

test('a server code this version knows rejects a publish with that code', async () => {
  const c = client();
  const before = StandIn.opened.length;
  const published = c.publish('room', { text: 'hi' });
  await waitFor(() => StandIn.opened.length > before, 'the socket');
  const socket = StandIn.opened[StandIn.opened.length - 1];
  socket.open();
  await waitFor(() => socket.sent.some((f) => f.type === 'publish'), 'the publish frame');
  const { id } = socket.sent.find((f) => f.type === 'publish');
  socket.receive({ type: 'error', code: 'unauthorized', message: 'no writing here', ref: id });
  await rejected(published, 'unauthorized', 'unauthorized: no writing here');
});
