// Types of `seqsync/sequencer`: the bare sequencer, for apps that keep their own transport.

import type {
  ClientFrame,
  CoreOptions,
  Json,
  SequencerEvent,
  ServerFrame,
  StartOptions,
  StreamStats,
  WasmSource,
} from './seqsync.js';

export type {
  ClientFrame,
  CoreOptions,
  Json,
  ResetReason,
  SequencerEvent,
  ServerFrame,
  StartOptions,
  StreamPhase,
  StreamStats,
  WasmSource,
} from './seqsync.js';
export { SeqsyncError } from './seqsync.js';

/**
 * Loads this entry's WASM module (not the one of `seqsync`'s `Client`); await
 * it before `new Sequencer()`. Safe to call many times. Without an argument
 * the module is fetched next to this file (read from disk under Node).
 */
export function init(source?: WasmSource): Promise<void>;

/**
 * The sans-IO sequencer, for apps that keep their own transport (SSE,
 * Socket.IO, their own WebSocket). Every input takes the current time in
 * milliseconds; after each, drain `pollRequest()`, `pollTimeout()` and
 * `pollEvent()`. Streams are named by number handles from `subscribe`.
 * Inputs that are invalid throw `SeqsyncError` and change nothing.
 *
 * ```js
 * import { init, Sequencer } from 'seqsync/sequencer';
 * await init();
 * const seq = new Sequencer({ gapTimeoutMs: 100 });
 * ```
 */
export class Sequencer<T = Json> {
  constructor(options?: CoreOptions);
  /**
   * Follows a stream; returns its handle. Throws `SeqsyncError` with the
   * codes of `Client.subscribe`: `invalid_stream`, `already_subscribed`,
   * `too_many_streams`, `invalid_subscription`.
   */
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
  /**
   * Feeds a parsed server frame; hands back frames that are not the
   * sequencer's: other types, and frames of streams it does not follow
   * (a frame without a `stream` included).
   */
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
