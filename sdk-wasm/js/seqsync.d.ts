// Types of the `seqsync` npm package.

/** A JSON value: what `data` of a message or `state` of a snapshot holds. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Where the WASM module comes from when loading it by hand. */
export type WasmSource =
  | string
  | URL
  | Request
  | Response
  | BufferSource
  | WebAssembly.Module
  | Promise<Response>;

/**
 * Loads the WASM core. `Client` does it by itself; call it to load the
 * module ahead of time, or from a place of your choosing. Safe to call many
 * times. Without an argument the module is fetched next to this file (read
 * from disk under Node). The bare `Sequencer` (`seqsync/sequencer`) has its
 * own module and its own `init`.
 */
export function init(source?: WasmSource): Promise<void>;

/**
 * What a `SeqsyncError` says was wrong: every code this package produces
 * (README, "Errors"). Switch on it exhaustively: a code added in a later
 * version then fails to compile where it is not handled.
 */
export type SeqsyncErrorCode =
  // ---- the calling code
  /** An argument of the wrong kind, named in the message: a handler that is not a function, an unknown handler key, handlers that are not an object, an option of the wrong type or out of range, a `url` that is not a string. */
  | 'invalid_argument'
  /** `publish` data JSON cannot carry as it is: `NaN`, `Infinity`, a `Map`, a `Set`, a `BigInt`, a cycle, or a top-level `undefined`, function or symbol. Never altered silently. */
  | 'invalid_payload'
  /** A stream name that is empty, has a control character, or is over 256 bytes of UTF-8. */
  | 'invalid_stream'
  /** `subscribe` to a stream this client (or `Sequencer`) already follows. */
  | 'already_subscribed'
  /** More streams than `core.maxStreams`. */
  | 'too_many_streams'
  /** A `since` or `epoch` that is not an integer in 0..2^53-1, or an unknown `mode`. */
  | 'invalid_subscription'
  /** `Sequencer`: a frame or input it refuses. */
  | 'invalid_input'
  /** `Sequencer`: created before `await init()`. */
  | 'not_initialized'
  // ---- the platform
  /** `new Client` without a WebSocket: pass `options.WebSocket`. */
  | 'no_websocket'
  /** `new Client` without `crypto.getRandomValues` (publish ids are drawn from it). */
  | 'no_crypto'
  // ---- the client
  /** The client is closed (or closing): also what pending publishes reject with when it closes. */
  | 'closed'
  /** No connection within `initialConnectTimeoutMs`: `ready` rejects and the client closes. */
  | 'connect_failed'
  /** A publish not acked within `publishTimeoutMs`. It may have been stored. */
  | 'publish_timeout'
  /** More than `maxPendingPublishes` publishes waiting for their ack. */
  | 'too_many_pending'
  /** A publish frame over `maxPublishBytes`. */
  | 'publish_too_large'
  /** A foreign server's publish request failed (see `status`). */
  | 'publish_failed'
  /** A publish to a foreign server that has no publish request. */
  | 'unsupported'
  // ---- the server's refusal of a publish (the protocol's error codes; `invalid_stream`,
  // `too_many_streams` above): `rate_limited` and `internal` never reach the application,
  // such publishes are sent again with the same id.
  /** The server could not read the frame. */
  | 'malformed_frame'
  /** The server does not know the frame's type. */
  | 'unknown_type'
  /** The frame exceeds the server's frame size limit. */
  | 'frame_too_large'
  /** A seq above 2^53 - 1. */
  | 'seq_out_of_range'
  /** A `history` range the server refuses. */
  | 'invalid_range'
  /** The token does not allow this stream. */
  | 'unauthorized'
  /** The connection holds the most subscriptions it may. */
  | 'too_many_subscriptions'
  /** An `unsubscribe` for a stream not subscribed. */
  | 'not_subscribed'
  /** A `history` request starting above the head. */
  | 'range_beyond_head'
  /** A server code this version does not know; the message starts with it. */
  | 'unknown';

