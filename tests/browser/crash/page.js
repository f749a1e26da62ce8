// The page of crash.test.mjs: one `Client` of the package as it is shipped
// (`/pkg/`), in one of three roles (`?role=`):
// - `persist`: subscribes with `persist`; the client keeps its position;
// - `owned`: keeps its own state and position, in one localStorage write
//   inside `onMessage`, and subscribes with them (`since`, `epoch`);
// - `publish`: publishes `{ n }` when the test asks (`window.__publish`).
// Every delivery is reported to the test by a synchronous request
// (`POST /report?page=`) before the callback goes on: whatever a callback
// was given, the test knows, also when the page crashes right after.

import { Client } from '/pkg/seqsync.js';

const params = Object.fromEntries(new URLSearchParams(location.search));
const report = (event) => {
  const request = new XMLHttpRequest();
  request.open('POST', `/report?page=${params.page}`, false);
  request.send(JSON.stringify(event));
};

if (params.role === 'publish') {
  const client = new Client(params.ws);
  window.__acked = 0;
  window.__published = {}; // seq -> n
  window.__failed = [];
  // `perTick` publishes every `tickMs` from `from` on, until `__stop()`, which returns the last n
  // published: a stream that keeps flowing while the reader crashes and the fresh page loads.
  let timer;
  let n;
  window.__publish = (from, perTick, tickMs) => {
    n = from;
    const tick = () => {
      for (let i = 0; i < perTick; i++, n++) {
        const sent = n;
        client.publish(params.stream, { n: sent }).then(
          (seq) => {
            window.__acked += 1;
            window.__published[seq] = sent;
          },
          (e) => window.__failed.push(`${e.code}`),
        );
      }
      timer = setTimeout(tick, tickMs);
    };
    tick();
  };
  window.__stop = () => {
    clearTimeout(timer);
    return n - 1;
  };
} else if (params.role === 'persist') {
  // What the client will resume from: read before it starts (the key is the client's, see README).
  const key = `seqsync:${params.ws}#${params.stream}`;
  window.__saved = JSON.parse(localStorage.getItem(key) ?? 'null');
  window.__savedNow = () => JSON.parse(localStorage.getItem(key) ?? 'null');
  const client = new Client(params.ws, { persist: true });
  client.subscribe(params.stream, {
    onSnapshot: (_state, seq, epoch) => report(['snapshot', seq, epoch]),
    onMessage: (data, seq, epoch) => report(['message', seq, epoch, data.n]),
    onReset: (reason) => report(['reset', reason]),
  });
} else if (params.role === 'owned') {
  // The application's state and its position, in one value, in one write.
  const key = `app:${params.stream}`;
  const raw = localStorage.getItem(key) ?? 'null';
  const saved = JSON.parse(raw);
  // A copy for the test: the state read here goes on changing.
  window.__saved = JSON.parse(raw);
  let state = saved?.state ?? { applied: [] };
  const save = (seq, epoch) => localStorage.setItem(key, JSON.stringify({ seq, epoch, state }));
  window.__state = () => state;
  const client = new Client(params.ws);
  client.subscribe(params.stream, {
    since: saved?.seq,
    epoch: saved?.epoch,
    onSnapshot: (_state, seq, epoch) => {
      report(['snapshot', seq, epoch]);
      state = { applied: [] };
      save(seq, epoch);
    },
    onMessage: (data, seq, epoch) => {
      report(['message', seq, epoch, data.n]);
      state.applied.push(data.n);
      save(seq, epoch);
    },
    onReset: (reason) => {
      state = { applied: [] };
      report(['reset', reason]);
    },
  });
}
window.__loaded = true;
