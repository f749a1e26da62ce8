// Loading the package's WASM module in headless Chromium: under a strict
// Content-Security-Policy (refused without 'wasm-unsafe-eval', connecting and
// delivering with it, as the package's README says), and every failure to
// load as a `SeqsyncError` with its own code and the URL. The page
// (tests/browser/load/) imports the package as it is, from SEQSYNC_PKG,
// through a page server that sets the policy the test asks for; the
// reference server (SEQSYNC_SERVER_BIN) carries the stream.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './chromium.mjs';
import { StreamCheck, servePage, startServer, waitFor } from './support.mjs';

const COUNT = 50;

let server;
let pages;
let browser;

/**
 * Serves `/pkg/...` from the package, other paths from tests/browser/load/,
 * each with the CSP named by the page's `csp` parameter (the same for every
 * file, as a site's server sets it); `/missing.wasm` is a 404, and
 * `/page.wasm` an HTML page, as a server's fallback route answers.
 */
function startPages(pkg, policies) {
  // Subresources carry no query: their policy is the page's, named in the Referer.
  const policy = (req) => policies[new URL(req.url, 'http://x').searchParams.get('csp')
    ?? new URL(req.headers.referer ?? 'http://x').searchParams.get('csp')];
  const headers = (req) => (policy(req) ? { 'content-security-policy': policy(req) } : {});
  return servePage({
    dir: join(import.meta.dirname, 'load'),
    pkg,
    headers,
    route: (req, res, url) => {
      if (url.pathname !== '/page.wasm') return false;
      res.writeHead(200, { ...headers(req), 'content-type': 'text/html' });
      res.end('<!doctype html><title>an app</title>');
      return true;
    },
  });
}

before(async () => {
  const pkg = process.env.SEQSYNC_PKG;
  if (!pkg) throw new Error('SEQSYNC_PKG must name the built package directory');
  server = await startServer(['--heartbeat-ms', '300']);
  // What the README's CSP section gives, and the same without 'wasm-unsafe-eval'.
  const connect = `connect-src 'self' ${server.wsUrl}`;
  pages = await startPages(pkg, {
    strict: `default-src 'self'; script-src 'self'; ${connect}`,
    wasm: `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; ${connect}`,
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await pages?.stop();
  await server?.stop();
});

/** Opens the page with `params`; resolves to its `__check` once `ready` has settled, with the page's errors. */
async function run(params, settled = (c) => c.ready !== null) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    await page.goto(`${pages.url}/index.html?${new URLSearchParams({ ws: server.wsUrl, ...params })}`);
    await waitFor(() => page.evaluate(() => window.__loaded === true), 'the page to load');
    await waitFor(async () => settled(await page.evaluate(() => window.__check)), 'the client to settle', 60_000);
    return { check: await page.evaluate(() => window.__check), errors };
  } finally {
    await context.close();
  }
}

/** Asserts that the page's client failed with `SeqsyncError` `code`, the URL `url` named, and closed. */
function assertLoadFailed({ check, errors }, code, url, text) {
  assert.equal(check.ready, false);
  assert.deepEqual({ seqsync: check.error.seqsync, code: check.error.code, url: check.error.url }, { seqsync: true, code, url });
  assert.ok(check.error.message.includes(url), check.error.message);
  assert.ok(check.error.message.includes(text), check.error.message);
  assert.deepEqual(check.states, ['closed']);
  assert.deepEqual(errors, []);
}

test('under a CSP without wasm-unsafe-eval the client fails with wasm_blocked, naming the module', async () => {
  const url = `${pages.url}/pkg/seqsync_wasm_bg.wasm`;
  assertLoadFailed(await run({ csp: 'strict', stream: 'csp-strict' }), 'wasm_blocked', url, 'wasm-unsafe-eval');
});

test(`under the CSP the README gives, the client connects and delivers ${COUNT} messages exactly`, async () => {
  const { check, errors } = await run(
    { csp: 'wasm', stream: 'csp-wasm', publish: String(COUNT) },
    (c) => c.ready === false || (c.acked === COUNT && c.events.length > COUNT),
  );
  assert.equal(check.ready, true, JSON.stringify(check.error));
  assert.deepEqual(check.events[0].slice(0, 2), ['snapshot', 0]);
  new StreamCheck('csp-wasm').replay(check.events).assertExact(COUNT, (seq) => ({ n: check.published[seq] }));
  assert.deepEqual(errors, []);
});

test('a WASM module answered 404 is wasm_unavailable, the status named', async () => {
  const url = `${pages.url}/missing.wasm`;
  assertLoadFailed(await run({ csp: 'wasm', stream: 'missing', wasm: url }), 'wasm_unavailable', url, '404');
});

test('an HTML page answered for the WASM module is wasm_invalid', async () => {
  const url = `${pages.url}/page.wasm`;
  assertLoadFailed(await run({ csp: 'wasm', stream: 'html', wasm: url }), 'wasm_invalid', url, 'expected magic word');
});
