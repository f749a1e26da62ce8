// seqsync for browsers and Node: the JavaScript half of the package (its API
// is documented in seqsync.d.ts). Every decision (the order of messages,
// recovery, when and where to reconnect, when a peer is dead, publish ids,
// retries and timeouts, resume positions) is made by the WASM core. This file
// owns the WebSocket, one timer, JSON.parse, the callbacks and the storage.
// A client of a server that does not speak the protocol (options `adapter` or
// `description`) loads ./foreign.js and its own WASM build instead. The bare
// `Sequencer` is the package's other entry, sequencer.js, over its own build.

import initWasm, { Session } from './seqsync_wasm.js';
import {
  CORE_OPTIONS, PHASES, RESET_REASONS, SLOTS, SeqsyncError, checkArguments, checkName,
  eventFields, instantiate, kindsOf, scratch, serverError, statsObject, utf8Length,
} from './shared.js';

export { SeqsyncError };

// The core's calling convention (sdk-wasm/src/lib.rs): flags returned by its inputs, the kinds
// of its events and transmits, and a scratch area of SLOTS numbers in WASM memory for their numbers.
const READY_TRANSMIT = 1, READY_EVENTS = 2, READY_TIMEOUT = 4, READY_ERROR = 8, READY_DELIVER = 16;
const EVENT_MESSAGE = 1, EVENT_SNAPSHOT = 2, EVENT_RESET = 3, EVENT_SKIPPED = 4;
const EVENT_GAP_DETECTED = 5, EVENT_GAP_HEALED = 6, EVENT_STALLED = 7, EVENT_PHASE = 8;
const EVENT_CONNECTING = 9, EVENT_CONNECTED = 10, EVENT_DISCONNECTED = 11, EVENT_CLOSED = 12;
const EVENT_PUBLISH_ACKED = 13, EVENT_PUBLISH_FAILED = 14, EVENT_POSITION = 15, EVENT_REFUSED = 16;
const TRANSMIT_CONNECT = 1, TRANSMIT_SEND = 2, TRANSMIT_FOREIGN = 4;
const INPUT_FRAME = 0, INPUT_UNREADABLE = 1, INPUT_OPENED = 2, INPUT_CLOSED = 3, INPUT_TIMEOUT = 4;

// By event kind: the `type` of an `onGap` event.
const GAP_EVENTS = [, , , , 'skipped', 'detected', 'healed', 'stalled'];
// The order of the client's counters, and of the numeric options a Session's constructor reads
// (then CORE_OPTIONS).
const CLIENT_STATS = `connects disconnects connectFailures frames bytes badFrames framesSent bytesSent historyFrames
  historyBytes historyMessages historyDuplicates published publishRetries publishFailures pendingPublishes
  resubscribes staleAnswers refusedRequests`.split(/\s+/);
const SESSION_OPTIONS = `reconnectInitialMs reconnectMaxMs stableAfterMs connectTimeoutMs initialConnectTimeoutMs
  heartbeatTimeoutMs silenceTimeoutMs publishTimeoutMs maxPendingPublishes maxPublishBytes maxFrameBytes
  persistIntervalMs`.split(/\s+/);
// What `checkArguments` accepts of the options and of a subscription's handlers (every key of
// those). `wasm` can be many things; `adapter` and `description` are checked by ./foreign.js.
const NUMBER = 'number >= 0';
const OPTION_KINDS = {
  ...kindsOf(SESSION_OPTIONS, NUMBER), endpoints: 'string or array', token: 'string or function', core: 'object',
  persist: 'boolean or string', storage: 'object', WebSocket: 'function', onConnection: 'function',
};
const CORE_KINDS = kindsOf(CORE_OPTIONS, NUMBER);
const HANDLER_KINDS = {
  ...kindsOf('onMessage onSnapshot onReset onGap onState onRefused'.split(' '), 'function'),
  since: NUMBER, epoch: NUMBER, mode: 'string',
};

/** A `JSON.stringify` replacer that throws on what JSON would alter: a number it writes as `null`, a `Map` or `Set` it writes as `{}`. */
function plain(key, value) {
  if (typeof value === 'number' ? !Number.isFinite(value) : value instanceof Map || value instanceof Set) {
    throw Error(`${key || 'data'} is ${value}`);
  }
  return value;
}

