// `describe` of the packed package (`seqsync/foreign`): how a description
// reads frames, writes requests and reads HTTP answers (docs/protocol.md
// section 12), one rule per test, without a server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe } from 'seqsync/foreign';

/** The chat server of the reference's example: rooms, sequence_id, HTTP history. */
const chat = {
  message: { stream: { path: 'room' }, seq: 'sequence_id' },
  subscribe: '{"action":"join","room":"{stream}"}',
  unsubscribe: '{"action":"leave","room":"{stream}"}',
  history: {
    url: 'http://chat.test/rooms/{stream}/messages?since={since}&until={to}&limit={limit}',
    messages: 'messages',
    earliest: 'earliest_sequence_id',
  },
  head: { url: 'http://chat.test/rooms/{stream}/head', seq: 'sequence_id' },
  publish: { url: 'http://chat.test/rooms/{stream}/messages', seq: 'sequence_id' },
  headers: { 'x-b': '2', authorization: 'Bearer t' },
};

const read = (description, frame) => describe(description).read(typeof frame === 'string' ? frame : JSON.stringify(frame));
const history = { kind: 'history', stream: 'lobby', since: 4, limit: 3 };

test('paths name the value itself, a member, or an element of an array by its index', () => {
  const d = { message: { stream: { path: 'meta.room' }, seq: 'meta.ids.1', payload: 'body.items.0' } };
  const frame = { meta: { room: 'r', ids: [9, 7] }, body: { items: [{ t: 'x' }, 2] } };
  assert.deepEqual(read(d, frame), { message: { stream: 'r', seq: 7, epoch: undefined, payload: { t: 'x' } } });
  const whole = read({ message: { seq: 'seq' } }, { stream: 's', seq: 1, n: 2 });
  assert.deepEqual(whole.message.payload, { stream: 's', seq: 1, n: 2 }, 'the payload is the whole frame by default');
  // An index on an object is a member name; a name on an array finds nothing.
  assert.equal(read({ message: { seq: 'a.0' } }, { stream: 's', a: { 0: 3 } }).message.seq, 3);
  assert.equal(read({ message: { seq: 'a.x' } }, { stream: 's', a: [3] }), null);
});

test('a frame is a message only when the value at `when` is `matches`, as a string or as JSON text', () => {
  const d = (matches) => ({ message: { when: 'event', matches, seq: 'seq' } });
  assert.ok(read(d('message'), { event: 'message', stream: 's', seq: 1 }).message);
  assert.equal(read(d('message'), { event: 'typing', stream: 's', seq: 1 }), null);
  assert.ok(read(d('3'), { event: 3, stream: 's', seq: 1 }).message, 'a number by its JSON text');
  assert.ok(read(d('true'), { event: true, stream: 's', seq: 1 }).message, 'a boolean by its JSON text');
  assert.equal(read(d('3'), { event: '4', stream: 's', seq: 1 }), null);
  assert.equal(read(d('"m"'), { event: 'm', stream: 's', seq: 1 }), null, 'a string only by its value');
  assert.equal(read(d('message'), { stream: 's', seq: 1 }), null, 'no value at `when`');
  // Without `when`, any frame with a value at the seq's path is a message.
  assert.equal(read({ message: { seq: 'seq' } }, { type: 'ping' }), null);
});

test('a message without a valid seq or a stream name is a bad frame; a frame that does not parse too', () => {
  const d = { message: { seq: 'seq' } };
  for (const seq of [0, -1, 1.5, '5', null, 2 ** 53, true]) {
    assert.ok(read(d, { stream: 's', seq }).bad, `seq ${JSON.stringify(seq)}`);
  }
  assert.equal(read(d, { stream: 's', seq: 2 ** 53 - 1 }).message.seq, 2 ** 53 - 1);
  assert.ok(read(d, { stream: 7, seq: 1 }).bad, 'a stream that is not a string');
  assert.ok(read(d, { seq: 1 }).bad, 'no stream');
  assert.ok(read(d, '{"stream":').bad);
  assert.ok(read({ message: { when: 'event', matches: 'msg', seq: 'seq' } }, { event: 'msg', stream: 's' }).bad,
    'a message by `when` without a seq');
});

