// seqsync for browsers and Node: exact real-time sequenced streams.
//
// This module is the JavaScript half of the package. The sequencing itself
// (ordering, dedupe, gap detection, recovery requests, resets) runs in the
// WASM core; this file owns the WebSocket, the timers and the callbacks, and
// only translates between them and the core.

import initWasm, { Core } from './seqsync_wasm.js';

// Flags returned by every input of the core (see sdk-wasm/src/lib.rs).
const READY_REQUESTS = 1;
const READY_EVENTS = 2;
const READY_TIMEOUT = 4;
const READY_ERROR = 8;

const EVENT_MESSAGE = 1;
const EVENT_SNAPSHOT = 2;
const EVENT_RESET = 3;
const EVENT_SKIPPED = 4;
const EVENT_GAP_DETECTED = 5;
const EVENT_GAP_HEALED = 6;
const EVENT_STALLED = 7;
const EVENT_PHASE = 8;

const RESET_REASONS = ['history_unavailable', 'epoch_changed', 'server_behind'];
const PHASES = ['disconnected', 'subscribing', 'snapshotting', 'live'];
const STALLED_REQUESTS = ['history', 'snapshot', 'subscribe'];

let loading = null;
let memory = null;

/**
 * Loads the WASM core. `Client` calls it by itself; call it (and await it)
 * before `new Sequencer()`. Safe to call many times.
 */
export function init(source) {
  if (loading === null) {
    loading = (async () => {
      let input = source;
      if (input === undefined) {
        const url = new URL('./seqsync_wasm_bg.wasm', import.meta.url);
        if (url.protocol === 'file:') {
          // Node: no fetch for file URLs. The name is indirect so that
          // bundlers for the browser leave this branch alone.
          const fsModule = 'node:fs/promises';
          const { readFile } = await import(/* @vite-ignore */ fsModule);
          input = await readFile(url);
        } else {
          input = url;
        }
      }
      const exports = await initWasm({ module_or_path: input });
      memory = exports.memory;
    })();
    loading.catch(() => {
      loading = null;
    });
  }
  return loading;
}

/** The error type of this package: `code` says what was wrong. */
export class SeqsyncError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SeqsyncError';
    this.code = code;
  }
}

function requireCore() {
  if (memory === null) {
    throw new SeqsyncError('not_initialized', 'call `await init()` before creating a Sequencer');
  }
}

function newCore(o = {}) {
  return new Core(
    o.window,
    o.gapTimeoutMs,
    o.requestTimeoutMs,
    o.maxBackoffMs,
    o.stallAfterAttempts,
    o.maxFetch,
    o.maxStreams,
  );
}

function statsObject(raw) {
  if (raw === undefined) return undefined;
  return {
    delivered: raw[0],
    duplicates: raw[1],
    dropped: raw[2],
    skipped: raw[3],
    gaps: raw[4],
    gapsHealed: raw[5],
    resyncs: raw[6],
    resets: raw[7],
    buffered: raw[8],
    lastSeq: raw[9],
    head: raw[10],
    lag: raw[11],
    epoch: raw[12] < 0 ? undefined : raw[12],
    phase: PHASES[raw[13]],
  };
}

function epochOrNone(value) {
  return value === undefined || value === null ? -1 : value;
}

/**
 * Feeds one parsed server frame to the core. Returns the core's flags, or -1
 * when the frame is not for the core (ack, error, an unknown type, or a
 * stream that is not subscribed).
 */
