/**
 * One connection to a xenstored over any byte transport: frames requests, matches replies to
 * requests by `req_id` (many in flight; "Replies may come out of order", protocols.md §1.1),
 * and hands XS_WATCH_EVENT messages to a listener.
 *
 * The daemon is a peer: a reply that is oversized, unmatched or of the wrong type is a
 * protocol violation, and the connection is dropped (every pending request fails with
 * `EPROTO`) rather than guessed at. Losing the transport fails every pending request with
 * `ECONNRESET`; closing locally fails them with `ECANCELED`.
 */
import { BoundedQueue, XenpvError, trackResource } from '../../base/index.js';
import type { StoreTransport } from '../../hv/platform.js';
import {
  FrameParser,
  PAYLOAD_MAX,
  XsOp,
  decodeErrorPayload,
  encodeMessage,
  opName,
  type XsMessage,
} from '../protocol/index.js';

export interface ConnectionOptions {
  /** Requests on the wire at once; more wait locally, in order. Default 1024. */
  readonly maxInFlight?: number;
  /** Requests allowed to wait locally behind those; beyond it a request fails `EBUSY`. */
  readonly maxQueued?: number;
  /** Name for leak reports. */
  readonly label?: string;
}

interface Pending {
  readonly type: number;
  readonly what: string;
  resolve(msg: XsMessage): void;
  reject(err: Error): void;
}

interface Waiting extends Pending {
  readonly txId: number;
  readonly payload: Uint8Array;
}

export class XsConnection {
  private readonly parser = new FrameParser();
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: BoundedQueue<Waiting>;
  private readonly maxInFlight: number;
  private nextReqId = 1;
  private failure: XenpvError | undefined;
  private readonly untrack: () => void;
  private watchListener: ((msg: XsMessage) => void) | undefined;
  private readonly closeListeners: ((err: XenpvError) => void)[] = [];

  constructor(
    private readonly transport: StoreTransport,
    options: ConnectionOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 1024;
    this.waiting = new BoundedQueue(options.maxQueued ?? 65536);
    this.untrack = trackResource('xs-connection', options.label ?? 'xenstore client');
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose((reason) =>
      this.fail(new XenpvError('ECONNRESET', 'xenstore connection lost', {}, { cause: reason })),
    );
  }

  /** Why the connection is unusable, or undefined while it is open. */
  get closedWith(): XenpvError | undefined {
    return this.failure;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Receives every XS_WATCH_EVENT (one listener: the client's watch router). */
  setWatchListener(fn: (msg: XsMessage) => void): void {
    this.watchListener = fn;
  }

  onClosed(fn: (err: XenpvError) => void): void {
    if (this.failure !== undefined) fn(this.failure);
    else this.closeListeners.push(fn);
  }

  /**
   * Send one request and resolve with its reply. An XS_ERROR reply rejects with a XenpvError
   * whose `code` is the Xen error name (`ENOENT`, `EACCES`, `EAGAIN`, ...).
   */
  request(type: number, txId: number, payload: Uint8Array, what = ''): Promise<XsMessage> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (payload.length > PAYLOAD_MAX) {
      // libxenstore refuses these locally (xs_talkv: E2BIG) instead of getting killed.
      return Promise.reject(new XenpvError('E2BIG', `${describe(type, what)}: request payload ${payload.length} > ${PAYLOAD_MAX}`));
    }
    return new Promise<XsMessage>((resolve, reject) => {
      const item: Waiting = { type, txId, payload, what, resolve, reject };
      if (this.pending.size < this.maxInFlight && this.waiting.length === 0) this.send(item);
      else if (!this.waiting.push(item)) reject(new XenpvError('EBUSY', `${describe(type, what)}: too many requests queued`));
    });
  }

  /** Close locally: pending requests fail with ECANCELED. Idempotent. */
  close(): void {
    this.fail(new XenpvError('ECANCELED', 'xenstore connection closed'));
  }

  private send(item: Waiting): void {
    const reqId = this.allocReqId();
    this.pending.set(reqId, item);
    try {
      this.transport.write(encodeMessage({ type: item.type, reqId, txId: item.txId, payload: item.payload }));
    } catch (err) {
      this.pending.delete(reqId);
      item.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** req_id is "echoed in daemon's response": any u32 not in flight; 0 is left to events. */
  private allocReqId(): number {
    for (;;) {
      const id = this.nextReqId;
      this.nextReqId = id === 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private onData(chunk: Uint8Array): void {
    if (this.failure !== undefined) return;
    const { messages, error } = this.parser.push(chunk);
    for (const msg of messages) {
      this.dispatch(msg);
      if (this.failure !== undefined) return;
    }
    if (error !== undefined) this.protocolError(error.message);
  }

  private dispatch(msg: XsMessage): void {
    if (msg.type === XsOp.watchEvent) {
      this.watchListener?.(msg);
      return;
    }
    const p = this.pending.get(msg.reqId);
    if (p === undefined) return this.protocolError(`reply with unknown req_id ${msg.reqId}`);
    if (msg.type !== p.type && msg.type !== XsOp.error) {
      return this.protocolError(`reply of type ${msg.type} to a request of type ${p.type}`);
    }
    this.pending.delete(msg.reqId);
    if (msg.type === XsOp.error) p.reject(replyError(p, msg.payload));
    else p.resolve(msg);
    this.pump();
  }

  private pump(): void {
    while (this.pending.size < this.maxInFlight && this.waiting.length > 0) this.send(this.waiting.shift()!);
  }

  private protocolError(detail: string): void {
    this.fail(new XenpvError('EPROTO', `xenstore protocol violation by the daemon: ${detail}`));
  }

  private fail(err: XenpvError): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.untrack();
    const pending = [...this.pending.values()];
    this.pending.clear();
    const queued: Waiting[] = [];
    for (let w = this.waiting.shift(); w !== undefined; w = this.waiting.shift()) queued.push(w);
    for (const p of [...pending, ...queued]) p.reject(err);
    for (const fn of this.closeListeners.splice(0)) fn(err);
    this.transport.dispose();
  }
}

function describe(type: number, what: string): string {
  const name = opName(type) ?? `op ${type}`;
  return what === '' ? name : `${name} ${what}`;
}

/** XS_ERROR → XenpvError with the Xen name as code; unknown names become EINVAL as in libxenstore. */
function replyError(p: Pending, payload: Uint8Array): XenpvError {
  const { name, known } = decodeErrorPayload(payload);
  const code = known ? name : 'EINVAL';
  const context: Record<string, unknown> = { op: opName(p.type), path: p.what };
  if (!known) context['wireError'] = name;
  return new XenpvError(code, `${describe(p.type, p.what)}: ${code}`, context);
}