/**
 * Every error this package throws or rejects with, but for two mistakes in
 * the calling code: a `description` or `adapter` that is not valid (a
 * `TypeError` naming what is wrong) and a `Sequencer` used after `free()`.
 * The message names what was wrong (the stream, key, option or limit); a
 * server's refusal starts with the server's code.
 */
export class SeqsyncError extends Error {
  /** What was wrong (see `SeqsyncErrorCode`). */
  readonly code: SeqsyncErrorCode;
  /** The HTTP status of a foreign server's answer to a failed publish, when there was one. */
  readonly status?: number;
  constructor(code: SeqsyncErrorCode, message: string);
}

/** The phase of one stream. */
export type StreamPhase = 'disconnected' | 'subscribing' | 'snapshotting' | 'live';

/** Why a stream was reset. */
export type ResetReason = 'history_unavailable' | 'epoch_changed' | 'server_behind';

/** How a stream delivers: every seq in order (default), or only the newest. */
export type DeliveryMode = 'ordered' | 'latest';

/** Counters and position of one stream. */
export interface StreamStats {
  /** Messages handed to the application. */
  delivered: number;
  /** Messages dropped because they were delivered (or held) already. */
  duplicates: number;
  /** Messages dropped for lack of room (fetched again later; nothing is lost). */
  dropped: number;
  /** Seqs the server said it will never send. */
  skipped: number;
  /** Holes detected. */
  gaps: number;
  /** Times every hole closed again. */
  gapsHealed: number;
  /** History requests sent (first tries and retries). */
  resyncs: number;
  /** Resets (history gone, epoch changed, server behind). */
  resets: number;
  /** Messages held back right now. */
  buffered: number;
  /** Last contiguous seq delivered. */
  lastSeq: number;
  /** Highest seq known to exist. */
  head: number;
  /** `head - lastSeq`. */
  lag: number;
  /** The log incarnation, once known. */
  epoch: number | undefined;
  /** The stream's phase. */
  phase: StreamPhase;
}

/** Tuning of the sequencer; every field has a default. */
export interface CoreOptions {
  /** Reorder window in seqs (rounded up to a power of two). Default 1024. */
  window?: number;
  /** How long a hole may stay open before it is requested. Default 100. */
  gapTimeoutMs?: number;
  /** First wait for a history or snapshot answer. Default 2000. */
  requestTimeoutMs?: number;
  /** Longest wait between retries. Default 30000. */
  maxBackoffMs?: number;
  /** Unanswered attempts before a `stalled` gap event. Default 5. */
  stallAfterAttempts?: number;
  /** Largest range asked for in one history request. Default 512. */
  maxFetch?: number;
  /** Most streams at once. Default 100000. */
  maxStreams?: number;
}

/** Where a subscription starts and how it delivers. */
export interface StartOptions {
  /** Resume after this seq (the application has everything up to it). */
  since?: number;
  /** The epoch `since` belongs to; a different server epoch resets the stream. */
  epoch?: number;
  /** Default `'ordered'`. */
  mode?: DeliveryMode;
}

/** What `onGap` is told. */
export type GapEvent =
  | { type: 'detected'; from: number; to: number }
  | { type: 'healed'; through: number }
  | { type: 'skipped'; from: number; to: number }
  | { type: 'stalled'; request: 'history'; from: number; to: number; attempts: number }
  | { type: 'stalled'; request: 'snapshot' | 'subscribe'; attempts: number };

/**
 * The callbacks of one subscription; each is optional (undefined or null:
 * none). A callback that is not a function, or a key not listed here (such
 * as `onmessage`), makes `subscribe` throw `invalid_argument`.
 */