function feed(core, now, f, handles) {
  let h;
  switch (f.type) {
    case 'msg':
      h = handles.get(f.stream);
      if (h === undefined) return -1;
      if (f.data === undefined) return READY_ERROR;
      return core.message(now, h, f.seq, epochOrNone(f.epoch), f.data);
    case 'snapshot':
      h = handles.get(f.stream);
      if (h === undefined) return -1;
      return core.snapshot(now, h, f.seq, f.epoch, f.state);
    case 'subscribed':
      h = handles.get(f.stream);
      if (h === undefined) return -1;
      return core.subscribed(now, h, f.epoch, f.head);
    case 'history': {
      h = handles.get(f.stream);
      if (h === undefined) return -1;
      const messages = f.messages;
      if (!Array.isArray(messages)) return READY_ERROR;
      const n = messages.length;
      const seqs = new Float64Array(n);
      const data = new Array(n);
      for (let i = 0; i < n; i++) {
        const m = messages[i];
        if (m === null || typeof m !== 'object') return READY_ERROR;
        seqs[i] = m.seq;
        data[i] = m.data;
      }
      return core.history(now, h, f.from, f.to, epochOrNone(f.epoch), seqs, data);
    }
    case 'head': {
      const heads = f.heads;
      if (heads === null || typeof heads !== 'object') return READY_ERROR;
      let flags = 0;
      for (const name of Object.keys(heads)) {
        h = handles.get(name);
        const entry = heads[name];
        if (h === undefined || entry === null || typeof entry !== 'object') continue;
        flags |= core.head(now, h, entry.seq, epochOrNone(entry.epoch));
      }
      return flags;
    }
    case 'reset':
      h = handles.get(f.stream);
      if (h === undefined) return -1;
      return core.reset(now, h, typeof f.reason === 'string' ? f.reason : '', epochOrNone(f.earliest));
    default:
      return -1;
  }
}

function reportHandlerError(error) {
  if (typeof globalThis.reportError === 'function') {
    globalThis.reportError(error);
  } else {
    setTimeout(() => {
      throw error;
    }, 0);
  }
}

function now() {
  return performance.now();
}

// ---- Sequencer ------------------------------------------------------------------

/**
 * The bare sequencer, for apps with their own transport. Every input takes
 * the current time in milliseconds (any monotonic origin, e.g.
 * `performance.now()`); after each input drain `pollRequest()`,
 * `pollTimeout()` and `pollEvent()` until they return `undefined`.
 */
export class Sequencer {
  constructor(options = {}) {
    requireCore();
    this._core = newCore(options);
    this._ptr = this._core.scratchPtr();
    this._view = new Float64Array(memory.buffer, this._ptr, 9);
    this._handles = new Map();
    this._deadline = undefined;
  }

  _scratch() {
    if (this._view.length === 0) this._view = new Float64Array(memory.buffer, this._ptr, 9);
    return this._view;
  }

  _check(flags) {
    if (flags & READY_TIMEOUT) {
      const d = this._scratch()[7];
      this._deadline = d < 0 ? undefined : d;
    }
    if (flags & READY_ERROR) throw new SeqsyncError('invalid_input', this._core.lastError());
  }

  /** Starts following a stream; returns its handle (a number). */
  subscribe(now, stream, options = {}) {
    let handle;
    try {
      handle = this._core.subscribe(now, stream, options.since, options.epoch, options.mode === 'latest');
    } catch (e) {
      throw new SeqsyncError('invalid_subscription', e instanceof Error ? e.message : String(e));
    }
    this._handles.set(stream, handle);
    this._check(this._core.pending());
    return handle;
  }

  /** Stops following a stream; its pending events are dropped. */
  unsubscribe(now, handle) {
    const name = this._core.streamName(handle);
    if (name !== undefined) this._handles.delete(name);
    this._check(this._core.unsubscribe(now, handle));
  }

  handleConnected(now) {
    this._check(this._core.connected(now));
  }

  handleDisconnected(now) {
    this._check(this._core.disconnected(now));
  }

  handleMessage(now, handle, seq, epoch, data) {
    this._check(this._core.message(now, handle, seq, epochOrNone(epoch), data));
  }

  handleSnapshot(now, handle, seq, epoch, state) {
    this._check(this._core.snapshot(now, handle, seq, epoch, state));
  }

  handleSubscribed(now, handle, epoch, head) {
    this._check(this._core.subscribed(now, handle, epoch, head));
  }

  handleHistory(now, handle, from, to, epoch, messages) {
    const seqs = messages.map((m) => m.seq);
    const data = messages.map((m) => m.data);
    this._check(this._core.history(now, handle, from, to, epochOrNone(epoch), seqs, data));
  }

  handleHead(now, handle, head, epoch) {
    this._check(this._core.head(now, handle, head, epochOrNone(epoch)));
  }

