import { Client, init } from 'seqsync';
import wasm from 'seqsync/seqsync_wasm_bg.wasm';
import { runPage } from '../../common/check.js';

// esbuild leaves `new URL(..., import.meta.url)` as it is: the file loader
// emits the WASM file into the output and gives its URL, for `init`.
init(wasm);
runPage(Client, () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
