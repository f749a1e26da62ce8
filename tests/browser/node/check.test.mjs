// The JS suites' contract checker must fail where the contract is broken:
// each rule is shown to throw on a breach, and the allowed paths to pass.
import assert from 'node:assert/strict';
import test from 'node:test';

import { StreamCheck } from './support.mjs';

function feed(check, events) {
  const h = check.handlers();
  for (const [kind, ...args] of events) {
    if (kind === 'snapshot') h.onSnapshot({}, args[0], args[1] ?? 7);
    else if (kind === 'message') h.onMessage({ n: args[0] }, args[0]);
    else if (kind === 'reset') h.onReset(args[0], undefined);
    else if (kind === 'skipped') h.onGap({ type: 'skipped', from: args[0], to: args[1] });
  }
}

test('an exact stream passes', () => {
  const check = new StreamCheck('s');
  feed(check, [['snapshot', 2], ['message', 3], ['message', 4]]);
  check.assertExact(4, (n) => ({ n }));
});

test('a duplicate after a second snapshot fails', () => {
  const check = new StreamCheck('s');
  assert.throws(
    () => feed(check, [['snapshot', 0], ['message', 1], ['message', 2], ['snapshot', 1], ['message', 2]]),
    /snapshot at 1 with no reset before it/,
  );
  assert.throws(() => check.assertExact(2, (n) => ({ n })), /no reset before it/);
});

test('a backwards step fails', () => {
  const check = new StreamCheck('s');
  assert.throws(
    () => feed(check, [['snapshot', 0], ['message', 1], ['message', 2], ['message', 3], ['message', 2]]),
    /message 2 moves the position backwards from 3/,
  );
});

test('a hole fails', () => {
  const check = new StreamCheck('s');
  assert.throws(() => feed(check, [['snapshot', 0], ['message', 1], ['message', 3]]), /expected seq 2 next/);
});

test('a message between a reset and its snapshot fails', () => {
  const check = new StreamCheck('s');
  assert.throws(
    () => feed(check, [['snapshot', 0], ['message', 1], ['reset', 'history_unavailable'], ['message', 2]]),
    /between reset and snapshot/,
  );
});

test('a snapshot behind the position after history_unavailable fails', () => {
  const check = new StreamCheck('s');
  assert.throws(
    () =>
      feed(check, [
        ['snapshot', 0],
        ['message', 1],
        ['message', 2],
        ['message', 3],
        ['reset', 'history_unavailable'],
        ['snapshot', 1],
      ]),
    /moved the position back from 3 to 1/,
  );
});

test('a snapshot of a resumed stream needs a reset', () => {
  const check = new StreamCheck('s', { resumingAfter: 3 });
  assert.throws(() => feed(check, [['snapshot', 5]]), /snapshot at 5 with no reset/);
});

test('a reset then a snapshot ahead passes, and assertExact counts the reset', () => {
  const check = new StreamCheck('s');
  feed(check, [['snapshot', 0], ['message', 1], ['reset', 'history_unavailable'], ['snapshot', 300], ['message', 301]]);
  assert.equal(check.last, 301);
  assert.ok(check.delivered.has(1) && check.delivered.has(301) && !check.delivered.has(2));
  assert.throws(() => check.assertExact(301, (n) => ({ n })), /no reset/);
});

test('a changed log may start over below the position', () => {
  for (const reason of ['epoch_changed', 'server_behind']) {
    const check = new StreamCheck('s');
    feed(check, [['snapshot', 0], ['message', 1], ['message', 2], ['reset', reason], ['snapshot', 1, 8], ['message', 2]]);
    assert.equal(check.last, 2, reason);
    assert.equal(check.delivered.size, 2, `${reason}: seqs 1 and 2 held`);
  }
});

test('a skip that leaves a hole fails', () => {
  const check = new StreamCheck('s');
  assert.throws(() => feed(check, [['snapshot', 0], ['skipped', 2, 3]]), /not contiguous/);
});

test('a wrong payload fails assertExact', () => {
  const check = new StreamCheck('s');
  feed(check, [['snapshot', 0], ['message', 1]]);
  assert.throws(() => check.assertExact(1, () => ({ n: 2 })), /seq 1/);
});

test('a recorded log replays through the same rules', () => {
  const good = [['snapshot', 0, 7], ['message', 1, { n: 1 }], ['reset', 'epoch_changed'], ['snapshot', 0, 8], ['message', 1, { n: 1 }]];
  assert.equal(new StreamCheck('s').replay(good).last, 1);
  const repeat = [['snapshot', 0, 7], ['message', 1, { n: 1 }], ['message', 1, { n: 1 }]];
  assert.throws(() => new StreamCheck('s').replay(repeat), /message 1 moves the position backwards from 1/);
});
