/**
 * Transactions: TRANSACTION_START returns an id that later requests carry in `tx_id`;
 * TRANSACTION_END `T` commits, `F` aborts. "EAGAIN means the client must retry the whole
 * transaction" (protocols.md §1.5): `withTransaction` does exactly that, a bounded number of
 * times, with a short randomised back-off so two retrying writers stop colliding.
 */
import { XenpvError, errorCode, trackResource, type Disposable } from '../../base/index.js';
import type { XsPerm } from '../protocol/index.js';
import type { XsClient } from './client.js';

export class XsTransaction implements Disposable {
  private ended = false;
  private readonly untrack: () => void;

  constructor(
    readonly id: number,
    private readonly client: XsClient,
  ) {
    this.untrack = trackResource('xs-transaction', `transaction ${id}`);
  }

  /** True until commit, abort, or the connection's end. */
  get open(): boolean {
    return !this.ended;
  }

  read(path: string): Promise<Uint8Array> {
    return this.client.read(path, this);
  }

  readString(path: string): Promise<string> {
    return this.client.readString(path, this);
  }

  write(path: string, value: Uint8Array | string): Promise<void> {
    return this.client.write(path, value, this);
  }

  mkdir(path: string): Promise<void> {
    return this.client.mkdir(path, this);
  }

  rm(path: string): Promise<void> {
    return this.client.rm(path, this);
  }

  directory(path: string): Promise<string[]> {
    return this.client.directory(path, this);
  }

  getPerms(path: string): Promise<XsPerm[]> {
    return this.client.getPerms(path, this);
  }

  setPerms(path: string, perms: readonly XsPerm[]): Promise<void> {
    return this.client.setPerms(path, perms, this);
  }

  /** TRANSACTION_END T. Rejects with code EAGAIN on a conflict (the transaction is then gone). */
  commit(): Promise<void> {
    return this.client.transactionEnd(this, true);
  }

  /** TRANSACTION_END F. */
  abort(): Promise<void> {
    return this.client.transactionEnd(this, false);
  }

  /** Abort if still open; the reply is not awaited. */
  dispose(): void {
    if (this.ended) return;
    this.abort().catch(() => undefined);
  }

  /** The client's record that xenstored no longer knows this id. */
  markEnded(): void {
    if (this.ended) return;
    this.ended = true;
    this.untrack();
  }
}

export interface RetryOptions {
  /** Attempts before giving up with EAGAIN; default 16. */
  readonly maxAttempts?: number;
}

/**
 * Run `fn` inside a transaction and commit; on EAGAIN (at commit or from any request inside)
 * start over. Any other error aborts the transaction and is rethrown. If `fn` ends the
 * transaction itself, its result is returned as is.
 */
export async function withTransaction<T>(
  client: XsClient,
  fn: (tx: XsTransaction) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 16;
  let last: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const tx = await client.transactionStart();
    try {
      const result = await fn(tx);
      if (tx.open) await tx.commit();
      return result;
    } catch (err) {
      if (tx.open) await tx.abort().catch(() => undefined);
      if (errorCode(err) !== 'EAGAIN') throw err;
      last = err;
      await backoff(attempt);
    }
  }
  throw new XenpvError('EAGAIN', `transaction still conflicting after ${maxAttempts} attempts`, { attempts: maxAttempts }, { cause: last });
}

/** Up to 2^attempt ms (capped at 32 ms), random: colliding writers fall out of step. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(32, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
