// Per-message cost of the seqsync client against a hand-rolled pure-JS
// baseline (JSON.parse + a Map reorder buffer), on the same frames, in the
// same page, rounds interleaved. The frames carry reordering (1 in 10 pairs
// swapped) and duplicates (1 in 100), which both sides must undo.

import { Client, Sequencer, init } from '/pkg/seqsync.js';
import * as glue from '/pkg/seqsync_wasm.js';

const N = 100_000;
const ROUNDS = 7;

function makeFrames(disorder) {
  const seqs = [];
  for (let s = 1; s <= N; s++) seqs.push(s);
  if (disorder) for (let i = 0; i + 1 < N; i += 10) [seqs[i], seqs[i + 1]] = [seqs[i + 1], seqs[i]];
  const frames = [];
  for (let i = 0; i < N; i++) {
    const seq = seqs[i];
    const text = JSON.stringify({
      type: 'msg',
      stream: 'bench',
      seq,
      epoch: 1,
      data: { from: 'user' + (seq % 7), text: 'message number ' + seq, n: seq },
    });
    frames.push(text);
    if (disorder && i % 100 === 50) frames.push(text);
  }
  return frames;
}

// The baseline: what an app writes by hand without a sequencer.
function baseline(frames, onMessage) {
  const streams = new Map();
  for (let i = 0; i < frames.length; i++) {
    const f = JSON.parse(frames[i]);
    if (f.type !== 'msg') continue;
    let s = streams.get(f.stream);
    if (s === undefined) {
      s = { next: 1, held: new Map() };
      streams.set(f.stream, s);
    }
    const seq = f.seq;
    if (seq < s.next || s.held.has(seq)) continue;
    if (seq !== s.next) {
      s.held.set(seq, f.data);
      continue;
    }
    onMessage(f.data, seq);
    s.next++;
    while (s.held.size > 0 && s.held.has(s.next)) {
      const data = s.held.get(s.next);
      s.held.delete(s.next);
      onMessage(data, s.next);
      s.next++;
    }
  }
}

// The seqsync client, fed the same frames through a stand-in socket.
class FrameSocket {
  static last = null;
  constructor() {
    FrameSocket.last = this;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this.listeners = {};
    this.readyState = 0;
  }
  addEventListener(type, fn) {
    (this.listeners[type] ??= []).push(fn);
  }
  removeEventListener() {}
  emit(type, event) {
    if (type === 'open') this.readyState = 1;
    this[`on${type}`]?.(event);
    for (const fn of this.listeners[type] ?? []) fn(event);
  }
  send() {}
  close() {}
}

// The prototype of a socket owned by the WASM module (sdk-wasm/src/websys.rs), present only in a
// package built with the `websys` feature: the same frames through the page's WebSocket, replaced
// by the stand-in while the client opens it. With `gloo` the frames are read by an async task, so
// the time runs until the last message is delivered.
async function websysRun(frames, onMessage, delivered) {
  const real = globalThis.WebSocket;
  globalThis.WebSocket = FrameSocket;
  const options = new Float64Array(6).fill(NaN);
  options[5] = 600_000; // heartbeatTimeoutMs, as for the Client
  const client = new glue.WebClient('ws://bench.invalid/ws', crypto.getRandomValues(new Uint8Array(32)), options);
  globalThis.WebSocket = real;
  let live = false;
  client.subscribe('bench', onMessage, () => (live = true));
  const ws = FrameSocket.last;
  FrameSocket.last = null;
  ws.emit('open', {});
  await new Promise((r) => setTimeout(r, 0));
  ws.emit('message', { data: JSON.stringify({ type: 'snapshot', stream: 'bench', seq: 0, epoch: 1, state: null }) });
  while (!live) await new Promise((r) => setTimeout(r, 0));
  const t0 = performance.now();
  for (let i = 0; i < frames.length; i++) ws.emit('message', { data: frames[i], timeStamp: t0 + i * 0.001 });
  while (delivered() < N) await new Promise((r) => setTimeout(r, 0));
  return performance.now() - t0;
}

async function seqsyncRun(frames, onMessage) {
  const client = new Client('ws://bench.invalid/ws', { WebSocket: FrameSocket, heartbeatTimeoutMs: 600_000 });
  let live = false;
  client.subscribe('bench', { onMessage, onSnapshot: () => (live = true) });
  while (FrameSocket.last === null || FrameSocket.last.onopen === null) await new Promise((r) => setTimeout(r, 1));
  const ws = FrameSocket.last;
  FrameSocket.last = null;
  ws.onopen({});
  ws.onmessage({ data: JSON.stringify({ type: 'snapshot', stream: 'bench', seq: 0, epoch: 1, state: null }) });
  if (!live) throw new Error('snapshot not applied');
  // A browser's MessageEvent carries its arrival time (`timeStamp`, the
  // performance.now() clock); the stand-in events carry increasing ones.
  const t0 = performance.now();
  for (let i = 0; i < frames.length; i++) ws.onmessage({ data: frames[i], timeStamp: t0 + i * 0.001 });
  const elapsed = performance.now() - t0;
  await client.close();
  return elapsed;
}

// Where the time goes: JSON.parse alone, and the bare Sequencer fed
// pre-parsed frames (the core and its crossings, without the client).
function parseOnly(frames) {
  let n = 0;
  for (let i = 0; i < frames.length; i++) if (JSON.parse(frames[i]).type === 'msg') n++;
  return n;
}

