// The order of a subscription's callbacks, as the package's README states
// it, against the reference server: the snapshot before `live`, then the
// messages; a resume with no snapshot.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'seqsync';
import { startServer, waitFor } from './support.mjs';

let server;
const clients = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const c of clients) await c.close();
  await server?.stop();
});

function client() {
  const c = new Client(server.wsUrl);
  clients.push(c);
  return c;
}

/** Handlers that append each callback to `log`, by name and what it was told. */
function recording(log, extra = {}) {
  return {
    ...extra,
    onState: (phase) => log.push(`state ${phase}`),
    onSnapshot: (state, seq) => log.push(`snapshot ${seq} ${state.messages.map((m) => m.seq)}`),
    onMessage: (data, seq) => log.push(`message ${seq} ${data.n}`),
    onReset: (reason) => log.push(`reset ${reason}`),
  };
}

test('a new subscription: snapshotting, the snapshot, then live, then each message in order', async () => {
  const stream = 'order:new';
  const writer = client();
  for (let n = 1; n <= 3; n++) await writer.publish(stream, { n });
  const log = [];
  client().subscribe(stream, recording(log));
  await waitFor(() => log.includes('state live'), 'the stream to go live');
  for (let n = 4; n <= 5; n++) await writer.publish(stream, { n });
  await waitFor(() => log.length >= 5, 'the messages');
  assert.deepEqual(log, ['state snapshotting', 'snapshot 3 1,2,3', 'state live', 'message 4 4', 'message 5 5']);
});

test('a snapshot holds the last 100 messages of the stream, ascending, each with its seq', async () => {
  const stream = 'order:snapshot';
  const writer = client();
  await Promise.all(Array.from({ length: 120 }, (_, i) => writer.publish(stream, { n: i + 1 })));
  let got;
  client().subscribe(stream, { onSnapshot: (state, seq) => (got = { state, seq }) });
  await waitFor(() => got !== undefined, 'the snapshot');
  assert.equal(got.seq, 120);
  assert.deepEqual(got.state.messages.map((m) => m.seq), Array.from({ length: 100 }, (_, i) => i + 21));
  assert.ok(got.state.messages.every((m) => typeof m.data.n === 'number'));
});

test('a resumed subscription: subscribing, then live, then the messages after its position, no snapshot', async () => {
  const stream = 'order:resume';
  const writer = client();
  let epoch;
  client().subscribe(stream, { onSnapshot: (_state, _seq, e) => (epoch = e) });
  await waitFor(() => epoch !== undefined, 'the epoch');
  for (let n = 1; n <= 4; n++) await writer.publish(stream, { n });
  const log = [];
  client().subscribe(stream, recording(log, { since: 2, epoch }));
  await waitFor(() => log.length >= 4, 'the messages after 2');
  assert.deepEqual(log, ['state subscribing', 'state live', 'message 3 3', 'message 4 4']);
});
