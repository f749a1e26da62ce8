import { Client, init } from 'seqsync';
import wasm from 'seqsync/seqsync_wasm_bg.wasm';
import { runWorker } from '../../common/check.js';

init(wasm);
runWorker(Client);
