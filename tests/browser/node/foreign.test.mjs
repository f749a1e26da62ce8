// The packed package's Client over a server that does not speak the seqsync
// protocol, configured with a description (or an adapter written by hand):
// what goes out on the socket and over HTTP, and what comes back, with a
// stand-in socket and an HTTP server that the test scripts.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { Client, SeqsyncError } from 'seqsync';
import { describe } from 'seqsync/foreign';
import { StandIn, startHttp, waitFor } from './support.mjs';

const cleanups = [];
after(async () => {
  for (const stop of cleanups) await stop();
});

/** A chat log per room and its HTTP API, as the foreign chat server has it. */
async function chatServer(override = () => undefined) {
  const rooms = new Map();
  const log = (room) => rooms.get(room) ?? rooms.set(room, []).get(room);
  const store = (room, message) => {
    const stored = { room, sequence_id: log(room).length + 1, message };
    log(room).push(stored);
    return stored;
  };
  const http = await startHttp((req, body) => {
    const special = override(req, body);
    if (special !== undefined) return special;
    const url = new URL(req.url, 'http://x');
    const room = decodeURIComponent(url.pathname.split('/')[2]);
    if (req.method === 'POST') return { status: 201, json: store(room, JSON.parse(body).message) };
    const since = Number(url.searchParams.get('since'));
    const until = Number(url.searchParams.get('until') ?? Infinity);
    const limit = Number(url.searchParams.get('limit') ?? 500);
    const messages = log(room).filter((m) => m.sequence_id > since && m.sequence_id <= until).slice(0, limit);
    return { json: { messages } };
  });
  cleanups.push(http.stop);
  return { http, store, log };
}

const chat = (url, extra = {}) => ({
  message: { stream: { path: 'room' }, seq: 'sequence_id', payload: 'message' },
  subscribe: '{"action":"join","room":"{stream}"}',
  unsubscribe: '{"action":"leave","room":"{stream}"}',
  history: { url: `${url}/rooms/{stream}/messages?since={since}&until={to}&limit={limit}`, messages: 'messages' },
  publish: { url: `${url}/rooms/{stream}/messages`, body: '{"message":{data}}', seq: 'sequence_id' },
  ...extra,
});

/**
 * A client on stand-in sockets with quick reconnects and holes asked at once, whose requests are
 * not asked again for 5 s (so that what goes out is exactly what the test expects); resolves once
 * its first socket is open.
 */
async function client(options) {
  const before = StandIn.opened.length;
  const c = new Client('ws://chat.test/ws', {
    WebSocket: StandIn, reconnectInitialMs: 5, reconnectMaxMs: 20, core: { gapTimeoutMs: 20, requestTimeoutMs: 5000 }, ...options,
  });
  cleanups.push(() => c.close());
  await waitFor(() => StandIn.opened.length > before, 'a socket');
  const socket = StandIn.opened.at(-1);
  socket.open();
  return { c, socket };
}

function follow(c, stream) {
  const got = [];
  c.subscribe(stream, { onMessage: (data, seq) => got.push([seq, data]) });
  return got;
}

test('a client with a description joins, catches up over HTTP, goes live, and fetches a hole', async () => {
  const chatLog = await chatServer();
  for (const text of ['a', 'b', 'c']) chatLog.store('lobby', text);
  const { c, socket } = await client({ description: chat(chatLog.http.url) });
  const got = follow(c, 'lobby');
  await waitFor(() => got.length === 3, 'the catch-up');
  assert.deepEqual(socket.sent, [{ action: 'join', room: 'lobby' }]);
  assert.equal(chatLog.http.requests[0].url, '/rooms/lobby/messages?since=0&until=500&limit=500');

  socket.receive(chatLog.store('lobby', 'd'));
  chatLog.store('lobby', 'e');
  socket.receive(chatLog.store('lobby', 'f')); // 5 was lost on the way
  await waitFor(() => got.length === 6, 'the hole fetched');
  assert.deepEqual(got, [[1, 'a'], [2, 'b'], [3, 'c'], [4, 'd'], [5, 'e'], [6, 'f']]);
  assert.equal(chatLog.http.requests.at(-1).url, '/rooms/lobby/messages?since=4&until=5&limit=1', 'exactly the hole');
  const stats = c.stats();
  assert.equal(stats.staleAnswers, 0, 'every answer reached the request it answers, once');
  assert.equal(stats.historyMessages, 4);
  assert.equal(stats.badFrames, 0);
});

