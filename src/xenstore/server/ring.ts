/**
 * The guest transport: the `xenstore_domain_interface` page (two 1 KiB byte rings plus
 * indices, features, connection state, error) and an event channel (xs_wire.h,
 * docs/misc/xenstore-ring.txt).
 *
 * The page is shared with a hostile guest: indices are read once per pass and validated
 * (`prod - cons <= XENSTORE_RING_SIZE`, C check_indexes; else XENSTORE_ERROR_RINGIDX), bytes
 * are copied out before parsing, and our own consumer/producer indices are kept privately and
 * only written, never trusted back. Requests are read one message at a time while the
 * connection accepts input, so a guest cannot have more than `outstanding` requests in flight.
 */
import type { Disposable } from '../../base/index.js';
import {
  XENSTORE_ERROR_COMM,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_RECONNECT,
} from '../../abi/io/xs_wire.js';
import { XenstoreServerPage } from '../../ring/index.js';
import { decodeHeader, HEADER_SIZE } from '../protocol/index.js';
import type { Connection, Transport } from './connection.js';
import type { Xenstored } from './xenstored.js';

/** A mapped ring page and its bound event channel, as the platform provides them. */
export interface RingEndpoint extends Disposable {
  /** The shared page (at least the interface's 2076 bytes; 4-byte aligned). */
  readonly page: Uint8Array;
  /** Signal the guest (EVTCHNOP_send). */
  notify(): void;
  /** Called on every event from the guest. */
  onEvent(handler: () => void): void;
  /** Re-INTRODUCE with a new port: bind it instead of the old one. */
  rebind?(port: number): void;
  /** The channel as bound (local and remote port), for `xenstore-control connections`. */
  describe?(): string;
}

/** Map `gfn` of `domid` and bind to its unbound `port` (INTRODUCE). Throws if it cannot. */
export type RingMapper = (domid: number, gfn: number, port: number) => RingEndpoint;

/** Messages remembered for describe(). */
const RECENT = 6;

const ERROR_CODE = { proto: XENSTORE_ERROR_PROTO, ringidx: XENSTORE_ERROR_RINGIDX, comm: XENSTORE_ERROR_COMM } as const;

export class RingTransport implements Transport {
  readonly kind = 'ring' as const;
  /** The server end of the page (ring/xenstore-page.ts): index checks and copies live there. */
  private readonly page: XenstoreServerPage;
  private pending: Uint8Array | undefined;
  private paused = false;
  private closed = false;
  private d: Xenstored | undefined;
  private conn: Connection | undefined;
  /**
   * The last RECENT messages handed to the ring, four numbers each (type, req_id, length, start
   * index), in a circle from `recentNext`: describe() formats them; writing costs no string.
   */
  private readonly recent = new Float64Array(RECENT * 4).fill(-1);
  private recentNext = 0;

  constructor(
    private readonly endpoint: RingEndpoint,
    features: number,
  ) {
    this.page = new XenstoreServerPage(endpoint.page);
    // "server_features … bits never cleared": we only add.
    this.page.addServerFeatures(features);
  }

  start(d: Xenstored, conn: Connection): void {
    this.d = d;
    this.conn = conn;
    this.endpoint.onEvent(() => this.kick());
    this.kick();
  }

  rebind(port: number): void {
    this.endpoint.rebind?.(port);
  }

  /** An event from the guest (or our own nudge): reconnect, output, input. */
  kick(): void {
    if (this.closed || this.d === undefined || this.conn === undefined) return;
    if (this.page.connection() === XENSTORE_RECONNECT) this.reconnect();
    if (!this.pushPending()) return;
    if (this.pending === undefined) this.d.writable(this.conn);
    this.readRequests();
  }

  describe(): string {
    const p = this.page.snapshot();
    const broken = this.page.requests.broken ?? this.page.replies.broken;
    const channel = this.endpoint.describe?.();
    return `${channel === undefined ? '' : `${channel}; `}ring req cons ${p.reqCons} prod ${p.reqProd}, rsp cons ${p.rspCons} prod ${p.rspProd}, connection ${p.connection}, error ${p.error}; ` +
      `${this.pending === undefined ? 'no reply waiting for room' : `${this.pending.length} bytes waiting for room`}` +
      `${this.paused ? ', input paused' : ''}${this.closed ? ', closed' : ''}${broken !== undefined ? `, broken (${broken.reason})` : ''}; ` +
      `last written (type/req_id/len@index): ${this.recentWritten().join(' ')}`;
  }

  private recentWritten(): string[] {
    const out: string[] = [];
    for (let k = 0; k < RECENT; k++) {
      const at = ((this.recentNext + k) % RECENT) * 4;
      const r = this.recent;
      if (r[at]! >= 0) out.push(`${r[at]}/${r[at + 1]}/${r[at + 2]}@${r[at + 3]}`);
    }
    return out;
  }

  writable(): boolean {
    return this.pending === undefined && !this.closed;
  }

  write(bytes: Uint8Array): void {
    if (bytes.length >= HEADER_SIZE) {
      const h = decodeHeader(bytes);
      const at = this.recentNext * 4;
      this.recent[at] = h.type;
      this.recent[at + 1] = h.reqId;
      this.recent[at + 2] = h.len;
      this.recent[at + 3] = this.page.replies.produced;
      this.recentNext = (this.recentNext + 1) % RECENT;
    }
    this.pending = bytes;
    this.pushPending();
  }

  pauseInput(): void {
    this.paused = true;
  }

  resumeInput(): void {
    if (!this.paused) return;
    this.paused = false;
    queueMicrotask(() => this.kick());
  }

  close(reason?: 'proto' | 'ringidx' | 'comm'): void {
    if (this.closed) return;
    this.closed = true;
    if (reason !== undefined) {
      this.page.setError(ERROR_CODE[reason]);
      this.endpoint.notify();
    }
    this.endpoint.dispose();
  }

  /** Copy as much of the pending message into the response ring as fits. False on a bad index. */
  private pushPending(): boolean {
    const msg = this.pending;
    if (msg === undefined || this.closed) return !this.closed;
    const n = this.page.replies.write(msg);
    if (this.page.replies.broken !== undefined) return this.bad('ringidx');
    if (n === 0) return true;
    this.pending = n === msg.length ? undefined : msg.subarray(n);
    this.endpoint.notify();
    return true;
  }

  /** Read whole requests, one at a time, while the connection takes input. */
  private readRequests(): void {
    let consumed = false;
    while (!this.paused && !this.closed && this.conn !== undefined && !this.conn.closed) {
      const chunk = this.page.requests.read(Math.max(1, this.conn.parser.needed));
      if (this.page.requests.broken !== undefined) {
        this.bad('ringidx');
        return;
      }
      if (chunk.length === 0) break;
      consumed = true;
      this.d!.input(this.conn, chunk);
    }
    if (consumed && !this.closed) this.endpoint.notify();
  }

  /**
   * The guest asked to reconnect: drop partial packets, empty both rings, discard in-flight
   * requests, watches and transactions, set `connection` back to CONNECTED and signal.
   */
  private reconnect(): void {
    this.d!.resetConnection(this.conn!);
    this.pending = undefined;
    this.page.resetRings();
    this.endpoint.notify();
  }

  private bad(reason: 'ringidx' | 'proto'): false {
    if (this.d !== undefined && this.conn !== undefined) this.d.markBad(this.conn, reason);
    else this.close(reason);
    return false;
  }
}
