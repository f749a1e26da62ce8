// Publishes over the server's frame size limit, through a stand-in WebSocket
// (`options.WebSocket`) that plays the server: a limit the server announced
// refuses a larger publish before it is sent, the message naming the limit
// and whose it is; a publish the server refuses as too large
// (`frame_too_large`, or a close with 1009) fails at once and is never sent
// again after the reconnect.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError } from 'seqsync';
import { StandIn, waitFor } from './support.mjs';

const clients = [];

// Quick reconnects; publishes that would wait for their timeout fail the test's own deadline instead.
function client(options = {}) {
  const c = new Client('ws://stand.in/ws', {
    WebSocket: StandIn, reconnectInitialMs: 10, reconnectMaxMs: 20, publishTimeoutMs: 600_000, ...options,
  });
  clients.push(c);
  return c;
}

after(() => {
  for (const c of clients) c.close();
});

/** The next socket the client opens, opened. */
async function nextSocket(since) {
  await waitFor(() => StandIn.opened.length > since, 'a socket');
  const socket = StandIn.opened[StandIn.opened.length - 1];
  socket.open();
  return socket;
}

/** Asserts that `promise` rejects with `publish_too_large` and a message that contains each of `parts`. */
async function tooLarge(promise, ...parts) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof SeqsyncError, `a SeqsyncError, not ${e}`);
    assert.equal(e.code, 'publish_too_large');
    for (const part of parts) assert.ok(e.message.includes(part), `${JSON.stringify(e.message)} names ${part}`);
    return true;
  });
}

const publishes = (socket) => socket.sent.filter((f) => f.type === 'publish');

test('a publish over the limit the server announced is refused at once, naming the limit, and nothing is sent', async () => {
  const c = client();
  const socket = await nextSocket(StandIn.opened.length);
  socket.receive({ type: 'head', heads: {}, frame_limit: 1000 });
  await tooLarge(c.publish('room', 'x'.repeat(2000)), 'room', "server's limit of 1,000 bytes", 'publish of 2,0');
  assert.deepEqual(publishes(socket), []);
  assert.equal(c.stats().pendingPublishes, 0);
  // Under the limit, a publish goes out and completes.
  const small = c.publish('room', 'hi');
  await waitFor(() => publishes(socket).length === 1, 'the small publish');
  socket.receive({ type: 'ack', id: publishes(socket)[0].id, stream: 'room', seq: 1 });
  assert.equal(await small, 1);
});

test("the client's own limit is named when it is the smaller one", async () => {
  const c = client({ maxPublishBytes: 500 });
  const socket = await nextSocket(StandIn.opened.length);
  socket.receive({ type: 'head', heads: {}, frame_limit: 65536 });
  await tooLarge(c.publish('room', 'x'.repeat(600)), "client's limit of 500 bytes");
  assert.deepEqual(publishes(socket), []);
});

test('frame_too_large from a server that announced no limit fails the publish at once; it is not resent', async () => {
  const c = client();
  const socket = await nextSocket(StandIn.opened.length);
  const large = c.publish('room', 'x'.repeat(5000));
  const small = c.publish('room', 'hi');
  await waitFor(() => publishes(socket).length === 2, 'both publishes');
  socket.receive({ type: 'error', code: 'frame_too_large', message: 'frame of 5060 bytes exceeds the limit' });
  await tooLarge(large, 'room', "over the server's limit");
  assert.equal(c.stats().pendingPublishes, 1, 'the small one still waits');
  // After a reconnect only the small one goes out again.
  const before = StandIn.opened.length;
  socket.drop();
  const again = await nextSocket(before);
  await waitFor(() => publishes(again).length === 1, 'the small publish sent again');
  const [resent] = publishes(again);
  assert.equal(resent.data, 'hi');
  again.receive({ type: 'ack', id: resent.id, stream: 'room', seq: 1 });
  assert.equal(await small, 1);
});

test('a close with 1009 after a publish fails it at once; it is not resent', async () => {
  const c = client();
  const socket = await nextSocket(StandIn.opened.length);
  const large = c.publish('room', 'x'.repeat(50_000));
  await waitFor(() => publishes(socket).length === 1, 'the publish');
  const before = StandIn.opened.length;
  socket.onclose?.({ code: 1009, reason: 'frame too large' });
  await tooLarge(large, 'room', 'publish of 50,');
  const again = await nextSocket(before);
  again.receive({ type: 'head', heads: {} });
  assert.deepEqual(publishes(again), []);
  assert.equal(c.stats().pendingPublishes, 0);
});
