// seqsync/foreign: servers that do not speak the seqsync protocol (docs/protocol.md section 12).
// `describe` turns a description (JSON data) into an adapter: what the server can do (`plan`),
// what a frame is (`read`), how a request goes out (`request`) and what an HTTP answer says
// (`answer`). The `Client` of the main module loads this module when given an adapter or a
// description, and drives its WASM session (this module's build, with the foreign binding)
// through `ForeignLink`, which carries the session's requests out: frames on the socket, HTTP
// through `fetch`. Every decision (what to ask, when, what an answer covers) is the core's.

import initForeign, { Session } from './seqsync_foreign.js';

// The binding's numbers (sdk-wasm/src/lib.rs): request kinds, answer kinds, scratch slots.
const REQUESTS = [, 'subscribe', 'unsubscribe', 'history', 'snapshot', 'head', 'publish'];
const ANSWER_MESSAGES = 1, ANSWER_SNAPSHOT = 2, ANSWER_HEAD = 3, ANSWER_PUBLISHED = 4;
const ANSWER_SENT = 5, ANSWER_GONE = 6, ANSWER_FAILED = 7;
const STARTS = ['beginning', 'snapshot', 'head'];
const FETCH_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const NOT_JSON = Symbol('not JSON');
const HEX = '0123456789ABCDEF';
const encoder = new TextEncoder();

// ---- describe: a description as an adapter -------------------------------------------------

/**
 * The adapter of the server `description` describes (the JSON of docs/protocol.md 12.1).
 * Throws a TypeError naming what is wrong with it.
 */
export function describe(description) {
  const d = checked(description);
  const h = d.history;
  return {
    plan: {
      history: h !== undefined,
      snapshot: d.snapshot !== undefined,
      head: d.head !== undefined,
      publish: d.publish !== undefined,
      heartbeats: d.heartbeat !== undefined,
      holes: h?.holes === true,
      start: d.start,
      pollMs: d.pollMs,
      limit: h?.limit > 0 ? h.limit : 500,
    },
    read: (text) => read(d, text),
    request: (req) => request(d, req),
    answer: (req, status, body) => answer(d, req, status, body),
  };
}

function read(d, text) {
  const frame = json(text);
  if (frame === NOT_JSON) return { bad: 'the frame is not JSON' };
  if (is(d.message, frame)) {
    const m = parts(d.message, frame, 1);
    if (typeof m === 'string') return { bad: m };
    m.payload = at(frame, d.message.payload) ?? null;
    return { message: m };
  }
  if (d.heartbeat !== undefined && is(d.heartbeat, frame)) {
    const h = parts(d.heartbeat, frame, 0);
    return typeof h === 'string' ? { bad: h } : { heartbeat: h };
  }
  return null;
}

/**
 * Whether `frame` has the shape: the value at `when` is `matches` (a string equal to it, or
 * another value whose JSON text is it), or, without them, the frame has a value at `seq`.
 */
function is(shape, frame) {
  if (shape.when === undefined || shape.matches === undefined) return at(frame, shape.seq) !== undefined;
  const value = at(frame, shape.when);
  return typeof value === 'string' ? value === shape.matches : value !== undefined && JSON.stringify(value) === shape.matches.trim();
}

/** A message's or heartbeat's stream, seq and epoch, or why the frame is bad. */
function parts(shape, frame, least) {
  const stream = shape.stream.fixed ?? at(frame, shape.stream.path);
  if (typeof stream !== 'string') return `no stream name at ${shape.stream.text}`;
  const seq = at(frame, shape.seq);
  if (!isSeq(seq, least)) return `no seq in ${least}..=2^53-1 at ${shape.seq.text}`;
  // A server that has epochs names one in every frame.
  const epoch = shape.epoch === undefined ? undefined : at(frame, shape.epoch);
  if (shape.epoch !== undefined && !isSeq(epoch, 0)) return `no epoch in 0..=2^53-1 at ${shape.epoch.text}`;
  return { stream, seq, epoch };
}

