/**
 * Both ends of the xenstore shared page (`xen/io/xs_wire.h`):
 *
 * ```c
 * struct xenstore_domain_interface {
 *     char req[XENSTORE_RING_SIZE]; // Requests to xenstore daemon.        @0
 *     char rsp[XENSTORE_RING_SIZE]; // Replies and async watch events.     @1024
 *     XENSTORE_RING_IDX req_cons, req_prod;                              // @2048, @2052
 *     XENSTORE_RING_IDX rsp_cons, rsp_prod;                              // @2056, @2060
 *     uint32_t server_features; // Bitmap of features supported by the server  @2064
 *     uint32_t connection;                                               // @2068
 *     uint32_t error;                                                    // @2072
 * };
 * ```
 * The guest writes `req` and reads `rsp`; the server does the opposite. The server alone
 * sets `server_features`, `connection` (after a reconnect) and `error`.
 */
import {
  XENSTORE_CONNECTED,
  XENSTORE_DOMAIN_INTERFACE,
  XENSTORE_RECONNECT,
  XENSTORE_RING_SIZE,
} from '../abi/io/xs_wire.js';
import { ByteRingReader, ByteRingWriter, type ByteRingLayout, type ByteRingOptions } from './byte-ring.js';
import { toRingMemory, type RingMemory, type RingMemoryInput } from './memory.js';

const OFF = XENSTORE_DOMAIN_INTERFACE.layouts.x86_64.fields;

export const XENSTORE_REQ_RING: ByteRingLayout = {
  data: OFF.req,
  size: XENSTORE_RING_SIZE,
  cons: OFF.req_cons,
  prod: OFF.req_prod,
};
export const XENSTORE_RSP_RING: ByteRingLayout = {
  data: OFF.rsp,
  size: XENSTORE_RING_SIZE,
  cons: OFF.rsp_cons,
  prod: OFF.rsp_prod,
};

/** The guest's end: writes requests, reads replies and watch events. */
export class XenstoreGuestPage {
  readonly requests: ByteRingWriter;
  readonly replies: ByteRingReader;
  private readonly mem: RingMemory;

  constructor(page: RingMemoryInput, options: ByteRingOptions = {}) {
    this.mem = toRingMemory(page);
    this.requests = new ByteRingWriter(this.mem, XENSTORE_REQ_RING, options);
    this.replies = new ByteRingReader(this.mem, XENSTORE_RSP_RING, options);
  }

  /** server_features, read once: the caller keeps the value it got. */
  serverFeatures(): number {
    return this.mem.load32(OFF.server_features);
  }

  /** connection: XENSTORE_CONNECTED (0) or XENSTORE_RECONNECT (1). */
  connection(): number {
    return this.mem.load32(OFF.connection);
  }

  error(): number {
    return this.mem.load32(OFF.error);
  }

  /** Ask for a reconnect: the guest sets `connection = XENSTORE_RECONNECT`, then signals. */
  requestReconnect(): void {
    this.mem.store32(OFF.connection, XENSTORE_RECONNECT);
  }

  /** After the server finished a reconnect: pick up the indices it reset. */
  resync(): void {
    this.requests.resync();
    this.replies.resync();
  }
}

/** The server's end: reads requests, writes replies and watch events. */
export class XenstoreServerPage {
  readonly requests: ByteRingReader;
  readonly replies: ByteRingWriter;
  private readonly mem: RingMemory;

  constructor(page: RingMemoryInput, options: ByteRingOptions = {}) {
    this.mem = toRingMemory(page);
    this.requests = new ByteRingReader(this.mem, XENSTORE_REQ_RING, options);
    this.replies = new ByteRingWriter(this.mem, XENSTORE_RSP_RING, options);
  }

  /** Advertise features; bits are only ever added, never cleared (xenstore-ring.txt). */
  addServerFeatures(bits: number): void {
    this.mem.store32(OFF.server_features, (this.mem.load32(OFF.server_features) | bits) >>> 0);
  }

  connection(): number {
    return this.mem.load32(OFF.connection);
  }

  /** The page's four indices, `connection` and `error` as they stand (diagnostics). */
  snapshot(): { reqCons: number; reqProd: number; rspCons: number; rspProd: number; connection: number; error: number } {
    const m = this.mem;
    return {
      reqCons: m.load32(OFF.req_cons),
      reqProd: m.load32(OFF.req_prod),
      rspCons: m.load32(OFF.rsp_cons),
      rspProd: m.load32(OFF.rsp_prod),
      connection: m.load32(OFF.connection),
      error: m.load32(OFF.error),
    };
  }

  /** XENSTORE_ERROR_* (0 none, 1 comm, 2 ring index, 3 proto): why the server gave up. */
  setError(code: number): void {
    this.mem.store32(OFF.error, code);
  }

  /**
   * The server's half of a reconnect (xenstore-ring.txt): empty both rings by zeroing all
   * four indices, then set `connection = XENSTORE_CONNECTED`. The caller drops its partial
   * packets and per-connection state and signals the guest afterwards.
   */
  resetRings(): void {
    for (const off of [OFF.req_cons, OFF.req_prod, OFF.rsp_cons, OFF.rsp_prod]) this.mem.store32(off, 0);
    this.requests.resync();
    this.replies.resync();
    this.mem.store32(OFF.connection, XENSTORE_CONNECTED);
  }
}
