// What the packed npm package does on the wire, one defined behaviour per
// test, through a stand-in WebSocket (`options.WebSocket`) that records
// what the client sends and lets the test play the server.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError } from 'seqsync';
import { StandIn, startHttp, waitFor } from './support.mjs';

const clients = [];

/** A client on stand-in sockets, with quick retries; resolves once its first socket exists. */
async function client(options = {}) {
  const before = StandIn.opened.length;
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn, reconnectInitialMs: 5, reconnectMaxMs: 10, ...options });
  clients.push(c);
  await waitFor(() => StandIn.opened.length > before, 'a socket');
  return { c, socket: () => StandIn.opened[StandIn.opened.length - 1] };
}

after(() => {
  // Nothing is pending on these clients: each closes at once.
  for (const c of clients) c.close();
});

test('the token is percent-encoded into the URL by the core', async () => {
  const { socket } = await client({ token: 'a+b/c= é' });
  assert.equal(socket().url, 'ws://stand.in/ws?token=a%2Bb%2Fc%3D%20%C3%A9');
});

test('a token function is asked before every attempt; a rejection fails that attempt only', async () => {
  let calls = 0;
  const { socket } = await client({
    token: async () => {
      calls += 1;
      if (calls === 1) throw new Error('not yet');
      return `t ${calls}!`;
    },
  });
  // The first attempt had no token and opened no socket; the retry did.
  assert.equal(socket().url, 'ws://stand.in/ws?token=t%202%21');
  const first = socket();
  first.open();
  first.drop();
  await waitFor(() => socket() !== first, 'a new socket');
  assert.equal(socket().url, 'ws://stand.in/ws?token=t%203%21', 'a fresh token for the reconnect');
  assert.equal(calls, 3);
});

test('the frame limit counts UTF-8 bytes, not UTF-16 units', async () => {
  const { c, socket } = await client({ maxFrameBytes: 200 });
  const snapshots = [];
  c.subscribe('room', { onSnapshot: (state) => snapshots.push(state) });
  socket().open();
  const frame = (text) => ({ type: 'snapshot', stream: 'room', seq: 0, epoch: 1, state: text });
  // 80 two-byte characters: about 140 UTF-16 units, but over 200 bytes.
  socket().receive(frame('é'.repeat(80)));
  assert.deepEqual(snapshots, []);
  assert.equal(c.stats().badFrames, 1);
  socket().receive(frame('e'.repeat(80)));
  assert.deepEqual(snapshots, ['e'.repeat(80)]);
  assert.equal(c.stats().badFrames, 1);
});

test('a frame the core refuses counts once as bad, like one the shell refuses', async () => {
  const { c, socket } = await client();
  c.subscribe('room');
  socket().open();
  socket().receive({ type: 'snapshot', stream: 'room', seq: -5, epoch: 1, state: 1 });
  assert.equal(c.stats().badFrames, 1, 'refused by the core');
  socket().receive({ type: 'msg', stream: 'room', seq: 1 });
  assert.equal(c.stats().badFrames, 2, 'refused here: a msg without data');
});

test('a head entry without an epoch makes the whole frame refused, as natively; the stream is unchanged', async () => {
  const { c, socket } = await client();
  const sub = c.subscribe('room');
  socket().open();
  socket().receive({ type: 'snapshot', stream: 'room', seq: 4, epoch: 1, state: null, ref: socket().sent[0].ref });
  assert.equal(sub.stats().head, 4);
  socket().receive({ type: 'head', heads: { room: { seq: 9 } } });
  assert.equal(c.stats().badFrames, 1, 'refused: an entry without its epoch');
  assert.equal(sub.stats().head, 4, 'nothing of it was applied');
  socket().receive({ type: 'head', heads: { room: { seq: 9, epoch: 1 }, other: { seq: 2, epoch: 5 } } });
  assert.equal(c.stats().badFrames, 1);
  assert.equal(sub.stats().head, 9, 'a whole entry is applied; one for a stream not followed is ignored');
});

