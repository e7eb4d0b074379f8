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
import { u32Add, u32Sub } from '../../base/index.js';
import {
  XENSTORE_CONNECTED,
  XENSTORE_DOMAIN_INTERFACE,
  XENSTORE_ERROR_COMM,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_RECONNECT,
  XENSTORE_RING_SIZE,
} from '../../abi/io/xs_wire.js';
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
}

/** Map `gfn` of `domid` and bind to its unbound `port` (INTRODUCE). Throws if it cannot. */
export type RingMapper = (domid: number, gfn: number, port: number) => RingEndpoint;

const F = XENSTORE_DOMAIN_INTERFACE.layouts.x86_64.fields;
const MASK = XENSTORE_RING_SIZE - 1;
/** u32 word indices of the control fields. */
const W = {
  reqCons: F.req_cons / 4,
  reqProd: F.req_prod / 4,
  rspCons: F.rsp_cons / 4,
  rspProd: F.rsp_prod / 4,
  features: F.server_features / 4,
  connection: F.connection / 4,
  error: F.error / 4,
} as const;

const ERROR_CODE = { proto: XENSTORE_ERROR_PROTO, ringidx: XENSTORE_ERROR_RINGIDX, comm: XENSTORE_ERROR_COMM } as const;

export class RingTransport implements Transport {
  readonly kind = 'ring' as const;
  private readonly words: Uint32Array;
  private readonly req: Uint8Array;
  private readonly rsp: Uint8Array;
  private reqCons: number;
  private rspProd: number;
  private pending: Uint8Array | undefined;
  private paused = false;
  private closed = false;
  private d: Xenstored | undefined;
  private conn: Connection | undefined;

  constructor(
    private readonly endpoint: RingEndpoint,
    features: number,
  ) {
    const page = endpoint.page;
    if (page.byteOffset % 4 !== 0 || page.length < XENSTORE_DOMAIN_INTERFACE.layouts.x86_64.size) {
      throw new RangeError('xenstore ring page too small or misaligned');
    }
    this.words = new Uint32Array(page.buffer, page.byteOffset, page.length >>> 2);
    this.req = page.subarray(F.req, F.req + XENSTORE_RING_SIZE);
    this.rsp = page.subarray(F.rsp, F.rsp + XENSTORE_RING_SIZE);
    // Our indices start where the guest left them ("must not assume the indices start at 0").
    this.reqCons = Atomics.load(this.words, W.reqCons);
    this.rspProd = Atomics.load(this.words, W.rspProd);
    // "server_features … bits never cleared": we only add.
    Atomics.or(this.words, W.features, features);
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
    if (Atomics.load(this.words, W.connection) === XENSTORE_RECONNECT) this.reconnect();
    if (!this.pushPending()) return;
    if (this.pending === undefined) this.d.writable(this.conn);
    this.readRequests();
  }

  writable(): boolean {
    return this.pending === undefined && !this.closed;
  }

  write(bytes: Uint8Array): void {
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
      Atomics.store(this.words, W.error, ERROR_CODE[reason]);
      this.endpoint.notify();
    }
    this.endpoint.dispose();
  }

  /** Copy as much of the pending message into the response ring as fits. False on a bad index. */
  private pushPending(): boolean {
    const msg = this.pending;
    if (msg === undefined || this.closed) return !this.closed;
    const cons = Atomics.load(this.words, W.rspCons);
    const used = u32Sub(this.rspProd, cons);
    if (used > XENSTORE_RING_SIZE) return this.bad('ringidx');
    const n = Math.min(XENSTORE_RING_SIZE - used, msg.length);
    if (n === 0) return true;
    copyIn(this.rsp, this.rspProd, msg.subarray(0, n));
    this.rspProd = u32Add(this.rspProd, n);
    Atomics.store(this.words, W.rspProd, this.rspProd);
    this.pending = n === msg.length ? undefined : msg.subarray(n);
    this.endpoint.notify();
    return true;
  }

  /** Read whole requests, one at a time, while the connection takes input. */
  private readRequests(): void {
    let consumed = false;
    while (!this.paused && !this.closed && this.conn !== undefined && !this.conn.closed) {
      const prod = Atomics.load(this.words, W.reqProd);
      const avail = u32Sub(prod, this.reqCons);
      if (avail > XENSTORE_RING_SIZE) {
        this.bad('ringidx');
        return;
      }
      const want = Math.min(avail, Math.max(1, this.conn.parser.needed));
      if (want === 0) break;
      const chunk = copyOut(this.req, this.reqCons, want);
      this.reqCons = u32Add(this.reqCons, want);
      Atomics.store(this.words, W.reqCons, this.reqCons);
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
    this.reqCons = Atomics.load(this.words, W.reqProd);
    Atomics.store(this.words, W.reqCons, this.reqCons);
    this.rspProd = Atomics.load(this.words, W.rspCons);
    Atomics.store(this.words, W.rspProd, this.rspProd);
    Atomics.store(this.words, W.connection, XENSTORE_CONNECTED);
    this.endpoint.notify();
  }

  private bad(reason: 'ringidx' | 'proto'): false {
    if (this.d !== undefined && this.conn !== undefined) this.d.markBad(this.conn, reason);
    else this.close(reason);
    return false;
  }
}

function copyIn(ring: Uint8Array, idx: number, bytes: Uint8Array): void {
  const off = idx & MASK;
  const first = Math.min(bytes.length, XENSTORE_RING_SIZE - off);
  ring.set(bytes.subarray(0, first), off);
  if (first < bytes.length) ring.set(bytes.subarray(first), 0);
}

function copyOut(ring: Uint8Array, idx: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const off = idx & MASK;
  const first = Math.min(len, XENSTORE_RING_SIZE - off);
  out.set(ring.subarray(off, off + first), 0);
  if (first < len) out.set(ring.subarray(0, len - first), first);
  return out;
}