test('a fixed stream names the stream of every message of the connection', () => {
  const d = { message: { stream: { fixed: 'the-room' }, seq: 'id' } };
  assert.equal(read(d, { id: 4 }).message.stream, 'the-room');
});

test('an epoch is read where the description says, in every message; a missing payload reads as null', () => {
  const d = { message: { seq: 'seq', epoch: 'gen', payload: 'data' } };
  assert.deepEqual(read(d, { stream: 's', seq: 2, gen: 0 }), { message: { stream: 's', seq: 2, epoch: 0, payload: null } });
  assert.ok(read(d, { stream: 's', seq: 2 }).bad, 'a frame without one');
  assert.ok(read(d, { stream: 's', seq: 2, gen: -1 }).bad);
  assert.equal(read({ message: { seq: 'seq' } }, { stream: 's', seq: 2, gen: 5 }).message.epoch, undefined, 'none described');
});

test('a heartbeat carries a stream and its latest seq, 0 allowed', () => {
  const d = { message: { when: 'type', matches: 'msg', seq: 'seq' }, heartbeat: { when: 'type', matches: 'beat', seq: 'last' } };
  assert.deepEqual(read(d, { type: 'beat', stream: 's', last: 0 }), { heartbeat: { stream: 's', seq: 0, epoch: undefined } });
  assert.ok(read(d, { type: 'beat', stream: 's', last: -1 }).bad);
  assert.equal(read(d, { type: 'other', stream: 's', last: 1 }), null);
});

test('templates fill their placeholders as the core does: JSON-escaped in frames, percent-encoded in URLs', () => {
  const d = describe({
    message: { seq: 'seq' },
    subscribe: '{"join":"{stream}","at":{since},"from":"{from}","x":"{nope}","y":"{Stream}","z":"{}"}',
    history: { url: 'http://h/rooms/{stream}/messages?since={since}&to={to}&x={nope}{unclosed' },
  });
  const stream = 'room "1"/a\\b\n é~';
  assert.deepEqual(d.request({ kind: 'subscribe', stream, since: 41 }), {
    frame: '{"join":"room \\"1\\"/a\\\\b\\u000a é~","at":41,"from":"{from}","x":"{nope}","y":"{Stream}","z":"{}"}',
  });
  assert.equal(
    d.request({ kind: 'history', stream, since: 41, to: 50, limit: 9 }).http.url,
    'http://h/rooms/room%20%221%22%2Fa%5Cb%0A%20%C3%A9~/messages?since=41&to=50&x={nope}{unclosed',
  );
});

test('a history request fills from, to and limit; without a known end, to is since + limit', () => {
  const d = describe({ ...chat, history: { ...chat.history, url: 'http://h/{stream}?from={from}&to={to}&limit={limit}' } });
  assert.equal(d.request(history).http.url, 'http://h/lobby?from=5&to=7&limit=3');
  assert.equal(d.request({ ...history, to: 5 }).http.url, 'http://h/lobby?from=5&to=5&limit=3');
  const far = { ...history, since: 2 ** 53 - 1, limit: 500 };
  assert.match(d.request(far).http.url, /to=9007199254741491&/, 'exact past 2^53');
  const framed = describe({ message: { seq: 'seq' }, history: { frame: '{"replay":"{stream}","after":{since}}' } });
  assert.deepEqual(framed.request(history), { frame: '{"replay":"lobby","after":4}' });
});

test('HTTP requests carry the headers in the order of their names', () => {
  const get = describe(chat).request(history).http;
  assert.deepEqual(get, {
    method: 'GET',
    url: 'http://chat.test/rooms/lobby/messages?since=4&until=7&limit=3',
    headers: [['authorization', 'Bearer t'], ['x-b', '2']],
  });
});

