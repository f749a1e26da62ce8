// Every failure to load a WASM build is a `SeqsyncError` with its own code
// and the URL: through `init()`, a client's `ready`, `seqsync/sequencer`'s
// `init` and a foreign server's client. The failures come first: a build
// loads once per process, and a failed load is tried again by the next call.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SeqsyncError, init } from 'seqsync';
import { Sequencer, init as initSequencer } from 'seqsync/sequencer';
import { StandIn, startHttp, waitFor } from './support.mjs';

let http;

before(async () => {
  http = await startHttp((req) =>
    req.url.startsWith('/page')
      ? { status: 200, text: '<!doctype html><title>not found</title>' }
      : { status: 404, text: 'no such file' });
});

after(() => http?.stop());

/** Asserts that `promise` rejects with `SeqsyncError` `code`, `url` its `url` and named in the message with each of `names`. */
async function failsToLoad(promise, code, url, ...names) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof SeqsyncError, `a SeqsyncError, not ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.url, url);
    for (const name of [url, ...names]) assert.ok(e.message.includes(name), `${JSON.stringify(e.message)} names ${name}`);
    return true;
  });
}

test('a WASM file answered 404 is wasm_unavailable, the status and URL named', async () => {
  const url = `${http.url}/missing.wasm`;
  await failsToLoad(init(url), 'wasm_unavailable', url, '404');
});

test('a page answered in place of the WASM file is wasm_invalid', async () => {
  const url = `${http.url}/page.html`;
  await failsToLoad(init(url), 'wasm_invalid', url, 'expected magic word');
});

test('a server out of reach, or a file that is not there, is wasm_unavailable', async () => {
  const url = 'http://127.0.0.1:9/seqsync_wasm_bg.wasm';
  await failsToLoad(init(url), 'wasm_unavailable', url);
  const file = new URL('file:///nonexistent/seqsync_wasm_bg.wasm');
  await failsToLoad(init(file), 'wasm_unavailable', file.href, 'ENOENT');
});

test('a client whose WASM does not load rejects ready with the load error and closes', async () => {
  const url = `${http.url}/missing.wasm`;
  const states = [];
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn, wasm: url, onConnection: (s) => states.push(s.state) });
  const published = c.publish('room', 1);
  await failsToLoad(c.ready, 'wasm_unavailable', url, '404');
  assert.deepEqual(c.connectionState, { state: 'closed' });
  assert.deepEqual(states, ['closed']);
  await assert.rejects(published, (e) => e instanceof SeqsyncError && e.code === 'closed');
});

test('a foreign server\'s client whose WASM does not load rejects ready the same way', async () => {
  const url = `${http.url}/missing-foreign.wasm`;
  const adapter = { plan: {}, read: () => null, request: () => null, answer: () => ({ failed: { reason: 'none' } }) };
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn, adapter, wasm: url });
  await failsToLoad(c.ready, 'wasm_unavailable', url, '404');
  assert.deepEqual(c.connectionState, { state: 'closed' });
});

test('seqsync/sequencer\'s init fails the same way', async () => {
  const url = `${http.url}/page.html`;
  await failsToLoad(initSequencer(url), 'wasm_invalid', url, 'expected magic word');
});

test('after a failed load, the next call loads the build', async () => {
  await init();
  await initSequencer();
  const opened = StandIn.opened.length;
  const c = new Client('ws://stand.in/ws', { WebSocket: StandIn });
  await waitFor(() => StandIn.opened.length > opened, 'a socket');
  await c.close();
  new Sequencer().free();
});
