// Listeners, shared streams, the `for await` loop and the store of the
// packed npm package: what each delivers and what goes on the wire, through
// a stand-in WebSocket the test plays the server on; then every form at
// once on one stream of the reference server under faults, each checked
// against the contract.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError } from 'seqsync';
import { StandIn, StreamCheck, startServer, waitFor } from './support.mjs';

const clients = [];

/** A client on stand-in sockets; resolves once its socket exists, with the socket opened. */
async function client(options = {}) {
  const before = StandIn.opened.length;
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn, reconnectInitialMs: 5, reconnectMaxMs: 10, ...options });
  clients.push(c);
  await waitFor(() => StandIn.opened.length > before, 'a socket');
  const socket = StandIn.opened[StandIn.opened.length - 1];
  socket.open();
  return { c, socket };
}

let server;
before(async () => {
  server = await startServer(['--heartbeat-ms', '200']);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.stop();
});

/** The frames of `type` the client sent on `socket`. */
const sent = (socket, type) => socket.sent.filter((f) => f.type === type);

/** Plays the server's snapshot answer to the last subscribe of `stream`, at `seq` of `epoch`. */
function snapshot(socket, stream, seq = 0, epoch = 1, state = null) {
  const { ref } = sent(socket, 'subscribe').findLast((f) => f.stream === stream);
  socket.receive({ type: 'snapshot', stream, seq, epoch, state, ref });
}

/** Plays messages `from..=to` of `stream` ({ n: seq } each), in the order given by `order`. */
function messages(socket, stream, from, to, epoch = 1, order = (seqs) => seqs) {
  const seqs = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  for (const seq of order(seqs)) socket.receive({ type: 'msg', stream, seq, epoch, data: { n: seq } });
}

const payload = (seq) => ({ n: seq });

/** Asserts that `fn` throws `SeqsyncError` `code` with a message that contains each of `names`. */
function refused(fn, code, ...names) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof SeqsyncError, `a SeqsyncError, not ${e}`);
    assert.equal(e.code, code);
    for (const name of names) assert.ok(e.message.includes(name), `${JSON.stringify(e.message)} names ${name}`);
    return true;
  });
}

test('several listeners of a subscription each get every delivery; one removed gets no more', async () => {
  const { c, socket } = await client();
  const check = new StreamCheck('room');
  const sub = c.subscribe('room', check.handlers());
  const second = [];
  const off = sub.on('message', (data, seq) => second.push([seq, data.n]));
  const third = [];
  sub.on('message', (_data, seq) => third.push(seq));
  snapshot(socket, 'room');
  messages(socket, 'room', 1, 3);
  off();
  off(); // twice is once
  messages(socket, 'room', 4, 6);
  check.assertExact(6, payload);
  assert.deepEqual(second, [[1, 1], [2, 2], [3, 3]]);
  assert.deepEqual(third, [1, 2, 3, 4, 5, 6]);
});

test('a listener removed by another during the same delivery is not called', async () => {
  const { c, socket } = await client();
  const sub = c.subscribe('room');
  const got = [];
  let offLater;
  sub.on('message', (_d, seq) => {
    got.push(['first', seq]);
    offLater();
  });
  offLater = sub.on('message', (_d, seq) => got.push(['second', seq]));
  snapshot(socket, 'room');
  messages(socket, 'room', 1, 2);
  assert.deepEqual(got, [['first', 1], ['first', 2]]);
});

test('every event of a subscription reaches its listeners with the handler arguments', async () => {
  const { c, socket } = await client();
  const sub = c.subscribe('room');
  const got = [];
  sub.on('snapshot', (state, seq, epoch) => got.push(['snapshot', state, seq, epoch]));
  sub.on('reset', (reason, earliest) => got.push(['reset', reason, earliest]));
  sub.on('gap', (gap) => got.push(['gap', gap]));
  sub.on('state', (phase) => got.push(['state', phase]));
  snapshot(socket, 'room', 0, 1, { hello: 1 });
  messages(socket, 'room', 2, 2); // a hole at 1
  messages(socket, 'room', 1, 1);
  // Another epoch: the log changed.
  messages(socket, 'room', 3, 3, 2);
  const kinds = got.map(([event]) => event);
  assert.deepEqual(got.find(([e]) => e === 'snapshot'), ['snapshot', { hello: 1 }, 0, 1]);
  assert.deepEqual(got.find(([e]) => e === 'gap'), ['gap', { type: 'detected', from: 1, to: 1 }]);
  assert.deepEqual(got.find(([e]) => e === 'reset'), ['reset', 'epoch_changed', undefined]);
  assert.ok(kinds.includes('state'), `phases told (${kinds})`);
  assert.deepEqual(got.filter(([e]) => e === 'state').at(-1), ['state', 'snapshotting']);
  sub.unsubscribe();
  assert.equal(sub.stats(), undefined, 'no stats after unsubscribe');
  snapshot(socket, 'room', 3, 2);
  assert.equal(got.filter(([e]) => e === 'snapshot').length, 1, 'nothing after unsubscribe');
});

