// Prints the shipped size of the package: the WASM module and the JS
// (this package's module plus the wasm-bindgen glue), minified with terser,
// each gzipped at level 9, against the goal (sdk-wasm/BENCHMARKS.md).
// Usage: node size.mjs <pkg dir> [--budget BYTES] [--foreign | --sequencer]:
// with a budget, exits non-zero when the total is above it. With --foreign,
// what a page with a client of a foreign server downloads instead: the
// package's module and glue, `seqsync/foreign` and its own build (glue and
// WASM). With --sequencer, what a page that imports only
// `seqsync/sequencer` (the bare Sequencer) downloads: that module and its
// own build.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';

const HALF = 32_000; // half the weight of the default page before the size work (63,241)
const GOAL = 19_000; // what the package aims for: below centrifuge-js, on a par with pusher-js

const dir = process.argv[2];
const budgetAt = process.argv.indexOf('--budget');
const budget = budgetAt > 0 ? Number(process.argv[budgetAt + 1]) : undefined;
const foreign = process.argv.includes('--foreign');
const sequencer = process.argv.includes('--sequencer');
const build = foreign ? 'seqsync_foreign' : sequencer ? 'seqsync_sequencer' : 'seqsync_wasm';
if (!dir || (budget !== undefined && !(budget > 0)) || (foreign && sequencer)) {
  console.error('usage: node size.mjs <pkg dir> [--budget BYTES] [--foreign | --sequencer]');
  process.exit(2);
}

const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;
const rows = [];
let total = 0;
// The package's module imports its glue and the code its entries share in every case; the
// foreign build's glue comes on top. `seqsync/sequencer` imports only the shared code and its glue.
const scripts = sequencer
  ? ['sequencer.js', 'shared.js', `${build}.js`]
  : ['seqsync.js', 'shared.js', 'seqsync_wasm.js', ...(foreign ? ['foreign.js', `${build}.js`] : [])];
for (const file of scripts) {
  const source = readFileSync(join(dir, file), 'utf8');
  const min = await minify(source, { module: true, compress: true, mangle: true });
  const size = gz(Buffer.from(min.code));
  rows.push([file, source.length, min.code.length, size]);
  total += size;
}
const wasm = readFileSync(join(dir, `${build}_bg.wasm`));
const wasmGz = gz(wasm);
rows.push([`${build}_bg.wasm`, wasm.length, wasm.length, wasmGz]);
total += wasmGz;

console.log('file                      raw      min      min+gzip');
for (const [name, raw, min, size] of rows) {
  console.log(`${name.padEnd(24)} ${String(raw).padStart(7)}  ${String(min).padStart(7)}  ${String(size).padStart(8)}`);
}
const page = foreign ? 'foreign-server bundle' : sequencer ? 'sequencer bundle' : 'bundle';
console.log(`${page} (wasm + JS glue), min+gzip: ${total} bytes = ${(total / 1024).toFixed(1)} KiB`);
const gap = (limit) => (total <= limit ? 'met' : `over by ${total - limit} bytes`);
if (!foreign && !sequencer) console.log(`half the weight, ${HALF} bytes: ${gap(HALF)}; goal ${GOAL} bytes: ${gap(GOAL)}`);
if (budget !== undefined) {
  console.log(`budget of this build ${budget} bytes: ${gap(budget)}`);
  if (total > budget) process.exitCode = 1;
}
