// The packed npm package's entry `seqsync/sequencer`, the bare Sequencer,
// imported by name from a fresh project. No server: the test feeds frames.
// Run by scripts/browser.sh with: node --test (a process of its own, so that
// only this entry's module is loaded).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as main from 'seqsync';
import { Sequencer, SeqsyncError, init } from 'seqsync/sequencer';

test('the bare Sequencer is an entry of its own, over its own module', async () => {
  assert.equal(main.Sequencer, undefined, 'seqsync has no Sequencer');
  assert.equal(SeqsyncError, main.SeqsyncError, 'one error class for both entries');
  // Before its own module is loaded; the client's module is never loaded in this process.
  assert.throws(() => new Sequencer(), (e) => e instanceof SeqsyncError && e.code === 'not_initialized');
  await init();
  const seq = new Sequencer();
  const h = seq.subscribe(0, 'room');
  assert.equal(seq.streamHandle('room'), h);
  assert.equal(seq.streamName(h), 'room');
  seq.free();
});

test('the bare Sequencer orders, dedupes and asks for what is missing', async () => {
  await init();
  const seq = new Sequencer({ gapTimeoutMs: 50 });
  const room = seq.subscribe(0, 'room');
  seq.handleConnected(0);
  assert.deepEqual(seq.pollRequest(), { type: 'subscribe', stream: 'room' });
  assert.equal(seq.pollRequest(), undefined);

  assert.equal(seq.handleFrame(1, { type: 'snapshot', stream: 'room', seq: 10, epoch: 3, state: 'at10' }), undefined);
  seq.handleMessage(2, room, 12, 3, 'twelve');
  seq.handleMessage(3, room, 12, 3, 'twelve again');
  assert.equal(seq.pollTimeout(), 52);
  seq.handleTimeout(52);
  assert.deepEqual(seq.pollRequest(), { type: 'history', stream: 'room', from: 11, to: 11 });
  seq.handleHistory(60, room, 11, 11, 3, [{ seq: 11, data: 'eleven' }]);

  const events = [];
  for (let e = seq.pollEvent(); e !== undefined; e = seq.pollEvent()) events.push(e);
  const messages = events.filter((e) => e.type === 'message');
  assert.deepEqual(messages, [
    { type: 'message', stream: room, seq: 11, epoch: 3, data: 'eleven' },
    { type: 'message', stream: room, seq: 12, epoch: 3, data: 'twelve' },
  ]);
  assert.deepEqual(events.find((e) => e.type === 'snapshot'), { type: 'snapshot', stream: room, seq: 10, epoch: 3, state: 'at10' });
  assert.deepEqual(events.find((e) => e.type === 'gapDetected'), { type: 'gapDetected', stream: room, from: 11, to: 11 });
  assert.deepEqual(events.find((e) => e.type === 'gapHealed'), { type: 'gapHealed', stream: room, through: 12 });
  const stats = seq.stats(room);
  assert.equal(stats.duplicates, 1);
  assert.equal(stats.lastSeq, 12);
  assert.equal(stats.phase, 'live');

  assert.throws(() => seq.handleMessage(70, room, 0, 3, 'zero'), SeqsyncError);
  assert.throws(() => seq.handleMessage(70, room, 1.5, 3, 'half'), SeqsyncError);
  const ack = { type: 'ack', id: 'x', stream: 'room', seq: 1 };
  assert.equal(seq.handleFrame(70, ack), ack);
  // The codes of Client.subscribe for the same refusals.
  const code = (fn) => { try { fn(); } catch (e) { assert.ok(e instanceof SeqsyncError, String(e)); return e.code; } return 'none'; };
  assert.equal(code(() => seq.subscribe(71, 'room')), 'already_subscribed');
  assert.equal(code(() => seq.subscribe(71, '')), 'invalid_stream');
  assert.equal(code(() => seq.subscribe(71, 'other', { since: -1 })), 'invalid_subscription');
  seq.unsubscribe(80, room);
  assert.deepEqual(seq.pollRequest(), { type: 'unsubscribe', stream: 'room' });
  assert.equal(seq.stats(room), undefined);
  seq.free();
});

test('a message event carries its epoch, also for a frame that names none, and the new one after the log changed', async () => {
  await init();
  const seq = new Sequencer();
  const room = seq.subscribe(0, 'room');
  seq.handleConnected(0);
  seq.handleSnapshot(1, room, 0, 7, 'empty');
  // Taken at once (nothing waiting), with and without an epoch in the frame.
  seq.handleMessage(2, room, 1, 7, 'one');
  seq.handleMessage(3, room, 2, undefined, 'two');
  const messages = () => {
    const out = [];
    for (let e = seq.pollEvent(); e !== undefined; e = seq.pollEvent()) if (e.type === 'message') out.push([e.seq, e.epoch]);
    return out;
  };
  assert.deepEqual(messages(), [[1, 7], [2, 7]]);
  // Another epoch: a reset, then the new log's snapshot and messages.
  seq.handleMessage(4, room, 3, 9, 'three');
  seq.handleSnapshot(5, room, 2, 9, 'at2');
  seq.handleMessage(6, room, 4, undefined, 'four');
  assert.deepEqual(messages(), [[3, 9], [4, 9]]);
  seq.free();
});
