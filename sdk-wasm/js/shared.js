// What the package's entries share (seqsync.js and sequencer.js, each over its own WASM build):
// the error class, loading a build, and reading the core's answers. Not an entry of the package.

// The event kinds of the core's calling convention (sdk-wasm/src/lib.rs) that `eventFields` reads.
const EVENT_MESSAGE = 1, EVENT_SNAPSHOT = 2, EVENT_RESET = 3, EVENT_SKIPPED = 4;
const EVENT_GAP_DETECTED = 5, EVENT_GAP_HEALED = 6, EVENT_STALLED = 7;
// The numbers of the core's scratch area.
const SLOTS = 15;
// Not the core's: a frame the JavaScript refused before the core saw it (the core counts those it refuses).
const REJECTED = 32;

const RESET_REASONS = ['history_unavailable', 'epoch_changed', 'server_behind'];
const PHASES = ['disconnected', 'subscribing', 'snapshotting', 'live'];
const STALLED_REQUESTS = ['history', 'snapshot', 'subscribe'];
// The order of the core's counters, and of the numeric options its sequencer reads.
const STREAM_STATS = `delivered duplicates dropped skipped gaps gapsHealed resyncs resets buffered lastSeq head
  lag`.split(/\s+/);
const CORE_OPTIONS = 'window gapTimeoutMs requestTimeoutMs maxBackoffMs stallAfterAttempts maxFetch maxStreams'.split(' ');
/** `names`, each of `kind`, as `checkArguments` reads its `kinds`. */
const kindsOf = (names, kind) => Object.fromEntries(names.map((name) => [name, kind]));
const NAME_CONTROL = /\p{Cc}/u;

export class SeqsyncError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SeqsyncError';
    this.code = code;
  }
}

// How many error codes of the protocol the core knows (`ErrorCode::ALL`): an index past them
// is a code this version does not know.
const SERVER_CODES = 13;

/** The server's refusal `code` (its index in the core, `index`) of a request: `unknown` for a code this version does not know; the message names the code. */
const serverError = (code, index, message) =>
  new SeqsyncError(index < SERVER_CODES ? code : 'unknown', `${code}: ${message}`);

/**
 * Instantiates a WASM build through its wasm-bindgen `init`; resolves to its memory. Every
 * failure is a `SeqsyncError` naming `input`'s URL (also as `url`): `wasm_unavailable` (not
 * fetched or read: a network error, a status other than 2xx), `wasm_blocked` (a
 * Content-Security-Policy forbids compiling it) or `wasm_invalid` (not this build's WASM).
 */
async function instantiate(initModule, input) {
  const url = typeof input === 'string' || input instanceof URL ? String(input) : input?.url;
  try {
    if (input instanceof URL && input.protocol === 'file:') {
      // Node has no fetch for files; the indirect name keeps browser bundlers out of this branch.
      const fsModule = 'node:fs/promises';
      input = await (await import(/* @vite-ignore */ /* webpackIgnore: true */ fsModule)).readFile(input);
    }
    return (await initModule({ module_or_path: input })).memory;
  } catch (e) {
    const text = String(e?.message ?? e);
    // Browsers word a CSP refusal each their own way, and throw a CompileError or an EvalError.
    const [code, why] = /unsafe-eval|CSP|Content.Security/i.test(text)
      ? ['wasm_blocked', `blocked by the Content-Security-Policy (script-src needs 'wasm-unsafe-eval')`]
      : e instanceof WebAssembly.CompileError || e instanceof WebAssembly.LinkError
        ? ['wasm_invalid', 'not the WASM module of this package']
        : ['wasm_unavailable', 'could not be loaded'];
    throw Object.assign(new SeqsyncError(code, `the WASM module${url ? ` ${url}` : ''} ${why}: ${text}`), { url });
  }
}

/** The scratch area of a Sequencer or Client; the view is renewed when the memory grows. */
function scratch(owner) {
  if (owner._v.length === 0) owner._v = new Float64Array(owner._mem.buffer, owner._p, SLOTS);
  return owner._v;
}

const statsObject = (raw) => raw && {
  ...Object.fromEntries(STREAM_STATS.map((name, i) => [name, raw[i]])),
  epoch: raw[12] < 0 ? undefined : raw[12],
  phase: PHASES[raw[13]],
};

/** A stream event's numbers (and payload) from the scratch area, as a plain object. */
function eventFields(kind, s, payload) {
  switch (kind) {
    case EVENT_MESSAGE: return { seq: s[3], data: payload };
    case EVENT_SNAPSHOT: return { seq: s[3], epoch: s[4], state: payload };
    case EVENT_RESET: return s[4] < 0 ? { reason: RESET_REASONS[s[3]] } : { reason: RESET_REASONS[s[3]], earliest: s[4] };
    case EVENT_SKIPPED: case EVENT_GAP_DETECTED: return { from: s[3], to: s[4] };
    case EVENT_GAP_HEALED: return { through: s[3] };
    case EVENT_STALLED: return s[3] === 0
      ? { request: 'history', from: s[4], to: s[5], attempts: s[6] }
      : { request: STALLED_REQUESTS[s[3]], attempts: s[6] };
    default: return { phase: PHASES[s[3]] };
  }
}

/** The length of `text` in UTF-8 bytes (a surrogate pair is 2 + 2). */
function utf8Length(text) {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c < 0xe000) ? 1 : 2;
  }
  return n;
}

/**
 * Throws `invalid_argument` naming what is wrong unless `given` is an object whose members
 * named in `kinds` are absent (undefined or null) or of a kind its text there names: `kinds`
 * maps a key to text such as `'string or function'` (a number: finite and 0 or more; an
 * array: of strings). `strict`: a key `kinds` does not name is refused too. `where` names
 * `given` in the message.
 */
function checkArguments(where, given, kinds, strict) {
  if (given === null || typeof given !== 'object') throw new SeqsyncError('invalid_argument', `${where} must be an object`);
  for (const key of Object.keys(given)) {
    const kind = Object.hasOwn(kinds, key) && kinds[key];
    const v = given[key];
    const type = typeof v === 'number' ? v >= 0 && v < Infinity && 'number'
      : Array.isArray(v) ? v.every((e) => typeof e === 'string') && 'array' : typeof v;
    if (kind ? v != null && !kind.includes(type) : strict) {
      throw new SeqsyncError('invalid_argument', `${where}.${key} ${kind ? `must be ${kind}` : `is not one of ${Object.keys(kinds)}`}`);
    }
  }
}

/** Throws `invalid_stream` unless `stream` is a valid stream name (protocol.md 3.3). */
function checkName(stream) {
  if (typeof stream !== 'string' || stream === '' || NAME_CONTROL.test(stream) || utf8Length(stream) > 256) {
    throw new SeqsyncError('invalid_stream', `invalid stream name ${JSON.stringify(String(stream))}`);
  }
}

// Exported under short names, which importers rename back: a module's export names survive
// minification, and a page downloads each twice (here and where it is imported).
export {
  CORE_OPTIONS as O, PHASES as P, REJECTED as J, RESET_REASONS as R, SLOTS as L, checkArguments as A,
  checkName as N, eventFields as F, instantiate as I, kindsOf as K, scratch as S, serverError as E,
  statsObject as T, utf8Length as U,
};
