/**
 * One guest operation of BlkFront: the chunks (ring requests) it was split into answer it,
 * and its promise is what the API returns.
 */
import { BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import type { OpKind } from './counters.js';

export class Op {
  status: number = BLKIF_RSP_OKAY;
  resolve: () => void = noop;
  reject: (err: Error) => void = noop;

  constructor(
    readonly kind: OpKind,
    /** Chunks not answered yet. */
    public remaining: number,
    readonly bytes: number,
    /** When it was submitted (ms, `tickTime`). */
    readonly start: number,
  ) {}

  /** The operation's promise, its resolving functions kept in the Op. */
  promise(): Promise<void> {
    const p = new Promise<void>(captureResolvers);
    this.resolve = captured.resolve;
    this.reject = captured.reject;
    return p;
  }
}

function noop(): void {}

/**
 * Promise.withResolvers (Node 22) by hand: one executor for every Op, which leaves the new
 * promise's resolving functions here for Op.promise to take (no executor closure per I/O).
 */
const captured: { resolve: () => void; reject: (err: Error) => void } = { resolve: noop, reject: noop };
function captureResolvers(resolve: () => void, reject: (err: Error) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

