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
  O as CORE_OPTIONS, P as PHASES, R as RESET_REASONS, L as SLOTS, SeqsyncError,
  A as checkArguments, N as checkName, F as eventFields, I as instantiate, K as kindsOf,
  S as scratch, E as serverError, T as statsObject, U as utf8Length,
} from './shared.js';

export { SeqsyncError };

// The core's calling convention (sdk-wasm/src/lib.rs): flags returned by its inputs, the kinds
// of its events and transmits, and a scratch area of SLOTS numbers in WASM memory for their numbers.
const READY_TRANSMIT = 1, READY_EVENTS = 2, READY_TIMEOUT = 4, READY_ERROR = 8, READY_DELIVER = 16;
const EVENT_MESSAGE = 1, EVENT_SNAPSHOT = 2, EVENT_RESET = 3, EVENT_SKIPPED = 4;
const EVENT_GAP_DETECTED = 5, EVENT_GAP_HEALED = 6, EVENT_STALLED = 7, EVENT_PHASE = 8;
const EVENT_CONNECTING = 9, EVENT_CONNECTED = 10, EVENT_DISCONNECTED = 11, EVENT_CLOSED = 12;
const EVENT_PUBLISH_ACKED = 13, EVENT_PUBLISH_FAILED = 14, EVENT_POSITION = 15, EVENT_REFUSED = 16;
const EVENT_SERVER_ERROR = 17, EVENT_STOPPED = 18;
const TRANSMIT_CONNECT = 1, TRANSMIT_SEND = 2, TRANSMIT_FOREIGN = 4;
const INPUT_FRAME = 0, INPUT_UNREADABLE = 1, INPUT_OPENED = 2, INPUT_CLOSED = 3, INPUT_TIMEOUT = 4;
const COMMAND_CLOSE = 0, COMMAND_ABORT = 1, COMMAND_CONNECT = 2, COMMAND_DISCONNECT = 3;

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
  signal: 'object',
};
const CLOSE_KINDS = { force: 'boolean' };
const CORE_KINDS = kindsOf(CORE_OPTIONS, NUMBER);
// A subscription's handlers; `onX` is the first listener of its event `x`.
const HANDLERS = 'onMessage onSnapshot onReset onGap onState onRefused'.split(' ');
const START_KINDS = { since: NUMBER, epoch: NUMBER, mode: 'string' };
const HANDLER_KINDS = { ...kindsOf(HANDLERS, 'function'), ...START_KINDS };
// Of `stream` and `store` (their positions are checked as `subscribe` checks them).
const STREAM_KINDS = { ...START_KINDS, signal: 'object', maxQueued: NUMBER };
const STORE_KINDS = { ...START_KINDS, initial: 'any', reduce: 'function', keep: NUMBER };

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

/** `publish_too_large`: the frame's size, and the limit it is over (negative: not announced) and whose it is. */
const tooLarge = (stream, len, limit, side) => {
  const bytes = (n) => `${n.toLocaleString('en-US')} bytes`;
  const of = limit >= 0 ? ` of ${bytes(limit)}` : '';
  return new SeqsyncError('publish_too_large', `${stream}: publish of ${bytes(len)} is over the ${side}'s limit${of}`);
};

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

/** Hands `owner`'s listeners of `event` the arguments; one removed meanwhile is not called. */
function emit(owner, event, a, b, c) {
  for (const f of owner._l[event]) if (owner._l[event].includes(f)) call(f, a, b, c);
}

/**
 * Adds `fn` to `owner`'s listeners of `event` (`where` names the owner in a refusal); returns the
 * function that removes it. Lists are replaced, never changed: an emit goes on over the old one.
 */
function listen(owner, event, fn, where) {
  checkArguments(`${where}.on`, { [String(event)]: fn ?? 0 }, kindsOf(Object.keys(owner._l), 'function'), true);
  const set = (l) => {
    owner._l[event] = l;
    // A message with one listener costs one call, as it did before listeners: `_m` is the
    // listener itself, or with more a function that calls each.
    if (event === 'message') owner._m = l.length > 1 ? (a, b, c) => emit(owner, event, a, b, c) : l[0];
  };
  set([...owner._l[event], fn]);
  let on = true;
  return () => {
    const l = [...owner._l[event]];
    if (on) l.splice(l.indexOf(fn), 1);
    on = false;
    set(l);
  };
}

