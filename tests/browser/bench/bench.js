// Per-message cost of the seqsync client against a hand-rolled pure-JS
// baseline (JSON.parse + a Map reorder buffer), on the same frames, in the
// same page, rounds interleaved. The frames carry reordering (1 in 10 pairs
// swapped) and duplicates (1 in 100), which both sides must undo.

import { Client, init } from '/pkg/seqsync.js';

const N = 100_000;
const ROUNDS = 7;

function makeFrames() {
  const seqs = [];
  for (let s = 1; s <= N; s++) seqs.push(s);
  for (let i = 0; i + 1 < N; i += 10) [seqs[i], seqs[i + 1]] = [seqs[i + 1], seqs[i]];
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
    if (i % 100 === 50) frames.push(text);
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
  }
  send() {}
  close() {}
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
  const t0 = performance.now();
  for (let i = 0; i < frames.length; i++) ws.onmessage({ data: frames[i] });
  const elapsed = performance.now() - t0;
  await client.close();
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
  const frames = makeFrames();
  const base = [];
  const ours = [];
  for (let round = 0; round < ROUNDS; round++) {
    const a = checker();
    const t0 = performance.now();
    baseline(frames, a.onMessage);
    base.push(performance.now() - t0);
    if (a.done() !== N) throw new Error(`baseline delivered ${a.done()}`);

    const b = checker();
    ours.push(await seqsyncRun(frames, b.onMessage));
    if (b.done() !== N || b.sum() !== a.sum()) throw new Error(`seqsync delivered ${b.done()}`);
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
    userAgent: navigator.userAgent,
  };
  document.getElementById('out').textContent = JSON.stringify(result, null, 2);
  window.benchResult = result;
}

main().catch((e) => {
  window.benchResult = { error: String(e && e.stack ? e.stack : e) };
});