function sequencerOnly(parsed, onMessage) {
  const seq = new Sequencer();
  const h = seq.subscribe(0, 'bench');
  seq.handleConnected(0);
  while (seq.pollRequest() !== undefined);
  seq.handleSnapshot(0, h, 0, 1, null);
  while (seq.pollEvent() !== undefined);
  const t0 = performance.now();
  for (let i = 0; i < parsed.length; i++) {
    const f = parsed[i];
    seq.handleMessage(1, h, f.seq, f.epoch, f.data);
    for (let e = seq.pollEvent(); e !== undefined; e = seq.pollEvent()) {
      if (e.type === 'message') onMessage(e.data, e.seq);
    }
  }
  const elapsed = performance.now() - t0;
  seq.free();
  return elapsed;
}

// What a JS-side payload store keyed by seq would add per message (set on
// arrival, get and delete on delivery), against passing the payload through
// the core as a JS value, which costs a table slot inside the WASM call.
function payloadStoreOnly(parsed) {
  const store = new Map();
  let n = 0;
  const t0 = performance.now();
  for (let i = 0; i < parsed.length; i++) {
    const f = parsed[i];
    store.set(f.seq, f.data);
    const data = store.get(f.seq);
    store.delete(f.seq);
    if (data !== undefined) n++;
  }
  const elapsed = performance.now() - t0;
  if (n !== parsed.length) throw new Error('store lost payloads');
  return elapsed;
}

function checker() {
  let expect = 1;
  let sum = 0;
  const onMessage = (data, seq) => {
    if (seq !== expect || data.n !== seq) throw new Error(`out of order: ${seq} (expected ${expect})`);
    expect++;
    sum += data.n;
  };
  return { onMessage, done: () => expect - 1, sum: () => sum };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  await init();
  const frames = makeFrames(true);
  const ordered = makeFrames(false);
  const inOrderBase = [];
  const inOrderOurs = [];
  const parsed = frames.map((f) => JSON.parse(f));
  const base = [];
  const ours = [];
  const parse = [];
  const bare = [];
  const store = [];
  const websys = [];
  const websysInOrder = [];
  for (let round = 0; round < ROUNDS; round++) {
    const a = checker();
    const t0 = performance.now();
    baseline(frames, a.onMessage);
    base.push(performance.now() - t0);
    if (a.done() !== N) throw new Error(`baseline delivered ${a.done()}`);

    const b = checker();
    ours.push(await seqsyncRun(frames, b.onMessage));
    if (b.done() !== N || b.sum() !== a.sum()) throw new Error(`seqsync delivered ${b.done()}`);

    const t2 = performance.now();
    baseline(ordered, checker().onMessage);
    inOrderBase.push(performance.now() - t2);
    inOrderOurs.push(await seqsyncRun(ordered, checker().onMessage));

    if (glue.WebClient !== undefined) {
      const w = checker();
      websys.push(await websysRun(frames, w.onMessage, w.done));
      if (w.sum() !== a.sum()) throw new Error(`the websys prototype delivered ${w.done()}`);
      const wo = checker();
      websysInOrder.push(await websysRun(ordered, wo.onMessage, wo.done));
    }

    const t1 = performance.now();
    parseOnly(frames);
    parse.push(performance.now() - t1);
    const c = checker();
    bare.push(sequencerOnly(parsed, c.onMessage));
    if (c.done() !== N) throw new Error(`Sequencer delivered ${c.done()}`);
    store.push(payloadStoreOnly(parsed));
  }
  // The first round warms both up; it is left out.
  const baseNs = (median(base.slice(1)) * 1e6) / N;
  const oursNs = (median(ours.slice(1)) * 1e6) / N;
  const result = {
    messages: N,
    frames: frames.length,
    rounds: ROUNDS - 1,
    baselineNsPerMessage: Math.round(baseNs),
    seqsyncNsPerMessage: Math.round(oursNs),
    ratio: Number((oursNs / baseNs).toFixed(3)),
    inOrderBaselineNsPerMessage: Math.round((median(inOrderBase.slice(1)) * 1e6) / N),
    inOrderSeqsyncNsPerMessage: Math.round((median(inOrderOurs.slice(1)) * 1e6) / N),
    jsonParseOnlyNsPerMessage: Math.round((median(parse.slice(1)) * 1e6) / N),
    bareSequencerPreParsedNsPerMessage: Math.round((median(bare.slice(1)) * 1e6) / N),
    jsPayloadStoreNsPerMessage: Math.round((median(store.slice(1)) * 1e6) / parsed.length),
    userAgent: navigator.userAgent,
  };
  if (websys.length > 0) {
    result.websysPrototypeNsPerMessage = Math.round((median(websys.slice(1)) * 1e6) / N);
    result.websysPrototypeRatio = Number((median(websys.slice(1)) / median(base.slice(1))).toFixed(3));
    result.websysPrototypeInOrderNsPerMessage = Math.round((median(websysInOrder.slice(1)) * 1e6) / N);
  }
  document.getElementById('out').textContent = JSON.stringify(result, null, 2);
  window.benchResult = result;
}

main().catch((e) => {
  window.benchResult = { error: String(e && e.stack ? e.stack : e) };
});
