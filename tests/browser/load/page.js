// A page of load.test.mjs, served with the Content-Security-Policy the test
// chose: a client (its WASM module from `?wasm=`, else the package's) that
// subscribes to `?stream=`, publishes `?publish=` messages once live, and
// records what it sees in `window.__check`. No inline script: a strict CSP
// forbids those.

import { Client, SeqsyncError } from '/pkg/seqsync.js';

const params = Object.fromEntries(new URLSearchParams(location.search));
const check = { events: [], published: {}, acked: 0, ready: null, error: null, states: [] };
window.__check = check;

const client = new Client(params.ws, {
  wasm: params.wasm,
  onConnection: (s) => check.states.push(s.state),
});
client.ready.then(
  () => { check.ready = true; },
  (e) => {
    check.ready = false;
    check.error = { seqsync: e instanceof SeqsyncError, code: e.code, url: e.url, message: e.message };
  },
);
let publishing = false;
client.subscribe(params.stream, {
  onSnapshot: (_state, seq, epoch) => check.events.push(['snapshot', seq, epoch]),
  onMessage: (data, seq) => check.events.push(['message', seq, data]),
  onReset: (reason) => check.events.push(['reset', reason]),
  onState: (phase) => {
    if (phase !== 'live' || publishing) return;
    publishing = true;
    for (let n = 1; n <= Number(params.publish ?? 0); n++) {
      client.publish(params.stream, { n }).then((seq) => {
        check.published[seq] = n;
        check.acked += 1;
      });
    }
  },
});
window.__loaded = true;
