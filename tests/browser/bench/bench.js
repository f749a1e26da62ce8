// Per-message cost of the seqsync client against a hand-rolled pure-JS
// baseline (JSON.parse + a Map reorder buffer), on the same frames, in the
// same page. The frames carry reordering (1 in 10 pairs swapped) and
// duplicates (1 in 100), which both sides must undo; a second set arrives in
// order.
//
// Each round runs the baseline and the package back to back on both sets,
// twice each (baseline, package, package, baseline; the mirror image in every
// other round), so that neither side always inherits the other's garbage or a
// warmer cache, and a load that rises or falls through the round weighs on
// both alike. A ratio is taken within each round (package / baseline, same
// frames, moments apart), and the rounds' ratios are summed up by their
// median and interquartile range: one slow round moves neither figure far.
//
// Two clocks: the wall clock (`performance.now()`), and, when bench.mjs runs
// the page, the CPU time of the page's main thread (Chromium's `ThreadTime`
// metric through the DevTools protocol, exposed as `benchThreadTime`). On a
// shared machine the wall clock also counts the time the thread waits for a
// core; the CPU time does not, so its ratios are the ones reported first.
// `?rounds=N` sets the number of measured rounds (at least 9).

import { Client, init } from '/pkg/seqsync.js';
import * as glue from '/pkg/seqsync_wasm.js';
import { Sequencer, init as initSequencer } from '/pkg/sequencer.js';

const N = 100_000;
const MIN_ROUNDS = 9;
const requested = Number(new URLSearchParams(location.search).get('rounds') ?? 15);
const ROUNDS = Number.isSafeInteger(requested) ? Math.max(MIN_ROUNDS, requested) : 15;
// Rounds run first and left out: the JIT compiles both sides during them.
const WARMUP = 2;
// With Chromium's `--js-flags=--expose-gc` (bench.mjs starts it so), the heap is
// collected before each timed run, so that no run pays for the garbage of the one before.
const collect = typeof globalThis.gc === 'function' ? globalThis.gc : () => {};
// The main thread's CPU time in seconds, or undefined when the page runs on its own.
const threadTime = typeof globalThis.benchThreadTime === 'function' ? globalThis.benchThreadTime : undefined;
// What reading the CPU clock itself adds to a measurement (ms), subtracted from each (main()).
let readingCost = 0;

/**
 * Runs `work` (sync or async) after a collection; returns its wall-clock and CPU time in ms
 * (the CPU time NaN without the CPU clock).
 */
async function measure(work) {
  collect();
  const cpu0 = threadTime === undefined ? NaN : await threadTime();
  const t0 = performance.now();
  await work();
  const wall = performance.now() - t0;
  const cpu1 = threadTime === undefined ? NaN : await threadTime();
  return { wall, cpu: (cpu1 - cpu0) * 1000 - readingCost };
}

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
  return measure(async () => {
    const t0 = performance.now();
    for (let i = 0; i < frames.length; i++) ws.emit('message', { data: frames[i], timeStamp: t0 + i * 0.001 });
    while (delivered() < N) await new Promise((r) => setTimeout(r, 0));
  });
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
  const time = await measure(() => {
    const t0 = performance.now();
    for (let i = 0; i < frames.length; i++) ws.onmessage({ data: frames[i], timeStamp: t0 + i * 0.001 });
  });
  await client.close();
  return time;
}

// Where the time goes: JSON.parse alone, and the bare Sequencer fed
// pre-parsed frames (the core and its crossings, without the client).
function parseOnly(frames) {
  let n = 0;
  for (let i = 0; i < frames.length; i++) if (JSON.parse(frames[i]).type === 'msg') n++;
  return n;
}

async function sequencerOnly(parsed, onMessage) {
  const seq = new Sequencer();
  const h = seq.subscribe(0, 'bench');
  seq.handleConnected(0);
  while (seq.pollRequest() !== undefined);
  seq.handleSnapshot(0, h, 0, 1, null);
  while (seq.pollEvent() !== undefined);
  const time = await measure(() => {
    for (let i = 0; i < parsed.length; i++) {
      const f = parsed[i];
      seq.handleMessage(1, h, f.seq, f.epoch, f.data);
      for (let e = seq.pollEvent(); e !== undefined; e = seq.pollEvent()) {
        if (e.type === 'message') onMessage(e.data, e.seq);
      }
    }
  });
  seq.free();
  return time;
}