test('a publish posts its body template with the data as it is and the id', () => {
  const d = describe({ ...chat, publish: { url: 'http://h/{stream}?id={id}', body: '{"message":{data},"id":"{id}","s":"{stream}"}' } });
  const post = d.request({ kind: 'publish', stream: 'a"b', data: '{"t":"hi"}', id: 'u-1' }).http;
  assert.equal(post.method, 'POST');
  assert.equal(post.url, 'http://h/a%22b?id=u-1');
  assert.equal(post.body, '{"message":{"t":"hi"},"id":"u-1","s":"a\\"b"}');
  assert.deepEqual(post.headers.at(-1), ['content-type', 'application/json']);
  assert.equal(describe(chat).request({ kind: 'publish', stream: 's', data: '[1]', id: 'x' }).http.body, '[1]',
    'the body is the data by default');
});

test('what the description has nothing for is no request', () => {
  const d = describe({ message: { seq: 'seq' } });
  for (const kind of ['subscribe', 'unsubscribe', 'history', 'snapshot', 'head', 'publish']) {
    assert.equal(d.request({ kind, stream: 's', since: 0, limit: 1, data: '1', id: 'x' }), null, kind);
  }
});

test('a 2xx history answer gives its messages in any order, and the earliest seq when it says', () => {
  const d = describe(chat);
  const body = { messages: [{ sequence_id: 6, text: 'b' }, { sequence_id: 5 }], earliest_sequence_id: 2 };
  assert.deepEqual(d.answer(history, 200, JSON.stringify(body)), {
    messages: [{ seq: 6, payload: { sequence_id: 6, text: 'b' } }, { seq: 5, payload: { sequence_id: 5 } }],
    earliest: 2,
  });
  assert.deepEqual(d.answer(history, 200, '{"messages":[]}'), { messages: [] });
  const list = describe({ message: { seq: 'n', payload: 'p' }, history: { url: 'http://h', messages: '$' } });
  assert.deepEqual(list.answer(history, 200, '[{"n":5,"p":1},{"n":6}]'), {
    messages: [{ seq: 5, payload: 1 }, { seq: 6, payload: null }],
  });
});

test('one element without a valid seq spoils the whole answer; an invalid earliest is left out', () => {
  const d = describe(chat);
  for (const bad of [{ sequence_id: 0 }, { sequence_id: '7' }, {}, 3]) {
    const answer = d.answer(history, 200, JSON.stringify({ messages: [{ sequence_id: 5 }, bad] }));
    assert.match(answer.failed?.reason ?? '', /without a valid seq/, JSON.stringify(bad));
  }
  assert.deepEqual(d.answer(history, 200, '{"messages":[],"earliest_sequence_id":"2"}'), { messages: [] });
});

test('a history answer names the one epoch its messages name; messages of two epochs spoil it', () => {
  const d = describe({ message: { stream: { path: 'ch.id' }, seq: 'n', epoch: 'gen', payload: 'body' }, history: { url: 'http://h', messages: 'data.events' } });
  const answer = (events) => d.answer(history, 200, JSON.stringify({ data: { events } }));
  assert.deepEqual(answer([{ n: 1, gen: 3, body: 'a' }, { n: 2, gen: 3 }]), {
    messages: [{ seq: 1, payload: 'a' }, { seq: 2, payload: null }],
    epoch: 3,
  });
  assert.deepEqual(answer([{ n: 1 }]), { messages: [{ seq: 1, payload: null }] });
  assert.match(answer([{ n: 1, gen: 3 }, { n: 2, gen: 4 }]).failed?.reason ?? '', /different epochs/);
  assert.match(answer([{ n: 1, gen: -1 }]).failed?.reason ?? '', /valid epoch/);
});

test('404 and 410 to a history request mean gone by default, with the earliest seq when the body names one', () => {
  const d = describe(chat);
  assert.deepEqual(d.answer(history, 410, '{"error":"gone","earliest_sequence_id":12}'), { gone: { earliest: 12 } });
  assert.deepEqual(d.answer(history, 404, 'not found'), { gone: {} });
  assert.deepEqual(d.answer({ kind: 'head', stream: 's' }, 404, ''), { failed: { reason: 'HTTP 404', status: 404 } });
  const own = describe({ ...chat, history: { ...chat.history, gone: [409] } });
  assert.deepEqual(own.answer(history, 409, ''), { gone: {} });
  assert.deepEqual(own.answer(history, 404, ''), { failed: { reason: 'HTTP 404', status: 404 } });
});

