// Shared helpers of the browser and Node checks: a reference server on a
// free loopback port, a TCP proxy in front of it for network faults, the
// foreign chat server behind fault-injecting WebSocket proxies, a WebSocket
// the test drives, an HTTP server the test scripts, a page server, and
// waiting on real state with a deadline.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer, connect } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * Starts the reference server (binary from SEQSYNC_SERVER_BIN) on
 * 127.0.0.1, on `port` (0, the default: a free one), and resolves once it
 * has said where it listens.
 */
export function startServer(extraArgs = [], { port = 0 } = {}) {
  const bin = process.env.SEQSYNC_SERVER_BIN;
  if (!bin) throw new Error('SEQSYNC_SERVER_BIN must name the seqsync-server binary');
  const child = spawn(bin, ['--memory', '--bind', `127.0.0.1:${port}`, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', RUST_LOG: 'info' },
  });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within 30 s:\n${log}`));
    }, 30_000);
    const onData = (chunk) => {
      log += chunk.toString();
      // Strip colour codes, then find the ready line's ws URL.
      const plain = log.replace(/\x1b\[[0-9;]*m/g, '');
      const match = plain.match(/ready.*?(ws:\/\/127\.0\.0\.1:\d+\/ws)/);
      if (match) {
        clearTimeout(timer);
        const wsUrl = match[1];
        const httpUrl = wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
        resolve({
          wsUrl,
          httpUrl,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
            }),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it was ready:\n${log}`));
    });
  });
}

