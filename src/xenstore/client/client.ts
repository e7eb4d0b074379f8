/**
 * The xenstore client: typed operations over one connection (socket or ring page alike, any
 * `StoreTransport`), in the forms libxenstore sends them.
 *
 * Paths, tokens and names are byte strings (one char per byte, as in `../protocol/`): xenstore
 * paths are ASCII by rule, so plain strings work. Values are bytes; `readString`/`write(string)`
 * convert with UTF-8. Failures are `XenpvError`s whose `code` is the Xen error name.
 */
import { XenpvError, type Disposable } from '../../base/index.js';
import type { StoreTransport } from '../../hv/platform.js';
import {
  XsOp,
  decodeDirectoryPart,
  decodePermsReply,
  decodeSingleString,
  decodeStringList,
  encodeRequest,
  type XsMessage,
  type XsPerm,
  type XsRequest,
} from '../protocol/index.js';
import { XsConnection, type ConnectionOptions } from './connection.js';
import { XsTransaction, withTransaction, type RetryOptions } from './transaction.js';
import { WatchRouter, XsWatch, type Registration, type WatchOptions, type WatchSpec } from './watch.js';

export interface XsClientOptions extends ConnectionOptions, WatchOptions {}

/** A transaction, or anything carrying its id (0 = none). */
export interface TxRef {
  readonly id: number;
  readonly open?: boolean;
}

const utf8 = new TextDecoder();
/** Restarts of a DIRECTORY_PART listing whose generation keeps changing, before EAGAIN. */
const DIRECTORY_PART_RESTARTS = 16;

export class XsClient implements Disposable {
  private readonly conn: XsConnection;
  private readonly router = new WatchRouter();
  private readonly transactions = new Set<XsTransaction>();
  private readonly watchOptions: WatchOptions;
  private nextToken = 1;

  constructor(transport: StoreTransport, options: XsClientOptions = {}) {
    this.conn = new XsConnection(transport, options);
    this.watchOptions = options;
    this.conn.setWatchListener((msg) => this.router.route(msg));
    this.conn.onClosed((err) => {
      this.router.endAll(err);
      for (const tx of this.transactions) tx.markEnded();
      this.transactions.clear();
    });
  }

  /** Why the client is unusable (ECONNRESET, EPROTO, ECANCELED), or undefined while open. */
  get closedWith(): XenpvError | undefined {
    return this.conn.closedWith;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.conn.inFlight;
  }

  /** Close the connection; pending requests fail with ECANCELED, watches end. */
  close(): void {
    this.conn.close();
  }

  dispose(): void {
    this.close();
  }

  // ---- nodes ----

  async read(path: string, tx?: TxRef): Promise<Uint8Array> {
    return (await this.call({ op: 'read', path }, tx)).payload;
  }

  async readString(path: string, tx?: TxRef): Promise<string> {
    return utf8.decode(await this.read(path, tx));
  }

  async write(path: string, value: Uint8Array | string, tx?: TxRef): Promise<void> {
    const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    await this.call({ op: 'write', path, value: bytes }, tx);
  }

  async mkdir(path: string, tx?: TxRef): Promise<void> {
    await this.call({ op: 'mkdir', path }, tx);
  }

  async rm(path: string, tx?: TxRef): Promise<void> {
    await this.call({ op: 'rm', path }, tx);
  }

  /** Children names. A list over 4096 bytes (E2BIG) is fetched with DIRECTORY_PART, as libxenstore does. */
  async directory(path: string, tx?: TxRef): Promise<string[]> {
    try {
      return decodeStringList((await this.call({ op: 'directory', path }, tx)).payload);
    } catch (err) {
      if (!(err instanceof XenpvError) || err.code !== 'E2BIG') throw err;
      return this.directoryParts(path, tx);
    }
  }

  async getPerms(path: string, tx?: TxRef): Promise<XsPerm[]> {
    const perms = decodePermsReply((await this.call({ op: 'getPerms', path }, tx)).payload);
    if (perms === undefined) throw new XenpvError('EINVAL', `GET_PERMS ${path}: malformed reply`);
    return perms;
  }