test('a second subscribe of a stream shares it: subscribed once on the wire, released when the last leaves', async () => {
  const { c, socket } = await client();
  const a = c.subscribe('room');
  const b = c.subscribe('room', { since: undefined, mode: 'ordered' });
  const checkA = new StreamCheck('room (a)');
  const checkB = new StreamCheck('room (b)');
  for (const [sub, check] of [[a, checkA], [b, checkB]]) {
    const h = check.handlers();
    sub.on('message', h.onMessage);
    sub.on('snapshot', h.onSnapshot);
  }
  assert.equal(sent(socket, 'subscribe').length, 1, 'one subscribe for both');
  snapshot(socket, 'room');
  messages(socket, 'room', 1, 20, 1, (seqs) => seqs.reverse());
  checkA.assertExact(20, payload);
  checkB.assertExact(20, payload);
  a.unsubscribe();
  a.unsubscribe();
  assert.equal(sent(socket, 'unsubscribe').length, 0, 'still followed by b');
  messages(socket, 'room', 21, 22);
  checkB.assertExact(22, payload);
  assert.equal(checkA.last, 20, 'a got nothing after it left');
  b.unsubscribe();
  assert.deepEqual(sent(socket, 'unsubscribe').map((f) => f.stream), ['room'], 'released with the last');
  // Subscribed again: a new subscription on the wire.
  c.subscribe('room');
  assert.equal(sent(socket, 'subscribe').length, 2);
});

test('a subscription that joins later gets the deliveries from where it joins; stats say where', async () => {
  const { c, socket } = await client();
  const first = c.subscribe('room');
  snapshot(socket, 'room');
  messages(socket, 'room', 1, 5);
  const late = c.subscribe('room');
  const at = late.stats().lastSeq;
  assert.equal(at, 5);
  const check = new StreamCheck('room (late)', { resumingAfter: at });
  late.on('message', check.handlers().onMessage);
  messages(socket, 'room', 6, 9);
  check.assertExact(9, payload);
  assert.equal(first.stats().delivered, 9, 'one stream, one count');
});

test('another since, epoch or mode for a stream already followed throws already_subscribed', async () => {
  const { c } = await client();
  c.subscribe('room', { since: 4, epoch: 2 });
  refused(() => c.subscribe('room', { since: 5 }), 'already_subscribed', 'room');
  refused(() => c.subscribe('room', { since: 4, epoch: 3 }), 'already_subscribed', 'room');
  refused(() => c.subscribe('room', { mode: 'latest' }), 'already_subscribed', 'room');
  refused(() => c.stream('room', { since: 7 }), 'already_subscribed', 'room');
  // The same position, or none, joins.
  assert.equal(c.subscribe('room', { since: 4, epoch: 2, mode: 'ordered' }).stream, 'room');
  assert.equal(c.subscribe('room').stream, 'room');
});

test('an unknown event or a listener that is not a function is refused at the call, named', async () => {
  const { c } = await client();
  const sub = c.subscribe('room');
  refused(() => sub.on('messages', () => {}), 'invalid_argument', 'room', 'messages', 'message');
  refused(() => sub.on('message', 'notafunction'), 'invalid_argument', 'room', 'message', 'function');
  refused(() => sub.on('message'), 'invalid_argument', 'message');
  refused(() => c.on('message', () => {}), 'invalid_argument', 'message', 'state', 'error');
  refused(() => c.on('state', {}), 'invalid_argument', 'state', 'function');
  refused(() => c.on(Symbol('state'), () => {}), 'invalid_argument', 'state');
  refused(() => c.stream('room', { maxQueud: 5 }), 'invalid_argument', 'maxQueud', 'maxQueued');
  refused(() => c.stream('room', { maxQueued: -1 }), 'invalid_argument', 'maxQueued');
  refused(() => c.store('room', { reduce: 5 }), 'invalid_argument', 'reduce', 'function');
  refused(() => c.store('room', { keep: '5' }), 'invalid_argument', 'keep');
  refused(() => c.store('room', { since: -1 }), 'invalid_subscription', 'room');
  refused(() => c.store('', {}), 'invalid_stream');
});

