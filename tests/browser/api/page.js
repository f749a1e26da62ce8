// The page of api.test.mjs: the package as it is, and clients the test
// drives through `window.__api`. Each client records what it sees in a
// plain object the test reads with `__api.view(id)`: its `state` events,
// how `ready` and each `connect()` settled, every publish's outcome, and
// each subscription's deliveries in the form `StreamCheck.replay` takes.

import { Client, SeqsyncError } from '/pkg/seqsync.js';

const clients = new Map();

/** A rejection as plain data: whether it is a `SeqsyncError`, its code and message. */
const failure = (e) => ({ seqsync: e instanceof SeqsyncError, code: e?.code, message: String(e?.message ?? e) });

/** Records how `promise` settles in `into[key]`: `{ ok: value }` or `{ error }`. */
function settle(promise, into, key) {
  into[key] = null;
  promise.then(
    (ok) => { into[key] = { ok: ok ?? null }; },
    (e) => { into[key] = { error: failure(e) }; },
  );
}

/** The handlers of a subscription that append its deliveries to `events`. */
function recorder(events) {
  return {
    onSnapshot: (state, seq, epoch) => events.push(['snapshot', seq, epoch, state]),
    onMessage: (data, seq) => events.push(['message', seq, data]),
    onReset: (reason) => events.push(['reset', reason]),
  };
}

window.__api = {
  /** Makes client `id` on `url` with `options`, listening to its state from the start. */
  open(id, url, options = {}) {
    const client = new Client(url, options);
    const record = { states: [], ready: null, connects: [], publishes: [], streams: {}, loops: {} };
    client.on('state', (s) => record.states.push(s.state === 'failed' ? { state: s.state, error: failure(s.error) } : { state: s.state }));
    settle(client.ready, record, 'ready');
    clients.set(id, { client, record, subs: {}, controllers: {} });
  },
  /** Subscribes client `id` to `stream`, recording its deliveries. */
  subscribe(id, stream) {
    const c = clients.get(id);
    c.record.streams[stream] = [];
    c.subs[stream] = c.client.subscribe(stream, recorder(c.record.streams[stream]));
  },
  /** Starts a publish; returns its index in `publishes`, where its outcome is recorded. */
  publish(id, stream, data) {
    const { client, record } = clients.get(id);
    record.publishes.push(null);
    const index = record.publishes.length - 1;
    settle(client.publish(stream, data), record.publishes, index);
    return index;
  },
  /** Publishes `{ n }` for n in from..=to, one after the other; resolves to their seqs. */
  async publishAll(id, stream, from, to) {
    const { client } = clients.get(id);
    const seqs = [];
    for (let n = from; n <= to; n++) seqs.push(await client.publish(stream, { n }));
    return seqs;
  },
  /** Calls `connect()`; returns the index in `connects` where its outcome is recorded. */
  connect(id) {
    const { client, record } = clients.get(id);
    record.connects.push(null);
    settle(client.connect(), record.connects, record.connects.length - 1);
    return record.connects.length - 1;
  },
  /** Calls `disconnect()`; returns the connection state right after it. */
  disconnect(id) {
    const { client } = clients.get(id);
    client.disconnect();
    return client.connectionState.state;
  },
  /**
   * Calls `close(options)` and returns the connection state right after it;
   * how the close settles goes to `closed`.
   */
  close(id, options) {
    const { client, record } = clients.get(id);
    settle(client.close(options), record, 'closed');
    return client.connectionState.state;
  },
  /**
   * Runs `for await (const e of client.stream(stream, { signal }))`,
   * recording each event in `loops[stream].events` and how the loop ended
   * in `loops[stream].end`: `{ reason: true }` when it threw the signal's
   * reason, else what it threw or `{ done: true }`.
   */
  loop(id, stream) {
    const c = clients.get(id);
    const controller = new AbortController();
    const reason = new Error(`left ${stream}`);
    c.controllers[stream] = () => controller.abort(reason);
    const loop = { events: [], end: null };
    c.record.loops[stream] = loop;
    (async () => {
      for await (const e of c.client.stream(stream, { signal: controller.signal })) {
        if (e.type === 'snapshot') loop.events.push(['snapshot', e.seq, e.epoch]);
        else if (e.type === 'message') loop.events.push(['message', e.seq, e.data]);
        else loop.events.push([e.type, e.reason]);
      }
      loop.end = { done: true };
    })().catch((e) => {
      loop.end = e === reason ? { reason: true } : { error: failure(e) };
    });
  },
  /** Aborts the signal of the loop over `stream`. */
  abort(id, stream) {
    clients.get(id).controllers[stream]();
  },
  /** What client `id` recorded, with its connection state, its stats and those of each subscription. */
  view(id) {
    const { client, record, subs } = clients.get(id);
    const subStats = Object.fromEntries(Object.entries(subs).map(([name, sub]) => [name, sub.stats() ?? null]));
    return { ...record, state: client.connectionState.state, stats: client.stats(), subStats };
  },
};
window.__loaded = true;