test('frames the description cannot read are counted as bad; frames that are not messages are ignored', async () => {
  const chatLog = await chatServer();
  const { c, socket } = await client({ description: chat(chatLog.http.url), maxFrameBytes: 200 });
  const got = follow(c, 'lobby');
  await waitFor(() => chatLog.http.requests.length === 1, 'the catch-up');
  socket.receive('{"room":');
  socket.receive({ room: 'lobby', sequence_id: 'one', message: 'x' });
  socket.receive({ room: 7, sequence_id: 1, message: 'x' });
  socket.receive({ room: 'lobby', sequence_id: 1, message: 'é'.repeat(150) });
  socket.onmessage({ data: new Uint8Array([123, 125]).buffer }); // binary, though `{}`
  assert.equal(c.stats().badFrames, 5);
  socket.receive({ event: 'sent', client_id: 'c1', stored: { sequence_id: 1 } });
  socket.receive({ room: 'elsewhere', sequence_id: 1, message: 'x' });
  socket.receive({ room: 'lobby', sequence_id: 1, message: 'ok' });
  await waitFor(() => got.length === 1, 'the good message');
  assert.deepEqual(got, [[1, 'ok']]);
  assert.equal(c.stats().badFrames, 5);
  assert.equal(c.stats().frames, 8);
});

test('publish posts the data and resolves with the seq the server stored, or 0 when it names none', async () => {
  const chatLog = await chatServer();
  const { c } = await client({ description: chat(chatLog.http.url) });
  assert.equal(await c.publish('lobby', 'hello'), 1);
  const post = chatLog.http.requests.at(-1);
  assert.equal(post.method, 'POST');
  assert.equal(post.url, '/rooms/lobby/messages');
  assert.equal(post.body, '{"message":"hello"}');
  assert.equal(post.headers['content-type'], 'application/json');

  const { publish, ...rest } = chat(chatLog.http.url);
  const { c: quiet } = await client({ description: { ...rest, publish: { ...publish, seq: undefined } } });
  assert.equal(await quiet.publish('lobby', 'again'), 0);
  assert.deepEqual(chatLog.log('lobby').map((m) => m.message), ['hello', 'again']);
  assert.equal(c.stats().published, 1);
});

test('a publish answered 503 is sent again; other failures reject with publish_failed and the status', async () => {
  let busy = 1;
  const chatLog = await chatServer((req, body) => {
    if (req.method !== 'POST') return undefined;
    if (body.includes('busy') && busy-- > 0) return { status: 503, json: { error: 'busy' } };
    if (body.includes('bad')) return { status: 400, json: { error: 'no' } };
    return undefined;
  });
  const { c } = await client({ description: chat(chatLog.http.url) });
  assert.equal(await c.publish('lobby', 'busy'), 1);
  assert.equal(c.stats().publishRetries, 1);
  await assert.rejects(c.publish('lobby', 'bad'), (e) =>
    e instanceof SeqsyncError && e.code === 'publish_failed' && e.status === 400 && e.message === 'HTTP 400');
  await assert.rejects(
    (await client({ description: { message: { seq: 's' } } })).c.publish('lobby', 1),
    (e) => e instanceof SeqsyncError && e.code === 'unsupported',
    'a server without a publish request',
  );
});