let loading = null;
let memory = null;

/** Loads the WASM core (once; `Client` does it by itself). */
export function init(source) {
  loading ??= (async () => {
    memory = await instantiate(initWasm, source ?? new URL('./seqsync_wasm_bg.wasm', import.meta.url));
  })().catch((error) => {
    loading = null; // a later call tries again
    throw error;
  });
  return loading;
}

const closedError = () => new SeqsyncError('closed', 'the client is closed');

/** `url` with `token` as its `token` query parameter, percent-encoded as the core does (RFC 3986). */
function withToken(url, token) {
  const encoded = encodeURIComponent(token).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${url}${url.includes('?') ? '&' : '?'}token=${encoded}`;
}

/** Whether a frame is text of at most `max` bytes of UTF-8. */
function fits(text, max) {
  const n = typeof text === 'string' ? text.length : 0;
  // The limit is in UTF-8 bytes, 1 to 3 per UTF-16 unit: only frames in between need their exact length.
  return n > 0 && n <= max && (3 * n <= max || utf8Length(text) <= max);
}

/** Calls an application callback; what it throws is reported, never passed on. */
function call(handler, a, b, c) {
  try {
    handler?.(a, b, c);
  } catch (error) {
    if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
    else setTimeout(() => { throw error; }, 0);
  }
}

/** Whether `n` is absent or a position: an integer in 0..=2^53-1. */
const isPosition = (n) => n === undefined || n === null || (Number.isSafeInteger(n) && n >= 0);

// A frame's members as they cross into the core, which judges them. `wrong`: a member of the frame
// being read has the wrong type (as a typed parser would refuse it).
let wrong = false;
/** A member of the type `ok` says, or undefined when absent. */
const typed = (x, ok) => {
  if (ok) return x;
  if (x != null) wrong = true;
};
const text = (x) => typed(x, typeof x === 'string');
/** A number member, a whole number from 0 (as the protocol's numbers are), or NaN when absent. */
const num = (x) => (Number.isInteger(x) && x >= 0 ? x : typed(NaN, x == null));

/** A frame's JSON object, or undefined for a bad frame. */
function parse(text, max) {
  if (!fits(text, max)) return undefined;
  let f;
  try { f = JSON.parse(text); } catch { return undefined; }
  return f !== null && typeof f === 'object' ? f : undefined;
}

// ---- Client: the WASM Session's IO --------------------------------------------
export class Client {
  constructor(url, options = {}) {
    if (typeof url !== 'string') throw new SeqsyncError('invalid_argument', 'url must be a string');
    checkArguments('options', options, OPTION_KINDS);
    checkArguments('options.core', options.core ?? {}, CORE_KINDS);
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    const hint = 'pass options.WebSocket (Node 20: --experimental-websocket)';
    if (typeof this._WebSocket !== 'function') throw new SeqsyncError('no_websocket', `no WebSocket here: ${hint}`);
    const random = 'no crypto.getRandomValues in this environment: publish ids need a secure random source';
    if (typeof globalThis.crypto?.getRandomValues !== 'function') throw new SeqsyncError('no_crypto', random);
    this._seed = globalThis.crypto.getRandomValues(new Uint8Array(32));
    this._options = options;
    this._endpoints = [url].concat(options.endpoints ?? []).map(String); // one URL or a list
    this._storage = options.persist ? (options.storage ?? globalThis.localStorage) : undefined;
    this._persistPrefix = typeof options.persist === 'string' ? options.persist : 'seqsync:';
    this._session = this._view = this._ws = this._closing = this._memory = this._link = this._token = this._attempt = null;
    this._ptr = this._maxFrame = this._timer = this._clock = 0;
    this._timerAt = -1; // when the armed timer fires
    this._closed = this._dispatching = this._reentered = false;
    this._subs = new Map(); // stream name -> Subscription
    this._hotName = this._hotSub = undefined; // the stream of the last message, and its Subscription
    this._byHandle = new Map(); // stream handle -> Subscription
    this._waiting = new Map(); // publish handle -> { resolve, reject } of its promise
    this._state = { state: 'connecting', endpoint: url, attempt: 0 };
    this._onPageHide = () => this._input((s, t) => s.checkpoint(t));
    if (this._storage !== undefined) globalThis.addEventListener?.('pagehide', this._onPageHide);
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    this.ready.catch(() => {});
    // Started after the constructor returns (callbacks may name the client), and after the module
    // loads: the package's, or for a foreign server the adapter module's own build.
    const binding = options.adapter === undefined && options.description === undefined
      ? init(options.wasm).then(() => ({ memory, create: (...args) => new Session(...args) }))
      : import('./foreign.js').then((m) => m.foreignBinding(options, instantiate));
    this._loaded = binding.then((b) => this._start(b)).catch((error) => this._finish(error));
  }

  get connectionState() { return this._state; }
  stats() {
    const raw = this._session?.stats() ?? [];
    return Object.fromEntries(CLIENT_STATS.map((name, i) => [name, raw[i] ?? 0]));
  }

  subscribe(stream, handlers = {}) {
    if (this._closed || this._closing !== null) throw closedError();
    // The core checks these too, but it has not started yet when `subscribe` follows `new Client`:
    // whatever it would refuse is refused here, at once.
    checkName(stream);
    if (this._subs.has(stream)) throw new SeqsyncError('already_subscribed', `stream ${stream} is already subscribed`);
    const { since, epoch, mode } = handlers ?? {};
    if (!isPosition(since) || !isPosition(epoch) || !(mode === undefined || mode === 'ordered' || mode === 'latest')) {
      throw new SeqsyncError('invalid_subscription', `${stream}: since and epoch must be integers in 0..2^53-1, mode 'ordered' or 'latest'`);
    }
    checkArguments(`${stream}: handlers`, handlers, HANDLER_KINDS, true);
    const maxStreams = this._options.core?.maxStreams;
    if (this._session === null && typeof maxStreams === 'number' && this._subs.size >= maxStreams) {
      throw new SeqsyncError('too_many_streams', `${stream}: too many streams (core.maxStreams ${maxStreams})`);
    }
    const sub = {
      stream, _handle: -1, _active: true, _handlers: handlers, _onMessage: handlers.onMessage,
      stats: () => (sub._active && sub._handle >= 0 ? statsObject(this._session.streamStats(sub._handle)) : undefined),
      unsubscribe: () => this._unsubscribe(sub),
    };
    this._subs.set(stream, sub);
    if (this._session !== null) this._attach(sub);
    return sub;
  }

  publish(stream, data) {
    return new Promise((resolve, reject) => {
      if (this._closed || this._closing !== null) return reject(closedError());
      // One pass: `plain` refuses what JSON would alter; what it cannot write at all (a BigInt,
      // a cycle) throws, and a top-level `undefined`, function or symbol writes nothing.
      let text;
      try {
        text = JSON.stringify(data, plain);
        if (text === undefined) throw Error(`data is ${typeof data}`);
      } catch (e) {
        return reject(new SeqsyncError('invalid_payload', `not JSON: ${e.message}`));
      }
      try { checkName(stream); } catch (e) { return reject(e); }
      const send = () => {
        if (this._closed) return reject(closedError());
        const handle = this._session.publish(this._now(), stream, text);
        if (handle < 0) return reject(this._refusal(stream));
        this._waiting.set(handle, { resolve, reject });
        this._drain(scratch(this)[8]);
      };
      this._session !== null ? send() : this._loaded.then(send);
    });
  }

  close() {
    this._closing ??= new Promise((resolve) => {
      this._closeResolve = resolve;
      this._loaded.then(() => (this._closed ? resolve() : this._input((s, t) => s.close(t))));
    });
    return this._closing;
  }

  _start(binding) {
    // With `persist`, positions are written at most every 250 ms unless told otherwise.
    const o = { persistIntervalMs: this._storage !== undefined ? 250 : 0, ...this._options };
    const options = [...SESSION_OPTIONS.map((k) => o[k] ?? NaN), ...CORE_OPTIONS.map((k) => o.core?.[k] ?? NaN)];
    // A token function is asked before every attempt (`_connect`); a string goes into the URL in the core.
    this._token = typeof o.token === 'function' ? o.token : null;
    const token = this._token === null ? o.token : undefined;
    const s = (this._session = binding.create(this._now(), this._seed, this._endpoints, token, options));
    this._memory = binding.memory;
    this._link = binding.link?.(this) ?? null;
    this._ptr = s.scratchPtr();
    this._view = new Float64Array(this._memory.buffer, this._ptr, SLOTS);
    this._maxFrame = s.maxFrameBytes();
    // A refusal here (none of the checks in `subscribe` foresaw it) goes to that subscription's
    // `onRefused`, and the subscription ends.
    for (const sub of this._subs.values()) {
      try { this._attach(sub); } catch (e) { call(sub._handlers.onRefused, e.code, e.message); }
    }
    this._drain(s.pending());
  }

  /** The time for the core (`performance.now()` or an event's), never earlier than one given before. */
  _now(stamp = performance.now()) {
    if (stamp > this._clock) this._clock = stamp;
    return this._clock;
  }
  /** Calls an input of the session with the time, then carries out what it asks. */
  _input(fn) {
    if (this._session !== null && !this._closed) this._drain(fn(this._session, this._now()));
  }
  /** Why the session refused a subscribe or publish. */
  _refusal(stream) {
    const code = this._session.code(-1);
    return new SeqsyncError(code, `${stream}: ${code.replaceAll('_', ' ')}`);
  }

  _attach(sub) {
    this._resume(sub.stream);
    const o = sub._handlers;
    sub._handle = this._session.subscribe(this._now(), sub.stream, o.since, o.epoch, o.mode === 'latest');
    if (sub._handle < 0) {
      this._subs.delete(sub.stream);
      sub._active = false;
      throw this._refusal(sub.stream);
    }
    this._byHandle.set(sub._handle, sub);
    this._drain(scratch(this)[8]);
  }

  _unsubscribe(sub) {
    if (!sub._active) return;
    sub._active = false;
    this._subs.delete(sub.stream);
    this._byHandle.delete(sub._handle);
    if (this._hotSub === sub) this._hotName = this._hotSub = undefined;
    if (sub._handle >= 0) this._input((s, t) => s.unsubscribe(t, sub._handle));
  }

  _setState(state) {
    this._state = state;
    call(this._options.onConnection, state);
  }

  /** Carries out what the session asks after an input: transmits, then the timer, then events. */
  _drain(flags) {
    const s = this._session;
    let text;
    while (flags & READY_TRANSMIT && (text = s.pollTransmit()) !== undefined) this._transmit(text, scratch(this));
    if (flags & READY_TIMEOUT) this._armTimer();
    if (flags & READY_EVENTS) this._dispatch();
  }

  /** Opens, writes to or closes the socket, or hands a request to the adapter. */
  _transmit(text, v) {
    const ws = this._ws;
    if (v[9] === TRANSMIT_SEND) ws?.send(text);
    else if (v[9] === TRANSMIT_FOREIGN) this._link.transmit(text, v);
    else if (v[9] === TRANSMIT_CONNECT) this._connect(v[10], text);
    else if (v[10] === this._attempt && ws === null) this._attempt = null; // an attempt still asking for its token
    else if (ws !== null) {
      // Always the socket of the connection named: the session asks for one at a time.
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(v[11], text); } catch { /* already closed */ }
    }
  }

  _connect(conn, url) {
    this._ws = null;
    if (this._token === null) return this._open(conn, url);
    // A fresh token for every attempt: a reconnect must not reuse one that expired meanwhile.
    this._attempt = conn;
    const current = () => this._attempt === conn && !this._closed;
    Promise.resolve()
      .then(() => this._token())
      .then(
        (token) => current() && this._open(conn, withToken(url, String(token))),
        (e) => current() && this._input((s, t) => s.input(t, INPUT_CLOSED, conn, [`no token: ${e?.message ?? e}`])),
      );
  }

  _open(conn, url) {
    const closed = (reason) => this._input((s, t) => s.input(t, INPUT_CLOSED, conn, [reason]));
    let ws;
    try {
      ws = this._ws = new this._WebSocket(url);
    } catch (e) {
      return closed(String(e?.message ?? e));
    }
    ws.onopen = () => this._input((s, t) => s.input(t, INPUT_OPENED, conn));
    ws.onmessage = (event) => this._frame(event.data, event.timeStamp);
    ws.onclose = (event) => closed(`closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`);
    ws.onerror = () => closed('socket error');
  }

  // One frame. `stamp` is the event's `timeStamp`: the clock of `performance.now()`, read when the
  // frame arrived, and free, where `performance.now()` costs several hundred nanoseconds in browsers.
  _frame(text, stamp) {
    if (this._closed) return;
    const s = this._session;
    const t = this._now(stamp);
    const n = typeof text === 'string' ? text.length : 0;
    if (this._link !== null) return this._link.frame(text, t, n, fits(text, this._maxFrame));
    const f = parse(text, this._maxFrame);
    if (f?.type === 'msg' && f.data !== undefined && !this._dispatching) {
      // The one exception to "the core reads every frame whole", kept for its measured cost
      // (sdk-wasm/BENCHMARKS.md, docs/design.md): a message next in order on its stream is taken by
      // the core from its numbers alone, and its payload, which never crosses, goes to the
      // application. Anything else leaves the core unchanged, and the frame takes the one path below.
      // The subscription of the last message is kept: a string compare is cheaper than a lookup.
      const sub = f.stream === this._hotName ? this._hotSub : this._subs.get(f.stream);
      const h = sub?._handle;
      wrong = false;
      const seq = num(f.seq), epoch = num(f.epoch);
      // A frame without an epoch takes the one path: the core's event names the stream's.
      if (h >= 0 && !wrong && epoch >= 0) {
        this._hotName = f.stream;
        this._hotSub = sub;
        const next = s.inOrder(t, h, seq, epoch, n);
        if (next & READY_DELIVER) {
          if (next & (READY_TRANSMIT | READY_TIMEOUT)) this._drain(next & ~READY_EVENTS);
          this._dispatching = true;
          call(sub._onMessage, f.data, seq, epoch);
          this._dispatching = false;
          if ((next & READY_EVENTS || this._reentered) && !this._closed) {
            this._reentered = false;
            this._dispatch();
          }
          return;
        }
      }
    }
    this._drain(f === undefined ? s.input(t, INPUT_UNREADABLE, n) : this._read(s, t, n, f));
  }

  /** Hands the session every member of a frame, whatever its type: the core judges and routes it. */
  _read(s, t, n, f) {
    wrong = false;
    // Its stream crosses as its handle when it is one of ours, otherwise as its name.
    const sub = typeof f.stream === 'string' ? this._subs.get(f.stream) : undefined;
    const h = sub === undefined ? -1 : sub._handle;
    const v = scratch(this);
    v[0] = h;
    v[1] = num(f.seq);
    v[2] = num(f.epoch);
    v[3] = num(f.head);
    v[4] = num(f.from);
    v[5] = num(f.to);
    v[6] = num(f.earliest);
    const texts = [f.type, h >= 0 ? undefined : f.stream, f.reason, f.id, f.code, f.message, f.ref].map(text);
    // Absent texts at the end need not cross (each one that does is a call): a message names its
    // stream by handle and has only its type.
    while (texts.length > 1 && texts[texts.length - 1] === undefined) texts.pop();
    const m = typed(f.messages, Array.isArray(f.messages));
    const heads = typed(f.heads, typeof f.heads === 'object' && !Array.isArray(f.heads)) && Object.entries(f.heads);
    return s.input(t, wrong ? INPUT_UNREADABLE : INPUT_FRAME, n, texts, f.data, f.state,
      m && Float64Array.from(m, (x) => num(x?.seq)), m?.map((x) => x?.data), heads?.map((e) => e[0]),
      heads && Float64Array.from(heads.flatMap(([, e]) => [num(e?.seq), num(e?.epoch)])));
  }

  // Timers are dear in browsers (a few microseconds to set and clear; holes that heal within
  // the gap timeout would each cost one), so an armed timer is kept when the deadline goes away
  // or moves later: it fires, hands the core the time, and is armed again for the deadline then.
  _armTimer() {
    const deadline = scratch(this)[7];
    if (deadline < 0 || this._closed || (this._timerAt >= 0 && this._timerAt <= deadline)) return;
    clearTimeout(this._timer);
    this._timerAt = deadline;
    this._timer = setTimeout(() => {
      this._timerAt = -1;
      this._input((s, t) => s.input(t, INPUT_TIMEOUT) | READY_TIMEOUT);
    }, Math.max(0, Math.ceil(deadline - performance.now())));
  }

  // Hands the session's events out; `polled`: the first is in the scratch area already. Events
  // caused by a callback wait until it has returned (callbacks run through `call`: nothing throws).
  _dispatch(first, polled) {
    if (this._dispatching) {
      this._reentered = true;
      return;
    }
    const session = this._session;
    this._dispatching = true;
    for (let payload = polled === true ? first : session.pollEvent(); ; payload = session.pollEvent()) {
      const s = scratch(this);
      const kind = s[0];
      if (kind === 0) break;
      const more = s[1];
      if (kind === EVENT_MESSAGE) call(this._byHandle.get(s[2])?._onMessage, payload, s[3], s[4] < 0 ? undefined : s[4]);
      else this._event(kind, payload, s);
      if (this._closed || (more === 0 && !this._reentered)) break;
      this._reentered = false;
    }
    this._dispatching = false;
  }

  _event(kind, payload, s) {
    if (kind <= EVENT_PHASE || kind === EVENT_REFUSED) {
      const h = this._byHandle.get(s[2])?._handlers;
      if (h === undefined) return;
      if (kind === EVENT_SNAPSHOT) call(h.onSnapshot, payload, s[3], s[4]);
      else if (kind === EVENT_RESET) call(h.onReset, RESET_REASONS[s[3]], s[4] < 0 ? undefined : s[4]);
      else if (kind === EVENT_PHASE) call(h.onState, PHASES[s[3]]);
      else if (kind === EVENT_REFUSED) call(h.onRefused, this._session.code(s[3]), payload);
      else if (h.onGap !== undefined) call(h.onGap, { type: GAP_EVENTS[kind], ...eventFields(kind, s) });
    } else if (kind === EVENT_CONNECTING) {
      this._setState({ state: 'connecting', endpoint: this._endpoints[s[3]], attempt: s[4] });
    } else if (kind === EVENT_CONNECTED) {
      this._resolveReady();
      this._setState({ state: 'connected', endpoint: this._endpoints[s[3]] });
    } else if (kind === EVENT_DISCONNECTED) {
      this._setState({ state: 'disconnected', reason: payload, retryInMs: s[3] });
    } else if (kind === EVENT_PUBLISH_ACKED || kind === EVENT_PUBLISH_FAILED) {
      const waiting = this._waiting.get(s[3]);
      this._waiting.delete(s[3]);
      if (kind === EVENT_PUBLISH_ACKED) waiting?.resolve(s[4]);
      else if (s[4] === 0) waiting?.reject(serverError(this._session.code(s[5]), s[5], payload));
      else if (s[4] === 1) waiting?.reject(new SeqsyncError('publish_timeout', 'no ack within publishTimeoutMs'));
      else if (s[4] === 3) waiting?.reject(Object.assign(new SeqsyncError('publish_failed', payload), s[5] >= 0 ? { status: s[5] } : {}));
      else waiting?.reject(closedError());
    } else if (kind === EVENT_POSITION) {
      this._savePosition(payload, s[3], s[4]);
    } else if (kind === EVENT_CLOSED) {
      this._finish(s[3] === 1 ? new SeqsyncError('connect_failed', `could not connect: ${payload}`) : closedError());
    } // else a server error about nothing pending: diagnostics only
  }

  /** The session ended (or never started); it stays for `stats()`. */
  _finish(error) {
    this._closed = true;
    clearTimeout(this._timer);
    this._link?.stop();
    for (const sub of this._subs.values()) sub._active = false;
    globalThis.removeEventListener?.('pagehide', this._onPageHide);
    this._rejectReady(error);
    this._setState({ state: 'closed' });
    this._closeResolve?.();
  }

  // ---- resume across page loads: the session reports positions, storage keeps them. An unreadable
  // entry, or storage that is full or forbidden, means a snapshot instead of a resume.

  _key(stream) { return `${this._persistPrefix}${this._endpoints[0]}#${stream}`; }

  _resume(stream) {
    let saved;
    try { saved = JSON.parse(this._storage?.getItem(this._key(stream)) ?? 'null'); } catch { saved = null; }
    if (Number.isSafeInteger(saved?.seq) && Number.isSafeInteger(saved.epoch)) {
      this._session.resumeFrom(stream, saved.seq, saved.epoch);
    }
  }

  _savePosition(stream, seq, epoch) {
    try { this._storage?.setItem(this._key(stream), JSON.stringify({ seq, epoch })); } catch { /* see above */ }
  }
}
