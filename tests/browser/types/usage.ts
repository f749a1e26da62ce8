// Compiles only if the package's types describe the API as documented
// (run with `tsc -p tests/browser/types`). @ts-expect-error lines must fail.

import {
  Client,
  Sequencer,
  SeqsyncError,
  init,
  type ClientStats,
  type ConnectionState,
  type GapEvent,
  type Json,
  type SequencerEvent,
  type ServerFrame,
  type StreamStats,
  type WebSocketLike,
} from '../../../sdk-wasm/js/seqsync.js';

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
    onMessage: (data, seq) => console.log(data.text.toUpperCase(), seq + 1),
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
    },
  });
  tuned.subscribe('guarded', {
    onRefused: (code: string, message: string) => console.log(code.length, message.length),
  });
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

  // @ts-expect-error: onRefused gets the code as a string
  client.subscribe('z', { onRefused: (code: number) => code });
  // @ts-expect-error: handlers get data, then a numeric seq
  client.subscribe<Chat>('x', { onMessage: (_d: Chat, s: string) => s });
  // @ts-expect-error: mode is 'ordered' or 'latest'
  client.subscribe('y', { mode: 'fast' });

  await init();
  const core = new Sequencer<Json>({ gapTimeoutMs: 100 });
  const h: number = core.subscribe(0, 'room', { mode: 'latest' });
  core.handleConnected(0);
  core.handleFrame(1, { type: 'msg', stream: 'room', seq: 1, data: { a: 1 } });
  const e: SequencerEvent | undefined = core.pollEvent();
  if (e?.type === 'message') console.log(e.seq, e.stream === h);
  const r = core.pollRequest();
  if (r?.type === 'history') console.log(r.from, r.to);
  const t: number | undefined = core.pollTimeout();
  console.log(t, core.stats(h)?.delivered, new SeqsyncError('x', 'y').code);
  return seq;
}