test('a member of the wrong type makes the frame refused, also one its type does not use', async () => {
  const { c, socket } = await client();
  const messages = [];
  c.subscribe('room', { onMessage: (data, seq) => messages.push(seq) });
  socket().open();
  socket().receive({ type: 'snapshot', stream: 'room', seq: 0, epoch: 1, state: null, ref: socket().sent[0].ref });
  socket().receive({ type: 'msg', stream: 'room', seq: '1', data: 'a' });
  socket().receive({ type: 'msg', stream: 'room', seq: 1, epoch: 1.5, data: 'a' });
  // Not on the in-order fast path, which reads only the members a message uses.
  socket().receive({ type: 'snapshot', stream: 'room', seq: 0, epoch: 1, state: null, reason: 7 });
  assert.deepEqual(messages, []);
  assert.equal(c.stats().badFrames, 3);
  socket().receive({ type: 'msg', stream: 'room', seq: 1, data: 'a' });
  assert.deepEqual(messages, [1]);
});

test('after a reconnect a pending publish goes out again after the subscribes, with the same id', async () => {
  const { c, socket } = await client();
  c.subscribe('room');
  const first = socket();
  first.open();
  const published = c.publish('room', { n: 1 });
  await waitFor(() => first.sent.some((f) => f.type === 'publish'), 'the publish');
  const id = first.sent.find((f) => f.type === 'publish').id;
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a random UUID');

  first.drop();
  await waitFor(() => socket() !== first, 'a new socket');
  const second = socket();
  second.open();
  assert.deepEqual(
    second.sent.map((f) => f.type),
    ['subscribe', 'publish'],
  );
  assert.equal(second.sent[1].id, id);
  second.receive({ type: 'ack', id, stream: 'room', seq: 7 });
  assert.equal(await published, 7);
});

test('a rate_limited publish is sent again with the same id; other refusals reject with the code', async () => {
  const { c, socket } = await client();
  socket().open();
  const retried = c.publish('room', 1);
  await waitFor(() => socket().sent.length === 1, 'the publish');
  const id = socket().sent[0].id;
  socket().receive({ type: 'error', code: 'rate_limited', message: 'slow down', ref: id });
  await waitFor(() => socket().sent.length === 2, 'the retry');
  assert.equal(socket().sent[1].id, id);
  socket().receive({ type: 'ack', id, stream: 'room', seq: 3 });
  assert.equal(await retried, 3);
  assert.equal(c.stats().publishRetries, 1);

  const refused = c.publish('room', 2);
  await waitFor(() => socket().sent.length === 3, 'the second publish');
  socket().receive({ type: 'error', code: 'unauthorized', message: 'not for you', ref: socket().sent[2].id });
  await assert.rejects(refused, (e) => e instanceof SeqsyncError && e.code === 'unauthorized');
});

test('a refused subscribe reaches onRefused with the code', async () => {
  const { c, socket } = await client();
  const refusals = [];
  c.subscribe('secret', { onRefused: (code, message) => refusals.push([code, message]) });
  socket().open();
  const subscribe = socket().sent.find((f) => f.type === 'subscribe');
  socket().receive({ type: 'error', code: 'unauthorized', message: 'no', ref: subscribe.ref });
  assert.deepEqual(refusals, [['unauthorized', 'no']]);
  assert.equal(c.stats().refusedRequests, 1);
});

