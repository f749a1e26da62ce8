import { Client } from 'seqsync';
import { runPage } from '../../common/check.js';

runPage(Client, () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
