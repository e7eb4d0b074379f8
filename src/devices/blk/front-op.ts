/**
 * One guest operation of BlkFront: the chunks (ring requests) it was split into answer it.
 * It ends one of two ways: its promise (the `read`/`write`/... API), or a completion callback
 * with the caller's tag (`submit`, io_submit-style: no promise and no async resume per I/O).
 */
import { BLKIF_RSP_OKAY } from '../../abi/io/blkif.js';
import type { OpKind } from './counters.js';

/**
 * Called once per submitted operation when it ends: `err` undefined on success. Called from
 * the frontend's completion drain (never from inside the `submit` that started it).
 */
export type IoDone = (tag: number, err: Error | undefined) => void;

export class Op {
  // Set in the constructor, not as field initializers (a separate call per Op in V8's profile).
  status: number;
  resolve: () => void;
  reject: (err: Error) => void;

  constructor(
    public kind: OpKind,
    /** Chunks not answered yet. */
    public remaining: number,
    public bytes: number,
    /** When it was submitted (ms, the device's burst clock: front-io.ts). */
    public start: number,
    /** The callback that ends it instead of a promise (`submit`), and the tag handed back to it. */
    private done: IoDone | undefined = undefined,
    private tag = 0,
  ) {
    this.status = BLKIF_RSP_OKAY;
    this.resolve = noop;
    this.reject = noop;
  }

  /** Ended by a callback (`submit`): nothing outside the device keeps it once settled, so it may be reused. */
  get reusable(): boolean {
    return this.done !== undefined;
  }

  /** A settled callback operation made a new one (BlkFrontIo's pool): every field as the constructor sets it. */
  reuse(kind: OpKind, remaining: number, bytes: number, start: number, done: IoDone, tag: number): this {
    this.kind = kind;
    this.remaining = remaining;
    this.bytes = bytes;
    this.start = start;
    this.done = done;
    this.tag = tag;
    this.status = BLKIF_RSP_OKAY;
    return this;
  }

  /** The operation's promise, its resolving functions kept in the Op. */
  promise(): Promise<void> {
    const p = new Promise<void>(captureResolvers);
    this.resolve = captured.resolve;
    this.reject = captured.reject;
    return p;
  }

  /** End the operation: its callback, or its promise. */
  settle(err: Error | undefined): void {
    const done = this.done;
    if (done === undefined) {
      if (err === undefined) this.resolve();
      else this.reject(err);
      return;
    }
    try {
      done(this.tag, err);
    } catch (thrown) {
      // The caller's bug must not break the drain that is answering other requests: it
      // surfaces as an uncaught error, as a throw in a promise continuation would.
      queueMicrotask(() => {
        throw thrown;
      });
    }
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
