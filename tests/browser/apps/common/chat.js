// What the React and Vue chat pages share: one client, one store of the
// room (`client.store`), publishing once the room has its snapshot, and the
// form's publish. Parameters as the other apps take them (`ws`, `stream`,
// `publish`: how many messages the page publishes once the room has its
// snapshot). What a page rendered goes to `window.__check` (check.js) for
// the test. No bare imports here: each app passes the `Client` its own
// bundler resolved from the installed package.

import { newResult, publishRange, record } from './check.js';

export function chatRoom(Client) {
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

  let publishing = false;
  return {
    room,
    /** What a page rendered (`log`: the store's value when it did). */
    rendered(log) {
      result.events = log;
      result.received = log.filter((e) => e[0] === 'message');
      result.snapshots = log.filter((e) => e[0] === 'snapshot').map((e) => e[1]);
      // Publishing starts once, when the room has its snapshot: every message published comes after it.
      if (publishing || result.snapshots.length === 0) return;
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
    },
    /** The form's publish; its ack is recorded with the text in place of `n`. */
    send(text) {
      client.publish(params.stream, { text }).then(
        (seq) => report({ kind: 'acked', n: text, seq }),
        (error) => report({ kind: 'error', what: `publish: ${error.code}` }),
      );
    },
  };
}
