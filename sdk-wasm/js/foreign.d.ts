// Types of `seqsync/foreign`: servers that do not speak the seqsync protocol.

import type { Description, ForeignAdapter, ForeignPlan, Json } from './seqsync.js';

export type {
  Description,
  ForeignAdapter,
  ForeignAnswer,
  ForeignFrame,
  ForeignHttp,
  ForeignOutbound,
  ForeignPlan,
  ForeignRequest,
  JsonPath,
  MessageShape,
} from './seqsync.js';

/**
 * The adapter of the server `description` describes: its `plan`, how it
 * reads frames and HTTP answers, and how it writes requests, every template
 * filled as the native client fills it. Throws a `TypeError` naming what is
 * wrong with the description (an unknown member, a missing `message.seq`,
 * `history` with both or neither of `url` and `frame`, a `start` without
 * its source, a value of the wrong type).
 *
 * ```js
 * const adapter = describe({ message: { stream: { path: 'room' }, seq: 'sequence_id' } });
 * adapter.read('{"room":"lobby","sequence_id":3}');
 * // { message: { stream: 'lobby', seq: 3, epoch: undefined, payload: { room: 'lobby', sequence_id: 3 } } }
 * ```
 */
export function describe<T = Json>(description: Description): ForeignAdapter<T> & { readonly plan: Required<ForeignPlan> };