test('an error code this version does not know reaches onRefused as written, and a publish as unknown naming it', async () => {
  const { c, socket } = await client();
  const refusals = [];
  c.subscribe('quota', { onRefused: (code, message) => refusals.push([code, message]) });
  socket().open();
  const subscribe = socket().sent.find((f) => f.type === 'subscribe');
  socket().receive({ type: 'error', code: 'quota_exceeded', message: 'over quota', ref: subscribe.ref });
  assert.deepEqual(refusals, [['quota_exceeded', 'over quota']]);

  const refused = c.publish('quota', 1);
  await waitFor(() => socket().sent.some((f) => f.type === 'publish'), 'the publish');
  const id = socket().sent.find((f) => f.type === 'publish').id;
  socket().receive({ type: 'error', code: 'payment_required', message: 'pay first', ref: id });
  // `SeqsyncError.code` is a closed union: the server's code is in the message.
  await assert.rejects(refused, (e) => e instanceof SeqsyncError && e.code === 'unknown' && e.message === 'payment_required: pay first');
});

test('a stream subscribed again after unsubscribe starts from a snapshot, without persist', async () => {
  const { c, socket } = await client();
  const first = c.subscribe('room');
  socket().open();
  socket().receive({ type: 'snapshot', stream: 'room', seq: 7, epoch: 1, state: 'seven' });
  first.unsubscribe();
  const snapshots = [];
  c.subscribe('room', { onSnapshot: (state, seq) => snapshots.push([state, seq]) });
  const again = socket().sent.filter((f) => f.type === 'subscribe').at(-1);
  assert.equal(again.since, undefined, `a fresh start: ${JSON.stringify(again)}`);
  socket().receive({ type: 'snapshot', stream: 'room', seq: 9, epoch: 1, state: 'nine', ref: again.ref });
  assert.deepEqual(snapshots, [['nine', 9]]);
});

test('subscribe refuses what the core would, at once, also before the client has loaded', async () => {
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn, core: { maxStreams: 2 } });
  clients.push(c);
  c.subscribe('a');
  c.subscribe('b');
  const code = (fn) => { try { fn(); } catch (e) { assert.ok(e instanceof SeqsyncError, String(e)); return e.code; } return 'none'; };
  assert.equal(code(() => c.subscribe('c')), 'too_many_streams');
  assert.equal(code(() => c.subscribe('d', { since: -1 })), 'invalid_subscription');
  assert.equal(code(() => c.subscribe('d', { since: '5' })), 'invalid_subscription');
  assert.equal(code(() => c.subscribe('d', { mode: 'bogus' })), 'invalid_subscription');
  assert.equal(code(() => c.subscribe('')), 'invalid_stream');
});

test('publish refuses a stream name that is not one with invalid_stream', async () => {
  const { c } = await client();
  for (const stream of [undefined, null, 42, '', 'a\u0007b']) {
    await assert.rejects(c.publish(stream, 1), (e) => e instanceof SeqsyncError && e.code === 'invalid_stream', String(stream));
  }
});

test('endpoints may be one URL, and a close reason reaches the disconnected state', async () => {
  const states = [];
  const { socket } = await client({ endpoints: 'ws://other.in/ws', onConnection: (s) => states.push(s) });
  const first = socket();
  assert.equal(first.url, 'ws://stand.in/ws');
  first.open();
  first.onclose?.({ code: 1008, reason: 'token expired' });
  await waitFor(() => socket() !== first, 'the next attempt');
  assert.equal(socket().url, 'ws://other.in/ws');
  assert.ok(states.some((s) => s.state === 'disconnected' && /1008: token expired/.test(s.reason)), JSON.stringify(states));
});

test('a socket that never opened is reported as such, with the cause its error event names, if any', async () => {
  const states = [];
  const { c, socket } = await client({ onConnection: (s) => states.push(s) });
  const reasons = () => states.filter((s) => s.state === 'disconnected').map((s) => s.reason);
  // The `ws` package names the cause; the close event that may follow adds nothing.
  const first = socket();
  first.onerror?.({ message: 'Unexpected server response: 401' });
  first.onclose?.({ code: 1006, reason: '' });
  await waitFor(() => socket() !== first, 'the next attempt');
  // A browser's error event carries no cause.
  const second = socket();
  second.onerror?.({});
  second.onclose?.({ code: 1006, reason: '' });
  await waitFor(() => reasons().length === 2, 'the second failure');
  assert.deepEqual(reasons(), [
    'not opened (Unexpected server response: 401)',
    'not opened (refused, unreachable, or the upgrade refused)',
  ]);
  assert.equal(states.filter((s) => s.state === 'connected').length, 0);
  // Else it keeps making sockets, which the next tests would take for theirs.
  await c.close();
});