test('an answer over 32 MiB is a failure, and the request is asked again', async () => {
  // The first answer is valid but for its size (taken, it would deliver at once without a second
  // request) and comes without a length, so that the client finds its size only by reading it.
  // Whether the client stopped reading is seen here, whether the answer or the retry comes first.
  const requests = [];
  let first = 'pending';
  const http = createHttpServer((req, res) => {
    requests.push(req.url);
    res.writeHead(200, { 'content-type': 'application/json' });
    if (requests.length > 1) {
      return res.end(JSON.stringify({ messages: [{ room: 'lobby', sequence_id: 1, message: 'a' }] }));
    }
    res.on('close', () => (first = res.writableFinished ? 'read to the end' : 'given up'));
    res.write('{"messages":[{"room":"lobby","sequence_id":1,"message":"a","pad":"');
    // Twice the cap, sent as the client reads: far more than the socket buffers hold on the way.
    const mib = 'x'.repeat(1024 * 1024);
    let left = 64;
    const more = () => {
      while (left > 0 && !res.destroyed) {
        left -= 1;
        if (!res.write(mib)) return void res.once('drain', more);
      }
      if (!res.destroyed) res.end('"}]}');
    };
    more();
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  );
  // Every body the client reads reaches the adapter, even one that comes after the request was
  // asked again: the big answer must never be among them.
  const described = describe(chat(`http://127.0.0.1:${http.address().port}`));
  const read = [];
  const adapter = {
    ...described,
    answer: (req, status, body) => {
      read.push(body.length);
      return described.answer(req, status, body);
    },
  };
  const { c } = await client({ adapter, core: { requestTimeoutMs: 300 } });
  const got = follow(c, 'lobby');
  await waitFor(() => first !== 'pending', 'the client to be done with the big answer');
  assert.equal(first, 'given up');
  await waitFor(() => got.length === 1, 'the message, on a later try');
  assert.deepEqual(got, [[1, 'a']]);
  assert.ok(requests.length >= 2, 'asked again');
  assert.ok(read.length >= 1 && read.every((n) => n < 1024), `only small answers were read (${read})`);
  assert.ok(c.stats().historyBytes < 1024, `only the small answer was taken (${c.stats().historyBytes} bytes)`);
});

test('a request without an answer within 10 s is given up once, and was asked again meanwhile', async () => {
  let first = true;
  const chatLog = await chatServer((req) => {
    if (req.method !== 'GET' || !first) return undefined;
    first = false;
    return { hang: true };
  });
  chatLog.store('lobby', 'a');
  const started = Date.now();
  const { c } = await client({ description: chat(chatLog.http.url), core: { requestTimeoutMs: 300 } });
  const got = follow(c, 'lobby');
  await waitFor(() => got.length === 1, 'the message, through the retry');
  assert.equal(c.stats().staleAnswers, 0, 'the hung request is still open');
  await waitFor(() => c.stats().staleAnswers === 1, 'the hung request given up', 15_000);
  assert.ok(Date.now() - started >= 10_000, 'not before 10 s');
  assert.deepEqual(got, [[1, 'a']]);
});

test('an adapter written by hand carries the requests its own way', async () => {
  // A server whose frames are [room, seq, text] arrays and whose history is a GET of one page.
  const chatLog = await chatServer();
  chatLog.store('lobby', 'a');
  const asked = [];
  const adapter = {
    plan: { history: true, limit: 50 },
    read(text) {
      const f = JSON.parse(text);
      return Array.isArray(f) ? { message: { stream: f[0], seq: f[1], payload: f[2] } } : null;
    },
    request(req) {
      asked.push(req);
      if (req.kind === 'subscribe') return { frame: `JOIN ${req.stream}` };
      if (req.kind === 'history') return { http: { method: 'GET', url: `${chatLog.http.url}/rooms/${req.stream}/messages?since=${req.since}` } };
      return null;
    },
    answer(req, status, body) {
      return { messages: JSON.parse(body).messages.map((m) => ({ seq: m.sequence_id, payload: m.message })) };
    },
  };
  const { c, socket } = await client({ adapter });
  const got = follow(c, 'lobby');
  await waitFor(() => got.length === 1, 'the catch-up');
  socket.receive(['lobby', 2, 'b']);
  assert.deepEqual(got, [[1, 'a'], [2, 'b']]);
  assert.deepEqual(socket.sent, ['JOIN lobby']);
  assert.deepEqual(asked.slice(0, 2), [
    { kind: 'subscribe', stream: 'lobby', since: 0 },
    { kind: 'history', stream: 'lobby', since: 0, limit: 50 },
  ]);
});

test('describe(description) and description configure the same client', async () => {
  const chatLog = await chatServer();
  chatLog.store('lobby', 'a');
  const { c } = await client({ adapter: describe(chat(chatLog.http.url)) });
  const got = follow(c, 'lobby');
  await waitFor(() => got.length === 1, 'the catch-up');
  assert.deepEqual(got, [[1, 'a']]);
});

test('an invalid description rejects ready with what is wrong', async () => {
  const c = new Client('ws://chat.test/ws', { WebSocket: StandIn, description: { message: {} } });
  await assert.rejects(c.ready, (e) => e instanceof TypeError && /message\.seq/.test(e.message));
  assert.equal(c.connectionState.state, 'closed');
});