// What a JS-side payload store keyed by seq would add per message (set on
// arrival, get and delete on delivery), against passing the payload through
// the core as a JS value, which costs a table slot inside the WASM call.
async function payloadStoreOnly(parsed) {
  const store = new Map();
  let n = 0;
  const time = await measure(() => {
    for (let i = 0; i < parsed.length; i++) {
      const f = parsed[i];
      store.set(f.seq, f.data);
      const data = store.get(f.seq);
      store.delete(f.seq);
      if (data !== undefined) n++;
    }
  });
  if (n !== parsed.length) throw new Error('store lost payloads');
  return time;
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

/** The `p` quantile of `xs` (0 <= p <= 1), interpolated between the two nearest values. */
function quantile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * p;
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (at - lo);
}

const median = (xs) => quantile(xs, 0.5);
const round3 = (x) => Number(x.toFixed(3));
const nsPerMessage = (ms) => Math.round((ms * 1e6) / N);

/** Median, quartiles and interquartile range of per-round ratios, with the ratios in round order. */
function spread(ratios) {
  const q1 = quantile(ratios, 0.25);
  const q3 = quantile(ratios, 0.75);
  return {
    median: round3(median(ratios)),
    q1: round3(q1),
    q3: round3(q3),
    iqr: round3(q3 - q1),
    rounds: ratios.map(round3),
  };
}

/** The baseline on `frames`, checked: every message once, in order. */
async function baselineRun(frames) {
  const c = checker();
  const time = await measure(() => baseline(frames, c.onMessage));
  if (c.done() !== N) throw new Error(`baseline delivered ${c.done()}`);
  return { time, sum: c.sum() };
}

/** The package's client on `frames`, checked the same way. */
async function packageRun(frames) {
  const c = checker();
  const time = await seqsyncRun(frames, c.onMessage);
  if (c.done() !== N) throw new Error(`seqsync delivered ${c.done()}`);
  return { time, sum: c.sum() };
}

/**
 * The package's client on `frames`, its position written to localStorage before each `onMessage`
 * returns: what `persist` would cost if it saved on every message instead of every
 * `persistIntervalMs`.
 */
async function savingRun(frames) {
  const c = checker();
  const onMessage = (data, seq, epoch) => {
    if (epoch !== 1) throw new Error(`message ${seq} delivered with epoch ${epoch}`);
    c.onMessage(data, seq);
    localStorage.setItem('seqsync:bench#bench', JSON.stringify({ seq, epoch }));
  };
  const time = await seqsyncRun(frames, onMessage);
  if (c.done() !== N) throw new Error(`seqsync delivered ${c.done()} saving each position`);
  localStorage.removeItem('seqsync:bench#bench');
  return time;
}

/**
 * One round of one scenario: each side twice on the same frames, in the order baseline, package,
 * package, baseline (or the mirror image when `packageFirst`). Returns each side's mean time by
 * clock (`wall`, `cpu`), and the payloads' checksum.
 */
async function pair(frames, packageFirst) {
  const runs = packageFirst
    ? [packageRun, baselineRun, baselineRun, packageRun]
    : [baselineRun, packageRun, packageRun, baselineRun];
  const base = { wall: 0, cpu: 0 };
  const ours = { wall: 0, cpu: 0 };
  let sum;
  for (const run of runs) {
    const r = await run(frames);
    if (sum !== undefined && r.sum !== sum) throw new Error('seqsync delivered other payloads than the baseline');
    sum = r.sum;
    const side = run === baselineRun ? base : ours;
    side.wall += r.time.wall / 2;
    side.cpu += r.time.cpu / 2;
  }
  return { base, ours, sum };
}

/** Per-round figures of one scenario: each side's times, by clock. */
function series() {
  return { base: { wall: [], cpu: [] }, ours: { wall: [], cpu: [] } };
}

function record(into, round) {
  for (const clock of ['wall', 'cpu']) {
    into.base[clock].push(round.base[clock]);
    into.ours[clock].push(round.ours[clock]);
  }
}