  async setPerms(path: string, perms: readonly XsPerm[], tx?: TxRef): Promise<void> {
    await this.call({ op: 'setPerms', path, perms }, tx);
  }

  // ---- watches ----

  /** Watch one path; see watch.ts. The default token is unique to this client. */
  watch(path: string, token?: string, options: WatchOptions & { depth?: number } = {}): XsWatch {
    return this.watchAll([{ path, token, depth: options.depth }], options);
  }

  /** Several (path, token) registrations feeding one iterator, in arrival order. */
  watchAll(specs: readonly WatchSpec[], options: WatchOptions = {}): XsWatch {
    const full = specs.map((s) => ({ path: s.path, token: s.token ?? `xenpv-watch-${this.nextToken++}`, depth: s.depth }));
    const hooks = {
      router: this.router,
      unwatch: (path: string, token: string) => void this.unwatch(path, token).catch(() => undefined),
    };
    const register = async (reg: Registration): Promise<void> => {
      await this.call({ op: 'watch', path: reg.path, token: reg.token, depth: reg.depth });
    };
    return new XsWatch(full, register, hooks, { ...this.watchOptions, ...options });
  }

  /** UNWATCH as a plain request (XsWatch.dispose() sends it for you). */
  async unwatch(path: string, token: string): Promise<void> {
    await this.call({ op: 'unwatch', path, token });
  }

  /** RESET_WATCHES: xenstored drops all our watches and transactions; so do we. */
  async resetWatches(): Promise<void> {
    await this.call({ op: 'resetWatches' });
    this.router.endAll();
    for (const tx of this.transactions) tx.markEnded();
    this.transactions.clear();
  }

  // ---- transactions ----

  async transactionStart(): Promise<XsTransaction> {
    const reply = decodeSingleString((await this.call({ op: 'transactionStart' })).payload);
    const id = /^[0-9]{1,10}$/.test(reply) ? Number(reply) : NaN;
    if (!(id > 0 && id <= 0xffffffff)) throw new XenpvError('EPROTO', `TRANSACTION_START: bad id '${reply}'`);
    const tx = new XsTransaction(id, this);
    this.transactions.add(tx);
    return tx;
  }

  /** TRANSACTION_END; the transaction is over whatever the answer (EAGAIN included). */
  async transactionEnd(tx: XsTransaction, commit: boolean): Promise<void> {
    try {
      await this.call({ op: 'transactionEnd', commit }, tx);
    } finally {
      this.endTx(tx);
    }
  }

  withTransaction<T>(fn: (tx: XsTransaction) => Promise<T>, options?: RetryOptions): Promise<T> {
    return withTransaction(this, fn, options);
  }

  // ---- domains and the daemon ----

  async introduce(domid: number, gfn: number, port: number): Promise<void> {
    await this.call({ op: 'introduce', domid, gfn, port });
  }

  async release(domid: number): Promise<void> {
    await this.call({ op: 'release', domid });
  }

  async getDomainPath(domid: number): Promise<string> {
    return decodeSingleString((await this.call({ op: 'getDomainPath', domid })).payload);
  }

  async isDomainIntroduced(domid: number): Promise<boolean> {
    // libxenstore: anything but "F" is true.
    return decodeSingleString((await this.call({ op: 'isDomainIntroduced', domid })).payload) !== 'F';
  }

  async resume(domid: number): Promise<void> {
    await this.call({ op: 'resume', domid });
  }

  async setTarget(domid: number, target: number): Promise<void> {
    await this.call({ op: 'setTarget', domid, target });
  }

  /** CONTROL `cmd\0args...`: the raw reply (command-specific). */
  async control(args: readonly string[]): Promise<Uint8Array> {
    return (await this.call({ op: 'control', args })).payload;
  }

  /** GET_FEATURE: the feature bitmap of the caller (no domid) or of `domid`. */
  async getFeature(domid?: number): Promise<number> {
    return parseDecimal('GET_FEATURE', decodeSingleString((await this.call({ op: 'getFeature', domid })).payload));
  }