  handleReset(now, handle, reason, earliest) {
    this._check(this._core.reset(now, handle, reason, epochOrNone(earliest)));
  }

  handleTimeout(now) {
    this._check(this._core.timeout(now));
  }

  /**
   * Feeds a parsed protocol v1 server frame. Returns the frame back when it
   * is not the sequencer's (`ack`, `error`, or a stream not subscribed).
   */
  handleFrame(now, frame) {
    const flags = feed(this._core, now, frame, this._handles);
    if (flags === -1) return frame;
    this._check(flags);
    return undefined;
  }

  /** The next frame to send, as a plain object (`JSON.stringify` it). */
  pollRequest() {
    const text = this._core.pollRequest();
    return text === undefined ? undefined : JSON.parse(text);
  }

  /** When to call `handleTimeout` next (same clock as the inputs). */
  pollTimeout() {
    return this._deadline;
  }

  /** The next event, as a plain object. */
  pollEvent() {
    const payload = this._core.pollEvent();
    const s = this._scratch();
    const stream = s[2];
    switch (s[0]) {
      case EVENT_MESSAGE:
        return { type: 'message', stream, seq: s[3], data: payload };
      case EVENT_SNAPSHOT:
        return { type: 'snapshot', stream, seq: s[3], epoch: s[4], state: payload };
      case EVENT_RESET:
        return s[4] < 0
          ? { type: 'reset', stream, reason: RESET_REASONS[s[3]] }
          : { type: 'reset', stream, reason: RESET_REASONS[s[3]], earliest: s[4] };
      case EVENT_SKIPPED:
        return { type: 'skipped', stream, from: s[3], to: s[4] };
      case EVENT_GAP_DETECTED:
        return { type: 'gapDetected', stream, from: s[3], to: s[4] };
      case EVENT_GAP_HEALED:
        return { type: 'gapHealed', stream, through: s[3] };
      case EVENT_STALLED:
        return s[3] === 0
          ? { type: 'stalled', stream, request: 'history', from: s[4], to: s[5], attempts: s[6] }
          : { type: 'stalled', stream, request: STALLED_REQUESTS[s[3]], attempts: s[6] };
      case EVENT_PHASE:
        return { type: 'phase', stream, phase: PHASES[s[3]] };
      default:
        return undefined;
    }
  }

  /** Counters and position of a stream. */
  stats(handle) {
    return statsObject(this._core.stats(handle));
  }

  /** The handle of a subscribed stream. */
  streamHandle(stream) {
    return this._handles.get(stream);
  }

  /** The name of a subscribed stream. */
  streamName(handle) {
    return this._core.streamName(handle);
  }

  /** Frees the WASM memory now instead of at garbage collection. */
  free() {
    this._core.free();
  }
}

// ---- Client ---------------------------------------------------------------------

const CLIENT_DEFAULTS = {
  reconnectInitialMs: 100,
  reconnectMaxMs: 10_000,
  heartbeatTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
  initialConnectTimeoutMs: 10_000,
  maxFrameBytes: 1 << 20,
  publishTimeoutMs: 30_000,
  maxPendingPublishes: 10_000,
};

const NAME_CONTROL = /\p{Cc}/u;

function checkStreamName(name) {
  if (typeof name !== 'string' || name.length === 0 || NAME_CONTROL.test(name)) {
    throw new SeqsyncError('invalid_stream', `invalid stream name ${JSON.stringify(String(name))}`);
  }
  if (name.length > 64 && new TextEncoder().encode(name).length > 256) {
    throw new SeqsyncError('invalid_stream', 'stream names are at most 256 bytes');
  }
}

function randomId() {
  const c = globalThis.crypto;
  if (c !== undefined && typeof c.getRandomValues === 'function') {
    const b = c.getRandomValues(new Uint32Array(2));
    return b[0].toString(16).padStart(8, '0') + b[1].toString(16).padStart(8, '0');
  }
  return Math.floor(Math.random() * 2 ** 52).toString(16);
}