test("client.on('state') is told every state onConnection is told, until removed", async () => {
  const told = [];
  const { c, socket } = await client({ onConnection: (s) => told.push(['option', s.state]) });
  const off = c.on('state', (s) => told.push(['listener', s.state]));
  socket.drop();
  await waitFor(() => told.some(([w, s]) => w === 'listener' && s === 'connecting'), 'a reconnect');
  const both = told.slice(told.findIndex(([w]) => w === 'listener') - 1);
  for (let i = 0; i < both.length; i += 2) {
    assert.equal(both[i][0], 'option');
    assert.deepEqual(both[i + 1], ['listener', both[i][1]]);
  }
  off();
  const n = told.filter(([w]) => w === 'listener').length;
  await c.close();
  assert.equal(told.filter(([w]) => w === 'listener').length, n, 'nothing after off');
  assert.deepEqual(told.at(-1), ['option', 'closed']);
});

test("client.on('error') is told a server error about nothing pending and a refused subscription", async () => {
  const { c, socket } = await client();
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const refusals = [];
  c.subscribe('vault', { onRefused: (code, message) => refusals.push([code, message]) });
  socket.receive({ type: 'error', code: 'rate_limited', message: 'slow down' });
  const { ref } = sent(socket, 'subscribe')[0];
  socket.receive({ type: 'error', code: 'unauthorized', message: 'not yours', ref });
  assert.deepEqual(refusals, [['unauthorized', 'not yours']]);
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e instanceof SeqsyncError));
  assert.equal(errors[0].code, 'rate_limited');
  assert.match(errors[0].message, /slow down/);
  assert.equal(errors[1].code, 'unauthorized');
  assert.match(errors[1].message, /vault/);
});

test('the loop yields snapshot and messages in order, with their positions', async () => {
  const { c, socket } = await client();
  const loop = c.stream('room');
  snapshot(socket, 'room', 0, 7, { start: true });
  messages(socket, 'room', 1, 10, 7, (seqs) => seqs.reverse());
  const got = [];
  for await (const e of loop) {
    got.push(e);
    if (e.type === 'message' && e.seq === 10) break;
  }
  assert.deepEqual(got[0], { type: 'snapshot', seq: 0, epoch: 7, state: { start: true } });
  const check = new StreamCheck('room');
  for (const e of got) {
    if (e.type === 'snapshot') check.snapshot(e.seq, e.epoch);
    else check.message(e.seq, e.data);
  }
  check.assertExact(10, payload);
  assert.ok(got.slice(1).every((e) => e.type === 'message' && e.epoch === 7), 'each message carries its epoch');
  // `break` released the stream.
  assert.deepEqual(sent(socket, 'unsubscribe').map((f) => f.stream), ['room']);
});

test('a reset reaches the loop in its place, then the snapshot that follows it', async () => {
  const { c, socket } = await client();
  const loop = c.stream('room')[Symbol.asyncIterator]();
  snapshot(socket, 'room', 0, 1);
  messages(socket, 'room', 1, 2);
  messages(socket, 'room', 3, 3, 2); // another epoch: the log changed
  snapshot(socket, 'room', 3, 2, 'new');
  const got = [];
  for (let i = 0; i < 5; i++) got.push((await loop.next()).value);
  assert.deepEqual(got.map((e) => e.type), ['snapshot', 'message', 'message', 'reset', 'snapshot']);
  assert.deepEqual(got[3], { type: 'reset', reason: 'epoch_changed', earliest: undefined });
  assert.deepEqual(got[4], { type: 'snapshot', seq: 3, epoch: 2, state: 'new' });
  await loop.return();
  assert.equal(sent(socket, 'unsubscribe').length, 1);
});