/** A scenario's summary on one clock: the ratios' spread, and each side's median in ns/msg. */
function summary(s, clock) {
  const ratios = s.ours[clock].map((ours, i) => ours / s.base[clock][i]);
  return {
    ...spread(ratios),
    baselineNsPerMessage: nsPerMessage(median(s.base[clock])),
    seqsyncNsPerMessage: nsPerMessage(median(s.ours[clock])),
  };
}

async function main() {
  await Promise.all([init(), initSequencer()]);
  if (threadTime !== undefined) {
    // Reading the clock costs main-thread time that falls between two readings: measured here as
    // the median of back-to-back pairs.
    const costs = [];
    for (let i = 0; i < 21; i++) costs.push(((await threadTime()) - (await threadTime())) * -1000);
    readingCost = median(costs);
  }
  const frames = makeFrames(true);
  const ordered = makeFrames(false);
  const parsed = frames.map((f) => JSON.parse(f));
  const reordered = series();
  const inOrder = series();
  const websys = series();
  const websysInOrder = series();
  const parse = [];
  const bare = [];
  const store = [];
  // In order, the package as it is against the package saving every position (`savingRun`), and
  // against the baseline.
  const saving = series();
  const savingVsBaseline = series();
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const packageFirst = round % 2 === 1;
    const r = await pair(frames, packageFirst);
    const o = await pair(ordered, packageFirst);

    let w;
    let wo;
    if (glue.WebClient !== undefined) {
      const wc = checker();
      w = await websysRun(frames, wc.onMessage, wc.done);
      if (wc.sum() !== r.sum) throw new Error(`the websys prototype delivered ${wc.done()}`);
      const oc = checker();
      wo = await websysRun(ordered, oc.onMessage, oc.done);
    }

    const p = await measure(() => parseOnly(frames));
    const c = checker();
    const b = await sequencerOnly(parsed, c.onMessage);
    if (c.done() !== N) throw new Error(`Sequencer delivered ${c.done()}`);
    const st = await payloadStoreOnly(parsed);
    const sv = await savingRun(ordered);

    if (round < WARMUP) continue;
    record(saving, { base: o.ours, ours: sv });
    record(savingVsBaseline, { base: o.base, ours: sv });
    record(reordered, r);
    record(inOrder, o);
    if (w !== undefined) {
      record(websys, { base: r.base, ours: w });
      record(websysInOrder, { base: o.base, ours: wo });
    }
    parse.push(p);
    bare.push(b);
    store.push(st);
  }
  const clock = threadTime === undefined ? 'wall' : 'cpu';
  const pieces = (times) => nsPerMessage(median(times.map((t) => t[clock])));
  const result = {
    messages: N,
    frames: frames.length,
    rounds: ROUNDS,
    warmupRounds: WARMUP,
    collectedBetweenRuns: typeof globalThis.gc === 'function',
    // The clock of `reordered`, `inOrder` and the pieces below: 'cpu' (the main thread's CPU
    // time) when bench.mjs runs the page, else 'wall'.
    clock,
    readingCostMs: round3(readingCost),
    // package / baseline, one ratio per round.
    reordered: summary(reordered, clock),
    inOrder: summary(inOrder, clock),
    wall: { reordered: summary(reordered, 'wall'), inOrder: summary(inOrder, 'wall') },
    jsonParseOnlyNsPerMessage: pieces(parse),
    bareSequencerPreParsedNsPerMessage: pieces(bare),
    // In order: the package saving each position to localStorage, against the package (`ratio`
    // of the package saving / the package as it is) and against the baseline.
    savingEveryPosition: summary(saving, clock),
    savingEveryPositionVsBaseline: summary(savingVsBaseline, clock),
    savingEveryPositionWall: summary(saving, 'wall'),
    jsPayloadStoreNsPerMessage: Math.round((median(store.map((t) => t[clock])) * 1e6) / parsed.length),
    userAgent: navigator.userAgent,
  };
  if (websys.base.wall.length > 0) {
    result.websysPrototype = summary(websys, clock);
    result.websysPrototypeInOrder = summary(websysInOrder, clock);
  }
  document.getElementById('out').textContent = JSON.stringify(result, null, 2);
  window.benchResult = result;
}

main().catch((e) => {
  window.benchResult = { error: String(e && e.stack ? e.stack : e) };
});