/** Polls `check` until it returns true; fails with `what` after `ms`. */
export async function waitFor(check, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A TCP proxy on a free loopback port in front of `target` (a ws:// URL),
 * for faults a server does not make by itself. `setMode` switches it:
 * - `'pass'`: forwards both ways (what was stalled is dropped first);
 * - `'stall'`: keeps every connection open and forwards nothing, new ones
 *   included: a peer that is there and says nothing;
 * - `'down'`: drops every connection and closes new ones as they come.
 * Resolves to `{ url, setMode, stop }`, `url` the proxy's ws:// URL.
 */
export async function startProxy(target) {
  const { hostname, port, pathname } = new URL(target);
  let mode = 'pass';
  const pairs = new Set();
  const dropAll = () => {
    for (const pair of pairs) pair.forEach((socket) => socket.destroy());
    pairs.clear();
  };
  const server = createServer((client) => {
    client.on('error', () => {});
    if (mode === 'down') return client.destroy();
    const pair = [client];
    pairs.add(pair);
    if (mode === 'stall') return client.pause();
    const upstream = connect(Number(port), hostname);
    pair.push(upstream);
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${server.address().port}${pathname}`,
    setMode(next) {
      if (next === 'stall') {
        for (const pair of pairs) {
          pair.forEach((socket) => socket.unpipe());
          pair.forEach((socket) => socket.pause());
        }
      } else {
        dropAll();
      }
      mode = next;
    },
    stop: () =>
      new Promise((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}

/**
 * A ws:// URL on a loopback port that refuses every connection: a listener
 * that resets each one as soon as it is accepted, which a WebSocket sees as
 * it sees a refused connection (an error before it opens). It holds its
 * port until the process ends (a released port could be taken by anything
 * meanwhile) and does not keep the process alive.
 */
export async function closedPortUrl() {
  const refusing = createServer((socket) => {
    socket.on('error', () => {});
    socket.resetAndDestroy();
  });
  await new Promise((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  refusing.unref();
  return `ws://127.0.0.1:${refusing.address().port}/ws`;
}

/** A WebSocket that records what the client sends and is driven by the test. */
export class StandIn {
  static opened = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    StandIn.opened.push(this);
  }
  send(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      frame = text; // a foreign server's frame need not be JSON
    }
    this.sent.push(frame);
  }
  close(code, reason) {
    this.closedWith = { code, reason };
  }
  open() {
    this.onopen?.({});
  }
  receive(frame) {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }
  drop() {
    this.onclose?.({ code: 1006 });
  }
}

/**
 * An HTTP server on a free loopback port whose answers `handle(request,
 * body)` gives: `{ status, json }`, `{ status, text }`, or `{ hang: true }`
 * (never answers). Resolves to `{ url, requests, stop }`; `requests` lists
 * each request as `{ method, url, headers, body }`.
 */
export async function startHttp(handle) {
  const requests = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const answer = handle(req, body);
      if (answer.hang) return;
      const text = answer.text ?? JSON.stringify(answer.json);
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
      res.end(text);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The foreign chat server of tests/foreign/ (two instances over one SQLite
 * file and one Redis, by default) with a fault-injecting WebSocket proxy in
 * front of each instance: test-support's `foreign_fixture` binary, named by
 * SEQSYNC_FOREIGN_FIXTURE_BIN, started with `args` (`--seed`, `--drop`,
 * `--duplicate`, `--reorder`, `--window`, `--cut-every`, `--instances`,
 * `--retain`). Resolves to `{ http, ws, command, stop }`: each instance's
 * HTTP base and its proxy's ws:// base, `command(text)` (`restart I`,
 * `cut`, `calm`, `stats`) resolving to the fixture's JSON answer, and
 * `stop()`.
 */
export async function startForeignFixture(args = []) {
  const bin = process.env.SEQSYNC_FOREIGN_FIXTURE_BIN;
  if (!bin) throw new Error('SEQSYNC_FOREIGN_FIXTURE_BIN must name the foreign_fixture binary');
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => {
    log = (log + chunk).slice(-20_000);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines = [];
  let wake = () => {};
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    wake();
  });
  const next = async (what, ms) => {
    const deadline = Date.now() + ms;
    while (lines.length === 0) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`foreign fixture: no answer to ${what} (exit ${child.exitCode}):\n${log}`);
      }
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return JSON.parse(lines.shift());
  };
  const { http, ws } = await next('the start', 60_000);
  let last = Promise.resolve();
  return {
    http,
    ws,
    command(text) {
      const answer = last.then(() => {
        child.stdin.write(`${text}\n`);
        return next(text, 60_000);
      });
      last = answer.catch(() => {});
      return answer;
    },
    async stop() {
      child.stdin.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * Serves a page on a free loopback port: `/pkg/...` from `pkg`, other paths
 * from `dir` (`/` is `index.html`), and, with `upstream` (an HTTP base),
 * `/rooms/...` passed on to it, so that the page's HTTP requests to the
 * foreign server are same-origin. `route(req, res, url)` answers what a
 * test serves itself first (it returns true when it did); `headers(req)`
 * gives headers for every answer of the files. Resolves to `{ url, stop }`.
 */
export async function servePage({ dir, pkg, upstream, route, headers = () => ({}) }) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const target = upstream && new URL(upstream);
  const server = createHttpServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (route && (await route(req, res, url))) return;
    const path = normalize(url.pathname);
    const extra = headers(req);
    if (target && path.startsWith('/rooms/')) {
      const forward = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(forward);
      return;
    }
    const file = path.startsWith('/pkg/') ? join(pkg, path.slice(5)) : join(dir, path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...extra, 'content-type': types[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, extra);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The contract checker of the JS suites, with the rules of the Rust suites'
 * `StreamCheck` (test-support/src/check.rs): fed one subscription's
 * callbacks, it throws at the first breach and keeps what was delivered.
 *
 * - A snapshot comes only as the first delivery or right after a reset.
 * - Messages go on from the last contiguous seq, one seq at a time, never
 *   between a reset and its snapshot; a skip (`onGap` `skipped`) too.
 * - The position never moves backwards, except through a reset that says the
 *   log changed (`epoch_changed`, `server_behind`): its snapshot starts a new
 *   incarnation, and what was delivered above it is forgotten.
 *
 * A breach is thrown from the callback and also kept in `breaches` (the
 * client may catch what a callback throws), so `assertExact` fails on it.
 */
export class StreamCheck {
  constructor(stream, { resumingAfter } = {}) {
    this.stream = stream;
    this.last = resumingAfter ?? 0;
    this.resumedAfter = resumingAfter ?? 0;
    this.started = resumingAfter !== undefined;
    /** Payloads by seq, in the current incarnation. */
    this.delivered = new Map();
    this.snapshots = [];
    this.resets = [];
    this.skipped = 0;
    this.breaches = [];
    this.resetPending = null;
  }

  /** The callbacks to pass to `subscribe`, merged over `extra`. */
  handlers(extra = {}) {
    return {
      ...extra,
      onMessage: (data, seq) => {
        this.message(seq, data);
        extra.onMessage?.(data, seq);
      },
      onSnapshot: (state, seq, epoch) => {
        this.snapshot(seq, epoch);
        extra.onSnapshot?.(state, seq, epoch);
      },
      onReset: (reason, earliest) => {
        this.reset(reason);
        extra.onReset?.(reason, earliest);
      },
      onGap: (event) => {
        if (event.type === 'skipped') this.skip(event.from, event.to);
        extra.onGap?.(event);
      },
    };
  }

  /**
   * Applies a delivery log recorded elsewhere (a page, a worker), in the
   * order it came: `['message', seq, data]`, `['snapshot', seq, epoch]`,
   * `['reset', reason]`. Returns the checker.
   */
  replay(events) {
    const h = this.handlers();
    for (const [kind, arg, more] of events) {
      if (kind === 'message') h.onMessage(more, arg);
      else if (kind === 'snapshot') h.onSnapshot(null, arg, more);
      else if (kind === 'reset') h.onReset(arg, undefined);
    }
    return this;
  }

  message(seq, data) {
    this.#take('message', seq);
    if (this.delivered.has(seq)) this.#breach(`seq ${seq} delivered twice`);
    this.delivered.set(seq, data);
  }

  snapshot(seq, epoch) {
    const reason = this.resetPending;
    this.resetPending = null;
    if (reason === null) {
      if (this.started) this.#breach(`snapshot at ${seq} with no reset before it (the application held ${this.last})`);
    } else if (reason === 'epoch_changed' || reason === 'server_behind') {
      for (const held of [...this.delivered.keys()]) if (held > seq) this.delivered.delete(held);
    } else if (seq < this.last) {
      this.#breach(`the snapshot after a ${reason} reset moved the position back from ${this.last} to ${seq}`);
    }
    this.started = true;
    this.last = seq;
    this.snapshots.push({ seq, epoch });
  }

  reset(reason) {
    this.resets.push(reason);
    // Two resets before one snapshot: it may go back if either said the log changed.
    if (this.resetPending === null || this.resetPending === 'history_unavailable') this.resetPending = reason;
  }

  skip(from, to) {
    if (this.resetPending !== null) this.#breach(`skip ${from}..${to} between reset and snapshot`);
    if (from !== this.last + 1) this.#breach(`skip ${from}..${to} not contiguous after ${this.last}`);
    this.started = true;
    this.skipped += to - from + 1;
    this.last = to;
  }

  /**
   * Asserts that the stream holds `last`, with no reset, skip or breach,
   * one snapshot at most, and every seq after it delivered with the payload
   * `expected(seq)` gives (compared with `assert.deepStrictEqual`'s rules).
   */
  assertExact(last, expected) {
    if (this.breaches.length > 0) throw new Error(this.breaches[0]);
    const where = this.stream;
    if (this.resets.length !== 0) throw new Error(`${where}: nothing was lost, so no reset (got ${this.resets})`);
    if (this.skipped !== 0) throw new Error(`${where}: nothing was skipped (got ${this.skipped})`);
    if (this.snapshots.length > 1) throw new Error(`${where}: one snapshot at most without a reset`);
    if (this.last !== last) throw new Error(`${where}: everything delivered (at ${this.last} of ${last})`);
    const first = this.snapshots[0]?.seq ?? this.resumedAfter;
    for (let seq = first + 1; seq <= last; seq++) {
      if (!this.delivered.has(seq)) throw new Error(`${where}: seq ${seq} missing`);
      assert.deepStrictEqual(this.delivered.get(seq), expected(seq), `${where}: seq ${seq}`);
    }
  }

  #take(what, seq) {
    if (this.resetPending !== null) this.#breach(`${what} ${seq} between reset and snapshot`);
    if (!Number.isSafeInteger(seq) || seq <= this.last) {
      this.#breach(`${what} ${seq} moves the position backwards from ${this.last}`);
    } else if (seq !== this.last + 1) {
      this.#breach(`expected seq ${this.last + 1} next, got ${what} ${seq}`);
    }
    this.started = true;
    this.last = seq;
  }

  #breach(what) {
    const message = `${this.stream}: ${what}`;
    this.breaches.push(message);
    throw new Error(message);
  }
}
