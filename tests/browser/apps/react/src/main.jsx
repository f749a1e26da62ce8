// A chat room in React over seqsync: one store of the room
// (`client.store`), read by components through `useSyncExternalStore`, and
// a form that publishes. Parameters as the other apps take them (`ws`,
// `stream`, `publish`: how many messages the page publishes once the room
// has its snapshot). What the page rendered is in `window.__check` for the
// test (tests/browser/apps/common/check.js).

import { StrictMode, useEffect, useState, useSyncExternalStore } from 'react';
import { createRoot } from 'react-dom/client';
import { Client } from 'seqsync';
import { newResult, publishRange, record } from '../../common/check.js';

const params = Object.fromEntries(new URLSearchParams(location.search));
const result = newResult();
window.__check = result;
const report = (r) => record(result, r);

const client = new Client(params.ws);
client.on('state', (s) => report({ kind: 'connection', state: s.state }));

// One store per room, shared by every component that shows it. Its value:
// the last 50 messages, as the page shows them, and the log of every
// delivery in its order, which the test checks against the contract.
const room = client.store(params.stream, {
  initial: { log: [], messages: [] },
  reduce: (value, e) => ({
    log: [...value.log, e.type === 'message' ? ['message', e.seq, e.data] : e.type === 'snapshot' ? ['snapshot', e.seq, e.epoch] : ['reset', e.reason]],
    // A snapshot or a reset starts the list again.
    messages: e.type === 'message' ? [...value.messages, { seq: e.seq, data: e.data }].slice(-50) : [],
  }),
});

// Publishing starts once, when the room has its snapshot: every message published comes after it.
let publishing = false;

const useRoom = () => useSyncExternalStore(room.subscribe, room.getSnapshot);

function Messages() {
  const { messages } = useRoom();
  return (
    <ol id="messages">
      {messages.map((m) => (
        <li key={m.seq} data-seq={m.seq}>
          {m.data.text ?? `#${m.data.n}`}
        </li>
      ))}
    </ol>
  );
}

function Status() {
  const { log } = useRoom();
  // What was rendered goes to the test once React has committed it.
  useEffect(() => {
    result.events = log;
    result.received = log.filter((e) => e[0] === 'message');
    result.snapshots = log.filter((e) => e[0] === 'snapshot').map((e) => e[1]);
  }, [log]);
  const started = log.some((e) => e[0] === 'snapshot');
  useEffect(() => {
    if (!started || publishing) return;
    publishing = true;
    const count = Number(params.publish ?? 0);
    let acked = 0;
    publishRange(client, params.stream, 1, count, (r) => {
      report(r);
      if (r.kind === 'acked' && ++acked === count) {
        // A subscription that joins the room's stream, for its counters.
        const sub = client.subscribe(params.stream);
        report({ kind: 'stats', client: client.stats(), stream: sub.stats() });
        sub.unsubscribe();
      }
    });
  }, [started]);
  return <output id="count">{log.length}</output>;
}

function Compose() {
  const [text, setText] = useState('');
  const send = (event) => {
    event.preventDefault();
    client.publish(params.stream, { text }).then(
      (seq) => report({ kind: 'acked', n: text, seq }),
      (error) => report({ kind: 'error', what: `publish: ${error.code}` }),
    );
    setText('');
  };
  return (
    <form onSubmit={send}>
      <input id="text" value={text} onChange={(e) => setText(e.target.value)} />
      <button type="submit">Send</button>
    </form>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <Status />
    <Messages />
    <Compose />
  </StrictMode>,
);
window.__loaded = true;
