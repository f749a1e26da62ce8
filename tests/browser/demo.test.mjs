// The chat-web demo in headless Chromium: two pages chat through the
// reference server with fault injection on both connections, and end up
// showing the same messages in the same order. Leaves a screenshot in
// artifacts/chat-web.png.
//
// Needs SEQSYNC_SERVER_BIN (the server binary) and SEQSYNC_ROOT (the
// repository, whose examples/chat-web/pkg holds the built package).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { startServer, waitFor } from './support.mjs';

const root = process.env.SEQSYNC_ROOT ?? join(import.meta.dirname, '..', '..');
const artifacts = join(import.meta.dirname, 'artifacts');


let server;
let browser;

before(async () => {
  server = await startServer(['--static-dir', join(root, 'examples', 'chat-web'), '--heartbeat-ms', '300']);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function shown(page) {
  return page.$$eval('#messages li', (items) =>
    items.map((li) => `${li.dataset.seq}|${li.querySelector('.from').textContent}|${li.querySelector('.text').textContent}`),
  );
}

async function stat(page, name) {
  return Number(await page.textContent(`[data-stat="${name}"]`));
}

test('two pages under fault injection show the same messages in the same order', async () => {
  const errors = [];
  const open = async (name) => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
    await page.goto(`${server.httpUrl}/?room=e2e&name=${name}`);
    await waitFor(async () => (await page.textContent('#connection')) === 'connected', `${name} to connect`);
    return page;
  };
  const alice = await open('alice');
  const bob = await open('bob');

  for (const page of [alice, bob]) {
    await page.check('#trouble');
  }
  for (const page of [alice, bob]) {
    await waitFor(async () => (await page.textContent('#connection')) === 'connected (faults on)', 'faults on');
  }

  const perPage = 15;
  for (let i = 1; i <= perPage; i++) {
    for (const [page, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ]) {
      await page.fill('#text', `${name} says ${i}`);
      await page.press('#text', 'Enter');
    }
  }

  const total = perPage * 2;
  await waitFor(
    async () => (await shown(alice)).length === total && (await shown(bob)).length === total,
    `both pages to show ${total} messages`,
    60_000,
  );
  const a = await shown(alice);
  const b = await shown(bob);
  assert.deepEqual(a, b);
  assert.deepEqual(
    a.map((line) => Number(line.split('|')[0])),
    Array.from({ length: total }, (_, i) => i + 1),
  );
  for (const name of ['alice', 'bob']) {
    const own = a.filter((line) => line.split('|')[1] === name).map((line) => line.split('|')[2]);
    assert.deepEqual(
      own,
      Array.from({ length: perPage }, (_, i) => `${name} says ${i + 1}`),
      `${name}'s messages in the order sent`,
    );
  }

  // The faults were real: between the two connections something was repaired.
  await waitFor(async () => (await stat(alice, 'lag')) === 0 && (await stat(bob, 'lag')) === 0, 'lag 0');
  let repairs = 0;
  for (const page of [alice, bob]) {
    repairs += (await stat(page, 'gapsHealed')) + (await stat(page, 'duplicates'));
  }
  assert.ok(repairs > 0, 'fault injection made the client repair something');
  assert.deepEqual(errors, []);

  mkdirSync(artifacts, { recursive: true });
  await alice.screenshot({ path: join(artifacts, 'chat-web.png') });
});
