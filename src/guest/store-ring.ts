/**
 * The guest's connection to the store: the `xenstore_domain_interface` page and event channel
 * the domain builder put in start info (xs_wire.h, docs/misc/xenstore-ring.txt), shared by
 * every store client in the guest the way Linux's xenbus multiplexes /dev/xen/xenbus users
 * over its one ring.
 *
 * `StoreRing` owns the page: requests are queued (bounded) until the ring has room, replies
 * are copied out once and framed by their 16-byte header. `openClient()` hands out a
 * `StoreTransport` per client; the ring rewrites each request's `req_id` to one unique on
 * the ring and each watch token to `<client>:<token>`, so replies and watch events find their
 * client back and two clients' default tokens never collide.
 */
import { XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT } from '../abi/io/xs_wire.js';
import { XenpvError, type EvtchnPort, type Frame } from '../base/index.js';
import type { EvtchnBinding, StoreTransport } from '../hv/platform.js';
import type { SimPlatform } from '../hv/sim/platform.js';
import { XenstoreGuestPage } from '../ring/xenstore-page.js';
import { decodeHeader, encodeMessage, HEADER_SIZE, PAYLOAD_MAX, type XsMessage } from '../xenstore/protocol/index.js';

/** Requests waiting for ring space; a client past this is refused (ENOBUFS). */
const MAX_QUEUED_BYTES = 1 << 20;
const MAX_CLIENTS = 64;

interface Client {
  readonly id: number;
  data?: (chunk: Uint8Array) => void;
  readonly closers: ((reason?: Error) => void)[];
  inbox: Uint8Array;
  closed: boolean;
}

/** A framer: accumulates bytes and yields whole messages (header.len bounded). */
function takeMessages(buf: Uint8Array, out: XsMessage[]): Uint8Array {
  let at = 0;
  while (buf.length - at >= HEADER_SIZE) {
    const h = decodeHeader(buf, at);
    if (h.len > PAYLOAD_MAX) throw new XenpvError('EPROTO', `xenstore message of ${h.len} bytes`);
    if (buf.length - at < HEADER_SIZE + h.len) break;
    out.push({ type: h.type, reqId: h.reqId, txId: h.txId, payload: buf.slice(at + HEADER_SIZE, at + HEADER_SIZE + h.len) });
    at += HEADER_SIZE + h.len;
  }
  return at === 0 ? buf : buf.slice(at);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);
const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

/** `path\0token\0` with the token rewritten by `f`. */
function mapToken(payload: Uint8Array, f: (token: string) => string | undefined): Uint8Array | undefined {
  const parts = latin1(payload).split('\0');
  if (parts.length < 2) return undefined;
  const t = f(parts[1]!);
  if (t === undefined) return undefined;
  parts[1] = t;
  return bytes(parts.join('\0'));
}

export class StoreRing {
  private readonly page: XenstoreGuestPage;
  private readonly binding: EvtchnBinding;
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private inbox: Uint8Array = new Uint8Array(0);
  private readonly clients = new Map<number, Client>();
  private readonly inFlight = new Map<number, { client: number; reqId: number }>();
  private nextClient = 1;
  private nextReq = 1;
  private closed = false;

  constructor(platform: SimPlatform) {
    const si = platform.startInfo;
    if (si === undefined) throw new XenpvError('ENODEV', 'no xenstore ring in start info');
    this.page = new XenstoreGuestPage(platform.memory.page(si.storeFrame as Frame));
    this.binding = platform.events.adopt(si.storePort as EvtchnPort, () => this.pump());
  }

  openClient(): StoreTransport {
    if (this.closed) throw new XenpvError('ESHUTDOWN', 'store ring closed');
    if (this.clients.size >= MAX_CLIENTS) throw new XenpvError('EMFILE', 'too many store clients');
    const c: Client = { id: this.nextClient++, closers: [], inbox: new Uint8Array(0), closed: false };
    this.clients.set(c.id, c);
    return {
      write: (b) => this.fromClient(c, b),
      onData: (h) => void (c.data = h),
      onClose: (h) => void c.closers.push(h),
      dispose: () => this.dropClient(c),
    };
  }

  private fromClient(c: Client, b: Uint8Array): void {
    if (c.closed || this.closed) throw new XenpvError('EPIPE', 'store connection closed');
    const msgs: XsMessage[] = [];
    c.inbox = takeMessages(concat(c.inbox, b), msgs);
    for (const m of msgs) {
      let payload = m.payload;
      if (m.type === XS_WATCH || m.type === XS_UNWATCH) payload = mapToken(payload, (t) => `${c.id}:${t}`) ?? payload;
      const reqId = this.nextReq;
      this.nextReq = this.nextReq >= 0x7fffffff ? 1 : this.nextReq + 1;
      this.inFlight.set(reqId, { client: c.id, reqId: m.reqId });
      this.send(encodeMessage({ ...m, reqId, payload }));
    }
  }

  private send(msg: Uint8Array): void {
    if (this.queued + msg.length > MAX_QUEUED_BYTES) throw new XenpvError('ENOBUFS', 'store request queue full');
    this.queue.push(msg);
    this.queued += msg.length;
    this.flush();
  }

  private flush(): void {
    let wrote = false;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.page.requests.write(head);
      if (n === 0) break;
      wrote = true;
      this.queued -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    if (wrote) this.binding.notify();
  }

  /** An event from xenstored: replies in, room for requests out. */
  private pump(): void {
    if (this.closed) return;
    if (this.page.error() !== 0) return this.close(new XenpvError('EPROTO', `xenstored reported ring error ${this.page.error()}`));
    let got = false;
    for (;;) {
      const chunk = this.page.replies.read();
      if (chunk.length === 0) break;
      got = true;
      this.inbox = concat(this.inbox, chunk);
    }
    if (got) this.binding.notify();
    const msgs: XsMessage[] = [];
    try {
      this.inbox = takeMessages(this.inbox, msgs);
    } catch (err) {
      return this.close(err as Error);
    }
    for (const m of msgs) this.route(m);
    this.flush();
  }

  private route(m: XsMessage): void {
    if (m.type === XS_WATCH_EVENT) {
      let target: Client | undefined;
      const payload = mapToken(m.payload, (t) => {
        const i = t.indexOf(':');
        target = this.clients.get(Number(t.slice(0, i)));
        return i > 0 ? t.slice(i + 1) : undefined;
      });
      if (payload !== undefined && target !== undefined) target.data?.(encodeMessage({ ...m, payload }));
      return;
    }
    const who = this.inFlight.get(m.reqId);
    if (who === undefined) return; // a reply for a client that went away
    this.inFlight.delete(m.reqId);
    const c = this.clients.get(who.client);
    c?.data?.(encodeMessage({ ...m, reqId: who.reqId }));
  }

  private dropClient(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    this.clients.delete(c.id);
  }

  close(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.clients.values()]) {
      this.dropClient(c);
      for (const h of c.closers) h(reason);
    }
    this.binding.dispose();
  }
}