/** One subscribed stream, returned by `Client.subscribe`. */
class Subscription {
  constructor(client, stream, handlers) {
    this._client = client;
    this._handle = -1;
    this._active = true;
    this.stream = stream;
    this._onMessage = handlers.onMessage;
    this._onSnapshot = handlers.onSnapshot;
    this._onReset = handlers.onReset;
    this._onGap = handlers.onGap;
    this._onState = handlers.onState;
    this._options = handlers;
  }

  /** Counters and position of the stream (undefined before the core loads). */
  stats() {
    return this._client._streamStats(this);
  }

  /** Stops the stream. No callback runs after this returns. */
  unsubscribe() {
    this._client._unsubscribe(this);
  }
}

/**
 * A connection to a seqsync server that stays up by itself: reconnects with
 * exponential backoff and full jitter, resumes every stream after its last
 * delivered seq, and fetches whatever was missed.
 */
export class Client {
  constructor(url, options = {}) {
    if (typeof url !== 'string') throw new TypeError('Client: url must be a string');
    this._options = { ...CLIENT_DEFAULTS, ...options };
    this._endpoints = [url, ...(options.endpoints ?? [])];
    this._endpointIndex = 0;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') {
      throw new SeqsyncError(
        'no_websocket',
        'no WebSocket in this environment: pass options.WebSocket (Node 20: run with --experimental-websocket)',
      );
    }
    this._onConnection = options.onConnection;
    this._storage = options.persist ? (options.storage ?? globalThis.localStorage) : undefined;
    this._persistPrefix = typeof options.persist === 'string' ? options.persist : 'seqsync:';
    this._core = null;
    this._view = null;
    this._ptr = 0;
    this._subs = new Map(); // stream name -> Subscription
    this._byHandle = new Map(); // handle -> Subscription
    this._handles = new Map(); // stream name -> handle
    this._ws = null;
    this._open = false;
    this._closed = false;
    this._closing = null;
    this._state = { state: 'connecting', endpoint: url, attempt: 0 };
    this._attempt = 0;
    this._timers = { core: 0, reconnect: 0, connect: 0, heartbeat: 0, persist: 0 };
    this._timerAt = -1;
    this._clock = 0;
    this._lastReceived = 0;
    this._dispatching = false;
    this._reentered = false;
    this._clientId = randomId();
    this._publishCounter = 0;
    this._pending = new Map(); // id -> { frame, resolve, reject, deadline }
    this._publishTimer = 0;
    this._stats = {
      connects: 0,
      disconnects: 0,
      frames: 0,
      bytes: 0,
      badFrames: 0,
      historyFrames: 0,
      historyBytes: 0,
      historyMessages: 0,
      published: 0,
    };
    this._onPageHide = () => this._persistNow();
    if (this._storage !== undefined && typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('pagehide', this._onPageHide);
    }
    let resolveReady;
    let rejectReady;
    /** Resolves on the first connection; rejects when `initialConnectTimeoutMs` passes first. */
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    this.ready.catch(() => {});
    this._resolveReady = resolveReady;
    this._rejectReady = rejectReady;
    this._started = now();
    init(options.wasm).then(
      () => this._start(),
      (error) => {
        this._rejectReady(error);
        this._finish();
      },
    );
  }

  /** The connection's state: `{ state: 'connecting' | 'connected' | 'disconnected' | 'closed', ... }`. */
  get connectionState() {
    return this._state;
  }

  /** Client-wide counters. */
  stats() {
    return { ...this._stats, pendingPublishes: this._pending.size };
  }

  /**
   * Follows a stream: first a snapshot (or, with `since`, everything after
   * it), then every message once, in order.
   */
  subscribe(stream, handlers = {}) {
    if (this._closed || this._closing !== null) throw new SeqsyncError('closed', 'the client is closed');
    checkStreamName(stream);
    if (this._subs.has(stream)) {
      throw new SeqsyncError('already_subscribed', `stream ${stream} is already subscribed`);
    }
    const sub = new Subscription(this, stream, handlers);
    this._subs.set(stream, sub);
    if (this._core !== null) this._attach(sub);
    return sub;
  }

  /** Appends `data` (any JSON value) to `stream`; resolves to the seq the server assigned. */
  publish(stream, data) {
    return new Promise((resolve, reject) => {
      if (this._closed || this._closing !== null) {
        reject(new SeqsyncError('closed', 'the client is closed'));
        return;
      }
      if (this._pending.size >= this._options.maxPendingPublishes) {
        reject(
          new SeqsyncError('too_many_pending', `too many publishes in flight (limit ${this._options.maxPendingPublishes})`),
        );
        return;
      }
      try {
        checkStreamName(stream);
      } catch (e) {
        reject(e);
        return;
      }
      const id = `${this._clientId}-${++this._publishCounter}`;
      let frame;
      try {
        frame = JSON.stringify({ type: 'publish', stream, id, data });
      } catch (e) {
        reject(new SeqsyncError('invalid_data', `data is not JSON: ${e instanceof Error ? e.message : String(e)}`));
        return;
      }
      const deadline = now() + this._options.publishTimeoutMs;
      this._pending.set(id, { frame, resolve, reject, deadline });
      if (this._open) this._ws.send(frame);
      this._armPublishTimer();
    });
  }

  /**
   * Closes cleanly: waits for publishes in flight (up to their timeout),
   * then closes the socket. No callback runs after the promise resolves.
   */
  close() {
    if (this._closing !== null) return this._closing;
    this._closing = new Promise((resolve) => {
      this._closeResolve = resolve;
    });
    this._maybeFinishClose();
    return this._closing;
  }

  // ---- internals ------------------------------------------------------------------

  _start() {
    if (this._closed) return;
    if (this._closing !== null && this._pending.size === 0) {
      this._finish();
      return;
    }
    this._core = newCore(this._options.core ?? {});
    this._ptr = this._core.scratchPtr();
    this._view = new Float64Array(memory.buffer, this._ptr, 9);
    for (const sub of this._subs.values()) this._attach(sub);
    this._connect();
  }

  _scratch() {
    if (this._view.length === 0) this._view = new Float64Array(memory.buffer, this._ptr, 9);
    return this._view;
  }

  /** The time for the core: `performance.now()`, never earlier than a time given before. */
  _now() {
    const t = performance.now();
    if (t > this._clock) this._clock = t;
    return this._clock;
  }

  _attach(sub) {
    let since = sub._options.since;
    let epoch = sub._options.epoch;
    const saved = this._loadPosition(sub.stream);
    if (since === undefined && saved !== undefined) {
      since = saved.seq;
      epoch = saved.epoch;
    }
    const t = this._now();
    let handle;
    try {
      handle = this._core.subscribe(t, sub.stream, since, epoch, sub._options.mode === 'latest');
    } catch (e) {
      this._subs.delete(sub.stream);
      sub._active = false;
      reportHandlerError(new SeqsyncError('invalid_subscription', e instanceof Error ? e.message : String(e)));
      return;
    }
    sub._handle = handle;
    this._handles.set(sub.stream, handle);
    this._byHandle.set(handle, sub);
    this._drain(this._core.pending());
  }

  _unsubscribe(sub) {
    if (!sub._active) return;
    sub._active = false;
    if (this._subs.get(sub.stream) === sub) this._subs.delete(sub.stream);
    if (sub._handle < 0 || this._core === null) return;
    this._persistOne(sub);
    this._handles.delete(sub.stream);
    this._byHandle.delete(sub._handle);
    this._drain(this._core.unsubscribe(this._now(), sub._handle));
  }

  _streamStats(sub) {
    if (this._core === null || sub._handle < 0 || !sub._active) return undefined;
    return statsObject(this._core.stats(sub._handle));
  }

  _setState(state) {
    this._state = state;
    if (this._onConnection !== undefined) {
      try {
        this._onConnection(state);
      } catch (e) {
        reportHandlerError(e);
      }
    }
  }

  _url(endpoint) {
    const token = this._options.token;
    if (token === undefined) return endpoint;
    const sep = endpoint.includes('?') ? '&' : '?';
    return `${endpoint}${sep}token=${encodeURIComponent(token)}`;
  }

  _connect() {
    if (this._closed) return;
    const endpoint = this._endpoints[this._endpointIndex];
    this._endpointIndex = (this._endpointIndex + 1) % this._endpoints.length;
    this._setState({ state: 'connecting', endpoint, attempt: this._attempt });
    let ws;
    try {
      ws = new this._WebSocket(this._url(endpoint));
    } catch (e) {
      this._lost(null, e instanceof Error ? e.message : String(e));
      return;
    }
    this._ws = ws;
    this._timers.connect = setTimeout(() => this._lost(ws, 'connect timed out'), this._options.connectTimeoutMs);
    ws.onopen = () => this._opened(ws, endpoint);
    ws.onmessage = (event) => this._frame(event.data, event.timeStamp);
    ws.onclose = (event) => this._lost(ws, `closed (${event.code})`);
    ws.onerror = () => this._lost(ws, 'socket error');
  }

  _opened(ws, endpoint) {
    if (ws !== this._ws) return;
    clearTimeout(this._timers.connect);
    this._open = true;
    this._attempt = 0;
    this._stats.connects++;
    this._lastReceived = now();
    this._armHeartbeat();
    this._resolveReady();
    this._setState({ state: 'connected', endpoint });
    this._drain(this._core.connected(this._now()));
    for (const p of this._pending.values()) ws.send(p.frame);
  }

  _lost(ws, reason) {
    if (ws !== this._ws || this._closed) return;
    const wasOpen = this._open;
    this._ws = null;
    this._open = false;
    clearTimeout(this._timers.connect);
    clearTimeout(this._timers.heartbeat);
    if (ws !== null) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // Already closed.
      }
    }
    if (wasOpen) {
      this._stats.disconnects++;
      this._drain(this._core.disconnected(this._now()));
    }
    if (this._closing !== null) {
      this._finish();
      return;
    }
    if (!wasOpen && now() - this._started >= this._options.initialConnectTimeoutMs && this._stats.connects === 0) {
      this._rejectReady(new SeqsyncError('connect_failed', `could not connect: ${reason}`));
      this._finish();
      return;
    }
    this._setState({ state: 'disconnected', reason });
    const bound = Math.min(this._options.reconnectMaxMs, this._options.reconnectInitialMs * 2 ** Math.min(this._attempt, 32));
    this._attempt++;
    const delay = Math.random() * bound;
    this._timers.reconnect = setTimeout(() => this._connect(), delay);
  }

  _armHeartbeat() {
    const limit = this._options.heartbeatTimeoutMs;
    const check = () => {
      const ws = this._ws;
      if (!this._open) return;
      const idle = now() - this._lastReceived;
      if (idle >= limit) {
        this._lost(ws, 'no frame within the heartbeat timeout');
      } else {
        this._timers.heartbeat = setTimeout(check, limit - idle);
      }
    };
    this._timers.heartbeat = setTimeout(check, limit);
  }

  /**
   * One frame. `stamp` is the event's `timeStamp`: the same clock as
   * `performance.now()`, read when the frame arrived, and free, where
   * `performance.now()` costs several hundred nanoseconds in browsers.
   */
  _frame(text, stamp) {
    const stats = this._stats;
    stats.frames++;
    if (typeof text !== 'string') {
      stats.badFrames++;
      return;
    }
    stats.bytes += text.length;
    if (text.length > this._options.maxFrameBytes) {
      stats.badFrames++;
      return;
    }
    // Never earlier than a time already given to the core.
    let t;
    if (typeof stamp !== 'number') t = this._now();
    else if (stamp > this._clock) t = this._clock = stamp;
    else t = this._clock;
    this._lastReceived = t;
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      stats.badFrames++;
      return;
    }
    if (f === null || typeof f !== 'object') {
      stats.badFrames++;
      return;
    }
    if (f.type === 'msg') {
      // The hot path: one crossing delivers the message in the common case.
      const h = this._handles.get(f.stream);
      if (h !== undefined && f.data !== undefined) {
        const payload = this._core.deliver(t, h, f.seq, epochOrNone(f.epoch), f.data);
        let s = this._view;
        if (s.length === 0) s = this._scratch();
        const flags = s[8];
        if (flags & READY_ERROR) stats.badFrames++;
        if (flags & (READY_REQUESTS | READY_TIMEOUT)) this._drain(flags & ~READY_EVENTS);
        if (s[0] !== 0) this._dispatch(payload, true);
        return;
      }
    }
    if (f.type === 'history') {
      stats.historyFrames++;
      stats.historyBytes += text.length;
      if (Array.isArray(f.messages)) stats.historyMessages += f.messages.length;
    }
    const flags = feed(this._core, t, f, this._handles);
    if (flags === -1) {
      this._other(f);
      return;
    }
    if (flags & READY_ERROR) stats.badFrames++;
    this._drain(flags);
  }

  _other(f) {
    if (f.type === 'ack') {
      const p = this._pending.get(f.id);
      if (p !== undefined) {
        this._pending.delete(f.id);
        this._stats.published++;
        p.resolve(f.seq);
        this._maybeFinishClose();
      }
    } else if (f.type === 'error') {
      const p = f.ref === undefined ? undefined : this._pending.get(f.ref);
      if (p !== undefined) {
        this._pending.delete(f.ref);
        p.reject(new SeqsyncError(String(f.code), String(f.message)));
        this._maybeFinishClose();
      }
    }
  }

  _drain(flags) {
    const core = this._core;
    if (flags & READY_REQUESTS) {
      let text;
      while ((text = core.pollRequest()) !== undefined) {
        // While disconnected the requests are void: the core asks again on connect.
        if (this._open) this._ws.send(text);
      }
    }
    if (flags & READY_TIMEOUT) this._armCoreTimer();
    if (flags & READY_EVENTS) this._dispatch();
  }

  // Timers are dear in browsers (a few microseconds to set and clear), and
  // holes that heal within the gap timeout would otherwise cost one of each.
  // So an armed timer is kept when the deadline goes away or moves later:
  // it fires, hands the core the time (nothing is due, nothing happens), and
  // is armed again for the deadline then current.
  _armCoreTimer() {
    const deadline = this._scratch()[7];
    if (deadline < 0) return;
    if (this._timerAt >= 0 && this._timerAt <= deadline) return;
    clearTimeout(this._timers.core);
    this._timerAt = deadline;
    this._timers.core = setTimeout(() => {
      this._timerAt = -1;
      if (this._core !== null && !this._closed) {
        this._drain(this._core.timeout(this._now()) | READY_TIMEOUT);
      }
    }, Math.max(0, Math.ceil(deadline - now())));
  }

  /** Hands the core's events to their subscriptions; `polled`: the first is in the scratch area already. */
  _dispatch(first, polled) {
    if (this._dispatching) {
      this._reentered = true;
      return;
    }
    this._dispatching = true;
    const core = this._core;
    let dirty = false;
    try {
      for (let payload = polled === true ? first : core.pollEvent(); ; payload = core.pollEvent()) {
        let s = this._view;
        if (s.length === 0) s = this._scratch();
        const kind = s[0];
        if (kind === 0) break;
        const more = s[1];
        const sub = this._byHandle.get(s[2]);
        if (sub !== undefined) {
          if (kind === EVENT_MESSAGE) {
            dirty = true;
            if (sub._onMessage !== undefined) {
              try {
                sub._onMessage(payload, s[3]);
              } catch (e) {
                reportHandlerError(e);
              }
            }
          } else {
            if (kind === EVENT_SNAPSHOT) dirty = true;
            this._event(sub, kind, payload, s);
          }
        }
        if (more === 0 && !this._reentered) break;
        this._reentered = false;
      }
    } finally {
      this._dispatching = false;
    }
    if (dirty && this._storage !== undefined) this._schedulePersist();
  }

  _event(sub, kind, payload, s) {
    let handler;
    let args;
    switch (kind) {
      case EVENT_SKIPPED:
      case EVENT_GAP_DETECTED:
      case EVENT_GAP_HEALED:
      case EVENT_STALLED:
        if (sub._onGap === undefined) return;
        break;
      default:
        break;
    }
    switch (kind) {
      case EVENT_SNAPSHOT:
        handler = sub._onSnapshot;
        args = [payload, s[3], s[4]];
        break;
      case EVENT_RESET:
        handler = sub._onReset;
        args = [RESET_REASONS[s[3]], s[4] < 0 ? undefined : s[4]];
        break;
      case EVENT_SKIPPED:
        handler = sub._onGap;
        args = [{ type: 'skipped', from: s[3], to: s[4] }];
        break;
      case EVENT_GAP_DETECTED:
        handler = sub._onGap;
        args = [{ type: 'detected', from: s[3], to: s[4] }];
        break;
      case EVENT_GAP_HEALED:
        handler = sub._onGap;
        args = [{ type: 'healed', through: s[3] }];
        break;
      case EVENT_STALLED:
        handler = sub._onGap;
        args = [
          s[3] === 0
            ? { type: 'stalled', request: 'history', from: s[4], to: s[5], attempts: s[6] }
            : { type: 'stalled', request: STALLED_REQUESTS[s[3]], attempts: s[6] },
        ];
        break;
      case EVENT_PHASE:
        handler = sub._onState;
        args = [PHASES[s[3]]];
        break;
      default:
        return;
    }
    if (handler === undefined) return;
    try {
      handler(...args);
    } catch (e) {
      reportHandlerError(e);
    }
  }

  _armPublishTimer() {
    if (this._publishTimer !== 0 || this._pending.size === 0) return;
    let first = Infinity;
    for (const p of this._pending.values()) first = Math.min(first, p.deadline);
    this._publishTimer = setTimeout(() => {
      this._publishTimer = 0;
      const t = now();
      for (const [id, p] of this._pending) {
        if (p.deadline <= t) {
          this._pending.delete(id);
          p.reject(new SeqsyncError('publish_timeout', `publish ${id} was not acknowledged in time`));
        }
      }
      this._armPublishTimer();
      this._maybeFinishClose();
    }, Math.max(0, first - now()));
  }

  _maybeFinishClose() {
    if (this._closing === null || this._closed || this._pending.size > 0) return;
    this._finish();
  }

  _finish() {
    if (this._closed) return;
    this._persistNow();
    this._closed = true;
    for (const t of Object.values(this._timers)) clearTimeout(t);
    clearTimeout(this._publishTimer);
    const ws = this._ws;
    this._ws = null;
    this._open = false;
    if (ws !== null) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        // Already closed.
      }
    }
    for (const p of this._pending.values()) p.reject(new SeqsyncError('closed', 'the client is closed'));
    this._pending.clear();
    for (const sub of this._subs.values()) sub._active = false;
    this._subs.clear();
    this._byHandle.clear();
    this._handles.clear();
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('pagehide', this._onPageHide);
    }
    if (this._core !== null) {
      this._core.free();
      this._core = null;
    }
    this._rejectReady(new SeqsyncError('closed', 'the client is closed'));
    this._setState({ state: 'closed' });
    if (this._closeResolve !== undefined) this._closeResolve();
  }

  // ---- resume across page loads -------------------------------------------------

  _key(stream) {
    return `${this._persistPrefix}${this._endpoints[0]}#${stream}`;
  }

  _loadPosition(stream) {
    if (this._storage === undefined) return undefined;
    try {
      const text = this._storage.getItem(this._key(stream));
      if (text === null) return undefined;
      const saved = JSON.parse(text);
      if (Number.isSafeInteger(saved.seq) && saved.seq >= 0 && Number.isSafeInteger(saved.epoch)) return saved;
    } catch {
      // Unreadable entries are ignored: the stream starts from a snapshot.
    }
    return undefined;
  }

  _schedulePersist() {
    if (this._timers.persist !== 0) return;
    this._timers.persist = setTimeout(() => {
      this._timers.persist = 0;
      this._persistNow();
    }, 250);
  }

  _persistNow() {
    if (this._storage === undefined || this._core === null) return;
    for (const sub of this._subs.values()) this._persistOne(sub);
  }

  _persistOne(sub) {
    if (this._storage === undefined || this._core === null || sub._handle < 0) return;
    const stats = this._core.stats(sub._handle);
    if (stats === undefined || stats[12] < 0) return;
    try {
      this._storage.setItem(this._key(sub.stream), JSON.stringify({ seq: stats[9], epoch: stats[12] }));
    } catch {
      // Storage full or forbidden: resuming falls back to a snapshot.
    }
  }
}
