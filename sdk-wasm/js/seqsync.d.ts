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
 * own module and its own `init`. Rejects with `SeqsyncError`
 * `wasm_unavailable`, `wasm_invalid` or `wasm_blocked`, naming the URL (also
 * as `url`); a later call tries again.
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
  /** `Client.subscribe` (`stream`, `store`) of a stream this client follows from another `since`, `epoch` or `mode`; `Sequencer.subscribe` of a stream it follows. */
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
  /**
   * The WASM module could not be fetched or read: a network error, a `connect-src` that leaves
   * its origin out, or an HTTP status other than 2xx (named in the message). `url` is the module's.
   */
  | 'wasm_unavailable'
  /** What came at the WASM module's URL is not this package's module (an HTML page: "expected magic word"). */
  | 'wasm_invalid'
  /** The page's Content-Security-Policy forbids compiling WebAssembly: `script-src` needs `'wasm-unsafe-eval'`. */
  | 'wasm_blocked'
  // ---- the client
  /** The client is closed (or closing): a call after `close()`, `connect()` included. */
  | 'closed'
  /**
   * No connection within `initialConnectTimeoutMs` (of the start or of the last `connect()`):
   * `ready` (the first time) and `connect()` reject with it, and the state is `failed`. The client
   * is not closed: `connect()` tries again. Also what `connect()` rejects with when
   * `disconnect()` is called before the connection opens.
   */
  | 'connect_failed'
  /**
   * A pending publish when the client closed at once (`close({ force: true })`, an aborted
   * `signal`, or `close()` while `disconnected` by `disconnect()` or `failed`): it may have been
   * stored, as it may have been sent.
   */
  | 'publish_unconfirmed'
  /** A publish not acked within `publishTimeoutMs`. It may have been stored. */
  | 'publish_timeout'
  /** More than `maxPendingPublishes` publishes waiting for their ack. */
  | 'too_many_pending'
  /**
   * A publish frame over `maxPublishBytes` or the frame size limit the server announced, refused
   * before it is sent; or one the server refused as too large (it announced no limit), failed at
   * once and never sent again. The message names the size, the limit and whose it is:
   * `room: publish of 2,000,123 bytes is over the server's limit of 65,536 bytes`.
   */
  | 'publish_too_large'
  /** `Client.stream`: more than `maxQueued` events were waiting to be taken; the iteration ends with it, after the events it held, and its subscription is released. */
  | 'overflow'
  /** A foreign server's publish request failed (see `status`). */
  | 'publish_failed'
  /** A publish to a foreign server that has no publish request. */
  | 'unsupported'
  // ---- the server's refusal of a publish (the protocol's error codes; `invalid_stream`,
  // `too_many_streams` above); also what `client.on('error')` is told.
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
  /** The server is busy. Only through `client.on('error')`: a publish refused so is sent again with the same id, a request retried. */
  | 'rate_limited'
  /** The server failed. Only through `client.on('error')`: a publish refused so is sent again with the same id, a request retried. */
  | 'internal'
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
  /** The WASM module's URL, for `wasm_unavailable`, `wasm_invalid` and `wasm_blocked` (when it was loaded from one). */
  readonly url?: string;
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
 *
 * Their order: `onState('snapshotting')` (a stream without a position) or
 * `onState('subscribing')` (one that resumes); `onSnapshot`, then
 * `onState('live')` (a resumed stream has no snapshot); then `onMessage`
 * for every seq after it, in order. A lost connection: `onState('disconnected')`,
 * then `subscribing` and `live` again, resuming after the last seq delivered.
 * `onReset` is followed by `onSnapshot`.
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
  /**
   * The stream's state at `seq`: replaces whatever the application held. The
   * reference server's `state` is `{ messages: [{ seq, data }, ...] }`: the
   * stream's last 100 messages (its `--snapshot-messages`; fewer past
   * `--snapshot-max-bytes`, 512 KiB), ascending, the last one at `seq`; no
   * messages and `seq` 0 for an empty stream.
   */
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