test('aborting the signal releases the stream and makes the loop throw its reason', async () => {
  const { c, socket } = await client();
  const controller = new AbortController();
  const reason = new Error('left the room');
  const got = [];
  const done = (async () => {
    for await (const e of c.stream('room', { signal: controller.signal })) got.push(e.type);
  })();
  snapshot(socket, 'room');
  await waitFor(() => got.length === 1, 'the snapshot');
  controller.abort(reason);
  await assert.rejects(done, (e) => e === reason);
  assert.deepEqual(sent(socket, 'unsubscribe').map((f) => f.stream), ['room']);
  // An aborted signal throws at the call, and subscribes nothing.
  assert.throws(() => c.stream('other', { signal: controller.signal }), (e) => e === reason);
  assert.equal(sent(socket, 'subscribe').filter((f) => f.stream === 'other').length, 0);
});

test('past maxQueued events not taken the loop gets those it holds, then throws overflow; the stream is released', async () => {
  const { c, socket } = await client();
  const loop = c.stream('room', { maxQueued: 5 });
  snapshot(socket, 'room');
  messages(socket, 'room', 1, 8);
  assert.deepEqual(sent(socket, 'unsubscribe').map((f) => f.stream), ['room'], 'released at the overflow');
  const got = [];
  await assert.rejects(
    (async () => {
      for await (const e of loop) got.push(e.seq);
    })(),
    (e) => e instanceof SeqsyncError && e.code === 'overflow' && e.message.includes('room') && e.message.includes('5'),
  );
  // The snapshot and the first four messages: five held, the sixth event did not fit.
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
});

test('a loop over a shared stream leaves the other subscription in place; close() ends the loop', async () => {
  const { c, socket } = await client();
  const sub = c.subscribe('room');
  const loop = c.stream('room');
  const first = c.stream('room')[Symbol.asyncIterator]();
  await first.return(); // before its first next(): released all the same
  snapshot(socket, 'room');
  const got = [];
  const done = (async () => {
    for await (const e of loop) got.push(e.type);
  })();
  await waitFor(() => got.length === 1, 'the snapshot');
  assert.equal(sent(socket, 'unsubscribe').length, 0, 'still followed');
  assert.equal(sub.stats().phase, 'live');
  await c.close();
  await done;
  assert.deepEqual(got, ['snapshot']);
});

test('a store keeps the same snapshot object until a delivery changes it; the default value', async () => {
  const { c, socket } = await client();
  const store = c.store('room', { keep: 3 });
  const empty = store.getSnapshot();
  assert.deepEqual(empty, { state: undefined, seq: undefined, epoch: undefined, messages: [] });
  assert.equal(sent(socket, 'subscribe').length, 0, 'not subscribed before a listener');
  let calls = 0;
  const leave = store.subscribe(() => calls++);
  assert.equal(sent(socket, 'subscribe').length, 1);
  assert.equal(store.getSnapshot(), empty, 'same object while nothing changed');
  snapshot(socket, 'room', 0, 4, { title: 'r' });
  const afterSnapshot = store.getSnapshot();
  assert.notEqual(afterSnapshot, empty);
  assert.equal(store.getSnapshot(), afterSnapshot);
  assert.deepEqual(afterSnapshot, { state: { title: 'r' }, seq: 0, epoch: 4, messages: [] });
  messages(socket, 'room', 1, 5, 4);
  assert.equal(calls, 6);
  assert.deepEqual(store.getSnapshot(), {
    state: { title: 'r' },
    seq: 5,
    epoch: 4,
    messages: [3, 4, 5].map((seq) => ({ seq, data: payload(seq) })),
  });
  // A reset empties it until the snapshot that follows.
  messages(socket, 'room', 6, 6, 5);
  assert.deepEqual(store.getSnapshot(), { state: undefined, seq: undefined, epoch: undefined, messages: [] });
  leave();
  assert.deepEqual(sent(socket, 'unsubscribe').map((f) => f.stream), ['room'], 'released with its last listener');
});