/** Hands `push` the message, snapshot and reset events of subscription `h` as plain objects. */
function feed(h, push) {
  h.on('message', (data, seq, epoch) => push({ type: 'message', seq, epoch, data }));
  h.on('snapshot', (state, seq, epoch) => push({ type: 'snapshot', seq, epoch, state }));
  h.on('reset', (reason, earliest) => push({ type: 'reset', reason, earliest }));
  return h;
}

/** The value of a store without `reduce`: the last snapshot's state, the messages after it (the last `keep`), the position. */
const keepLast = (keep) => (v, e) => (e.type === 'message'
  ? { ...v, seq: e.seq, epoch: e.epoch, messages: [...v.messages, { seq: e.seq, data: e.data }].slice(-keep || Infinity) }
  : { state: e.state, seq: e.seq, epoch: e.epoch, messages: [] });

/** Whether `n` is absent or a position: an integer in 0..=2^53-1. */
const isPosition = (n) => n === undefined || n === null || (Number.isSafeInteger(n) && n >= 0);

/** Throws `invalid_subscription` unless a subscription's start is absent or valid. */
function checkStart(stream, start) {
  const { since, epoch, mode } = start ?? {};
  if (!isPosition(since) || !isPosition(epoch) || !(mode === undefined || mode === 'ordered' || mode === 'latest')) {
    throw new SeqsyncError('invalid_subscription', `${stream}: since and epoch must be integers in 0..2^53-1, mode 'ordered' or 'latest'`);
  }
}

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
    const signal = options.signal;
    if (signal != null && typeof signal.addEventListener !== 'function') {
      throw new SeqsyncError('invalid_argument', 'options.signal must be an AbortSignal');
    }
    this._WS = options.WebSocket ?? globalThis.WebSocket;
    const hint = 'pass options.WebSocket (Node 20: --experimental-websocket)';
    if (typeof this._WS !== 'function') throw new SeqsyncError('no_websocket', `no WebSocket here: ${hint}`);
    const random = 'no crypto.getRandomValues in this environment: publish ids need a secure random source';
    if (typeof globalThis.crypto?.getRandomValues !== 'function') throw new SeqsyncError('no_crypto', random);
    this._seed = globalThis.crypto.getRandomValues(new Uint8Array(32));
    this._o = options;
    this._urls = [url].concat(options.endpoints ?? []).map(String); // one URL or a list
    this._store = options.persist ? (options.storage ?? globalThis.localStorage) : undefined;
    this._pre = typeof options.persist === 'string' ? options.persist : 'seqsync:';
    // Field names are short because a minifier keeps them. `_s`: the WASM Session; `_v`, `_mem`,
    // `_p`: its scratch area (view, memory, address); `_ws`: the socket; `_bye`: the promise of
    // `close()`; `_link`: a foreign server's adapter; `_tok`: a token function; `_try`: the
    // connection waiting for its token; `_max`: the frame limit; `_t`: the timer; `_ck`: the
    // clock's last reading; `_done`: ended; `_busy`: handing out events; `_again`: events came
    // meanwhile.
    this._s = this._v = this._ws = this._bye = this._mem = this._link = this._tok = this._try = null;
    this._p = this._max = this._t = this._ck = 0;
    this._due = -1; // when the armed timer fires
    this._done = this._busy = this._again = false;
    this._subs = new Map(); // stream name -> Subscription
    this._hotN = this._hot = undefined; // the stream of the last message, and its Subscription
    this._byH = new Map(); // stream handle -> Subscription
    this._pub = new Map(); // publish handle -> [resolve, reject, stream] of its promise
    // Listeners by event; `onConnection` is the first of `state`.
    this._l = { state: options.onConnection ? [options.onConnection] : [], error: [] };
    this._conns = []; // [resolve, reject] of the promises `connect()` returned
    this._state = { state: 'connecting', endpoint: url, attempt: 0 };
    this._hide = () => this._in((s, t) => s.checkpoint(t));
    if (this._store !== undefined) globalThis.addEventListener?.('pagehide', this._hide);
    this.ready = new Promise((resolve, reject) => {
      this._yes = resolve;
      this._no = reject;
    });
    this.ready.catch(() => {});
    // Started after the constructor returns (callbacks may name the client), and after the module
    // loads: the package's, or for a foreign server the adapter module's own build.
    const binding = options.adapter === undefined && options.description === undefined
      ? init(options.wasm).then(() => ({ memory, create: (...args) => new Session(...args) }))
      : import('./foreign.js').then((m) => m.foreignBinding(options, instantiate));
    this._ld = binding.then((b) => this._go(b)).catch((error) => this._end(error));
    if (signal != null) {
      this._abort = () => this.close({ force: true });
      if (signal.aborted) this._abort();
      else signal.addEventListener('abort', this._abort, { once: true });
      this._sig = signal;
    }
  }

  get connectionState() { return this._state; }
  stats() {
    const raw = this._s?.stats() ?? [];
    return Object.fromEntries(CLIENT_STATS.map((name, i) => [name, raw[i] ?? 0]));
  }

  on(event, fn) {
    return listen(this, event, fn, 'client');
  }

  subscribe(stream, handlers = {}) {
    this._alive();
    // The core checks these too, but it has not started yet when `subscribe` follows `new Client`:
    // whatever it would refuse is refused here, at once.
    checkName(stream);
    checkStart(stream, handlers);
    const { since, epoch, mode } = handlers ?? {};
    checkArguments(`${stream}: handlers`, handlers, HANDLER_KINDS, true);
    let sub = this._subs.get(stream);
    // A stream already followed is shared: one more subscription of it, from where it is now. A
    // position other than the one it was subscribed with cannot be both.
    if (sub !== undefined && [since, epoch, mode].some((x, i) => x != null && x !== sub._from[i])) {
      throw new SeqsyncError('already_subscribed', `${stream}: subscribed already, from another position or mode`);
    }
    const maxStreams = this._o.core?.maxStreams;
    if (!sub && this._s === null && typeof maxStreams === 'number' && this._subs.size >= maxStreams) {
      throw new SeqsyncError('too_many_streams', `${stream}: too many streams (core.maxStreams ${maxStreams})`);
    }
    const fresh = !sub;
    if (fresh) {
      // One per stream, shared by its handles.
      sub = { stream, _h: -1, _live: true, _from: [since, epoch, mode ?? 'ordered'], _n: 0, _l: {}, _m: undefined };
      for (const k of HANDLERS) sub._l[k.slice(2).toLowerCase()] = [];
      this._subs.set(stream, sub);
    }
    sub._n++;
    let active = true;
    const offs = [];
    const handle = {
      stream,
      stats: () => (active && sub._live && sub._h >= 0 ? statsObject(this._s.streamStats(sub._h)) : undefined),
      on: (event, fn) => {
        const off = listen(sub, event, fn, `${stream}: subscription`);
        if (!active) off();
        offs.push(off);
        return off;
      },
      unsubscribe: () => {
        if (!active) return;
        active = false;
        for (const off of offs) off();
        if (--sub._n === 0) this._drop(sub);
      },
    };
    for (const k of HANDLERS) if (handlers[k] != null) handle.on(k.slice(2).toLowerCase(), handlers[k]);
    if (fresh && this._s !== null) this._add(sub);
    return handle;
  }

  stream(stream, options = {}) {
    checkStart(stream, options);
    checkArguments(`${stream}: stream options`, options, STREAM_KINDS, true);
    const { signal, maxQueued = 10_000, since, epoch, mode } = options;
    signal?.throwIfAborted();
    const queue = [];
    let wake, end; // what ends the iteration once `queue` is empty: [] (done) or [error]
    const stop = (how, drop) => {
      if (drop) queue.length = 0;
      if (end) return;
      end = how;
      h.unsubscribe();
      offState();
      wake?.();
    };
    // Past `maxQueued` undelivered events the iteration ends with `overflow`, after those it holds.
    const h = feed(this.subscribe(stream, { since, epoch, mode }), (event) => {
      if (queue.length < maxQueued) queue.push(event);
      else stop([new SeqsyncError('overflow', `${stream}: over maxQueued (${maxQueued}) events held`)]);
      wake?.();
    });
    const offState = this.on('state', (s) => s.state === 'closed' && stop([]));
    signal?.addEventListener('abort', () => stop([signal.reason], true));
    const events = (async function* () {
      for (;;) {
        if (queue.length > 0) yield queue.shift();
        else if (!end) await new Promise((resolve) => (wake = resolve));
        else if (end.length > 0) throw end[0];
        else return;
      }
    })();
    // `return()` (a `break`) releases the stream also before the first `next()`.
    const iterator = {
      [Symbol.asyncIterator]: () => iterator,
      next: () => events.next(),
      return: (v) => {
        stop([], true);
        return events.return(v);
      },
    };
    return iterator;
  }

  store(stream, options = {}) {
    checkName(stream);
    checkStart(stream, options);
    checkArguments(`${stream}: store options`, { ...options, initial: null }, STORE_KINDS, true);
    let { initial, reduce, keep = 100, since, epoch, mode } = options;
    let value = reduce ? initial : initial ?? keepLast()(0, {});
    reduce ??= keepLast(keep);
    const listeners = new Set();
    let h = null;
    return {
      getSnapshot: () => value,
      subscribe: (listener) => {
        h ??= feed(this.subscribe(stream, { since, epoch, mode }), (event) => {
          const next = reduce(value, event);
          if (next === value) return;
          value = next;
          for (const l of listeners) call(l);
        });
        listeners.add(listener);
        return () => {
          if (listeners.delete(listener) && listeners.size === 0) {
            h.unsubscribe();
            h = null;
          }
        };
      },
    };
  }

  publish(stream, data) {
    return new Promise((resolve, reject) => {
      // What throws here rejects the promise.
      this._alive();
      // One pass: `plain` refuses what JSON would alter; what it cannot write at all (a BigInt,
      // a cycle) throws, and a top-level `undefined`, function or symbol writes nothing.
      let text;
      try {
        text = JSON.stringify(data, plain);
        if (text === undefined) throw Error(`data is ${typeof data}`);
      } catch (e) {
        return reject(new SeqsyncError('invalid_payload', `not JSON: ${e.message}`));
      }
      checkName(stream);
      const send = () => {
        if (this._done) return reject(closedError());
        const handle = this._s.publish(this._now(), stream, text);
        if (handle < 0) return reject(this._why(stream));
        this._pub.set(handle, [resolve, reject, stream]);
        this._dr(scratch(this)[8]);
      };
      this._s !== null ? send() : this._ld.then(send);
    });
  }

  connect() {
    this._alive();
    const done = new Promise((...settle) => this._conns.push(settle));
    done.catch(() => {}); // a caller that does not wait is not told of a failure twice
    if (this._state.state === 'connected') this._settle(null);
    else this._cmd(COMMAND_CONNECT);
    return done;
  }

  disconnect() {
    if (!this._done && this._bye === null) this._cmd(COMMAND_DISCONNECT);
  }

  close(options) {
    if (options !== undefined) checkArguments('close options', options, CLOSE_KINDS, true);
    this._bye ??= new Promise((resolve) => {
      this._byeDone = resolve;
    });
    if (this._done) this._byeDone();
    else if (options?.force) {
      // At once: the core fails what is pending; before it has loaded, nothing is.
      this._in((s, t) => s.command(t, COMMAND_ABORT));
      if (!this._done) this._end(closedError());
    } else this._cmd(COMMAND_CLOSE); // again: the core ignores it
    return this._bye;
  }

  /** Runs an application command now, or once the core has loaded (in the order given). */
  _cmd(what) {
    const run = () => this._in((s, t) => s.command(t, what));
    this._s !== null ? run() : this._ld.then(run);
  }

  /** Settles the promises of `connect()`: resolved when `error` is null. */
  _settle(error) {
    for (const [resolve, reject] of this._conns.splice(0)) error === null ? resolve() : reject(error);
  }

  /** Throws `closed` once `close()` was called. */
  _alive() {
    if (this._done || this._bye !== null) throw closedError();
  }

  _go(binding) {
    if (this._done) return; // closed at once before the core loaded
    // With `persist`, positions are written at most every 250 ms unless told otherwise.
    const o = { persistIntervalMs: this._store !== undefined ? 250 : 0, ...this._o };
    const options = [...SESSION_OPTIONS.map((k) => o[k] ?? NaN), ...CORE_OPTIONS.map((k) => o.core?.[k] ?? NaN)];
    // A token function is asked before every attempt (`_conn`); a string goes into the URL in the core.
    this._tok = typeof o.token === 'function' ? o.token : null;
    const token = this._tok === null ? o.token : undefined;
    const s = (this._s = binding.create(this._now(), this._seed, this._urls, token, options));
    this._mem = binding.memory;
    this._link = binding.link?.(this) ?? null;
    this._p = s.scratchPtr();
    this._v = new Float64Array(this._mem.buffer, this._p, SLOTS);
    this._max = s.maxFrameBytes();
    // A refusal here (none of the checks in `subscribe` foresaw it) goes to that stream's `refused`
    // listeners and to the client's `error` listeners, and the stream's subscriptions end.
    for (const sub of this._subs.values()) {
      try {
        this._add(sub);
      } catch (e) {
        emit(sub, 'refused', e.code, e.message);
        emit(this, 'error', e);
      }
    }
    this._dr(s.pending());
  }

  /** The time for the core (`performance.now()` or an event's), never earlier than one given before. */
  _now(stamp = performance.now()) {
    if (stamp > this._ck) this._ck = stamp;
    return this._ck;
  }
  /** Calls an input of the session with the time, then carries out what it asks. */
  _in(fn) {
    if (this._s !== null && !this._done) this._dr(fn(this._s, this._now()));
  }
  /** Why the session refused a subscribe or publish. */
  _why(stream) {
    const code = this._s.code(-1);
    const v = scratch(this);
    if (code === 'publish_too_large') return tooLarge(stream, v[3], v[4], v[5] === 1 ? 'server' : 'client');
    return new SeqsyncError(code, `${stream}: ${code.replaceAll('_', ' ')}`);
  }

  _add(sub) {
    this._res(sub.stream);
    const [since, epoch, mode] = sub._from;
    sub._h = this._s.subscribe(this._now(), sub.stream, since, epoch, mode === 'latest');
    if (sub._h < 0) {
      this._subs.delete(sub.stream);
      sub._live = false;
      throw this._why(sub.stream);
    }
    this._byH.set(sub._h, sub);
    this._dr(scratch(this)[8]);
  }

  _drop(sub) {
    if (!sub._live) return;
    sub._live = false;
    this._subs.delete(sub.stream);
    this._byH.delete(sub._h);
    if (this._hot === sub) this._hotN = this._hot = undefined;
    if (sub._h >= 0) this._in((s, t) => s.unsubscribe(t, sub._h));
  }

  _set(state) {
    this._state = state;
    emit(this, 'state', state);
  }

  /** Carries out what the session asks after an input: transmits, then the timer, then events. */
  _dr(flags) {
    const s = this._s;
    let text;
    while (flags & READY_TRANSMIT && (text = s.pollTransmit()) !== undefined) this._tx(text, scratch(this));
    if (flags & READY_TIMEOUT) this._arm();
    if (flags & READY_EVENTS) this._out();
  }

  /** Opens, writes to or closes the socket, or hands a request to the adapter. */
  _tx(text, v) {
    const ws = this._ws;
    if (v[9] === TRANSMIT_SEND) ws?.send(text);
    else if (v[9] === TRANSMIT_FOREIGN) this._link.transmit(text, v);
    else if (v[9] === TRANSMIT_CONNECT) this._conn(v[10], text);
    else if (v[10] === this._try && ws === null) this._try = null; // an attempt still asking for its token
    else if (ws !== null) {
      // Always the socket of the connection named: the session asks for one at a time.
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(v[11], text); } catch { /* already closed */ }
    }
  }

  _conn(conn, url) {
    this._ws = null;
    if (this._tok === null) return this._open(conn, url);
    // A fresh token for every attempt: a reconnect must not reuse one that expired meanwhile.
    this._try = conn;
    const current = () => this._try === conn && !this._done;
    Promise.resolve()
      .then(() => this._tok())
      .then(
        (token) => current() && this._open(conn, withToken(url, String(token))),
        (e) => current() && this._in((s, t) => s.input(t, INPUT_CLOSED, conn, [`no token: ${e?.message ?? e}`])),
      );
  }

  _open(conn, url) {
    // The close code the server sent goes in scratch slot 1 (1009: a frame over its hard limit).
    const closed = (reason, code = NaN) => this._in((s, t) => {
      scratch(this)[1] = code;
      return s.input(t, INPUT_CLOSED, conn, [reason]);
    });
    let ws;
    try {
      ws = this._ws = new this._WS(url);
    } catch (e) {
      return closed(String(e?.message ?? e));
    }
    // What a WebSocket tells apart: a socket that never opened (a refused or unreachable host and
    // an upgrade the server refused, such as HTTP 401 for a token, look the same to a page; some
    // platforms name the cause in the error event, and Node's sends no close event after it) from
    // one that closed after opening, with the close code and reason, which only the close event
    // that follows an error then carries.
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this._in((s, t) => s.input(t, INPUT_OPENED, conn));
    };
    ws.onmessage = (event) => this._fr(event.data, event.timeStamp);
    ws.onerror = (event) => opened || closed(`not opened (${event?.message || 'refused, unreachable, or the upgrade refused'})`);
    ws.onclose = (event) => closed(opened ? `closed (${event.code}${event.reason ? `: ${event.reason}` : ''})` : 'not opened', event.code);
  }

  // One frame. `stamp` is the event's `timeStamp`: the clock of `performance.now()`, read when the
  // frame arrived, and free, where `performance.now()` costs several hundred nanoseconds in browsers.
  _fr(text, stamp) {
    if (this._done) return;
    const s = this._s;
    const t = this._now(stamp);
    const n = typeof text === 'string' ? text.length : 0;
    if (this._link !== null) return this._link.frame(text, t, n, fits(text, this._max));
    const f = parse(text, this._max);
    if (f?.type === 'msg' && f.data !== undefined && !this._busy) {
      // The one exception to "the core reads every frame whole", kept for its measured cost
      // (sdk-wasm/BENCHMARKS.md, docs/design.md): a message next in order on its stream is taken by
      // the core from its numbers alone, and its payload, which never crosses, goes to the
      // application. Anything else leaves the core unchanged, and the frame takes the one path below.
      // The subscription of the last message is kept: a string compare is cheaper than a lookup.
      const sub = f.stream === this._hotN ? this._hot : this._subs.get(f.stream);
      const h = sub?._h;
      wrong = false;
      const seq = num(f.seq), epoch = num(f.epoch);
      // A frame without an epoch takes the one path: the core's event names the stream's.
      if (h >= 0 && !wrong && epoch >= 0) {
        this._hotN = f.stream;
        this._hot = sub;
        const next = s.inOrder(t, h, seq, epoch, n);
        if (next & READY_DELIVER) {
          if (next & (READY_TRANSMIT | READY_TIMEOUT)) this._dr(next & ~READY_EVENTS);
          this._busy = true;
          call(sub._m, f.data, seq, epoch);
          this._busy = false;
          if ((next & READY_EVENTS || this._again) && !this._done) {
            this._again = false;
            this._out();
          }
          return;
        }
      }
    }
    this._dr(f === undefined ? s.input(t, INPUT_UNREADABLE, n) : this._read(s, t, n, f));
  }

  /** Hands the session every member of a frame, whatever its type: the core judges and routes it. */
  _read(s, t, n, f) {
    wrong = false;
    // Its stream crosses as its handle when it is one of ours, otherwise as its name.
    const sub = typeof f.stream === 'string' ? this._subs.get(f.stream) : undefined;
    const h = sub === undefined ? -1 : sub._h;
    const v = scratch(this);
    v[0] = h;
    v[1] = num(f.seq);
    v[2] = num(f.epoch);
    v[3] = num(f.head);
    v[4] = num(f.from);
    v[5] = num(f.to);
    v[6] = num(f.earliest);
    v[12] = num(f.frame_limit);
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
  _arm() {
    const deadline = scratch(this)[7];
    if (deadline < 0 || this._done || (this._due >= 0 && this._due <= deadline)) return;
    clearTimeout(this._t);
    this._due = deadline;
    this._t = setTimeout(() => {
      this._due = -1;
      this._in((s, t) => s.input(t, INPUT_TIMEOUT) | READY_TIMEOUT);
    }, Math.max(0, Math.ceil(deadline - performance.now())));
  }

  // Hands the session's events out. Events caused by a callback wait until it has returned
  // (callbacks run through `call`: nothing throws).
  _out() {
    if (this._busy) {
      this._again = true;
      return;
    }
    const session = this._s;
    this._busy = true;
    for (;;) {
      const payload = session.pollEvent();
      const s = scratch(this);
      const kind = s[0];
      if (kind === 0) break;
      const more = s[1];
      if (kind === EVENT_MESSAGE) call(this._byH.get(s[2])?._m, payload, s[3], s[4] < 0 ? undefined : s[4]);
      else this._ev(kind, payload, s);
      if (this._done || (more === 0 && !this._again)) break;
      this._again = false;
    }
    this._busy = false;
  }

  _ev(kind, payload, s) {
    if (kind <= EVENT_PHASE || kind === EVENT_REFUSED) {
      const sub = this._byH.get(s[2]);
      if (sub === undefined) return;
      if (kind === EVENT_SNAPSHOT) emit(sub, 'snapshot', payload, s[3], s[4]);
      else if (kind === EVENT_RESET) emit(sub, 'reset', RESET_REASONS[s[3]], s[4] < 0 ? undefined : s[4]);
      else if (kind === EVENT_PHASE) emit(sub, 'state', PHASES[s[3]]);
      else if (kind === EVENT_REFUSED) {
        const code = this._s.code(s[3]);
        emit(sub, 'refused', code, payload);
        emit(this, 'error', serverError(code, s[3], `${sub.stream}: ${payload}`));
      } else if (sub._l.gap.length > 0) emit(sub, 'gap', { type: GAP_EVENTS[kind], ...eventFields(kind, s) });
    } else if (kind === EVENT_CONNECTING) {
      this._set({ state: 'connecting', endpoint: this._urls[s[3]], attempt: s[4] });
    } else if (kind === EVENT_CONNECTED) {
      this._yes();
      this._set({ state: 'connected', endpoint: this._urls[s[3]] });
      this._settle(null);
    } else if (kind === EVENT_DISCONNECTED) {
      this._set({ state: 'disconnected', reason: payload, retryInMs: s[3] });
    } else if (kind === EVENT_PUBLISH_ACKED || kind === EVENT_PUBLISH_FAILED) {
      const waiting = this._pub.get(s[3]);
      if (waiting === undefined) return;
      this._pub.delete(s[3]);
      const why = s[4];
      if (kind === EVENT_PUBLISH_ACKED) waiting[0](why);
      else {
        waiting[1](why === 0 ? serverError(this._s.code(s[5]), s[5], payload)
          : why === 1 ? new SeqsyncError('publish_timeout', 'no ack within publishTimeoutMs')
            : why === 3 ? Object.assign(new SeqsyncError('publish_failed', payload), s[5] >= 0 ? { status: s[5] } : {})
              : why === 4 ? tooLarge(waiting[2], s[5], s[6], 'server')
                : new SeqsyncError('publish_unconfirmed', 'closed before the ack: it may have been stored'));
      }
    } else if (kind === EVENT_POSITION) {
      this._save(payload, s[3], s[4]);
    } else if (kind === EVENT_STOPPED) {
      // Stopped, not closed: `connect()` starts again.
      const gaveUp = s[3] === 1;
      const error = new SeqsyncError('connect_failed', gaveUp ? `could not connect: ${payload}` : 'disconnect() called');
      if (gaveUp) this._no(error);
      this._set(gaveUp ? { state: 'failed', error } : { state: 'disconnected', reason: 'disconnect() called', retryInMs: -1 });
      this._settle(error);
    } else if (kind === EVENT_CLOSED) {
      this._end(closedError());
    } else if (kind === EVENT_SERVER_ERROR) {
      emit(this, 'error', serverError(this._s.code(s[3]), s[3], payload));
    }
  }

  /** The session ended (or never started); it stays for `stats()`. */
  _end(error) {
    this._done = true;
    clearTimeout(this._t);
    this._link?.stop();
    for (const sub of this._subs.values()) sub._live = false;
    globalThis.removeEventListener?.('pagehide', this._hide);
    this._sig?.removeEventListener('abort', this._abort);
    this._no(error);
    this._settle(error);
    this._set({ state: 'closed' });
    this._byeDone?.();
  }

  // ---- resume across page loads: the session reports positions, storage keeps them. An unreadable
  // entry, or storage that is full or forbidden, means a snapshot instead of a resume.

  _key(stream) { return `${this._pre}${this._urls[0]}#${stream}`; }

  _res(stream) {
    let saved;
    try { saved = JSON.parse(this._store?.getItem(this._key(stream)) ?? 'null'); } catch { saved = null; }
    if (Number.isSafeInteger(saved?.seq) && Number.isSafeInteger(saved.epoch)) {
      this._s.resumeFrom(stream, saved.seq, saved.epoch);
    }
  }

  _save(stream, seq, epoch) {
    try { this._store?.setItem(this._key(stream), JSON.stringify({ seq, epoch })); } catch { /* see above */ }
  }
}