export interface SubscribeHandlers<T = Json, S = Json> extends StartOptions {
  /**
   * The next message: every seq once, in order. `seq` and `epoch` are its
   * position: stored with the application's own state (in the same write),
   * they are what `since` and `epoch` take back to resume exactly after it.
   * `epoch` is a number from a seqsync server; it is undefined only for a
   * server that names no epochs.
   */
  onMessage?: (data: T, seq: number, epoch: number | undefined) => void;
  /** The stream's state at `seq`: replaces whatever the application held. */
  onSnapshot?: (state: S, seq: number, epoch: number) => void;
  /** What was missing is gone: drop the state; a snapshot follows. */
  onReset?: (reason: ResetReason, earliest: number | undefined) => void;
  /** Holes detected, healed, skipped, or a recovery request that stalls. */
  onGap?: (event: GapEvent) => void;
  /** The stream's phase changed. */
  onState?: (phase: StreamPhase) => void;
  /**
   * The server refused a request for this stream (`code` is its error
   * code as the server wrote it, e.g. `unauthorized`, also when this
   * version does not know it). The request is retried with backoff, like
   * an unanswered one. Also told, once, when this client refuses a
   * subscribe made before it had loaded for a reason `subscribe` could not
   * check at once; that subscription then ends.
   */
  onRefused?: (code: string, message: string) => void;
}

/** One subscribed stream. */
export interface Subscription {
  /** The stream's name. */
  readonly stream: string;
  /** Counters and position (undefined until the core has loaded). */
  stats(): StreamStats | undefined;
  /** Stops the stream; no callback runs after this returns. */
  unsubscribe(): void;
}

/** The connection, as told to `onConnection`. */
export type ConnectionState =
  | { state: 'connecting'; endpoint: string; attempt: number }
  | { state: 'connected'; endpoint: string }
  | { state: 'disconnected'; reason: string; retryInMs: number }
  | { state: 'closed' };

