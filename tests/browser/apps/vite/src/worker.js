import { Client } from 'seqsync';
import { runWorker } from '../../common/check.js';

runWorker(Client);