function request(d, req) {
  const values = { stream: req.stream };
  switch (req.kind) {
    case 'subscribe':
      values.since = req.since;
      return frame(d.subscribe, values);
    case 'unsubscribe':
      return frame(d.unsubscribe, values);
    case 'history': {
      const h = d.history;
      if (h === undefined) return null;
      const { since, limit } = req;
      const end = since + limit;
      values.since = since;
      values.from = since + 1;
      // Past 2^53 a number is no longer exact: the sum is then taken in BigInt.
      values.to = req.to ?? (Number.isSafeInteger(end) ? end : BigInt(since) + BigInt(limit));
      values.limit = limit;
      return h.url !== undefined ? { http: http(d, 'GET', h.url, values) } : frame(h.frame, values);
    }
    case 'snapshot':
    case 'head': {
      const source = d[req.kind];
      return source === undefined ? null : { http: http(d, 'GET', source.url, values) };
    }
    case 'publish': {
      const sink = d.publish;
      if (sink === undefined) return null;
      values.data = req.data;
      values.id = req.id;
      const post = http(d, 'POST', sink.url, values);
      post.headers.push(['content-type', 'application/json']);
      post.body = fill(sink.body ?? '{data}', values, false);
      return { http: post };
    }
    default:
      return null;
  }
}

const frame = (template, values) => (template === undefined ? null : { frame: fill(template, values, false) });

const http = (d, method, url, values) => ({
  method,
  url: fill(url, values, true),
  headers: d.headers.map(([name, value]) => [name, value]),
});

function answer(d, req, status, text) {
  const kind = req?.kind;
  if (!(status >= 200 && status <= 299)) {
    const gone = d.history?.gone ?? [];
    if (kind === 'history' && (gone.length > 0 ? gone.includes(status) : status === 404 || status === 410)) {
      const earliest = earliestIn(d, json(text));
      return { gone: earliest === undefined ? {} : { earliest } };
    }
    return failed(`HTTP ${status}`, status);
  }
  if (kind === 'publish') {
    // Stored: a seq that cannot be read does not undo that.
    const path = d.publish?.seq;
    const seq = path === undefined ? undefined : at(json(text), path);
    return { published: isSeq(seq, 1) ? { seq } : {} };
  }
  const source = kind === 'history' || kind === 'snapshot' || kind === 'head' ? d[kind] : undefined;
  if (source === undefined) return failed(`no answer to a ${kind} request is expected`);
  const body = json(text);
  if (body === NOT_JSON) return failed('the answer is not JSON');
  if (kind !== 'history') {
    const seq = at(body, source.seq);
    if (!isSeq(seq, 0)) return failed(`no valid seq at ${source.seq.text}`);
    return kind === 'head' ? { head: { seq } } : { snapshot: { seq, state: at(body, source.state) ?? null } };
  }
  const list = at(body, source.messages);
  if (!Array.isArray(list)) return failed(`no array at ${source.messages.text}`);
  const messages = [];
  let epoch;
  for (const element of list) {
    const seq = at(element, d.message.seq);
    // One element without a valid seq spoils the answer: its place in the range is unknown.
    if (!isSeq(seq, 1)) return failed(`a message without a valid seq at ${d.message.seq.text}`);
    // With epochs, the messages of one answer name one epoch (an element without one names none).
    const e = d.message.epoch === undefined ? undefined : at(element, d.message.epoch);
    if (e !== undefined) {
      if (!isSeq(e, 0)) return failed(`a message without a valid epoch at ${d.message.epoch.text}`);
      if (epoch !== undefined && e !== epoch) return failed('messages of different epochs in one answer');
      epoch = e;
    }
    messages.push({ seq, payload: at(element, d.message.payload) ?? null });
  }
  const earliest = earliestIn(d, body);
  return { messages, ...(earliest === undefined ? {} : { earliest }), ...(epoch === undefined ? {} : { epoch }) };
}

