// Compiles only if `SeqsyncError.code` is a closed union that a switch can
// handle exhaustively: the `never` in `default` fails to compile when a code
// of the union has no case here (run with `tsc --strict` by scripts/browser.sh,
// against the source and against the installed package).

import { Client, SeqsyncError, type SeqsyncErrorCode } from 'seqsync';

/** What an application would tell its user, for every code. */
export function explain(code: SeqsyncErrorCode): string {
  switch (code) {
    case 'invalid_argument':
    case 'invalid_payload':
    case 'invalid_stream':
    case 'already_subscribed':
    case 'invalid_subscription':
    case 'invalid_input':
    case 'not_initialized':
      return 'a mistake in the calling code';
    case 'no_websocket':
    case 'no_crypto':
      return 'the platform lacks what the client needs';
    case 'wasm_unavailable':
    case 'wasm_invalid':
      return 'the WASM file is not where the page looks for it';
    case 'wasm_blocked':
      return "the page's Content-Security-Policy needs 'wasm-unsafe-eval'";
    case 'closed':
    case 'connect_failed':
      return 'no connection';
    case 'publish_timeout':
    case 'publish_unconfirmed':
      return 'may have been stored';
    case 'too_many_pending':
    case 'publish_too_large':
    case 'too_many_streams':
    case 'too_many_subscriptions':
    case 'frame_too_large':
      return 'a limit';
    case 'publish_failed':
    case 'unsupported':
      return 'the foreign server refused';
    case 'overflow':
      return 'the loop fell behind';
    case 'rate_limited':
    case 'internal':
      return 'the server is busy or failed';
    case 'unauthorized':
      return 'not allowed';
    case 'malformed_frame':
    case 'unknown_type':
    case 'seq_out_of_range':
    case 'invalid_range':
    case 'not_subscribed':
    case 'range_beyond_head':
    case 'unknown':
      return 'the server refused';
    default: {
      const unhandled: never = code;
      return unhandled;
    }
  }
}

/** Where the module came from, for the load errors. */
export function source(error: SeqsyncError): string | undefined {
  return error.code === 'wasm_unavailable' ? error.url : undefined;
}

export async function send(client: Client): Promise<string> {
  try {
    await client.publish('room', { text: 'hi' });
    return 'sent';
  } catch (error) {
    return error instanceof SeqsyncError ? explain(error.code) : 'not from seqsync';
  }
}

// @ts-expect-error: not a code of the package
export const notACode: SeqsyncErrorCode = 'invalid_data';
// @ts-expect-error: an error is made with a code of the union only
export const madeUp = new SeqsyncError('oops', 'message');