/** A key-value store for resume points (`localStorage` by default). */
export interface PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** A WebSocket constructor (the browser's, Node's, or the `ws` package's). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The part of a WebSocket the client uses. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/**
 * How a `Client` connects and recovers; the names match the native client's.
 * Every number is finite and 0 or more; an option of another type or out of
 * range makes the constructor throw `invalid_argument`, naming it.
 */
export interface ClientOptions {
  /** More server URLs, tried in turn after the first (one URL or a list). */
  endpoints?: string | string[];
  /**
   * Access token, sent percent-encoded as the `token` query parameter; or a function asked for a
   * fresh one before every connection attempt (tokens expire: a reconnect never reuses a stale
   * one). A function that throws or rejects fails that attempt, which is retried with backoff.
   */
  token?: string | (() => string | Promise<string>);
  /** The sequencer's tuning. */
  core?: CoreOptions;
  /** Bound of the first reconnect wait; doubles up to `reconnectMaxMs`, each wait drawn between 0 and it. Default 100. */
  reconnectInitialMs?: number;
  /** Largest bound of a reconnect wait. Default 10000. */
  reconnectMaxMs?: number;
  /** A connection that lasted this long resets the backoff; one that ends sooner counts as a failure. Default 5000. */
  stableAfterMs?: number;
  /** A connection on which nothing arrived for this long, while subscribed or publishing, is replaced. Default 5000. */
  heartbeatTimeoutMs?: number;
  /** A live stream that heard nothing (no message, no heartbeat naming it) for this long subscribes again; 0: never. Default 10000. */
  silenceTimeoutMs?: number;
  /** Longest wait for one connection attempt. Default 5000. */
  connectTimeoutMs?: number;
  /** How long `ready` waits for the first connection before the client gives up (0: forever). Default 10000. */
  initialConnectTimeoutMs?: number;
  /** Largest frame accepted from the server, in bytes of UTF-8. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Largest publish frame, in bytes of UTF-8 (the server's limit); larger publishes reject with `publish_too_large`. Default 65536. */
  maxPublishBytes?: number;
  /** How long a publish waits for its ack, across reconnects and retries. Default 30000. */
  publishTimeoutMs?: number;
  /** Most publishes waiting for an ack at once. Default 10000. */
  maxPendingPublishes?: number;
  /**
   * Resume across page loads: each stream's last delivered seq and epoch are
   * kept in `storage` (a string is the key prefix, default `"seqsync:"`),
   * written every `persistIntervalMs` while messages flow, when the page is
   * hidden, and on `unsubscribe` and `close`. Across a reload or a closed
   * tab every message comes exactly once. Across a crash (the page killed,
   * no `pagehide`) nothing is lost, but the messages delivered after the
   * last write (about the last `persistIntervalMs`: a write that is due is
   * made by the first message after it, even when the page's timers run
   * late) come again. For exactly once across a crash, store
   * `onMessage`'s `seq` and `epoch` with the application's own state and
   * pass them back as `since` and `epoch`.
   */
  persist?: boolean | string;
  /** How often resume positions are written while messages flow. Default 250 with `persist`. */
  persistIntervalMs?: number;
  /** Where resume points are kept. Default `localStorage`. */
  storage?: PositionStorage;
  /** The WebSocket to use. Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Told every change of the connection's state. */
  onConnection?: (state: ConnectionState) => void;
  /**
   * Where to load the WASM module from (see `init`). With `adapter` or
   * `description`, the module of `seqsync/foreign`: `seqsync_foreign_bg.wasm`.
   */
  wasm?: WasmSource;
  /**
   * The server does not speak the seqsync protocol: this adapter reads its
   * frames and carries out the client's requests (see `ForeignAdapter`).
   * The client then loads `seqsync/foreign` and its own WASM module.
   */
  adapter?: ForeignAdapter;
  /**
   * The server does not speak the seqsync protocol, and is described as
   * data: the same as `adapter: describe(description)`. An invalid
   * description rejects `ready` with a `TypeError` saying what is wrong.
   */
  description?: Description;
}

/** Client-wide counters. */
export interface ClientStats {
  /** Successful connections. */
  connects: number;
  /** Connections that ended (lost, dead peer, closed by the server). */
  disconnects: number;
  /** Connection attempts that never opened. */
  connectFailures: number;
  /** Frames received. */
  frames: number;
  /**
   * Size of the frames received in UTF-16 code units (JavaScript's
   * `string.length`), not UTF-8 bytes: the same for ASCII text, smaller for
   * other text. Counting UTF-8 would cost a pass over every frame.
   */
  bytes: number;
  /** Frames dropped as malformed, too large or rejected by the sequencer (a foreign server's: those its adapter could not read). */
  badFrames: number;
  /** Frames sent. */
  framesSent: number;
  /** Bytes (UTF-8) of frames sent. */
  bytesSent: number;
  /** History frames received. */
  historyFrames: number;
  /** Size of the history frames received, in UTF-16 code units like `bytes`. */
  historyBytes: number;
  /** Messages inside history frames. */
  historyMessages: number;
  /** Of those, messages the client had already (wasted recovery traffic). */
  historyDuplicates: number;
  /** Publishes acknowledged. */
  published: number;
  /** Publishes sent again after a `rate_limited` or `internal` refusal (a foreign server: HTTP 429 or 503). */
  publishRetries: number;
  /** Publishes that failed (refused, timed out, closed). */
  publishFailures: number;
  /** Publishes waiting for their ack. */
  pendingPublishes: number;
  /** Subscribes sent again because a live stream went silent. */
  resubscribes: number;
  /** Answers dropped because they belong to an earlier subscription of their stream. */
  staleAnswers: number;
  /** Requests the server refused (see `onRefused`). */
  refusedRequests: number;
}

/**
 * A connection to a seqsync server that stays up by itself: reconnects with
 * exponential backoff and full jitter, resumes every stream after its last
 * delivered seq, fetches whatever was missed, and hands each stream's
 * messages to `onMessage` exactly once, in order.
 *
 * ```js
 * const client = new Client('wss://example.org/ws');
 * const sub = client.subscribe('room:1', { onMessage: (data, seq) => console.log(seq, data) });
 * await client.publish('room:1', { text: 'hi' });
 * ```
 */
export class Client {
  /**
   * Starts connecting at once. Throws `SeqsyncError` `invalid_argument`
   * for a `url` that is not a string, `options` that are not an object, or
   * an option of the wrong type or out of range (a number that is not
   * finite or is below 0, a string where a number belongs, ...), the
   * option's path named (`options.core.window`); `no_websocket` without a
   * WebSocket, and `no_crypto` without `crypto.getRandomValues` (publish
   * ids are drawn from it).
   */
  constructor(url: string, options?: ClientOptions);
  /** Resolves on the first connection; rejects if `initialConnectTimeoutMs` passes first. */
  readonly ready: Promise<void>;
  /** The connection's current state. */
  readonly connectionState: ConnectionState;
  /**
   * Follows a stream: from a snapshot, or after `since`. A stream
   * subscribed again after `unsubscribe` starts from a snapshot too, unless
   * `persist` kept its position. Throws `SeqsyncError`: `invalid_stream`,
   * `already_subscribed`, `invalid_subscription` (a `since` or `epoch` that
   * is not an integer in 0..2^53-1, an unknown `mode`), `invalid_argument`
   * (handlers that are not an object, a handler that is not a function, a
   * key that is not one of `SubscribeHandlers`; the stream and key named),
   * `too_many_streams`, `closed`.
   */
  subscribe<T = Json, S = Json>(stream: string, handlers?: SubscribeHandlers<T, S>): Subscription;
  /**
   * Appends `data` (a value JSON carries as it is) to `stream`; resolves
   * to its seq. Sent again with the same id after every reconnect (after the
   * subscribes) and after `rate_limited` or `internal` refusals, until acked
   * or `publishTimeoutMs` passes. Rejects with `SeqsyncError`
   * (`invalid_stream`; `invalid_payload` for data JSON cannot carry as it
   * is: `NaN`, `Infinity`, a `Map`, a `Set`, a `BigInt`, a cycle, or a
   * top-level `undefined`, function or symbol, never altered silently;
   * `publish_too_large`, `too_many_pending`, `publish_timeout`, `closed`, or
   * the server's code, `unknown` for one this version does not know).
   * A publish that timed out may have been stored.
   */
  publish<T = Json>(stream: string, data: T): Promise<number>;
  /** Client-wide counters. */
  stats(): ClientStats;
  /**
   * Unsubscribes every stream, waits for publishes in flight (up to their
   * timeout, reconnecting through an outage if need be), then closes.
   */
  close(): Promise<void>;
}

/** What the bare `Sequencer` (`seqsync/sequencer`) asks to send: a protocol v1 client frame. */
export type ClientFrame =
  | { type: 'subscribe'; stream: string; since?: number; epoch?: number }
  | { type: 'unsubscribe'; stream: string }
  | { type: 'history'; stream: string; from: number; to: number }
  | { type: 'snapshot'; stream: string };

/** A protocol v1 server frame, as `JSON.parse` returns it. */
export type ServerFrame<T = Json> =
  | { type: 'msg'; stream: string; seq: number; epoch?: number; data: T }
  | { type: 'snapshot'; stream: string; seq: number; epoch: number; state: T; ref?: string }
  | { type: 'subscribed'; stream: string; epoch: number; head: number; ref?: string }
  | {
      type: 'history';
      stream: string;
      from: number;
      to: number;
      epoch?: number;
      messages: { seq: number; data: T }[];
      skipped?: { from: number; to: number }[];
      ref?: string;
    }
  | { type: 'head'; heads: { [stream: string]: { seq: number; epoch: number } } }
  | { type: 'reset'; stream: string; reason: string; earliest?: number; ref?: string }
  | { type: 'ack'; id: string; stream: string; seq: number }
  | { type: 'error'; code: string; message: string; ref?: string };

/** What the bare `Sequencer` (`seqsync/sequencer`) tells the application; `stream` is a handle. */
export type SequencerEvent<T = Json> =
  | { type: 'message'; stream: number; seq: number; epoch: number | undefined; data: T }
  | { type: 'snapshot'; stream: number; seq: number; epoch: number; state: T }
  | { type: 'reset'; stream: number; reason: ResetReason; earliest?: number }
  | { type: 'skipped'; stream: number; from: number; to: number }
  | { type: 'gapDetected'; stream: number; from: number; to: number }
  | { type: 'gapHealed'; stream: number; through: number }
  | { type: 'stalled'; stream: number; request: 'history'; from: number; to: number; attempts: number }
  | { type: 'stalled'; stream: number; request: 'snapshot' | 'subscribe'; attempts: number }
  | { type: 'phase'; stream: number; phase: StreamPhase };

// ---- servers that do not speak the seqsync protocol (docs/protocol.md section 12) ----

/**
 * A path to a value inside a JSON value: `$` is the value itself; else
 * dot-separated segments, each a member name or, on an array, an index
 * (`data.items.0.seq`).
 */
export type JsonPath = string;

/** Where a message's (or heartbeat's) parts are in a frame. Paths left out are `$`. */
export interface MessageShape {
  /** With `matches`: a frame is one only when the value here is `matches` (a string equal to it, or another value whose JSON text is it). */
  when?: JsonPath;
  /** The value `when` must hold. */
  matches?: string;
  /** The stream's name: at a path (default `{ path: 'stream' }`), or one for the whole connection. */
  stream?: { path: JsonPath } | { fixed: string };
  /** The seq: an integer in 1..2^53-1 (a heartbeat's: 0 allowed). */
  seq: JsonPath;
  /** An epoch, for a server whose log can start over: another epoch resets the stream. */
  epoch?: JsonPath | null;
  /** The payload (default `$`: the whole frame); a missing member reads as `null`. */
  payload?: JsonPath;
}

/**
 * A server that does not speak the seqsync protocol, as data (the JSON of
 * docs/protocol.md 12.1, the same for the native client). Templates are text
 * with `{stream}`, `{since}`, `{from}`, `{to}`, `{limit}`, `{data}`, `{id}`.
 */
export interface Description {
  /** Which frames are messages, and where their parts are. */
  message: MessageShape;
  /** Frame template sent when a stream starts on a connection. */
  subscribe?: string | null;
  /** Frame template sent when a stream stops. */
  unsubscribe?: string | null;
  /** A frame carrying a stream's latest seq: with it, a silent connection is dead. */
  heartbeat?: MessageShape | null;
  /** How a missing range is fetched: an HTTP GET (`url`) or a frame (`frame`), exactly one. */
  history?: {
    url?: string | null;
    frame?: string | null;
    /** The array of messages in the answer (default `$`). */
    messages?: JsonPath;
    /** The earliest seq the server still has, in an answer or a "gone" answer. */
    earliest?: JsonPath | null;
    /** HTTP statuses meaning "no longer there" (default 404 and 410). */
    gone?: number[];
    /** `true`: the server's own seqs have holes, skipped rather than reset. */
    holes?: boolean;
    /** Most messages asked at once (default 500). */
    limit?: number;
  } | null;
  /** HTTP GET of a stream's state and the seq it reflects (paths default `$`). */
  snapshot?: { url: string; seq?: JsonPath; state?: JsonPath } | null;
  /** HTTP GET of a stream's latest seq (path default `$`). */
  head?: { url: string; seq?: JsonPath } | null;
  /** While connected, how often each live stream reads its head (or what follows its position). 0: never. */
  pollMs?: number;
  /** Where a stream without a resume point starts. Default `'beginning'`. */
  start?: 'beginning' | 'snapshot' | 'head';
  /** HTTP POST for `publish`: the body template (default `{data}`) and the path of the stored seq. */
  publish?: { url: string; body?: string | null; seq?: JsonPath | null } | null;
  /** Headers sent with every HTTP request. */
  headers?: { [name: string]: string };
}

/** What an adapter can do, and the client's choices for that server. */
export interface ForeignPlan {
  /** Missing messages can be fetched (`history` requests). */
  history?: boolean;
  /** Snapshots can be loaded. */
  snapshot?: boolean;
  /** A stream's latest seq can be read. */
  head?: boolean;
  /** Publishes can be carried out; without it `publish` rejects with `unsupported`. */
  publish?: boolean;
  /** The server sends heartbeats: a silent connection is dead. */
  heartbeats?: boolean;
  /** The server's own seqs have holes (skipped, not reset). */
  holes?: boolean;
  /** Where a stream without a resume point starts. Default `'beginning'`. */
  start?: 'beginning' | 'snapshot' | 'head';
  /** Head (or history) polling period while connected, in ms; 0: never. */
  pollMs?: number;
  /** The most messages one history request asks for. Default 500. */
  limit?: number;
}

/** What an adapter's `read` finds in a frame. */
export type ForeignFrame<T = Json> =
  | { message: { stream: string; seq: number; epoch?: number; payload: T } }
  | { heartbeat: { stream: string; seq: number; epoch?: number } }
  | { bad: string }
  | null;

/** What the client asks of a foreign server, for the adapter to carry out. */
export type ForeignRequest =
  | { kind: 'subscribe'; stream: string; since: number }
  | { kind: 'unsubscribe'; stream: string }
  | { kind: 'history'; stream: string; since: number; to?: number; limit: number }
  | { kind: 'snapshot'; stream: string }
  | { kind: 'head'; stream: string }
  | { kind: 'publish'; stream: string; data: string; id: string };

/** One HTTP request; `headers` as name-value pairs or an object. */
export interface ForeignHttp {
  method: 'GET' | 'POST';
  url: string;
  headers?: [string, string][] | { [name: string]: string };
  body?: string;
}

/** How a request goes out: a frame on the socket, an HTTP request, or nothing. */
export type ForeignOutbound = { frame: string } | { http: ForeignHttp } | null;

/** What an HTTP answer says. */
export type ForeignAnswer<T = Json> =
  /** `epoch`: the one epoch the messages name, for a server with epochs (another than the stream's resets it). */
  | { messages: { seq: number; payload: T }[]; earliest?: number; epoch?: number }
  | { snapshot: { seq: number; state: T } }
  | { head: { seq: number } }
  | { published: { seq?: number } }
  | { gone: { earliest?: number } }
  | { failed: { reason: string; status?: number } };

/**
 * A server that does not speak the seqsync protocol, in code: `describe`
 * makes one from a description; write one by hand for a server no
 * description captures. The client makes every decision (what to ask and
 * when, what an answer covers); the adapter only translates. Its functions
 * may throw: a throwing `read` counts a bad frame, a throwing `request` or
 * `answer` a failed request.
 */
export interface ForeignAdapter<T = Json> {
  /** What the server can do. */
  readonly plan: ForeignPlan;
  /** What a text frame from the server is: a message, a heartbeat, nothing (`null`), or bad. */
  read(frame: string): ForeignFrame<T>;
  /**
   * How `request` goes out. A `history` request sent as a frame is taken
   * as sent: the messages come as ordinary frames. `subscribe` and
   * `unsubscribe` expect no answer.
   */
  request(request: ForeignRequest): ForeignOutbound;
  /**
   * What the HTTP answer (`status`, body text) to `request` says. Bodies
   * over 32 MiB and requests without an answer within 10 s are failures
   * the client reports itself.
   */
  answer(request: ForeignRequest, status: number, body: string): ForeignAnswer<T>;
}