test('an error on an open socket waits for its close event, which names the code and reason', async () => {
  const states = [];
  const { c, socket } = await client({ onConnection: (s) => states.push(s) });
  const ws = socket();
  ws.open();
  // A report would be made in the handler itself: the session's events are handed out at once.
  ws.onerror?.({});
  assert.equal(states.filter((s) => s.state === 'disconnected').length, 0, JSON.stringify(states));
  ws.onclose?.({ code: 1011, reason: 'internal error' });
  await waitFor(() => states.some((s) => s.state === 'disconnected'), 'the loss to be reported');
  assert.equal(states.find((s) => s.state === 'disconnected').reason, 'closed (1011: internal error)');
  await c.close();
});

test('a history request that is never answered reaches onGap as stalled, and is still asked again', async () => {
  const { c, socket } = await client({
    heartbeatTimeoutMs: 600_000,
    silenceTimeoutMs: 0,
    core: { gapTimeoutMs: 5, requestTimeoutMs: 20, maxBackoffMs: 40, stallAfterAttempts: 3 },
  });
  const gaps = [];
  const got = [];
  c.subscribe('room', { onGap: (gap) => gaps.push(gap), onMessage: (data, seq) => got.push(seq) });
  socket().open();
  socket().receive({ type: 'snapshot', stream: 'room', seq: 0, epoch: 1, state: null });
  socket().receive({ type: 'msg', stream: 'room', seq: 3, epoch: 1, data: 3 });
  const asked = () => socket().sent.filter((f) => f.type === 'history' && f.from === 1 && f.to === 2).length;
  await waitFor(() => gaps.some((g) => g.type === 'stalled'), 'a stalled gap event');
  const stalled = gaps.filter((g) => g.type === 'stalled');
  assert.deepEqual(stalled, [{ type: 'stalled', request: 'history', from: 1, to: 2, attempts: 3 }]);
  assert.ok(asked() >= 3, `every attempt went out: ${asked()}`);
  assert.deepEqual(got, [], 'nothing delivered across the unanswered hole');
  const before = asked();
  await waitFor(() => asked() > before, 'a retry after the report');
});

test('the description\'s headers go with every HTTP request, a read and a publish alike', async () => {
  const http = await startHttp((req) =>
    req.method === 'POST' ? { status: 201, json: { seq: 2 } } : { json: { messages: [{ seq: 1, data: 'one' }] } },
  );
  const headers = { authorization: 'Bearer t-1', 'x-room-key': 'k 2' };
  const before = StandIn.opened.length;
  const c = new Client('ws://chat.test/ws', {
    WebSocket: StandIn,
    description: {
      message: { stream: { fixed: 'room' }, seq: 'seq', payload: 'data' },
      history: { url: `${http.url}/room/messages?since={since}`, messages: 'messages' },
      publish: { url: `${http.url}/room/messages`, seq: 'seq' },
      headers,
    },
  });
  clients.push(c);
  try {
    await waitFor(() => StandIn.opened.length > before, 'a socket');
    StandIn.opened.at(-1).open();
    c.subscribe('room');
    await waitFor(() => http.requests.length === 1, 'the catch-up read');
    assert.equal(await c.publish('room', 'hi'), 2);
    assert.deepEqual(http.requests.map((r) => r.method).sort(), ['GET', 'POST']);
    for (const request of http.requests) {
      assert.equal(request.headers.authorization, 'Bearer t-1', `${request.method} ${request.url}`);
      assert.equal(request.headers['x-room-key'], 'k 2', `${request.method} ${request.url}`);
    }
  } finally {
    await http.stop();
  }
});