  async setFeature(domid: number, features: number): Promise<void> {
    await this.call({ op: 'setFeature', domid, features });
  }

  /** GET_QUOTA: no quota name → the space-separated list of names; else its value (as text). */
  async getQuota(quota?: string, domid?: number): Promise<string> {
    return decodeSingleString((await this.call({ op: 'getQuota', domid, quota })).payload);
  }

  async setQuota(quota: string, value: number, domid?: number): Promise<void> {
    await this.call({ op: 'setQuota', domid, quota, value });
  }

  // ---- internals ----

  private endTx(tx: XsTransaction): void {
    tx.markEnded();
    this.transactions.delete(tx);
  }

  private async directoryParts(path: string, tx: TxRef | undefined): Promise<string[]> {
    for (let restart = 0; restart < DIRECTORY_PART_RESTARTS; restart++) {
      const names = await this.directoryPartsOnce(path, tx);
      if (names !== undefined) return names;
    }
    throw new XenpvError('EAGAIN', `DIRECTORY_PART ${path}: the directory kept changing`);
  }

  /** One pass from offset 0; undefined when the generation changed mid-way (start over). */
  private async directoryPartsOnce(path: string, tx: TxRef | undefined): Promise<string[] | undefined> {
    const names: string[] = [];
    let offset = 0;
    let generation: string | undefined;
    for (;;) {
      const msg = await this.call({ op: 'directoryPart', path, offset }, tx).catch((err: unknown) => {
        // "If XS_DIRECTORY_PART isn't supported return E2BIG" (libxenstore).
        throw err instanceof XenpvError && err.code === 'ENOSYS' ? new XenpvError('E2BIG', `DIRECTORY ${path}: E2BIG`) : err;
      });
      const part = decodeDirectoryPart(msg.payload);
      if (part === undefined) throw new XenpvError('EPROTO', `DIRECTORY_PART ${path}: malformed reply`);
      if (generation !== undefined && part.generation !== generation) return undefined;
      generation = part.generation;
      names.push(...part.children);
      if (part.done) return names;
      // No progress without an end marker would loop forever: the daemon is misbehaving.
      if (part.children.length === 0) throw new XenpvError('EPROTO', `DIRECTORY_PART ${path}: empty part without end`);
      for (const c of part.children) offset += c.length + 1;
    }
  }

  private async call(req: XsRequest, tx?: TxRef): Promise<XsMessage> {
    if (tx !== undefined && tx.open === false) {
      throw new XenpvError('EINVAL', `${req.op}: transaction ${tx.id} has already ended`);
    }
    let encoded: { type: number; payload: Uint8Array };
    try {
      encoded = encodeRequest(req);
    } catch (err) {
      throw new XenpvError('EINVAL', `${req.op}: ${(err as Error).message}`);
    }
    checkNoNul(req);
    // WATCH/UNWATCH and the domain operations ignore tx_id (XS_FLAG_NOTID); send 0 as libxenstore does.
    const txId = tx !== undefined && usesTx(encoded.type) ? tx.id : 0;
    return this.conn.request(encoded.type, txId, encoded.payload, 'path' in req ? req.path : '');
  }
}

function usesTx(type: number): boolean {
  return (
    type === XsOp.read || type === XsOp.write || type === XsOp.mkdir || type === XsOp.rm ||
    type === XsOp.directory || type === XsOp.directoryPart || type === XsOp.getPerms ||
    type === XsOp.setPerms || type === XsOp.transactionEnd
  );
}

/** A NUL inside a path or token would silently change the request's meaning. */
function checkNoNul(req: XsRequest): void {
  for (const s of ['path' in req ? req.path : '', 'token' in req ? req.token : '']) {
    if (s.includes('\0')) throw new XenpvError('EINVAL', `${req.op}: NUL byte in argument`);
  }
}

function parseDecimal(what: string, s: string): number {
  if (!/^[0-9]{1,10}$/.test(s)) throw new XenpvError('EPROTO', `${what}: bad number '${s}'`);
  return Number(s);
}