/**
 * What a subscription's listeners are told, by event: each gets exactly
 * the arguments of the matching handler (`message`: `onMessage`, ...).
 */
export interface SubscriptionEvents<T = Json, S = Json> {
  message: NonNullable<SubscribeHandlers<T, S>['onMessage']>;
  snapshot: NonNullable<SubscribeHandlers<T, S>['onSnapshot']>;
  reset: NonNullable<SubscribeHandlers<T, S>['onReset']>;
  gap: NonNullable<SubscribeHandlers<T, S>['onGap']>;
  state: NonNullable<SubscribeHandlers<T, S>['onState']>;
  refused: NonNullable<SubscribeHandlers<T, S>['onRefused']>;
}

/**
 * One subscription of a stream. Several may follow the same stream: it is
 * subscribed once, and released when the last of them unsubscribes.
 */
export interface Subscription<T = Json, S = Json> {
  /** The stream's name. */
  readonly stream: string;
  /**
   * The stream's counters and position (undefined until the core has
   * loaded, and after `unsubscribe`). Shared by every subscription of the
   * stream: one that joined later reads there where it joined (`lastSeq`).
   */
  stats(): StreamStats | undefined;
  /**
   * Adds a listener, called after those added before it (the handlers
   * passed to `subscribe` come first); returns the function that removes
   * it. An event name not listed in `SubscriptionEvents`, or a listener
   * that is not a function, throws `invalid_argument`.
   *
   * ```js
   * const off = sub.on('message', (data, seq) => render(seq, data));
   * off();
   * ```
   */
  on<K extends keyof SubscriptionEvents<T, S>>(event: K, listener: SubscriptionEvents<T, S>[K]): () => void;
  /**
   * Removes this subscription's listeners (no callback of it runs after
   * this returns); the last subscription of the stream to leave stops it.
   */
  unsubscribe(): void;
}

/** What `Client.on` listeners are told, by event. */
export interface ClientEvents {
  /** Every change of the connection's state, as `onConnection` is told. */
  state: (state: ConnectionState) => void;
  /**
   * What the application would not see otherwise: the server's `error`
   * frame that answers nothing pending (its code, `unknown` for one this
   * version does not know); a stream's request the server refused (also
   * told to the stream's `refused` listeners; retried with backoff); a
   * subscription made before the client had loaded, which it refused then
   * (that subscription ends). The message names the stream.
   */
  error: (error: SeqsyncError) => void;
}

/**
 * What `Client.stream` yields and a store's `reduce` is given: a stream's
 * deliveries in their order. Gap events are not among them: holes are
 * repaired before delivery, and seqs the server skips show as a jump of
 * `seq` (subscribe with an `onGap` listener to watch repairs).
 */
export type StreamEvent<T = Json, S = Json> =
  | { type: 'message'; seq: number; epoch: number | undefined; data: T }
  | { type: 'snapshot'; seq: number; epoch: number; state: S }
  | { type: 'reset'; reason: ResetReason; earliest: number | undefined };

/** Where `Client.stream` starts, and what ends it. */
export interface StreamOptions extends StartOptions {
  /** Aborting it releases the stream; the loop then throws `signal.reason`. */
  signal?: AbortSignal;
  /** Most events held for the loop; past them it ends with `overflow`. Default 10000. */
  maxQueued?: number;
}

/**
 * What a store without `reduce` holds: the last snapshot's `state`, the
 * messages after it (the last `keep`, oldest first), and the position of
 * the last delivery. A reset empties it until the next snapshot.
 */
export interface StreamValue<T = Json, S = Json> {
  state: S | undefined;
  messages: { seq: number; data: T }[];
  seq: number | undefined;
  epoch: number | undefined;
}

/** The shape React's `useSyncExternalStore` takes (`subscribe`, `getSnapshot`). */
export interface Store<V> {
  /**
   * Adds a listener, called with no argument after each change of the
   * value; returns the function that removes it. The first listener
   * subscribes the stream; the last to leave releases it.
   */
  subscribe(listener: () => void): () => void;
  /** The current value: the same object until an event changes it. */
  getSnapshot(): V;
}