test('other statuses fail with the status; bodies that are not JSON or lack the array fail', () => {
  const d = describe(chat);
  assert.deepEqual(d.answer(history, 500, '{}'), { failed: { reason: 'HTTP 500', status: 500 } });
  assert.deepEqual(d.answer(history, 200, '<html>'), { failed: { reason: 'the answer is not JSON' } });
  assert.deepEqual(d.answer(history, 200, '{"items":[]}'), { failed: { reason: 'no array at messages' } });
  assert.ok(d.answer(history, 204, '').failed);
});

test('snapshot and head answers allow seq 0, for a stream without messages', () => {
  const d = describe({ ...chat, snapshot: { url: 'http://h/{stream}', seq: 'at', state: 'state' } });
  assert.deepEqual(d.answer({ kind: 'head', stream: 's' }, 200, '{"sequence_id":0}'), { head: { seq: 0 } });
  assert.ok(d.answer({ kind: 'head', stream: 's' }, 200, '{"sequence_id":-1}').failed);
  assert.deepEqual(d.answer({ kind: 'snapshot', stream: 's' }, 200, '{"at":0}'), { snapshot: { seq: 0, state: null } });
  assert.deepEqual(d.answer({ kind: 'snapshot', stream: 's' }, 200, '{"at":3,"state":[1]}'), { snapshot: { seq: 3, state: [1] } });
  const bare = describe({ message: { seq: 'seq' }, head: { url: 'http://h' } });
  assert.deepEqual(bare.answer({ kind: 'head', stream: 's' }, 200, '7'), { head: { seq: 7 } }, 'a path left out is the whole answer');
});

test('a stored publish gives its seq when the answer has one; a refused one fails with the status', () => {
  const d = describe(chat);
  const publish = { kind: 'publish', stream: 's', data: '1', id: 'x' };
  assert.deepEqual(d.answer(publish, 201, '{"sequence_id":8}'), { published: { seq: 8 } });
  assert.deepEqual(d.answer(publish, 201, 'stored'), { published: {} }, 'stored even when the seq is unreadable');
  assert.deepEqual(d.answer(publish, 503, ''), { failed: { reason: 'HTTP 503', status: 503 } });
});

test('the plan says what the description can do', () => {
  assert.deepEqual(describe(chat).plan, {
    history: true, snapshot: false, head: true, publish: true, heartbeats: false, holes: false,
    start: 'beginning', pollMs: 0, limit: 500,
  });
  const other = describe({ message: { seq: 's' }, heartbeat: { seq: 'h' }, history: { frame: 'f', holes: true, limit: 20 }, pollMs: 250 });
  assert.deepEqual(other.plan, {
    history: true, snapshot: false, head: false, publish: false, heartbeats: true, holes: true,
    start: 'beginning', pollMs: 250, limit: 20,
  });
});

test('a description that cannot be used is refused with what is wrong', () => {
  const refused = (d, what) => assert.throws(() => describe(d), (e) => e instanceof TypeError && e.message.includes(what));
  refused({}, 'message');
  refused({ message: {} }, 'message.seq');
  refused({ message: { seq: 's', colour: 'red' } }, 'message.colour');
  refused({ message: { seq: 's' }, extra: 1 }, 'extra');
  refused({ message: { seq: 's', stream: { path: 'a', fixed: 'b' } } }, 'message.stream');
  refused({ message: { seq: 's' }, history: { url: 'u', frame: 'f' } }, 'exactly one');
  refused({ message: { seq: 's' }, history: {} }, 'exactly one');
  refused({ message: { seq: 's' }, start: 'snapshot' }, 'snapshot source');
  refused({ message: { seq: 's' }, start: 'head' }, 'head source');
  refused({ message: { seq: 's' }, pollMs: -1 }, 'pollMs');
  refused({ message: { seq: 's' }, history: { url: 'u', gone: [404, 'x'] } }, 'history.gone.1');
  refused({ message: { seq: 's' }, headers: { a: 1 } }, 'headers.a');
  refused(null, 'description');
});
