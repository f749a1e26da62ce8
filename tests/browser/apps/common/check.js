// What the bundler apps run, in a page or in a dedicated worker: one
// `Client` that subscribes to a stream, optionally publishes to it, and
// reports every delivery as a plain object (`report`), so that a page can
// collect what a worker saw. No bare imports here: each app passes the
// `Client` its own bundler resolved from the installed package.

/**
 * Starts a client. `params`: `ws` (server URL, faults included), `stream`,
 * `publish` (how many messages to publish, 0 for none), `persist` ('1' to
 * keep resume positions in localStorage).
 */
export function startCheck(Client, params, report) {
  const client = new Client(params.ws, {
    persist: params.persist === '1',
    onConnection: (state) => report({ kind: 'connection', state: state.state }),
  });
  // Publishing starts once the stream is live, so that every message
  // published comes after the snapshot (or resume point) and is delivered.
  let publishing = false;
  const count = Number(params.publish ?? 0);
  let acked = 0;
  const sub = client.subscribe(params.stream, {
    onMessage: (data, seq) => report({ kind: 'message', seq, n: data?.n }),
    onSnapshot: (_state, seq) => report({ kind: 'snapshot', seq }),
    onReset: (reason) => report({ kind: 'reset', reason }),
    onRefused: (code) => report({ kind: 'error', what: `refused ${code}` }),
    onState: (phase) => {
      report({ kind: 'phase', phase });
      if (phase === 'live' && !publishing) {
        publishing = true;
        publishRange(client, params.stream, 1, count, (r) => {
          report(r);
          // With the last ack, what the faults cost: reconnects and repairs.
          if (r.kind === 'acked' && ++acked === count) {
            report({ kind: 'stats', client: client.stats(), stream: sub.stats() });
          }
        });
      }
    },
  });
  return client;
}

/** Publishes `{ n }` for every n in from..=to, all at once; reports each ack. */
export function publishRange(client, stream, from, to, report) {
  for (let n = from; n <= to; n++) {
    client.publish(stream, { n }).then(
      (seq) => report({ kind: 'acked', n, seq }),
      (error) => report({ kind: 'error', what: `publish ${n}: ${error.code}` }),
    );
  }
}

/**
 * What a page shows the test: everything reported, folded. `events` keeps
 * the deliveries in the order they came (`['message', seq, { n }]`,
 * `['snapshot', seq]`, `['reset', reason]`) for the test's contract check;
 * `published` maps each acked seq to the `n` published as it.
 */
export function newResult() {
  return {
    received: [],
    snapshots: [],
    events: [],
    acked: 0,
    published: {},
    errors: [],
    connection: 'none',
    phase: 'none',
    stats: null,
  };
}

export function record(result, r) {
  if (r.kind === 'message') {
    result.received.push([r.seq, r.n]);
    result.events.push(['message', r.seq, { n: r.n }]);
  } else if (r.kind === 'snapshot') {
    result.snapshots.push(r.seq);
    result.events.push(['snapshot', r.seq]);
  } else if (r.kind === 'reset') {
    // A reset is a failure of these runs (nothing is trimmed), and an event
    // the contract check must see in its place.
    result.events.push(['reset', r.reason]);
    result.errors.push(`reset ${r.reason}`);
  } else if (r.kind === 'acked') {
    result.acked += 1;
    result.published[r.seq] = r.n;
  } else if (r.kind === 'connection') result.connection = r.state;
  else if (r.kind === 'phase') result.phase = r.phase;
  else if (r.kind === 'stats') result.stats = { client: r.client, stream: r.stream };
  else result.errors.push(r.what);
}

/**
 * The page's part, the same in every app: `?worker=1` runs the client in a
 * dedicated worker (`makeWorker` creates it), `?hold=1` waits for
 * `window.__start()`, and `window.__publish(from, to)` publishes from the
 * page with a client of its own.
 */
export function runPage(Client, makeWorker) {
  const params = Object.fromEntries(new URLSearchParams(location.search));
  const result = newResult();
  window.__check = result;
  const report = (r) => record(result, r);
  let publisher;
  window.__publish = (from, to) => {
    publisher ??= new Client(params.ws);
    publishRange(publisher, params.stream, from, to, report);
  };
  const start = () => {
    if (params.worker === '1') {
      const worker = makeWorker();
      worker.onmessage = (event) => report(event.data);
      worker.onerror = (event) => report({ kind: 'error', what: `worker: ${event.message}` });
      worker.postMessage(params);
    } else {
      startCheck(Client, params, report);
    }
  };
  if (params.hold === '1') window.__start = start;
  else start();
  window.__loaded = true;
}

/** The worker's part: waits for the page's parameters, then runs the check. */
export function runWorker(Client) {
  self.onmessage = (event) => startCheck(Client, event.data, (r) => self.postMessage(r));
}