/**
 * The connection, as told to `onConnection`. `disconnected` with `retryInMs`
 * -1 (and the reason `'disconnect() called'`): stopped by `disconnect()`, no
 * attempt until `connect()`. `failed`: no connection within
 * `initialConnectTimeoutMs`, `error` the `connect_failed` that `ready`
 * rejected with; no attempt until `connect()`. `closed`: for good.
 *
 * A `disconnected` state's `reason`: `not opened (...)` for an attempt
 * whose socket never opened (a refused or unreachable host and an upgrade
 * the server refused, such as HTTP 401 for a token, look the same in a
 * browser; the parentheses hold the cause where the platform names it),
 * `closed (code: reason)` for a connection that opened and then closed,
 * `connect timed out`, `no frame within the heartbeat timeout`, or
 * `no token: ...`.
 */
export type ConnectionState =
  | { state: 'connecting'; endpoint: string; attempt: number }
  | { state: 'connected'; endpoint: string }
  | { state: 'disconnected'; reason: string; retryInMs: number }
  | { state: 'failed'; error: SeqsyncError }
  | { state: 'closed' };

/** Options of `Client.close`. */
export interface CloseOptions {
  /**
   * Close at once, without waiting for pending publishes: each rejects with
   * `publish_unconfirmed` (it may have been stored).
   */
  force?: boolean;
}

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
  /**
   * How long the first connection (of the client, or after `connect()`) may take before the
   * client gives up: state `failed`, `ready` or `connect()` rejects with `connect_failed`, and
   * no attempt until `connect()` (0: never give up). Default 10000.
   */
  initialConnectTimeoutMs?: number;
  /** Largest frame accepted from the server, in bytes of UTF-8. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Largest publish frame, in bytes of UTF-8; the limit a server announces applies too when it is smaller. Larger publishes reject with `publish_too_large`, unsent. Default 65536. */
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
   * Aborting it closes the client at once, as `close({ force: true })`; one
   * already aborted closes it in the constructor.
   */
  signal?: AbortSignal;
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
  /**
   * Resolves on the first connection; rejects with `connect_failed` if
   * `initialConnectTimeoutMs` passes first (the client is then `failed`, not
   * closed: see `connect()`), or `closed`; or with the WASM module's load
   * error (`wasm_unavailable`, `wasm_invalid`, `wasm_blocked`). It settles
   * once: after that, wait on what `connect()` returns.
   */
  readonly ready: Promise<void>;
  /** The connection's current state. */
  readonly connectionState: ConnectionState;
  /**
   * Adds a listener of the client's `state` or `error`; returns the
   * function that removes it. Another event name, or a listener that is
   * not a function, throws `invalid_argument`.
   *
   * ```js
   * const off = client.on('state', (s) => console.log(s.state));
   * ```
   */
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void;
  /**
   * Follows a stream: from a snapshot, or after `since`. A stream name is 1
   * to 256 bytes of UTF-8 with no control character (Unicode Cc: U+0000 to
   * U+001F, U+007F to U+009F); every other character is allowed, and names
   * are compared byte for byte. A stream
   * subscribed again after `unsubscribe` starts from a snapshot too, unless
   * `persist` kept its position. The handlers are the subscription's first
   * listeners (`on` adds more). A stream this client follows already is
   * shared: the new subscription gets its deliveries from the point it
   * joins (no snapshot; `stats().lastSeq` says where), and `since`,
   * `epoch` and `mode` must be absent or those it was subscribed with.
   * Throws `SeqsyncError`: `invalid_stream`, `already_subscribed` (the
   * stream is followed from another `since`, `epoch` or `mode`),
   * `invalid_subscription` (a `since` or `epoch` that
   * is not an integer in 0..2^53-1, an unknown `mode`), `invalid_argument`
   * (handlers that are not an object, a handler that is not a function, a
   * key that is not one of `SubscribeHandlers`; the stream and key named),
   * `too_many_streams`, `closed`.
   */
  subscribe<T = Json, S = Json>(stream: string, handlers?: SubscribeHandlers<T, S>): Subscription<T, S>;
  /**
   * A stream's deliveries as an async iterable, subscribed at the call (a
   * shared subscription, like one of `subscribe`). At most `maxQueued`
   * events wait for the loop; past them the loop gets those it holds, then
   * throws `overflow`, and the stream is released: nothing is dropped
   * silently. `break` (or `return()`) releases the stream, and so does
   * `signal`: the loop then throws `signal.reason`. The loop ends when the
   * client is closed. Throws at the call what `subscribe` throws,
   * `invalid_argument` for an unknown option, and `signal.reason` when the
   * signal is aborted already.
   *
   * ```js
   * for await (const e of client.stream('room:1', { signal })) {
   *   if (e.type === 'message') render(e.seq, e.data);
   * }
   * ```
   */
  stream<T = Json, S = Json>(stream: string, options?: StreamOptions): AsyncIterable<StreamEvent<T, S>>;
  /**
   * A store of a stream for React's `useSyncExternalStore` (or another store
   * of the same shape): the stream is subscribed with the first listener
   * and released when the last leaves (a later first listener subscribes
   * it again, from a snapshot or `since`). Its value is `initial`, then
   * `reduce(value, event)` for every delivery, a reset included (to clear
   * what it held). A value `reduce` returns unchanged (`===`) tells no
   * listener. Without `reduce`: a `StreamValue` keeping the last `keep`
   * messages (default 100). A store that joins a stream another
   * subscription of this client follows gets the deliveries from there on
   * (no snapshot): make one store per stream and share it. Throws at the
   * call what `subscribe` checks of its name and position, and
   * `invalid_argument` for an option of the wrong kind.
   *
   * ```js
   * const room = client.store('room:1');
   * const { state, messages } = useSyncExternalStore(room.subscribe, room.getSnapshot);
   * ```
   */
  store<T = Json, S = Json>(stream: string, options?: StartOptions & { initial?: StreamValue<T, S>; keep?: number }): Store<StreamValue<T, S>>;
  store<V, T = Json, S = Json>(
    stream: string,
    options: StartOptions & { initial: V; reduce: (value: V, event: StreamEvent<T, S>) => V },
  ): Store<V>;
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
   * Starts connecting again after `disconnect()` or a give-up (state
   * `failed`): an attempt at once, with the backoff reset, and
   * `initialConnectTimeoutMs` again for this first connection. While the
   * client waits out a backoff, the next attempt starts now; while it is
   * connecting or connected, nothing changes. Subscriptions (made meanwhile
   * too) subscribe again, resuming where they were; pending publishes go
   * after them. Returns at once: the promise resolves on the next
   * `connected` (at once if connected), rejects with `connect_failed` when
   * the client gives up again or `disconnect()` comes first, `closed` when
   * it closes first. Not waiting for it is fine. Throws `closed` after
   * `close()`. Any number of times.
   */
  connect(): Promise<void>;
  /**
   * Closes the socket and stops reconnecting until `connect()`: state
   * `{ state: 'disconnected', reason: 'disconnect() called', retryInMs: -1 }`.
   * Subscriptions stay, and pending publishes wait, each until its
   * `publishTimeoutMs`. Returns at once; does nothing after `close()`.
   */
  disconnect(): void;
  /**
   * Unsubscribes every stream, waits for publishes in flight (up to their
   * timeout, reconnecting through an outage if need be), then closes. A
   * client stopped by `disconnect()` or `failed` does not connect again for
   * them: it closes at once, as with `force`. With `{ force: true }`: closes
   * at once, each pending publish rejecting with `publish_unconfirmed`.
   * Throws `invalid_argument` for options that are not `CloseOptions`.
   */
  close(options?: CloseOptions): Promise<void>;
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

// ---- servers that do not speak the seqsync protocol ----

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
 * A server that does not speak the seqsync protocol, as data (the same JSON
 * the native client takes). Every member but `message.seq` is optional; an
 * unknown member is an error. Templates are text
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
