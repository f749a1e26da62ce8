// Compiles only if the package's types describe the API as documented, and
// uses every public item (run with `tsc -p tests/browser/types` against the
// source; scripts/browser.sh runs it again against the packed package as
// installed, through its `exports` map). @ts-expect-error lines must fail.

import {
  Client,
  SeqsyncError,
  init,
  type ClientFrame,
  type ClientOptions,
  type ClientStats,
  type ConnectionState,
  type CoreOptions,
  type DeliveryMode,
  type GapEvent,
  type Json,
  type PositionStorage,
  type ResetReason,
  type SequencerEvent,
  type ServerFrame,
  type StartOptions,
  type StreamPhase,
  type StreamStats,
  type ClientEvents,
  type Store,
  type StreamEvent,
  type StreamOptions,
  type StreamValue,
  type SubscribeHandlers,
  type Subscription,
  type SubscriptionEvents,
  type WasmSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from 'seqsync';
import {
  describe,
  type Description,
  type ForeignAdapter,
  type ForeignAnswer,
  type ForeignFrame,
  type ForeignHttp,
  type ForeignOutbound,
  type ForeignPlan,
  type ForeignRequest,
  type JsonPath,
  type MessageShape,
} from 'seqsync/foreign';
import {
  Sequencer,
  SeqsyncError as SequencerError,
  init as initSequencer,
  type ClientFrame as SequencerFrame,
  type CoreOptions as SequencerOptions,
  type SequencerEvent as SequencerEventType,
} from 'seqsync/sequencer';
// @ts-expect-error: the bare Sequencer is the entry `seqsync/sequencer`, not part of `seqsync`
import { Sequencer as NotInTheDefaultEntry } from 'seqsync';

interface Chat {
  from: string;
  text: string;
}

export async function usage(): Promise<number> {
  const client = new Client('ws://127.0.0.1:1/ws', {
    core: { gapTimeoutMs: 50, window: 256 },
    reconnectInitialMs: 100,
    persist: true,
    onConnection: (s) => {
      if (s.state === 'connected') console.log(s.endpoint);
    },
  });
  const sub = client.subscribe<Chat, { messages: { seq: number; data: Chat }[] }>('room', {
    onMessage: (data, seq, epoch) => console.log(data.text.toUpperCase(), seq + 1, epoch ?? 0),
    onSnapshot: (state, seq, epoch) => console.log(state.messages.length, seq, epoch),
    onReset: (reason, earliest) => console.log(reason === 'history_unavailable', earliest ?? 0),
    onGap: (gap: GapEvent) => {
      if (gap.type === 'healed') console.log(gap.through);
      if (gap.type === 'stalled' && gap.request === 'history') console.log(gap.from, gap.to);
    },
    onState: (phase) => console.log(phase === 'live'),
    since: 10,
    epoch: 3,
  });
  const stats: StreamStats | undefined = sub.stats();
  console.log(stats?.gapsHealed, stats?.lag, stats?.phase);
  sub.unsubscribe();
  const seq: number = await client.publish('room', { from: 'a', text: 'b' } satisfies Chat);
  const totals: ClientStats = client.stats();
  console.log(totals.connects, client.connectionState.state);
  await client.ready;
  await client.close();

  // Options, handlers, states and counters the session brought.
  const tuned = new Client('ws://127.0.0.1:1/ws', {
    endpoints: ['ws://127.0.0.1:2/ws'],
    token: 'a+b/c=',
    stableAfterMs: 5_000,
    silenceTimeoutMs: 10_000,
    maxPublishBytes: 65_536,
    maxFrameBytes: 1 << 20,
    persistIntervalMs: 500,
    onConnection: (s: ConnectionState) => {
      if (s.state === 'disconnected') console.log(s.reason, s.retryInMs + 1);
      if (s.state === 'failed') console.log(s.error.code === 'connect_failed');
    },
    signal: new AbortController().signal,
  });
  // Stopped and started again; closed at once.
  tuned.disconnect();
  const connected: Promise<void> = tuned.connect();
  await connected.catch((e: SeqsyncError) => console.log(e.code));
  await tuned.close({ force: true });
  tuned.subscribe('guarded', {
    onRefused: (code: string, message: string) => console.log(code.length, message.length),
  });
  // A fresh token before every connection attempt.
  const refreshed = new Client('ws://127.0.0.1:1/ws', {
    token: async (): Promise<string> => (await fetch('/token')).text(),
  });
  await refreshed.close();
  const counters: ClientStats = tuned.stats();
  const added: number[] = [
    counters.connectFailures,
    counters.framesSent,
    counters.bytesSent,
    counters.historyDuplicates,
    counters.publishRetries,
    counters.publishFailures,
    counters.resubscribes,
    counters.staleAnswers,
    counters.refusedRequests,
    counters.pendingPublishes,
  ];
  console.log(added.length);
  const socket: WebSocketLike = {
    send: (_data: string) => {},
    close: (_code?: number, _reason?: string) => {},
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
  };
  socket.close(4000, 'no frame within the heartbeat timeout');
  const answer: ServerFrame = { type: 'subscribed', stream: 'room', epoch: 1, head: 0, ref: '0.0' };
  console.log(answer.type);
  await tuned.close();

  // Listeners, shared subscriptions, loops and stores.
  const offState: () => void = client.on('state', (s: ConnectionState) => console.log(s.state));
  const offError = client.on('error', (e: SeqsyncError) => console.log(e.code === 'rate_limited', e.message));
  offState();
  offError();
  const shared: Subscription<Chat> = client.subscribe<Chat>('room');
  const offMessage: () => void = shared.on('message', (data, seq) => console.log(data.from, seq + 1));
  shared.on('snapshot', (state, seq, epoch) => console.log(state, seq + epoch));
  shared.on('reset', (reason: ResetReason, earliest) => console.log(reason, earliest ?? 0));
  shared.on('gap', (gap) => console.log(gap.type));
  shared.on('state', (phase: StreamPhase) => console.log(phase));
  shared.on('refused', (code: string, message: string) => console.log(code, message));
  offMessage();
  const onChat: SubscriptionEvents<Chat>['message'] = (data) => console.log(data.text);
  shared.on('message', onChat);
  const watch: ClientEvents['state'] = (s) => console.log(s.state);
  client.on('state', watch);
  const loop: StreamOptions = { signal: new AbortController().signal, since: 3, epoch: 1, maxQueued: 100 };
  for await (const ev of client.stream<Chat>('room', loop)) {
    const seen: StreamEvent<Chat> = ev;
    if (ev.type === 'message') console.log(ev.data.text, ev.seq, ev.epoch);
    else if (ev.type === 'snapshot') console.log(ev.state, ev.seq, ev.epoch);
    else console.log(ev.reason, ev.earliest ?? 0, seen.type);
  }
  const plain: Store<StreamValue<Chat>> = client.store<Chat>('room', { keep: 20 });
  const value: StreamValue<Chat> = plain.getSnapshot();
  console.log(value.state, value.seq, value.epoch, value.messages.map((m) => m.data.text + m.seq));
  const counted: Store<number> = client.store<number, Chat>('room', {
    initial: 0,
    reduce: (n, ev) => (ev.type === 'message' ? n + ev.data.text.length : ev.type === 'reset' ? 0 : n),
  });
  const leave: () => void = counted.subscribe(() => console.log(counted.getSnapshot() + 1));
  leave();
  shared.unsubscribe();
  // @ts-expect-error: no such event of a subscription
  shared.on('messages', () => {});
  // @ts-expect-error: a message listener gets data, then a numeric seq
  shared.on('message', (_d: Chat, s: string) => s);
  // @ts-expect-error: a client has no message event
  client.on('message', () => {});
  // @ts-expect-error: a reducer returns the value's type
  client.store<number>('room', { initial: 0, reduce: () => 'no' });

  // @ts-expect-error: onRefused gets the code as a string
  client.subscribe('z', { onRefused: (code: number) => code });
  // @ts-expect-error: handlers get data, then a numeric seq
  client.subscribe<Chat>('x', { onMessage: (_d: Chat, s: string) => s });
  // @ts-expect-error: mode is 'ordered' or 'latest'
  client.subscribe('y', { mode: 'fast' });

  await init();
  await initSequencer();
  const core = new Sequencer<Json>({ gapTimeoutMs: 100 });
  const h: number = core.subscribe(0, 'room', { mode: 'latest' });
  core.handleConnected(0);
  core.handleFrame(1, { type: 'msg', stream: 'room', seq: 1, data: { a: 1 } });
  const e: SequencerEvent | undefined = core.pollEvent();
  if (e?.type === 'message') console.log(e.seq, e.stream === h);
  const r = core.pollRequest();
  if (r?.type === 'history') console.log(r.from, r.to);
  const t: number | undefined = core.pollTimeout();
  console.log(t, core.stats(h)?.delivered, new SeqsyncError('closed', 'y').code);
  // One error class for both entries.
  const sameClass: typeof SeqsyncError = SequencerError;
  const options: SequencerOptions = { window: 64 };
  const first: SequencerFrame | undefined = new Sequencer(options).pollRequest();
  const event: SequencerEventType | undefined = core.pollEvent();
  console.log(sameClass.name, first?.type, event?.stream, NotInTheDefaultEntry);
  return seq;
}

// Every other public item: the remaining options, counters and methods.
export async function everything(socketClass: WebSocketConstructor, wasm: WasmSource): Promise<void> {
  const storage: PositionStorage = { getItem: (key) => (key ? null : ''), setItem: (_key, _value) => {} };
  const core: CoreOptions = {
    window: 64,
    gapTimeoutMs: 10,
    requestTimeoutMs: 100,
    maxBackoffMs: 1_000,
    stallAfterAttempts: 2,
    maxFetch: 16,
    maxStreams: 8,
  };
  const options: ClientOptions = {
    core,
    reconnectMaxMs: 1_000,
    heartbeatTimeoutMs: 2_000,
    connectTimeoutMs: 1_000,
    initialConnectTimeoutMs: 0,
    publishTimeoutMs: 3_000,
    maxPendingPublishes: 10,
    persist: 'app:',
    storage,
    WebSocket: socketClass,
    wasm,
  };
  const client = new Client('ws://127.0.0.1:1/ws', options);
  const mode: DeliveryMode = 'latest';
  const start: StartOptions = { since: 0, epoch: 1, mode };
  const handlers: SubscribeHandlers<number> = {
    ...start,
    onMessage: (n) => console.log(n + 1),
    onReset: (reason: ResetReason) => console.log(reason),
    onState: (phase: StreamPhase) => console.log(phase),
  };
  const sub: Subscription = client.subscribe('numbers', handlers);
  // The position an application owns: stored with its state, given back on the next load.
  const kept: { seq: number; epoch: number | undefined } | null = JSON.parse(localStorage.getItem('numbers') ?? 'null');
  client.subscribe<number>('owned', {
    since: kept?.seq,
    epoch: kept?.epoch,
    onMessage: (n, seq, epoch) => localStorage.setItem('numbers', JSON.stringify({ seq, epoch, total: n })),
  });
  console.log(sub.stream);
  const t: ClientStats = client.stats();
  console.log(t.disconnects, t.frames, t.bytes, t.badFrames, t.historyFrames, t.historyBytes, t.historyMessages, t.published);
  const s = sub.stats();
  if (s !== undefined) {
    const all: number[] = [s.delivered, s.duplicates, s.dropped, s.skipped, s.gaps, s.resyncs, s.resets, s.buffered, s.lastSeq, s.head];
    console.log(all, s.epoch ?? -1);
  }
  await client.close();

  const q = new Sequencer<string>(core);
  const h = q.subscribe(0, 'room');
  q.handleDisconnected(1);
  q.handleConnected(2);
  q.handleSubscribed(3, h, 1, 0);
  q.handleSnapshot(4, h, 0, 1, 'state');
  q.handleMessage(5, h, 2, 1, 'two');
  q.handleHistory(6, h, 1, 1, 1, [{ seq: 1, data: 'one' }]);
  q.handleHead(7, h, 2, undefined);
  q.handleReset(8, h, 'epoch_changed', undefined);
  q.handleTimeout(9);
  const back: ServerFrame<string> | undefined = q.handleFrame(10, { type: 'ack', id: 'x', stream: 'room', seq: 1 });
  const request: ClientFrame | undefined = q.pollRequest();
  console.log(back?.type, request?.type, q.streamHandle('room') === h, q.streamName(h));
  q.unsubscribe(11, h);
  q.free();
}

// A server that does not speak the protocol: a description, and an adapter written by hand.
export async function foreign(): Promise<number> {
  const seq: JsonPath = 'sequence_id';
  const message: MessageShape = { when: 'event', matches: 'message', stream: { path: 'room' }, seq, epoch: null, payload: '$' };
  const description: Description = {
    message,
    heartbeat: { stream: { fixed: 'lobby' }, seq: 'last' },
    subscribe: '{"action":"join","room":"{stream}"}',
    unsubscribe: null,
    history: { url: 'http://chat/rooms/{stream}/messages?since={since}', messages: 'messages', earliest: 'earliest', gone: [410], holes: false, limit: 200 },
    snapshot: { url: 'http://chat/rooms/{stream}/state', seq: 'seq', state: 'state' },
    head: { url: 'http://chat/rooms/{stream}/head', seq },
    pollMs: 1_000,
    start: 'snapshot',
    publish: { url: 'http://chat/rooms/{stream}/messages', body: '{data}', seq },
    headers: { authorization: 'Bearer t' },
  };
  const described = describe<Chat>(description);
  const limit: number = described.plan.limit;
  const read: ForeignFrame<Chat> = described.read('{}');
  if (read !== null && 'message' in read) console.log(read.message.payload.text, read.message.seq);
  const history: ForeignRequest = { kind: 'history', stream: 'lobby', since: 4, limit };
  const out: ForeignOutbound = described.request(history);
  if (out !== null && 'http' in out) console.log(out.http.method, out.http.url);
  const answered: ForeignAnswer<Chat> = described.answer(history, 200, '{"messages":[]}');
  if ('messages' in answered) console.log(answered.messages.length, answered.earliest, answered.epoch);

  const plan: ForeignPlan = { history: true, head: true, publish: true, heartbeats: false, holes: false, snapshot: false, start: 'head', pollMs: 0, limit: 50 };
  const byHand: ForeignAdapter<string> = {
    plan,
    read: (frame) => (frame.startsWith('#') ? { bad: 'a comment' } : { message: { stream: 'lobby', seq: frame.length, payload: frame } }),
    request: (r) => {
      if (r.kind === 'subscribe') return { frame: `JOIN ${r.stream} ${r.since}` };
      if (r.kind === 'publish') {
        const post: ForeignHttp = { method: 'POST', url: `http://chat/${r.stream}`, headers: { 'x-id': r.id }, body: r.data };
        return { http: post };
      }
      return r.kind === 'history' ? { http: { method: 'GET', url: `http://chat/${r.stream}?after=${r.since}&to=${r.to ?? ''}` } } : null;
    },
    answer: (r, status, body) =>
      status >= 300
        ? { failed: { reason: `HTTP ${status}`, status } }
        : r.kind === 'publish'
          ? { published: { seq: Number(body) } }
          : r.kind === 'head'
            ? { head: { seq: Number(body) } }
            : { messages: [{ seq: 1, payload: body }] },
  };
  const client = new Client('ws://chat/ws', { adapter: byHand });
  const other = new Client('ws://chat/ws', { description, wasm: new URL('http://cdn/seqsync_foreign_bg.wasm') });
  try {
    return await client.publish('lobby', 'hi');
  } catch (error) {
    if (error instanceof SeqsyncError && error.code === 'publish_failed') console.log(error.status ?? 0);
    return 0;
  } finally {
    await Promise.all([client.close(), other.close()]);
    // @ts-expect-error: a request kind the client never asks
    byHand.request({ kind: 'poll', stream: 'x' });
  }
}
