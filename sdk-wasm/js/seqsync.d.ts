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
 * Loads the WASM core. `Client` does it by itself; await it before
 * `new Sequencer()`. Safe to call many times. Without an argument the module
 * is fetched next to this file (read from disk under Node).
 */
export function init(source?: WasmSource): Promise<void>;

/** Every error this package throws or rejects with. */
export class SeqsyncError extends Error {
  /**
   * What was wrong: `closed`, `connect_failed`, `publish_timeout`,
   * `too_many_pending`, `invalid_stream`, `already_subscribed`,
   * `invalid_subscription`, `invalid_data`, `invalid_input`,
   * `not_initialized`, `no_websocket`, or an error code of the server
   * (`unauthorized`, `rate_limited`, ...).
   */
  readonly code: string;
  constructor(code: string, message: string);
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

/** The callbacks of one subscription; each is optional. */
export interface SubscribeHandlers<T = Json, S = Json> extends StartOptions {
  /** The next message: every seq once, in order. */
  onMessage?: (data: T, seq: number) => void;
  /** The stream's state at `seq`: replaces whatever the application held. */
  onSnapshot?: (state: S, seq: number, epoch: number) => void;
  /** What was missing is gone: drop the state; a snapshot follows. */
  onReset?: (reason: ResetReason, earliest: number | undefined) => void;
  /** Holes detected, healed, skipped, or a recovery request that stalls. */
  onGap?: (event: GapEvent) => void;
  /** The stream's phase changed. */
  onState?: (phase: StreamPhase) => void;
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
  | { state: 'disconnected'; reason: string }
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
  close(code?: number): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** How a `Client` connects and recovers; the names match the native client's. */
export interface ClientOptions {
  /** More server URLs, tried in turn after the first. */
  endpoints?: string[];
  /** Access token, sent as the `token` query parameter. */
  token?: string;
  /** The sequencer's tuning. */
  core?: CoreOptions;
  /** First wait before reconnecting; doubles up to `reconnectMaxMs`, full jitter. Default 100. */
  reconnectInitialMs?: number;
  /** Longest wait between reconnect attempts. Default 10000. */
  reconnectMaxMs?: number;
  /** A connection silent for this long (not even a heartbeat) is replaced. Default 5000. */
  heartbeatTimeoutMs?: number;
  /** Longest wait for one connection attempt. Default 5000. */
  connectTimeoutMs?: number;
  /** How long `ready` waits for the first connection before the client gives up. Default 10000. */
  initialConnectTimeoutMs?: number;
  /** Largest frame accepted from the server, in characters. Default 1 MiB. */
  maxFrameBytes?: number;
  /** How long a publish waits for its ack, across reconnects. Default 30000. */
  publishTimeoutMs?: number;
  /** Most publishes waiting for an ack at once. Default 10000. */
  maxPendingPublishes?: number;
  /**
   * Resume across page loads: each stream's last delivered seq and epoch are
   * kept in `storage` (a string is the key prefix, default `"seqsync:"`),
   * written at most every 250 ms and when the page is hidden.
   */
  persist?: boolean | string;
  /** Where resume points are kept. Default `localStorage`. */
  storage?: PositionStorage;
  /** The WebSocket to use. Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Told every change of the connection's state. */
  onConnection?: (state: ConnectionState) => void;
  /** Where to load the WASM module from (see `init`). */
  wasm?: WasmSource;
}

/** Client-wide counters. */
export interface ClientStats {
  /** Successful connections. */
  connects: number;
  /** Connections lost. */
  disconnects: number;
  /** Frames received. */
  frames: number;
  /** Characters of frames received. */
  bytes: number;
  /** Frames dropped as malformed or rejected by the sequencer. */
  badFrames: number;
  /** History frames received. */
  historyFrames: number;
  /** Characters of history frames received. */
  historyBytes: number;
  /** Messages inside history frames. */
  historyMessages: number;
  /** Publishes acknowledged. */
  published: number;
  /** Publishes waiting for their ack. */
  pendingPublishes: number;
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
  constructor(url: string, options?: ClientOptions);
  /** Resolves on the first connection; rejects if `initialConnectTimeoutMs` passes first. */
  readonly ready: Promise<void>;
  /** The connection's current state. */
  readonly connectionState: ConnectionState;
  /** Follows a stream. Throws `SeqsyncError` for an invalid or duplicate stream name. */
  subscribe<T = Json, S = Json>(stream: string, handlers?: SubscribeHandlers<T, S>): Subscription;
  /** Appends `data` (anything `JSON.stringify` accepts) to `stream`; resolves to its seq. Retried with the same id across reconnects. */
  publish<T = Json>(stream: string, data: T): Promise<number>;
  /** Client-wide counters. */
  stats(): ClientStats;
  /** Waits for publishes in flight (up to their timeout), then closes. */
  close(): Promise<void>;
}

/** What the bare `Sequencer` asks to send: a protocol v1 client frame. */
export type ClientFrame =
  | { type: 'subscribe'; stream: string; since?: number; epoch?: number }
  | { type: 'unsubscribe'; stream: string }
  | { type: 'history'; stream: string; from: number; to: number }
  | { type: 'snapshot'; stream: string };

/** A protocol v1 server frame, as `JSON.parse` returns it. */
export type ServerFrame<T = Json> =
  | { type: 'msg'; stream: string; seq: number; epoch?: number; data: T }
  | { type: 'snapshot'; stream: string; seq: number; epoch: number; state: T }
  | { type: 'subscribed'; stream: string; epoch: number; head: number }
  | {
      type: 'history';
      stream: string;
      from: number;
      to: number;
      epoch?: number;
      messages: { seq: number; data: T }[];
      skipped?: { from: number; to: number }[];
    }
  | { type: 'head'; heads: { [stream: string]: { seq: number; epoch: number } } }
  | { type: 'reset'; stream: string; reason: string; earliest?: number }
  | { type: 'ack'; id: string; stream: string; seq: number }
  | { type: 'error'; code: string; message: string; ref?: string };

/** What the bare `Sequencer` tells the application; `stream` is a handle. */
export type SequencerEvent<T = Json> =
  | { type: 'message'; stream: number; seq: number; data: T }
  | { type: 'snapshot'; stream: number; seq: number; epoch: number; state: T }
  | { type: 'reset'; stream: number; reason: ResetReason; earliest?: number }
  | { type: 'skipped'; stream: number; from: number; to: number }
  | { type: 'gapDetected'; stream: number; from: number; to: number }
  | { type: 'gapHealed'; stream: number; through: number }
  | { type: 'stalled'; stream: number; request: 'history'; from: number; to: number; attempts: number }
  | { type: 'stalled'; stream: number; request: 'snapshot' | 'subscribe'; attempts: number }
  | { type: 'phase'; stream: number; phase: StreamPhase };

/**
 * The sans-IO sequencer, for apps that keep their own transport (SSE,
 * Socket.IO, their own WebSocket). Every input takes the current time in
 * milliseconds; after each, drain `pollRequest()`, `pollTimeout()` and
 * `pollEvent()`. Streams are named by number handles from `subscribe`.
 * Inputs that are invalid throw `SeqsyncError` and change nothing.
 */
export class Sequencer<T = Json> {
  constructor(options?: CoreOptions);
  subscribe(now: number, stream: string, options?: StartOptions): number;
  unsubscribe(now: number, stream: number): void;
  handleConnected(now: number): void;
  handleDisconnected(now: number): void;
  handleMessage(now: number, stream: number, seq: number, epoch: number | undefined, data: T): void;
  handleSnapshot(now: number, stream: number, seq: number, epoch: number, state: T): void;
  handleSubscribed(now: number, stream: number, epoch: number, head: number): void;
  handleHistory(
    now: number,
    stream: number,
    from: number,
    to: number,
    epoch: number | undefined,
    messages: { seq: number; data: T }[],
  ): void;
  handleHead(now: number, stream: number, head: number, epoch: number | undefined): void;
  handleReset(now: number, stream: number, reason: string, earliest: number | undefined): void;
  handleTimeout(now: number): void;
  /** Feeds a parsed server frame; hands back frames that are not the sequencer's. */
  handleFrame(now: number, frame: ServerFrame<T>): ServerFrame<T> | undefined;
  pollRequest(): ClientFrame | undefined;
  pollTimeout(): number | undefined;
  pollEvent(): SequencerEvent<T> | undefined;
  stats(stream: number): StreamStats | undefined;
  streamHandle(stream: string): number | undefined;
  streamName(stream: number): string | undefined;
  /** Frees the WASM memory now instead of at garbage collection. */
  free(): void;
}
