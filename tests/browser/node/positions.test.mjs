// Every delivery carries its position: `onMessage(data, seq, epoch)`, on the
// in-order path (the payload never crosses into the core) and on the one
// path (a message released from the buffer after a hole, a frame without an
// epoch), and the new epoch after the log changed. A stand-in WebSocket
// (`options.WebSocket`) lets the test play the server.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'seqsync';
import { StandIn, waitFor } from './support.mjs';

const clients = [];
after(() => {
  for (const c of clients) c.close();
});

/** A client subscribed to `room` on a stand-in socket, open; `seen` collects its deliveries. */
async function subscribed() {
  const before = StandIn.opened.length;
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn });
  clients.push(c);
  const seen = [];
  c.subscribe('room', {
    onMessage: (data, seq, epoch) => seen.push(['m', seq, epoch, data]),
    onSnapshot: (_state, seq, epoch) => seen.push(['s', seq, epoch]),
    onReset: (reason) => seen.push(['reset', reason]),
  });
  await waitFor(() => StandIn.opened.length > before, 'a socket');
  const socket = StandIn.opened[StandIn.opened.length - 1];
  socket.open();
  await waitFor(() => socket.sent.some((f) => f.type === 'subscribe'), 'the subscribe');
  return { c, socket, seen };
}

const msg = (seq, epoch, data) => ({ type: 'msg', stream: 'room', seq, ...(epoch === undefined ? {} : { epoch }), data });

test('onMessage gets the epoch in order, after a hole, without one in the frame, and the new one after the log changed', async () => {
  const { socket, seen } = await subscribed();
  socket.receive({ type: 'snapshot', stream: 'room', seq: 0, epoch: 7, state: null });
  socket.receive(msg(1, 7, 'in order'));
  assert.deepEqual(seen.splice(0), [['s', 0, 7], ['m', 1, 7, 'in order']]);
  // 3 waits for 2; both come out of the core's buffer.
  socket.receive(msg(3, 7, 'held'));
  assert.deepEqual(seen, []);
  socket.receive(msg(2, 7, 'the hole'));
  assert.deepEqual(seen.splice(0), [['m', 2, 7, 'the hole'], ['m', 3, 7, 'held']]);
  // A frame that names no epoch is delivered in the stream's.
  socket.receive(msg(4, undefined, 'no epoch'));
  assert.deepEqual(seen.splice(0), [['m', 4, 7, 'no epoch']]);
  // The log changed: a reset, a request for a snapshot, and the new epoch from then on.
  socket.receive(msg(5, 9, 'new log'));
  await waitFor(() => socket.sent.some((f) => f.type === 'snapshot'), 'the snapshot request after the reset');
  socket.receive({ type: 'snapshot', stream: 'room', seq: 4, epoch: 9, state: null });
  socket.receive(msg(5, 9, 'new log'));
  socket.receive(msg(6, 9, 'next'));
  assert.deepEqual(seen.splice(0), [['reset', 'epoch_changed'], ['s', 4, 9], ['m', 5, 9, 'new log'], ['m', 6, 9, 'next']]);
});

test('a position taken from onMessage resumes exactly after that message', async () => {
  const first = await subscribed();
  first.socket.receive({ type: 'snapshot', stream: 'room', seq: 0, epoch: 7, state: null });
  for (let seq = 1; seq <= 3; seq++) first.socket.receive(msg(seq, 7, seq));
  const [, since, epoch] = first.seen.filter((e) => e[0] === 'm').at(-1);
  assert.deepEqual([since, epoch], [3, 7]);
  await first.c.close();

  const before = StandIn.opened.length;
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn });
  clients.push(c);
  c.subscribe('room', { since, epoch, onMessage: () => {} });
  await waitFor(() => StandIn.opened.length > before, 'a socket');
  const socket = StandIn.opened[StandIn.opened.length - 1];
  socket.open();
  await waitFor(() => socket.sent.some((f) => f.type === 'subscribe'), 'the subscribe');
  const { stream, since: asked, epoch: of } = socket.sent.find((f) => f.type === 'subscribe');
  assert.deepEqual([stream, asked, of], ['room', 3, 7], 'resumed after the stored position, in its epoch');
});