/** The earliest seq an answer names, when it names a valid one. */
function earliestIn(d, body) {
  const path = d.history?.earliest;
  const value = path === undefined ? undefined : at(body, path);
  return isSeq(value, 1) ? value : undefined;
}

const failed = (reason, status) => ({ failed: typeof status === 'number' ? { reason, status } : { reason } });

const isSeq = (value, least) => Number.isSafeInteger(value) && value >= least;

function json(text) {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/** The value at a compiled path (`null` segments: the value itself), or undefined. */
function at(value, path) {
  if (path.segments === null) return value === NOT_JSON ? undefined : value;
  let v = value;
  for (const segment of path.segments) {
    if (Array.isArray(v)) {
      if (!/^[0-9]+$/.test(segment)) return undefined;
      v = v[Number(segment)];
    } else if (v !== null && typeof v === 'object' && Object.hasOwn(v, segment)) {
      v = v[segment];
    } else {
      return undefined;
    }
  }
  return v;
}

// ---- templates: the same rules as the core's (sdk-core/src/adapter.rs `fill`) ----------------

/** `template` with each `{name}` (lowercase letters) that has a value filled in. */
function fill(template, values, url) {
  let out = '';
  let rest = 0;
  for (let open = template.indexOf('{'); open >= 0; open = template.indexOf('{', rest)) {
    out += template.slice(rest, open);
    let end = open + 1;
    while (end < template.length && template.charCodeAt(end) >= 97 && template.charCodeAt(end) <= 122) end++;
    const value = end > open + 1 && template[end] === '}' ? valueOf(template.slice(open + 1, end), values, url) : undefined;
    if (value === undefined) {
      out += '{';
      rest = open + 1;
    } else {
      out += value;
      rest = end + 1;
    }
  }
  return out + template.slice(rest);
}

function valueOf(name, values, url) {
  switch (name) {
    case 'stream': {
      const s = values.stream;
      return s === undefined ? undefined : url ? percentEncode(s) : jsonEscape(s);
    }
    case 'since': case 'from': case 'to': case 'limit':
      return values[name] === undefined ? undefined : String(values[name]);
    case 'data': case 'id':
      return values[name];
    default:
      return undefined;
  }
}

const jsonEscape = (text) =>
  text.replace(/["\\\u0000-\u001f]/g, (c) =>
    c === '"' ? '\\"' : c === '\\' ? '\\\\' : `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** Percent-encodes the UTF-8 bytes of `text`, RFC 3986's unreserved characters kept. */
function percentEncode(text) {
  let out = '';
  for (const b of encoder.encode(text)) {
    const unreserved = (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) ||
      b === 45 || b === 46 || b === 95 || b === 126;
    out += unreserved ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

// ---- the description's shape: members and types as the core's `Description` reads them ------

function checked(description) {
  const top = members(description, 'description', ['message', 'subscribe', 'unsubscribe', 'heartbeat',
    'history', 'snapshot', 'head', 'pollMs', 'start', 'publish', 'headers']);
  if (top.message === undefined) fail('description.message', 'is missing (it needs at least `seq`)');
  const d = {
    message: shape(top.message, 'message'),
    subscribe: optionalText(top.subscribe, 'subscribe'),
    unsubscribe: optionalText(top.unsubscribe, 'unsubscribe'),
    heartbeat: top.heartbeat == null ? undefined : shape(top.heartbeat, 'heartbeat'),
    pollMs: integer(top.pollMs, 'pollMs', Number.MAX_SAFE_INTEGER),
    start: top.start ?? 'beginning',
    headers: headers(top.headers),
  };
  if (!STARTS.includes(d.start)) fail('start', 'must be "beginning", "snapshot" or "head"');
  if (top.history != null) {
    const h = members(top.history, 'history', ['url', 'frame', 'messages', 'earliest', 'gone', 'holes', 'limit']);
    if (!Array.isArray(h.gone ?? [])) fail('history.gone', 'must be an array of HTTP statuses');
    d.history = {
      url: optionalText(h.url, 'history.url'),
      frame: optionalText(h.frame, 'history.frame'),
      messages: path(h.messages, 'history.messages', '$'),
      earliest: h.earliest == null ? undefined : path(h.earliest, 'history.earliest'),
      gone: (h.gone ?? []).map((status, i) => integer(status, `history.gone.${i}`, 65535)),
      holes: flag(h.holes, 'history.holes'),
      limit: integer(h.limit, 'history.limit', 4294967295),
    };
    if ((d.history.url === undefined) === (d.history.frame === undefined)) {
      fail('history', 'needs exactly one of `url` and `frame`');
    }
  }
  if (top.snapshot != null) {
    const s = members(top.snapshot, 'snapshot', ['url', 'seq', 'state']);
    d.snapshot = { url: text(s.url, 'snapshot.url', ''), seq: path(s.seq, 'snapshot.seq', '$'), state: path(s.state, 'snapshot.state', '$') };
  }
  if (top.head != null) {
    const s = members(top.head, 'head', ['url', 'seq']);
    d.head = { url: text(s.url, 'head.url', ''), seq: path(s.seq, 'head.seq', '$') };
  }
  if (top.publish != null) {
    const p = members(top.publish, 'publish', ['url', 'body', 'seq']);
    d.publish = {
      url: text(p.url, 'publish.url', ''),
      body: optionalText(p.body, 'publish.body'),
      seq: p.seq == null ? undefined : path(p.seq, 'publish.seq'),
    };
  }
  if (d.start === 'snapshot' && d.snapshot === undefined) fail('start', '"snapshot" needs a snapshot source');
  if (d.start === 'head' && d.head === undefined) fail('start', '"head" needs a head source');
  return d;
}

function shape(value, where) {
  const m = members(value, where, ['when', 'matches', 'stream', 'seq', 'epoch', 'payload']);
  if (typeof m.seq !== 'string' || m.seq === '') fail(`${where}.seq`, 'must name the path of the seq');
  let stream = { path: path('stream', '') };
  if (m.stream !== undefined) {
    const s = members(m.stream, `${where}.stream`, ['path', 'fixed']);
    const keys = Object.keys(s);
    if (keys.length !== 1) fail(`${where}.stream`, 'must be {"path": P} or {"fixed": NAME}');
    stream = s.path !== undefined ? { path: path(s.path, `${where}.stream.path`) } : { fixed: text(s.fixed, `${where}.stream.fixed`) };
    if (stream.path?.text === '') fail(`${where}.stream.path`, 'names no path');
  }
  stream.text = stream.path?.text;
  return {
    when: m.when == null ? undefined : path(m.when, `${where}.when`),
    matches: optionalText(m.matches, `${where}.matches`),
    stream,
    seq: path(m.seq, `${where}.seq`),
    epoch: m.epoch == null ? undefined : path(m.epoch, `${where}.epoch`),
    payload: path(m.payload, `${where}.payload`, '$'),
  };
}

function members(value, where, names) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(where, 'must be an object');
  for (const name of Object.keys(value)) {
    if (!names.includes(name)) fail(`${where}.${name}`, 'is not a member the reference knows');
  }
  return value;
}

/** A path, compiled: `$` (or nothing) is the value itself, else its dot-separated segments. */
function path(value, where, fallback) {
  const p = text(value, where, fallback);
  return { text: p, segments: p === '$' || p === '' ? null : p.split('.') };
}

function text(value, where, fallback) {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string') fail(where, 'must be a string');
  return value;
}

const optionalText = (value, where) => (value == null ? undefined : text(value, where));

function integer(value, where, max) {
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || value < 0 || value > max) fail(where, `must be an integer in 0..=${max}`);
  return value;
}

function flag(value, where) {
  if (value !== undefined && typeof value !== 'boolean') fail(where, 'must be true or false');
  return value === true;
}

function headers(value) {
  if (value === undefined) return [];
  members(value, 'headers', Object.keys(value ?? {}));
  // In the order of their names, as the core's map keeps them.
  return Object.keys(value).sort().map((name) => [name, text(value[name], `headers.${name}`)]);
}

function fail(where, what) {
  throw new TypeError(`seqsync description: ${where} ${what}`);
}

// ---- the Client's side: the foreign WASM build and the link that carries requests out ---------

/**
 * What a `Client` needs to run over a foreign server: this build's session and memory, and the
 * link for `adapter`. `instantiate` is the main module's WASM loader.
 */
export async function foreignBinding(options, instantiate) {
  const adapter = options.adapter ?? describe(options.description);
  for (const name of ['read', 'request', 'answer']) {
    if (typeof adapter?.[name] !== 'function') throw new TypeError(`adapter.${name} must be a function`);
  }
  const plan = planNumbers(adapter.plan);
  const memory = await instantiate(initForeign, options.wasm ?? new URL('./seqsync_foreign_bg.wasm', import.meta.url));
  return {
    memory,
    create: (...args) => Session.foreign(...args, plan),
    link: (client) => new ForeignLink(client, adapter),
  };
}

function planNumbers(plan) {
  if (plan === null || typeof plan !== 'object') throw new TypeError('adapter.plan must be an object');
  const start = STARTS.indexOf(plan.start ?? 'beginning');
  if (start < 0) throw new TypeError('adapter.plan.start must be "beginning", "snapshot" or "head"');
  const yes = ['history', 'snapshot', 'head', 'publish', 'heartbeats', 'holes'].map((name) => (plan[name] === true ? 1 : 0));
  return Float64Array.of(...yes, start, plan.pollMs ?? 0, plan.limit ?? 0);
}

const EMPTY = [];

/**
 * Carries out a foreign session's requests through the adapter, and feeds the adapter's reading
 * of frames and answers back. Every request that expects an answer is answered exactly once.
 */
class ForeignLink {
  constructor(client, adapter) {
    this._client = client;
    this._adapter = adapter;
    this._fetches = new Set(); // AbortControllers of the HTTP requests in flight
  }

  /** A frame from the socket, read by the adapter unless it is not text within maxFrameBytes (`fits`). */
  frame(text, now, length, fits) {
    const s = this._client._s;
    s.received(now, length);
    let r;
    try {
      r = fits ? this._adapter.read(text) : { bad: 'not a text frame within maxFrameBytes' };
    } catch (error) {
      r = { bad: String(error?.message ?? error) };
    }
    const m = r?.message ?? r?.heartbeat;
    let flags;
    if (r == null) {
      flags = s.pending();
    } else if (m !== null && typeof m === 'object' && typeof m.stream === 'string' && typeof m.seq === 'number' &&
      (m.epoch == null || typeof m.epoch === 'number')) {
      const epoch = m.epoch ?? undefined;
      flags = r.message !== undefined
        ? s.foreignMessage(now, m.stream, m.seq, epoch, m.payload)
        : s.foreignHead(now, m.stream, m.seq, epoch);
    } else {
      s.badFrame(now);
      flags = s.pending();
    }
    this._client._dr(flags);
  }

  /** A `TRANSMIT_FOREIGN`: the stream, and the request's numbers in the scratch area `v`. */
  transmit(stream, v) {
    const s = this._client._s;
    const id = v[10];
    const req = { kind: REQUESTS[v[11]], stream };
    if (req.kind === 'subscribe') req.since = v[12];
    if (req.kind === 'history') {
      req.since = v[12];
      if (v[13] >= 0) req.to = v[13];
      req.limit = v[14];
    }
    if (req.kind === 'publish') {
      req.data = s.foreignData();
      req.id = s.foreignId();
    }
    let out;
    try {
      out = this._adapter.request(req);
    } catch (error) {
      out = { error };
    }
    if (typeof out?.frame === 'string') {
      const ws = this._client._ws;
      let sent = false;
      try {
        ws.send(out.frame);
        sent = true;
      } catch { /* not open: the session asks again */ }
      // After the drain this transmit belongs to: the session's inputs are not re-entered.
      if (id >= 0) queueMicrotask(() => this._answer(id, sent ? 'sent' : { failed: { reason: 'the socket is not open' } }, 0));
    } else if (out?.http !== null && typeof out?.http === 'object') {
      this._fetch(id, req, out.http);
    } else if (id >= 0) {
      const reason = out?.error !== undefined ? String(out.error?.message ?? out.error) : `the adapter has no ${req.kind} request`;
      queueMicrotask(() => this._answer(id, { failed: { reason } }, 0));
    }
  }

  /** Stops every HTTP request in flight (the client closed). */
  stop() {
    for (const controller of this._fetches) controller.abort();
    this._fetches.clear();
  }

  async _fetch(id, req, http) {
    const controller = new AbortController();
    this._fetches.add(controller);
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    let answer;
    let bytes = 0;
    try {
      const response = await fetch(http.url, {
        method: http.method ?? 'GET',
        headers: http.headers,
        body: http.body ?? undefined,
        signal: controller.signal,
      });
      const body = await readBody(response);
      bytes = body.bytes;
      answer = id >= 0 ? this._adapter.answer(req, response.status, body.text) : undefined;
    } catch (error) {
      const reason = controller.signal.aborted ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : String(error?.message ?? error);
      answer = { failed: { reason } };
    } finally {
      clearTimeout(timer);
      this._fetches.delete(controller);
    }
    if (id >= 0) this._answer(id, answer, bytes);
  }

  /** Hands an answer to the session; one of unusable shape is a failure. */
  _answer(id, a, bytes) {
    this._client._in((s, t) => {
      const n = (x) => (x == null ? -1 : typeof x === 'number' ? x : NaN);
      const failed = (reason, status) => s.fetched(t, id, bytes, ANSWER_FAILED, n(status), EMPTY, EMPTY, reason);
      if (a === 'sent') return s.fetched(t, id, 0, ANSWER_SENT, -1, EMPTY, EMPTY, undefined);
      if (a === null || typeof a !== 'object') return failed('the adapter gave no answer');
      if (a.messages !== undefined) {
        const m = a.messages;
        if (!Array.isArray(m) || m.some((x) => x === null || typeof x !== 'object' || typeof x.seq !== 'number')) {
          return failed('the adapter answered messages without a seq each');
        }
        return s.fetched(t, id, bytes, ANSWER_MESSAGES, n(a.earliest), Float64Array.from(m, (x) => x.seq), m.map((x) => x.payload), a.epoch);
      }
      const [kind, value] = Object.entries(a)[0] ?? [];
      const v = value ?? {};
      switch (kind) {
        // A seq that is absent (-1) or not a number is invalid here: the answer counts as failed.
        case 'snapshot': return s.fetched(t, id, bytes, ANSWER_SNAPSHOT, n(v.seq), EMPTY, EMPTY, v.state);
        case 'head': return s.fetched(t, id, bytes, ANSWER_HEAD, n(v.seq), EMPTY, EMPTY, undefined);
        case 'published': return s.fetched(t, id, bytes, ANSWER_PUBLISHED, n(v.seq), EMPTY, EMPTY, undefined);
        case 'gone': return s.fetched(t, id, bytes, ANSWER_GONE, n(v.earliest), EMPTY, EMPTY, undefined);
        case 'failed': return failed(String(v.reason ?? 'failed'), v.status);
        default: return failed('the adapter gave an answer of no known kind');
      }
    });
  }
}

/** The body's text, at most MAX_BODY_BYTES of it (more is a failure). */
async function readBody(response) {
  if (Number(response.headers.get('content-length')) > MAX_BODY_BYTES) throw new Error('the body is over 32 MiB');
  if (response.body === null) return { text: '', bytes: 0 };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > MAX_BODY_BYTES) {
      reader.cancel().catch(() => {});
      throw new Error('the body is over 32 MiB');
    }
    text += decoder.decode(value, { stream: true });
  }
  return { text: text + decoder.decode(), bytes };
}
