/**
 * The operations `xenpv bench xenstore` times, and the tree they run on. Each client has its
 * own nodes (a guest its own home, a socket client its own `/bench/cNN`), so clients never
 * contend for a node: the figures are the daemon's throughput, not a conflict storm.
 *
 * - read: READ of a 16-byte value;
 * - write: WRITE of a 16-byte value over an existing node;
 * - directory: DIRECTORY of a node with 8 children;
 * - txn: TRANSACTION_START, READ a counter, WRITE it + 1, TRANSACTION_END T; the whole
 *   transaction again on EAGAIN (`withTransaction`), counted as a retry.
 */
import { XenpvError } from '../../base/index.js';
import type { XsClient } from '../../xenstore/client/index.js';
import { encodeMessage, encodeRequest } from '../../xenstore/protocol/index.js';
import type { XsBenchOp } from './messages.js';

export const VALUE = new TextEncoder().encode('0123456789abcdef');
export const DIR_ENTRIES = 8;
const HEADER = 16;

/** Where socket client `i` keeps its nodes (two digits: every client's requests are the same size). */
export function socketBase(i: number): string {
  return `/bench/c${String(i).padStart(2, '0')}`;
}

/** A guest's nodes, relative to its home `/local/domain/<domid>`. */
export const GUEST_BASE = 'bench';

/** The bytes of socket client 0's READ request: what the echo baseline sends. */
export function readRequestBytes(): Uint8Array {
  return encodeMessage({ ...encodeRequest({ op: 'read', path: `${socketBase(0)}/value` }), reqId: 1, txId: 0 });
}

/** The size of the daemon's READ reply (header + value, no terminator): what the echo answers. */
export const READ_REPLY_BYTES = HEADER + VALUE.length;

/** Create a client's nodes (before any timing). */
export async function prepare(xs: XsClient, base: string): Promise<void> {
  await xs.write(`${base}/value`, VALUE);
  await xs.write(`${base}/w`, VALUE);
  await xs.write(`${base}/counter`, '0');
  for (let i = 0; i < DIR_ENTRIES; i++) await xs.write(`${base}/dir/e${i}`, '');
}

/** One operation; returns the EAGAIN retries it took. A wrong answer is an error, not a figure. */
export async function runOp(xs: XsClient, base: string, op: XsBenchOp): Promise<number> {
  switch (op) {
    case 'read': {
      const v = await xs.read(`${base}/value`);
      if (v.length !== VALUE.length) throw new XenpvError('EIO', `bench read: ${v.length} bytes, expected ${VALUE.length}`);
      return 0;
    }
    case 'write':
      await xs.write(`${base}/w`, VALUE);
      return 0;
    case 'directory': {
      const names = await xs.directory(`${base}/dir`);
      if (names.length !== DIR_ENTRIES) throw new XenpvError('EIO', `bench directory: ${names.length} entries`);
      return 0;
    }
    case 'txn': {
      let attempts = 0;
      await xs.withTransaction(async (tx) => {
        attempts++;
        const n = Number(await tx.readString(`${base}/counter`));
        await tx.write(`${base}/counter`, String(n + 1));
      });
      return attempts - 1;
    }
  }
}