test('a store with a reducer is handed every event, a reset included; an unchanged value tells no one', async () => {
  const { c, socket } = await client();
  const seen = [];
  const store = c.store('room', {
    initial: { total: 0 },
    reduce: (v, e) => {
      seen.push(e.type === 'reset' ? ['reset', e.reason] : [e.type, e.seq]);
      if (e.type === 'reset') return { total: 0 };
      if (e.type === 'message' && e.data.n % 2 === 0) return v; // even numbers change nothing
      return { total: v.total + (e.type === 'message' ? e.data.n : 0) };
    },
  });
  let calls = 0;
  store.subscribe(() => calls++);
  snapshot(socket, 'room');
  messages(socket, 'room', 1, 4);
  assert.deepEqual(store.getSnapshot(), { total: 1 + 3 });
  assert.equal(calls, 3, 'the snapshot, 1 and 3');
  messages(socket, 'room', 5, 5, 2);
  assert.deepEqual(store.getSnapshot(), { total: 0 });
  const check = new StreamCheck('room');
  for (const [kind, arg] of seen) {
    if (kind === 'snapshot') check.snapshot(arg, 1);
    else if (kind === 'message') check.message(arg, payload(arg));
    else check.reset(arg);
  }
  assert.deepEqual(check.resets, ['epoch_changed']);
  assert.equal(check.last, 4);
});

test('a store subscribed, left and subscribed again (StrictMode) follows the stream again', async () => {
  const { c, socket } = await client();
  const store = c.store('room');
  let calls = 0;
  const listener = () => calls++;
  store.subscribe(listener)();
  const leave = store.subscribe(listener);
  assert.deepEqual(socket.sent.map((f) => f.type), ['subscribe', 'unsubscribe', 'subscribe']);
  snapshot(socket, 'room', 2, 1, 'state');
  messages(socket, 'room', 3, 4);
  assert.equal(calls, 3);
  assert.deepEqual(store.getSnapshot(), {
    state: 'state',
    seq: 4,
    epoch: 1,
    messages: [3, 4].map((seq) => ({ seq, data: payload(seq) })),
  });
  // Two listeners: the stream stays until both left.
  const other = store.subscribe(() => {});
  leave();
  leave();
  assert.equal(sent(socket, 'unsubscribe').length, 1);
  other();
  assert.equal(sent(socket, 'unsubscribe').length, 2);
});

test('every form on one stream of the reference server under faults: each delivers it exactly', async () => {
  const stream = 'node:listeners';
  const total = 600;
  const faults = 'seed=11,drop=0.05,dup=0.05,reorder=0.2,window=10';
  const reader = new Client(`${server.wsUrl}?faults=${faults}`, { core: { gapTimeoutMs: 50 } });
  clients.push(reader);
  const byHandlers = new StreamCheck(`${stream} (handlers)`);
  const sub = reader.subscribe(stream, byHandlers.handlers());
  const byListeners = new StreamCheck(`${stream} (listeners)`);
  const other = reader.subscribe(stream);
  const h = byListeners.handlers();
  for (const event of ['message', 'snapshot', 'reset', 'gap']) other.on(event, h[`on${event[0].toUpperCase()}${event.slice(1)}`]);
  const byLoop = new StreamCheck(`${stream} (loop)`);
  const looped = (async () => {
    for await (const e of reader.stream(stream)) {
      if (e.type === 'snapshot') byLoop.snapshot(e.seq, e.epoch);
      else if (e.type === 'message') byLoop.message(e.seq, e.data);
      else byLoop.reset(e.reason);
      if (e.seq === total) break;
    }
  })();
  const store = reader.store(stream, { initial: [], reduce: (log, e) => [...log, e] });
  store.subscribe(() => {});
  await reader.ready;
  await waitFor(() => byHandlers.snapshots.length > 0, 'the reader to be live');

  const writer = new Client(server.wsUrl);
  clients.push(writer);
  const batch = [];
  for (let n = 1; n <= total; n++) batch.push(writer.publish(stream, { n }));
  assert.deepEqual(await Promise.all(batch), Array.from({ length: total }, (_, i) => i + 1));

  await waitFor(() => byHandlers.last >= total || byHandlers.breaches.length > 0, `${total} messages`, 60_000);
  await looped;
  byHandlers.assertExact(total, payload);
  byListeners.assertExact(total, payload);
  byLoop.assertExact(total, payload);
  const byStore = new StreamCheck(`${stream} (store)`);
  for (const e of store.getSnapshot()) {
    if (e.type === 'snapshot') byStore.snapshot(e.seq, e.epoch);
    else if (e.type === 'message') byStore.message(e.seq, e.data);
    else byStore.reset(e.reason);
  }
  byStore.assertExact(total, payload);
  const stats = sub.stats();
  assert.ok(stats.gaps + stats.duplicates > 0, 'the faults made holes or duplicates');
  assert.equal(stats.delivered, total, 'delivered once to all: one stream');
  assert.equal(reader.stats().resubscribes, 0);
});
