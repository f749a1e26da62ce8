// seqsync/sequencer: the bare sans-IO sequencer, for applications that keep their own transport
// (its API is documented in sequencer.d.ts). Its WASM build holds the core's sequencer alone, so
// that pages with a `Client` do not download it, and pages with only a `Sequencer` download
// neither the client's module nor its build.

import initWasm, { Core } from './seqsync_sequencer.js';
import {
  O as CORE_OPTIONS, J as REJECTED, L as SLOTS, SeqsyncError, N as checkName, F as eventFields,
  I as instantiate, S as scratch, T as statsObject,
} from './shared.js';

export { SeqsyncError };

// The core's calling convention (sdk-wasm/src/lib.rs): the flag of a rejected input, and the
// kind of a message event.
const READY_ERROR = 8;
const EVENT_MESSAGE = 1;
// By event kind: the `type` of an event.
const EVENTS = [, 'message', 'snapshot', 'reset', 'skipped', 'gapDetected', 'gapHealed', 'stalled', 'phase'];

let loading = null;
let memory = null;

/** Loads this entry's WASM build (once). */
export function init(source) {
  loading ??= (async () => {
    memory = await instantiate(initWasm, source ?? new URL('./seqsync_sequencer_bg.wasm', import.meta.url));
  })().catch((error) => {
    loading = null; // a later call tries again
    throw error;
  });
  return loading;
}

export class Sequencer {
  constructor(options = {}) {
    if (memory === null) throw new SeqsyncError('not_initialized', 'call `await init()` before creating a Sequencer');
    this._core = new Core(...CORE_OPTIONS.map((name) => options[name]));
    this._mem = memory;
    this._p = this._core.scratchPtr();
    this._v = new Float64Array(memory.buffer, this._p, SLOTS);
    this._handles = new Map();
  }

  _check(flags) {
    if (flags & REJECTED) throw new SeqsyncError('invalid_input', 'a malformed frame');
    if (flags & READY_ERROR) throw new SeqsyncError('invalid_input', this._core.lastError());
  }

  subscribe(now, stream, options = {}) {
    // The codes `Client.subscribe` uses for the same refusals.
    checkName(stream);
    if (this._handles.has(stream)) throw new SeqsyncError('already_subscribed', `stream ${stream} is already subscribed`);
    try {
      const handle = this._core.subscribe(now, stream, options.since, options.epoch, options.mode === 'latest');
      this._handles.set(stream, handle);
      return handle;
    } catch (e) {
      throw new SeqsyncError(/too many streams/.test(e.message) ? 'too_many_streams' : 'invalid_subscription', e.message);
    }
  }

  unsubscribe(now, handle) {
    this._handles.delete(this._core.streamName(handle));
    this._check(this._core.unsubscribe(now, handle));
  }

  handleConnected(now) { this._check(this._core.connected(now)); }
  handleDisconnected(now) { this._check(this._core.disconnected(now)); }
  handleMessage(now, h, seq, epoch, data) { this._check(this._core.message(now, h, seq, epochOrNone(epoch), data)); }
  handleSnapshot(now, h, seq, epoch, state) { this._check(this._core.snapshot(now, h, seq, epoch, state)); }
  handleSubscribed(now, h, epoch, head) { this._check(this._core.subscribed(now, h, epoch, head)); }
  handleHead(now, h, head, epoch) { this._check(this._core.head(now, h, head, epochOrNone(epoch))); }
  handleReset(now, h, reason, earliest) { this._check(this._core.reset(now, h, reason, epochOrNone(earliest))); }
  handleTimeout(now) { this._check(this._core.timeout(now)); }
  handleHistory(now, h, from, to, epoch, messages) {
    const seqs = messages.map((m) => m.seq);
    this._check(this._core.history(now, h, from, to, epochOrNone(epoch), seqs, messages.map((m) => m.data)));
  }

  /** Returns the frame back when it is not the sequencer's (`ack`, `error`, a stream not subscribed). */
  handleFrame(now, frame) {
    const flags = feed(this._core, now, frame, (name) => this._handles.get(name));
    if (flags !== -1) this._check(flags);
    return flags === -1 ? frame : undefined;
  }

  pollRequest() {
    const text = this._core.pollRequest();
    return text === undefined ? undefined : JSON.parse(text);
  }
  pollTimeout() {
    const deadline = scratch(this)[7]; // kept current by the core
    return deadline < 0 ? undefined : deadline;
  }
  pollEvent() {
    const payload = this._core.pollEvent();
    const s = scratch(this);
    if (s[0] === EVENT_MESSAGE) return { type: 'message', stream: s[2], seq: s[3], epoch: s[4] < 0 ? undefined : s[4], data: payload };
    return s[0] === 0 ? undefined : { type: EVENTS[s[0]], stream: s[2], ...eventFields(s[0], s, payload) };
  }

  stats(handle) { return statsObject(this._core.stats(handle)); }
  streamHandle(stream) { return this._handles.get(stream); }
  streamName(handle) { return this._core.streamName(handle); }
  free() { this._core.free(); }
}

const epochOrNone = (value) => (value === undefined || value === null ? -1 : value);
const stringOrNone = (value) => (typeof value === 'string' ? value : undefined);

// Feeds a parsed server frame to the bare sequencer (`Core`), whose inputs are
// one export per frame type: this class is the core without a session, for an
// application that reads its own transport. Returns the flags, or -1 for a
// frame not for a subscribed stream.
function feed(core, now, f, handleOf) {
  const h = f.type === 'head' ? 0 : handleOf(f.stream);
  if (h === undefined) return -1;
  const ref = stringOrNone(f.ref);
  switch (f.type) {
    case 'msg': return f.data === undefined ? REJECTED : core.message(now, h, f.seq, epochOrNone(f.epoch), f.data);
    case 'snapshot': return core.snapshot(now, h, f.seq, f.epoch, f.state, ref);
    case 'subscribed': return core.subscribed(now, h, f.epoch, f.head, ref);
    case 'reset': return core.reset(now, h, String(f.reason), epochOrNone(f.earliest), ref);
    case 'history': {
      const m = f.messages;
      if (!Array.isArray(m) || m.some((x) => x === null || typeof x !== 'object')) return REJECTED;
      const seqs = Float64Array.from(m, (x) => x.seq);
      return core.history(now, h, f.from, f.to, epochOrNone(f.epoch), seqs, m.map((x) => x.data), ref);
    }
    case 'head': {
      if (f.heads === null || typeof f.heads !== 'object') return REJECTED;
      let flags = 0;
      for (const [name, entry] of Object.entries(f.heads)) {
        const stream = handleOf(name);
        if (stream === undefined || entry === null || typeof entry !== 'object') continue;
        flags |= core.head(now, stream, entry.seq, epochOrNone(entry.epoch));
      }
      return flags;
    }
    default: return -1;
  }
}
